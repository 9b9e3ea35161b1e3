"""Output column lists, read from the docstrings: the one source for the docs and for tests/test_docs.py.

Every table-returning function documents its columns in its numpydoc ``Returns`` section (a result
object: in the ``Attributes`` entry of the table), in either of the two forms the package uses::

    quarter : str                         - ``team_id``, ``metric`` (str)
        Quarter label.                    - ``latest`` (float): value of the last period
    team_id, objective_id : str             with a value in the window

This module parses both, and, as an MkDocs hook, replaces ``{{ columns okr_analysis.scoring.score_teams }}``
(or ``{{ columns okr_analysis.leadlag.LeadLagResult:table }}`` for an attribute) in a page with a table of
those columns. As a griffe extension (:class:`ColumnTables`) it renders the same table in the API
reference and turns Sphinx roles (``:func:`x```) into code, so the docstrings read well in Markdown.
"""

from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass
from pathlib import Path

try:
    import griffe
except ImportError:  # the parser is also used by tests/test_docs.py, which does not need the docs extra
    griffe = None

__all__ = ["Column", "ColumnTables", "column_names", "columns_of", "markdown_table", "on_page_markdown",
           "resolve", "section_entry"]

_IDENT = r"[a-z_][a-z0-9_]*"
_A_ENTRY = re.compile(rf"^({_IDENT}(?:, {_IDENT})*)(?: : (.+))?$")
_MARKER = re.compile(r"\{\{\s*columns\s+(\w+\.[\w.]+(?::\w+)?)\s*\}\}")
_INCLUDE = re.compile(r"\{\{\s*include\s+(\w+\.[\w.]+)\s*\}\}")
_RESULT = re.compile(r"\{\{\s*result\s+([\w./-]+\.md)\s*\}\}")
_ROLE = re.compile(r":(?:func|meth|class|data|attr|mod|obj|exc):`~?([^`]+)`")
_HEADER = re.compile(r"^(\w[\w ]*)\n-{3,}$", re.M)


@dataclass(frozen=True)
class Column:
    """One entry of a column list: one or more column names sharing a type and a description."""

    names: tuple[str, ...]
    type: str
    description: str
    conditional: bool = False  # "with ``with_drivers=True`` also ...": present only with an option
    head: str = ""  # the names as written, with their types, when they do not share one type


def resolve(path: str) -> object:
    """The object named ``package.module.name`` (``module.Class.method`` too)."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for p in parts[i:]:
            obj = getattr(obj, p)
        return obj
    raise ImportError(f"cannot import {path!r}")


def _sections(doc: str) -> dict[str, str]:
    """numpydoc sections of a cleaned docstring: title -> body."""
    heads = list(_HEADER.finditer(doc))
    return {m.group(1): doc[m.end():(heads[i + 1].start() if i + 1 < len(heads) else len(doc))].strip("\n")
            for i, m in enumerate(heads)}


def _entries(body: str) -> dict[str, str]:
    """``name : type`` entries of a section (first line at indent 0) -> their dedented description."""
    out: dict[str, str] = {}
    name, lines = None, []
    for line in body.splitlines():
        if line and not line[0].isspace():
            if name is not None:
                out[name] = "\n".join(lines)
            name, lines = line.split(" : ")[0].strip(), []
        elif name is not None:
            lines.append(line[4:] if line.startswith("    ") else line.strip())
    if name is not None:
        out[name] = "\n".join(lines)
    return out


def section_entry(doc: str, entry: str | None = None) -> str:
    """The description of the ``Returns`` section's first entry, or of the ``Attributes`` entry ``entry``."""
    doc = inspect.cleandoc(doc)
    sections = _sections(doc)
    if entry is None:
        if "Returns" not in sections:
            raise ValueError("the docstring has no Returns section")
        return next(iter(_entries(sections["Returns"]).values()))
    entries = _entries(sections.get("Attributes", ""))
    if entry not in entries:
        raise ValueError(f"the docstring's Attributes section has no entry {entry!r}")
    return entries[entry]


def _mask(text: str) -> str:
    """``text`` with the content of ``code`` spans replaced by x (same length), so separators inside code
    do not count."""
    return re.sub(r"``(.*?)``", lambda m: "``" + "x" * len(m.group(1)) + "``", text, flags=re.S)


def _split_top(text: str, sep: str) -> list[tuple[int, int]]:
    """Spans of ``text`` between occurrences of ``sep`` that are outside parentheses and code."""
    masked, depth, start, spans = _mask(text), 0, 0, []
    for i, ch in enumerate(masked):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(depth - 1, 0)
        elif depth == 0 and masked.startswith(sep, i):
            spans.append((start, i))
            start = i + len(sep)
    spans.append((start, len(text)))
    return spans


def _bullet(item: str) -> list[Column]:
    """Columns of one ``- ``name`` (type): description`` item (segments split at top-level ``; ``)."""
    conditional = not item.startswith("``")
    first = re.search(rf"``{_IDENT}``", item)
    prefix = item[:first.start()].strip() if conditional and first else ""
    out: list[Column] = []
    for a, b in _split_top(item, "; "):
        seg = item[a:b].strip()
        if conditional and not out:
            seg = seg[len(prefix):].strip() if seg.startswith(prefix) else seg
            prefix = re.sub(r"\s+also$", "", prefix)  # "with ``with_drivers=True`` also ``x``"
        if not seg.startswith("``"):
            if out:  # description text after a semicolon: part of the previous entry
                prev = out[-1]
                out[-1] = Column(prev.names, prev.type, f"{prev.description}; {seg}".strip("; "),
                                 prev.conditional, prev.head)
            continue
        colon = next((s for s, _ in _split_top(seg, ":")[1:]), None)
        head, desc = (seg, "") if colon is None else (seg[:colon - 1].strip(), seg[colon:].strip())
        names, types, notes, pending = [], [], [], []
        for m in re.finditer(rf"``({_IDENT})``|\(", _mask(head)):
            if m.group(0) == "(":
                depth, j = 1, m.end()
                while j < len(head) and depth:
                    depth += {"(": 1, ")": -1}.get(_mask(head)[j], 0)
                    j += 1
                if not pending:
                    continue
                typ, _, note = head[m.end():j - 1].partition(":")
                types.append(typ.strip())
                notes.append(note.strip())
                pending = []
            else:
                name = head[m.start(1):m.end(1)]
                names.append(name)
                pending.append(name)
        if not names:
            continue
        kinds = set(types)
        one = len(kinds) == 1 and not any(notes)
        out.append(Column(tuple(names), types[0] if one else "", desc if not prefix or out else
                          f"{prefix}: {desc}".strip(": "), conditional, "" if one or not types else head))
    if conditional and out and prefix and not out[0].description:
        c = out[0]
        out[0] = Column(c.names, c.type, prefix, c.conditional, c.head)
    return out


def columns_of(text: str) -> tuple[list[Column], str, str]:
    """Parse an entry's description: (columns, the text before the list, the text after it)."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith("- ``") or
                  (i > 0 and not lines[i - 1].strip() and _A_ENTRY.match(ln)
                   and any(lines[j].strip().endswith(":") for j in range(i)))), None)
    if start is None:
        raise ValueError("no column list found (expected 'name : type' entries or '- ``name`` (type)' items)")
    before, cols, end = "\n".join(lines[:start]).strip(), [], len(lines)
    if lines[start].startswith("- "):
        items: list[list[str]] = []
        for i in range(start, len(lines)):
            ln = lines[i]
            if ln.startswith("- "):
                items.append([ln[2:]])
            elif ln.startswith("  ") and items:
                items[-1].append(ln.strip())
            elif not ln.strip():
                continue
            else:
                end = i
                break
        for it in items:
            cols.extend(_bullet(" ".join(it)))
    else:
        i = start
        while i < len(lines):
            ln = lines[i]
            if not ln.strip():
                i += 1
                continue
            m = _A_ENTRY.match(ln)
            if not m:
                end = i
                break
            desc, i = [], i + 1
            while i < len(lines) and (lines[i].startswith(" ") or not lines[i].strip()):
                if lines[i].strip():
                    desc.append(lines[i].strip())
                i += 1
            cols.append(Column(tuple(m.group(1).split(", ")), (m.group(2) or "").strip(), " ".join(desc)))
    after = "\n".join(lines[end:]).strip() if end < len(lines) else ""
    return cols, before, after


def _columns_for(path: str) -> tuple[list[Column], str, str]:
    target, _, entry = path.partition(":")
    doc = resolve(target).__doc__ or ""
    return columns_of(section_entry(doc, entry or None))


def column_names(path: str, *, conditional: bool = False) -> list[str]:
    """Every column the docstring of ``path`` lists, in order (``conditional``: with optional ones)."""
    return [n for c in _columns_for(path)[0] if conditional or not c.conditional for n in c.names]


def _inline(text: str) -> str:
    """Sphinx roles to code, one line, pipes escaped: fit for a Markdown table cell."""
    text = _ROLE.sub(lambda m: f"`{m.group(1).split('.')[-1]}`", " ".join(text.split()))
    return re.sub(r"``([^`]+)``", r"`\1`", text).replace("|", r"\|")


def _table(cols: list[Column]) -> str:
    rows = ["| column | type | meaning |", "|---|---|---|"]
    for c in cols:
        names = _inline(c.head) if c.head else ", ".join(f"`{n}`" for n in c.names)
        desc = c.description
        rows.append(f"| {names} | {_inline(c.type)} | {_inline(desc)} |")
    return "\n".join(rows)


def markdown_table(path: str) -> str:
    """The column list of ``path`` as a Markdown table (with the docstring's sentences around it)."""
    cols, _before, after = _columns_for(path)
    return _table(cols) + (f"\n\n{_inline(after)}" if after else "")


# ------------------------------------------------------------------------------------------------
# MkDocs hook
def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 - MkDocs hook signature
    """Replace every ``{{ columns PATH }}`` marker with the table of PATH's columns, and every
    ``{{ include PATH }}`` with the text of the string constant PATH (without its ``## `` title line)."""
    markdown = _INCLUDE.sub(lambda m: _text_constant(m.group(1)), markdown)
    root = Path(config.config_file_path).parent
    markdown = _RESULT.sub(lambda m: _result(root / m.group(1)), markdown)
    return _MARKER.sub(lambda m: markdown_table(m.group(1)), markdown)


def on_page_content(html: str, page, config, files) -> str:  # noqa: ARG001 - MkDocs hook signature
    """mkdocs-click 0.9 shows click 8.3's "no default" marker, and None, as defaults: leave those cells empty."""
    if page.file.src_uri == "guide/cli.md":
        html = html.replace("<td><code>Sentinel.UNSET</code></td>", "<td></td>").replace("<td>None</td>", "<td></td>")
    return html


def _result(path: Path) -> str:
    """A benchmark's result file (``{{ result benchmarks/results/NAME.md }}``), headings one level down and its
    pictures served from ``results/`` (see :func:`on_files`)."""
    out, fence = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fence = not fence
        if not fence and re.match(r"^#{1,5} ", line):
            line = "#" + line
        out.append(re.sub(r"\]\(([\w.-]+\.png)\)", r"](results/\1)", line))
    return "\n".join(out)


def on_files(files, config):
    """Serve the benchmarks' pictures (``benchmarks/results/*.png``) as ``results/*.png``."""
    from mkdocs.structure.files import File

    for png in sorted((Path(config.config_file_path).parent / "benchmarks" / "results").glob("*.png")):
        files.append(File.generated(config, f"results/{png.name}", abs_src_path=str(png)))
    return files


def _text_constant(path: str) -> str:
    text = resolve(path)
    if not isinstance(text, str):
        raise TypeError(f"{path} is not a string constant")
    lines = text.strip().splitlines()
    return "\n".join(lines[1:] if lines and lines[0].startswith("## ") else lines).strip()


# ------------------------------------------------------------------------------------------------
# griffe extension: the same tables in the API reference
def _rewrite(doc: str) -> str:
    """Sphinx roles to code; a column list in Returns/Attributes to a Markdown table, indented in place."""
    doc = _ROLE.sub(lambda m: f"`{m.group(1).split('.')[-1]}`", doc)
    lines = doc.splitlines()
    out, i = [], 0
    while i < len(lines):
        ln = lines[i]
        m = _A_ENTRY.match(ln.strip()) if ln.startswith("    ") and not ln.startswith("     ") else None
        prev_colon = any(x.strip().endswith("columns:") or x.strip().endswith("Columns:") for x in out[-3:])
        if m and prev_colon and i > 0 and not lines[i - 1].strip():
            block = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith("    ")):
                block.append(lines[i][4:])
                i += 1
            try:
                cols, _b, after = columns_of("with columns:\n\n" + "\n".join(block))
            except ValueError:
                out.extend("    " + b for b in block)
                continue
            out.extend("    " + r for r in _table(cols).splitlines())
            if after:
                out.extend(["", *("    " + a for a in after.splitlines())])
            out.append("")
            continue
        out.append(ln)
        i += 1
    return "\n".join(out)


if griffe is not None:

    class ColumnTables(griffe.Extension):
        """Render column lists as tables and Sphinx roles as code in every docstring mkdocstrings shows."""

        def _fix(self, obj) -> None:
            if obj.docstring is not None:
                obj.docstring.value = _rewrite(obj.docstring.value)

        def on_function_instance(self, *, func, **kwargs) -> None:  # noqa: D102
            self._fix(func)

        def on_class_instance(self, *, cls, **kwargs) -> None:  # noqa: D102
            self._fix(cls)

        def on_module_instance(self, *, mod, **kwargs) -> None:  # noqa: D102
            self._fix(mod)

        def on_attribute_instance(self, *, attr, **kwargs) -> None:  # noqa: D102
            self._fix(attr)
