"""Rendering executed notebooks: HTML with the okr_report template, PDF with headless Chromium,
and the index page.
"""

from __future__ import annotations

import copy
import functools
import html
import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterable, Mapping

import jinja2
from markupsafe import Markup
from traitlets import Bool

from ..config import TEMPLATE_DIR, chromium_override
from ..formatting import score as format_score
from ..formatting import status_counts as format_status_counts
from ..rules import BAND_COLOURS

__all__ = ["CHROMIUM_ARGS", "EMPTY_SECTION_METADATA", "HtmlRenderer", "OPTIONAL_SECTION_TAG", "PAPERMILL_ERROR_TAG", "PDF_INSTALL_HINT", "PdfPrinter", "REMOVED_CELL_TAGS", "REMOVED_OUTPUT_TAGS", "SUMMARY_MIMETYPE", "atomic_write", "band_colours", "find_chromium", "iter_external_references", "pdf_support", "render_index", "render_index_page", "render_index_row", "temp_path_for"]



#: Mimetype of the hidden output through which a report notebook hands its summary
#: (team, score, band, status counts …) to the runner; never shown in a report.
SUMMARY_MIMETYPE = "application/vnd.okr-analysis.summary+json"


#: Cell tags removed from every rendered report.
REMOVED_CELL_TAGS = frozenset({"parameters", "injected-parameters", "remove-cell", "remove_cell"})


REMOVED_OUTPUT_TAGS = frozenset({"remove-output", "remove_output"})


PAPERMILL_ERROR_TAG = "papermill-error-cell-tag"


#: Tag of a markdown heading cell whose section is left out of the report (heading, contents entry and
#: the section's cells) when the section has nothing to show: every output of the code cells up to the next
#: markdown cell carries the :data:`EMPTY_SECTION_METADATA` marker (or there is no output at all).
OPTIONAL_SECTION_TAG = "optional-section"


#: Output metadata key by which a section says "nothing to show here" (its output, a short note, still shows
#: in JupyterLab; in a rendered report an :data:`OPTIONAL_SECTION_TAG` section is then left out).
EMPTY_SECTION_METADATA = "okr-analysis/empty-section"


#: Flags for a headless Chromium that must not reach the network or need a GPU.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",  # containers often have a small /dev/shm
)


PDF_INSTALL_HINT = (
    "PDF reports need Chromium: install it with `apt-get install chromium` (Debian/Ubuntu; "
    "`make setup` does it), or set OKR_ANALYSIS_CHROMIUM to a Chrome/Chromium executable. "
    "HTML reports were written; print them to PDF from a browser if needed."
)


_CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


_CHROMIUM_PATHS = ("/usr/lib/chromium/chromium", "/usr/bin/chromium",
                   "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
                   "/Applications/Chromium.app/Contents/MacOS/Chromium")


# ----------------------------------------------------------------------------------
# Atomic files
# ----------------------------------------------------------------------------------
def temp_path_for(path: "str | os.PathLike[str]") -> Path:
    """A unique temporary name beside ``path`` (hidden, same suffix), for a later :func:`os.replace`."""
    path = Path(path)
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")


def atomic_write(path: "str | os.PathLike[str]", data: "str | bytes") -> Path:
    """Write ``data`` to ``path`` through a temporary file and :func:`os.replace`.

    A reader never sees a half-written file, and an interrupted write leaves the
    previous version in place.
    """
    path = Path(path)
    tmp = temp_path_for(path)
    try:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


# ----------------------------------------------------------------------------------
# HTML
# ----------------------------------------------------------------------------------
def _make_preprocessor_class():
    # lazy import: nbconvert adds ~0.4 s to every command that renders no report (REPORTING_NOTES.md)
    from nbconvert.filters.markdown import markdown2html
    from nbconvert.preprocessors import Preprocessor

    heading = re.compile(r"<h([1-3])\s+id=\"([^\"]*)\"[^>]*>(.*?)</h\1>", re.S)
    anchor = re.compile(r"<a class=\"anchor-link\".*?</a>", re.S)
    tags = re.compile(r"<[^>]+>")

    def _cell_headings(source: str) -> list[dict[str, Any]]:
        found = []
        for level, hid, inner in heading.findall(markdown2html(source)) if "#" in source else []:
            if level in ("2", "3"):
                text = html.unescape(tags.sub("", anchor.sub("", inner))).strip()
                found.append({"level": int(level), "id": html.unescape(hid), "text": text})
        return found

    def _without_empty_sections(cells: list) -> list:
        kept, i = [], 0
        while i < len(cells):
            cell = cells[i]
            if cell.cell_type == "markdown" and OPTIONAL_SECTION_TAG in cell.get("metadata", {}).get("tags", []):
                end = i + 1
                while end < len(cells) and cells[end].cell_type == "code":
                    end += 1
                outputs = [out for c in cells[i + 1:end] for out in c.get("outputs", [])]
                if all(out.get("metadata", {}).get(EMPTY_SECTION_METADATA) for out in outputs):
                    i = end
                    continue
            kept.append(cell)
            i += 1
        return kept

    class ReportPreprocessor(Preprocessor):
        """Prepare an executed report notebook for the ``okr_report`` template.

        * removes cells tagged ``parameters``, ``injected-parameters`` or ``remove-cell``
          and the outputs of cells tagged ``remove-output``;
        * removes stderr streams (warnings, logging) always, and error outputs plus
          papermill's error banner unless ``show_errors`` (used for a failed run's page);
        * takes the report summary output (:data:`SUMMARY_MIMETYPE`) out of the page and
          puts it in ``resources['okr_summary']``;
        * leaves out a section whose heading cell is tagged :data:`OPTIONAL_SECTION_TAG` when its code
          cells show nothing but outputs marked :data:`EMPTY_SECTION_METADATA` (e.g. "Initiatives" for a
          team without initiatives);
        * collects the table of contents (level-2 and level-3 headings of markdown cells,
          with the ids nbconvert gives them) into ``resources['okr_toc']``.
        """

        show_errors = Bool(False, help="Keep error outputs and papermill's error banner.").tag(config=True)

        def preprocess(self, nb, resources):
            show_errors = bool(resources.get("okr_show_errors", self.show_errors))
            summary: dict[str, Any] = {}
            cells = []
            for cell in nb.cells:
                cell_tags = set(cell.get("metadata", {}).get("tags", []))
                if cell_tags & REMOVED_CELL_TAGS:
                    continue
                if PAPERMILL_ERROR_TAG in cell_tags and not show_errors:
                    continue
                if cell.cell_type == "code":
                    kept = []
                    for out in cell.get("outputs", []):
                        data = out.get("data", {})
                        if SUMMARY_MIMETYPE in data:
                            payload = data[SUMMARY_MIMETYPE]
                            summary.update(json.loads(payload) if isinstance(payload, str) else payload)
                            continue
                        if out.get("output_type") == "stream" and out.get("name") == "stderr":
                            continue
                        if out.get("output_type") == "error" and not show_errors:
                            continue
                        kept.append(out)
                    cell.outputs = [] if cell_tags & REMOVED_OUTPUT_TAGS else kept
                cells.append(cell)
            nb.cells = _without_empty_sections(cells)
            toc = [entry for c in nb.cells if c.cell_type == "markdown" for entry in _cell_headings(c.source)]
            resources["okr_summary"] = summary
            resources["okr_toc"] = toc
            return nb, resources

    return ReportPreprocessor


_PREPROCESSOR_CLASS = None


def __getattr__(name: str):  # PEP 562: build the nbconvert-based class on first use
    global _PREPROCESSOR_CLASS
    if name == "ReportPreprocessor":
        if _PREPROCESSOR_CLASS is None:
            _PREPROCESSOR_CLASS = _make_preprocessor_class()
            _PREPROCESSOR_CLASS.__module__ = __name__
        return _PREPROCESSOR_CLASS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class HtmlRenderer:
    """Render executed report notebooks to standalone HTML with the ``okr_report`` template.

    Build one per process and reuse it: building the exporter costs far more than
    rendering a notebook (~0.06 s).

    Parameters
    ----------
    template_dir : path, optional
        The template folder (default: the repository's ``templates/okr_report``).
    """

    def __init__(self, template_dir: "str | os.PathLike[str] | None" = None):
        # lazy import: nbconvert adds ~0.4 s to every command that renders no report (REPORTING_NOTES.md)
        from nbconvert import HTMLExporter

        template_dir = Path(template_dir) if template_dir is not None else TEMPLATE_DIR
        if not (template_dir / "index.html.j2").exists():
            raise FileNotFoundError(
                f"template_dir {str(template_dir)!r} has no index.html.j2; point it to templates/okr_report "
                "of the okr-analysis repository."
            )
        self.template_dir = template_dir
        self.exporter = HTMLExporter(
            extra_template_basedirs=[str(template_dir.parent)],
            template_name=template_dir.name,
            exclude_input=True,
            exclude_input_prompt=True,
            exclude_output_prompt=True,
            embed_images=True,
        )

    def render(self, nb, *, show_errors: bool = False, resources: Mapping[str, Any] | None = None) -> tuple[str, dict]:
        """Render a notebook node; returns ``(html, resources)``.

        ``resources['okr_summary']`` holds the summary the notebook recorded (if any).
        With ``show_errors=True`` (a failed run) the traceback and papermill's banner are kept.
        """

        res = {"okr_show_errors": show_errors, "okr_band_colours": band_colours(),
               **(dict(resources) if resources else {})}
        body, out_resources = self.exporter.from_notebook_node(copy.deepcopy(nb), resources=res)
        return body, out_resources


def band_colours() -> dict[str, str]:
    """The score bands' colours as the charts draw them (:data:`okr_analysis.rules.BAND_COLOURS`), for the
    stylesheet: the template sets them as the CSS properties ``--band-red``, ``--band-yellow``,
    ``--band-green`` and ``--band-none``, so a band swatch in a table has the colour of the band in a chart.

    Raises
    ------
    ValueError
        If a colour is not a ``#rrggbb`` hex code (it is written into the page's stylesheet).
    """
    colours = {}
    for band, colour in BAND_COLOURS.items():
        if not (re.fullmatch(r"[a-z]+", str(band)) and re.fullmatch(r"#[0-9a-fA-F]{6}", str(colour))):
            raise ValueError(f"BAND_COLOURS[{band!r}] = {colour!r}: give each band a colour as '#rrggbb' "
                             "(okr_analysis.rules).")
        colours[band] = colour.upper()
    return colours


# ----------------------------------------------------------------------------------
# PDF
# ----------------------------------------------------------------------------------
def find_chromium() -> str | None:
    """Path of a Chrome/Chromium executable, or None.

    Looks at ``$OKR_ANALYSIS_CHROMIUM``, then ``chromium``/``google-chrome`` on PATH,
    then the usual install locations.
    """
    env = chromium_override()
    if env:
        return env if Path(env).exists() else None
    for name in _CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    for candidate in _CHROMIUM_PATHS:
        if Path(candidate).exists():
            return candidate
    return None


def pdf_support() -> tuple[str | None, str]:
    """``(chromium_path, message)``: the browser to print with, or None and how to get one."""
    try:
        # lazy import: Chromium driver, needed only to print PDFs
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return None, "PDF reports need the playwright Python package (pip install playwright). " + PDF_INSTALL_HINT
    path = find_chromium()
    if path is None:
        return None, "No Chromium found. " + PDF_INSTALL_HINT
    return path, ""


_FOOTER = (
    '<div style="font-family: DejaVu Sans, Arial, sans-serif; font-size: 8px; color: #555; width: 100%;'
    ' padding: 0 14mm; display: flex; justify-content: space-between;">'
    "<span>{left}</span><span>page <span class=\"pageNumber\"></span> of <span class=\"totalPages\"></span></span>"
    "</div>"
)


class PdfPrinter:
    """Print HTML files to PDF with one persistent headless Chromium.

    Use as a context manager or call :meth:`close`. The browser starts on first use.
    Requests to anything but ``file:`` and ``data:`` URLs are blocked, so a report
    never waits on the network.

    Parameters
    ----------
    executable_path : str, optional
        Chrome/Chromium executable (default: :func:`find_chromium`).
    """

    def __init__(self, executable_path: str | None = None):
        self.executable_path = executable_path or find_chromium()
        if self.executable_path is None:
            raise FileNotFoundError("No Chromium found. " + PDF_INSTALL_HINT)
        self._pw = None
        self._browser = None
        self._page = None

    def start(self) -> "PdfPrinter":
        """Launch the browser (done automatically on first print)."""
        if self._browser is not None:
            return self
        # lazy import: Chromium driver, needed only to print PDFs
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        try:
            self._browser = self._pw.chromium.launch(executable_path=self.executable_path,
                                                     args=list(CHROMIUM_ARGS))
        except Exception:
            self._pw.stop()
            self._pw = None
            raise
        return self

    def _new_page(self):
        context = self._browser.new_context()
        context.route("**/*", _block_network)
        return context.new_page()

    def print_pdf(self, html_path: "str | os.PathLike[str]", pdf_path: "str | os.PathLike[str]", *,
                  footer: str = "") -> Path:
        """Print one HTML file to ``pdf_path`` (written atomically). ``footer`` is plain text (escaped)."""
        self.start()
        html_path, pdf_path = Path(html_path).resolve(), Path(pdf_path)
        if self._page is None or self._page.is_closed():
            self._page = self._new_page()
        tmp = temp_path_for(pdf_path)
        try:
            self._page.goto(html_path.as_uri(), wait_until="load")
            self._page.pdf(
                path=str(tmp),
                format="A4",
                print_background=True,
                prefer_css_page_size=True,
                display_header_footer=True,
                header_template="<span></span>",
                footer_template=_FOOTER.format(left=html.escape(footer)),
                margin={"top": "14mm", "bottom": "16mm", "left": "14mm", "right": "14mm"},
                outline=True,
                tagged=True,
            )
            os.replace(tmp, pdf_path)
        except Exception:
            # A crashed page is replaced on the next print; the browser itself stays up.
            if self._page is not None:
                try:
                    self._page.context.close()
                except Exception:
                    pass
                self._page = None
            raise
        finally:
            if tmp.exists():
                tmp.unlink()
        return pdf_path

    def close(self) -> None:
        """Close the browser and Playwright."""
        try:
            if self._browser is not None:
                self._browser.close()
        finally:
            self._browser = None
            self._page = None
            if self._pw is not None:
                self._pw.stop()
                self._pw = None

    def __enter__(self) -> "PdfPrinter":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def _block_network(route) -> None:
    if route.request.url.startswith(("file:", "data:", "about:")):
        route.continue_()
    else:
        route.abort()


# ----------------------------------------------------------------------------------
# The index page
# ----------------------------------------------------------------------------------
def render_index(manifest: Mapping[str, Any], *, template_dir: "str | os.PathLike[str] | None" = None) -> str:
    """The batch's ``index.html`` from its manifest (``build.json`` contents).

    One row per team: name (linking to its report), department, score, band,
    status counts, links to HTML, PDF and notebook, and its state (ok, stale,
    failed). Search and sort work offline through an inline script; all user text
    is escaped (Jinja2 autoescape).
    """
    rows = [render_index_row(t, template_dir=template_dir) for t in manifest.get("teams", ())]
    return render_index_page(manifest, rows, template_dir=template_dir)


def render_index_row(team: Mapping[str, Any], *, template_dir: "str | os.PathLike[str] | None" = None) -> str:
    """One team's ``<tr>`` of the index (``site_index_row.html.j2``), its text escaped.

    The batch runner renders a row once per team result and keeps it: rewriting the index as the
    batch goes on then only joins strings (see :func:`render_index_page`).
    """

    _, row, _ = _index_template(str(template_dir if template_dir is not None else TEMPLATE_DIR))
    return Markup(row.render(t=team))


def render_index_page(manifest: Mapping[str, Any], rows: "Iterable[str]", *,
                      template_dir: "str | os.PathLike[str] | None" = None) -> str:
    """``index.html`` from the manifest's header fields and the teams' rows already rendered.

    ``rows`` come from :func:`render_index_row` (escaped markup), in the order of ``manifest["teams"]``.
    """
    page, _, css = _index_template(str(template_dir if template_dir is not None else TEMPLATE_DIR))
    return page.render(m=manifest, rows=rows, css=css)


@functools.lru_cache(maxsize=4)
def _index_template(template_dir: str):
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["score"] = format_score
    env.filters["counts"] = format_status_counts
    css = (Path(template_dir) / "okr_report.css").read_text(encoding="utf-8")
    return env.get_template("site_index.html.j2"), env.get_template("site_index_row.html.j2"), css


def iter_external_references(text: str) -> Iterable[str]:
    """URLs of scripts, stylesheets, fonts and imports that a page would fetch from elsewhere.

    Used by tests and by the runner's self-check: a report must be readable offline.
    """
    patterns = (
        r"<script[^>]+src\s*=\s*[\"']?([^\"'\s>]+)",
        r"<link[^>]+href\s*=\s*[\"']?([^\"'\s>]+)",
        r"@import\s+(?:url\()?[\"']?([^\"')\s;]+)",
        r"url\(\s*[\"']?((?:https?:)?//[^\"')\s]+)",
        r"import\(\s*[\"']((?:https?:)?//[^\"']+)",
    )
    for pattern in patterns:
        for m in re.finditer(pattern, text, flags=re.I):
            url = m.group(1)
            if not url.startswith(("data:", "#")):
                yield url
