"""File names, hashes, the folder lock and the manifest (``build.json`` and ``index.html``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import time
import unicodedata
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from ..config import PACKAGE_DIR
from ..io.dataset import Dataset
from ..io.schemas import TABLES
from .processes import _trim_heap
from .render import atomic_write, render_index_page, render_index_row
from .results import TeamError, TeamOutcome

__all__ = ["dataset_hash", "team_file_name"]



# ==================================================================================
# Names, hashes
# ==================================================================================
_SAFE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


_HASHED_NAME = re.compile(r"-[0-9a-f]{10}$")


_RESERVED_NAMES = frozenset(
    {"con", "prn", "aux", "nul", "index", "build"} | {f"com{i}" for i in range(10)} | {f"lpt{i}" for i in range(10)}
)


def team_file_name(team_id: str) -> str:
    """A safe, unique file stem for a team id, used for ``<stem>.html`` etc. inside the output folder.

    A lower-case id of letters, digits, ``-`` and ``_`` is used as it is; any other id becomes
    an ASCII slug plus a short hash of the id, so the mapping is one-to-one and the name can
    never leave the folder (``../../etc``, ``a/b``, ``con``, ``index`` all get a hashed name).
    """
    if not isinstance(team_id, str) or not team_id:
        raise ValueError(f"team_id must be a non-empty string, got {team_id!r}.")
    if _SAFE_NAME.fullmatch(team_id) and team_id not in _RESERVED_NAMES and not _HASHED_NAME.search(team_id):
        return team_id
    slug = unicodedata.normalize("NFKD", team_id).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9_]+", "-", slug).strip("-_")[:40].strip("-_") or "team"
    return f"{slug}-{hashlib.sha1(team_id.encode('utf-8')).hexdigest()[:10]}"


def dataset_hash(ds: Dataset) -> str:
    """A SHA-256 of a dataset's typed tables (values, columns, dtypes) and fiscal calendar.

    The same data gives the same hash whatever the source format (CSV, Excel, DuckDB …).
    """
    h = hashlib.sha256(f"fiscal_year_start={ds.fiscal_year_start}".encode())
    for name in TABLES:
        df = getattr(ds, name)
        h.update(json.dumps([name, [[str(c), str(t)] for c, t in df.dtypes.items()], len(df)]).encode())
        if len(df):
            h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()


def _files_hash(paths: Iterable[Path], root: Path | None = None) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(str(p.relative_to(root) if root else p.name).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _package_hash() -> str:
    """A hash of every module of the package, subpackages included: changing any code marks reports out of date."""
    return _files_hash(PACKAGE_DIR.rglob("*.py"), PACKAGE_DIR)


def _template_hash(template_dir: Path) -> str:
    return _files_hash([p for p in template_dir.rglob("*") if p.is_file()], template_dir)


def _sha(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def _folder_lock(folder: Path):
    """One build per output folder at a time (POSIX advisory lock; a no-op elsewhere)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(folder / ".lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RuntimeError(f"another report build is writing to {folder}; wait for it to finish.") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _clean_temporaries(folder: Path) -> None:
    """Remove temporary files an interrupted earlier run left behind (the lock makes this safe)."""
    for p in folder.glob(".*.tmp-*"):
        with contextlib.suppress(OSError):
            p.unlink() if p.is_file() else shutil.rmtree(p)


_ENTRY_DEFAULTS: dict[str, Any] = {
    "team_id": "", "team_name": "", "kind": "team", "department": None, "order": 0, "file": "",
    "status": "missing", "state": "missing", "html": None, "pdf": None, "notebook": None, "failed_html": None,
    "failed_notebook": None, "error": None, "duration_s": 0.0, "key": None, "rendered_at": None,
    "attempted_at": None, "summary": {},
}


class _Manifest:
    """build.json + index.html, rewritten (atomically) as teams complete.

    Both files list every team, so rewriting them after each of thousands of teams would cost
    time quadratic in the batch size: a write that is not forced is skipped when the last one was
    less than ``min_interval`` seconds ago (or 20 times as long as a write takes). The files then lag
    the batch by at most that long; an interrupted batch's next run re-renders what they missed.

    Each team's JSON text and index row are made once per entry and kept, so a write only joins
    strings instead of re-encoding and re-rendering every team (at 2,000 teams, most of the batch
    process's ~80 s of CPU while the reports rendered). ``entries`` are replaced, never edited in
    place, once a write has seen them. After each write glibc's free pages go back to the system.
    """

    def __init__(self, folder: Path, header: dict[str, Any], entries: dict[str, dict], order: list[str],
                 *, min_interval: float = 2.0):
        self.folder = folder
        self.header = header
        self.entries = entries
        self.order = order
        self.min_interval = min_interval
        self._last = float("-inf")
        self._cost = 0.0
        self._pieces: dict[str, tuple[dict, dict, str, str]] = {}

    def _piece(self, tid: str) -> tuple[dict, dict, str, str]:
        """(entry, entry with defaults, its JSON text as build.json indents it, its index row)."""

        entry = self.entries[tid]
        piece = self._pieces.get(tid)
        if piece is None or piece[0] is not entry:
            full = {**_ENTRY_DEFAULTS, **entry}
            text = json.dumps(full, indent=2, ensure_ascii=False).replace("\n", "\n    ")
            piece = self._pieces[tid] = (entry, full, "    " + text, render_index_row(full))
        return piece

    def _assemble(self) -> tuple[dict[str, Any], list[tuple[dict, dict, str, str]]]:
        pieces = [self._piece(t) for t in self.order if t in self.entries]
        teams = [p[1] for p in pieces]
        counts = {s: sum(1 for e in teams if e["state"] == s) for s in ("ok", "stale", "failed", "missing")}
        ok = not any(e.get("status") in ("failed", "cancelled") for e in teams)
        return {**self.header, "counts": counts, "ok": ok, "teams": teams}, pieces

    def write(self, *, force: bool = True, **updates: Any) -> dict[str, Any] | None:
        """Rewrite both files (None when an unforced write is skipped, see the class docstring)."""

        self.header.update(updates)
        start = time.monotonic()
        if not force and start - self._last < max(self.min_interval, 20 * self._cost):
            return None
        data, pieces = self._assemble()
        atomic_write(self.folder / "build.json", _manifest_json(data, [p[2] for p in pieces]))
        atomic_write(self.folder / "index.html", render_index_page(data, [p[3] for p in pieces]))
        _trim_heap()
        self._last = time.monotonic()
        self._cost = self._last - start
        return data


def _manifest_json(data: Mapping[str, Any], team_texts: Sequence[str]) -> str:
    """``json.dumps(data, indent=2, ensure_ascii=False) + "\\n"``, "teams" last, from each team's JSON text."""
    head = json.dumps({k: v for k, v in data.items() if k != "teams"}, indent=2, ensure_ascii=False)
    teams = "".join(("[\n", ",\n".join(team_texts), "\n  ]")) if team_texts else "[]"
    return "".join((head[:-2], ',\n  "teams": ', teams, "\n}\n"))


def _outcome_from_entry(entry: Mapping[str, Any], folder: Path) -> TeamOutcome:
    def p(key: str) -> Path | None:
        return folder / entry[key] if entry.get(key) else None

    err = entry.get("error")
    return TeamOutcome(
        team_id=entry["team_id"], team_name=entry["team_name"], kind=entry["kind"], file=entry["file"],
        status=entry["status"], state=entry["state"], html=p("html"), pdf=p("pdf"), notebook=p("notebook"),
        failed_html=p("failed_html"), failed_notebook=p("failed_notebook"),
        error=TeamError(**err) if err else None, duration_s=float(entry.get("duration_s") or 0.0),
        summary=dict(entry.get("summary") or {}),
    )


def _now() -> str:
    return pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
