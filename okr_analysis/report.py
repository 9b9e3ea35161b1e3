"""Quarterly review reports: the batch runner, and the small API the report notebook calls.

The runner
----------
:func:`build_reports` renders ``notebooks/team_quarterly_review.ipynb`` once per team with
papermill, in worker processes that each keep a warm Jupyter kernel, an nbconvert
``HTMLExporter`` and one headless Chromium for the PDFs. It writes::

    <out>/<quarter>/<file>.html, .pdf, .ipynb   one per team (and the organisation overview)
    <out>/<quarter>/<file>.failed.html, .ipynb  the executed notebook of a failed run, with its error
    <out>/<quarter>/index.html                  every team: score, band, status counts, links, state
    <out>/<quarter>/build.json                  the manifest (version, time, input hash, parameters, outcomes)

Every file is written under a temporary name and moved into place with :func:`os.replace`;
a failed re-render keeps the last good HTML/PDF and marks it *stale*. A team whose input
data, parameters, notebook, template and package are unchanged is not re-rendered.

Shared analyses
---------------
The runner loads the source once, writes the validated tables and every analysis listed by
:func:`shared_analyses` (org-wide tables: all teams' scores, peer benchmarks, drivers …; the list
lives in ``okr_analysis.review.SHARED_ANALYSES``, beside the sections that use them) as
Parquet into a private cache folder outside the output (:func:`cache_folder`), and passes that folder to each notebook as the ``shared``
parameter. In the notebook, :func:`open_report` reads the dataset from there and
:meth:`ReportContext.table` / :meth:`ReportContext.team_table` return a shared table (or the
team's rows of it). With ``shared=""`` — JupyterLab, the plain ``papermill`` CLI — the same
functions load the source and compute the table in the notebook, so results are identical.

The notebook API
----------------
``ctx = report.open_report(source, team_id=..., quarter=..., as_of=..., min_group_size=..., shared=...)``,
then ``ctx.show_header()``, ``report.show_table(df)`` (escaped HTML), ``ctx.team_table(name)`` and,
in the last cell, ``ctx.record_summary(score=..., band=..., status_counts=...)`` — the values the
index page lists.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import logging
import os
import re
import shutil
import time
import unicodedata
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .dataset import Dataset
from .quarters import Quarter
from .render import SUMMARY_MIMETYPE, TEMPLATE_DIR, atomic_write, temp_path_for
from .schemas import TABLES

__all__ = [
    "build_reports",
    "BuildResult",
    "TeamOutcome",
    "TeamError",
    "BuildError",
    "UnknownTeamsError",
    "NoObjectivesError",
    "ReportWarning",
    "open_report",
    "ReportContext",
    "show_table",
    "table_html",
    "team_file_name",
    "dataset_hash",
    "shared_analyses",
    "NOTEBOOK",
    "RUNNER_PARAMETERS",
]

log = logging.getLogger(__name__)

REPO_DIR = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO_DIR / "notebooks"
#: The team report notebook the runner renders by default.
NOTEBOOK = NOTEBOOK_DIR / "team_quarterly_review.ipynb"
#: The organisation overview, rendered for the root team (the company) when ``org_overview`` is on.
ORG_NOTEBOOK = NOTEBOOK_DIR / "org_quarterly_overview.ipynb"
#: Parameters the runner sets itself; a report notebook must declare all of them.
RUNNER_PARAMETERS = ("source", "team_id", "quarter", "as_of", "min_group_size", "shared")
FORMATS = ("html", "pdf")
_CACHE_FORMAT = 3
#: The large tables a batch notebook reads only for its own part of the tree (see :func:`open_report`).
_SLICED_TABLES = ("kpis", "checkins")
_SLICE_TEAM, _SLICE_ROW = "_okr_team", "_okr_row"  # helper columns of the team-sorted shared tables
_SLICE_ROW_GROUP = 50_000  # rows per Parquet row group of KPIs and check-ins: a team's rows sit in one or two
_ANALYSIS_ROW_GROUP = 5_000  # rows per row group of a shared analysis with a team_id column
_KERNEL_MAX_RUNS = 50  # restart a worker's kernel after this many notebooks (bounds memory growth)
#: Environment of the batch's kernels. Arrow's default pool (mimalloc) keeps the memory of every Parquet
#: read; with the system allocator a kernel at 2,000 teams ends a team report ~70 MB smaller and within
#: 5 % of its size at 100 teams (measured on the sample organisation).
_KERNEL_ENV = {"ARROW_DEFAULT_MEMORY_POOL": "system"}


class ReportWarning(UserWarning):
    """Something about a report batch worth knowing (e.g. PDFs skipped: no Chromium)."""


class UnknownTeamsError(ValueError):
    """``teams`` names teams that are not in the data; ``.teams`` lists them, ``.known`` the data's teams."""

    def __init__(self, teams: Sequence[str], known: Sequence[str]):
        self.teams, self.known = list(teams), list(known)
        super().__init__(f"teams {', '.join(map(repr, self.teams))} are not in the teams table; known teams "
                         f"include {', '.join(map(repr, self.known[:10]))}.")

    def __reduce__(self):  # raised in the batch's data process, which pickles it
        return (type(self), (self.teams, self.known))


class NoObjectivesError(ValueError):
    """The quarter asked for has no objectives (or ``'latest'`` and the data has none); ``.quarter`` is the
    quarter asked for, ``.known`` the quarters that have objectives."""

    def __init__(self, quarter: str, known: Sequence[str]):
        self.quarter, self.known = str(quarter), list(known)
        if self.quarter.strip().lower() == "latest":
            text = "quarter='latest' but the data has no objectives, so no quarter to report on."
        else:
            text = (f"quarter {self.quarter} has no objectives in the data; quarters with objectives: "
                    f"{', '.join(self.known) or 'none'}.")
        super().__init__(text)

    def __reduce__(self):
        return (type(self), (self.quarter, self.known))


class BuildError(RuntimeError):
    """A batch stopped at its first failure (``continue_on_error=False``); ``.result`` has what was built."""

    def __init__(self, message: str, result: "BuildResult"):
        super().__init__(message)
        self.result = result


def _version() -> str:
    try:
        from . import __version__

        return str(__version__)
    except ImportError:  # pragma: no cover - partially initialised package
        return "0"


# ==================================================================================
# Shared analyses
# ==================================================================================
def shared_analyses() -> Mapping[str, Callable[..., pd.DataFrame]]:
    """The org-wide analyses a batch computes once and hands to every notebook.

    ``name -> f(ds, *, quarter, as_of, min_group_size) -> DataFrame``; a table with a ``team_id``
    column can be sliced per team with :meth:`ReportContext.team_table`. The list is
    ``okr_analysis.review.SHARED_ANALYSES`` (the report sections own it: add an analysis there
    when a section needs it).
    """
    from .review import SHARED_ANALYSES

    return SHARED_ANALYSES


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    df.to_parquet(path, index=False)


def _write_shared(ds: Dataset, folder: Path, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int,
                  input_hash: str, source_label: str) -> None:
    """Write the dataset and every shared analysis into ``folder`` (which must not exist yet)."""
    _write_shared_dataset(ds, folder / "dataset")
    computed = []
    for name, func in shared_analyses().items():
        table = func(ds, quarter=quarter, as_of=as_of, min_group_size=min_group_size).reset_index(drop=True)
        if "team_id" in table.columns:  # sorted by team: a notebook reads its teams' row groups only
            _write_by_team(table, folder / f"{name}.parquet", table["team_id"], row_group_size=_ANALYSIS_ROW_GROUP)
        else:
            _write_parquet(table, folder / f"{name}.parquet")
        computed.append(name)
    meta = {
        "format": _CACHE_FORMAT,
        "version": _version(),
        "quarter": quarter.label,
        "as_of": as_of.date().isoformat(),
        "min_group_size": int(min_group_size),
        "fiscal_year_start": ds.fiscal_year_start,
        "source": source_label,
        "input_hash": input_hash,
        "warnings": list(ds.warnings),
        "tables": computed,
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")


def _write_shared_dataset(ds: Dataset, folder: Path) -> None:
    """The batch's copy of the dataset. KPIs and check-ins are sorted by team (check-ins by their KR's team),
    with their original row numbers, in small row groups: a notebook reads its own teams' rows only."""
    folder.mkdir(parents=True)
    owner = ds.key_results[["kr_id", "objective_id"]].merge(
        ds.objectives[["objective_id", "team_id"]], on="objective_id", how="left")
    kr_team = dict(zip(owner["kr_id"], owner["team_id"]))
    for name in TABLES:
        df = getattr(ds, name)
        path = folder / f"{name}.parquet"
        if name not in _SLICED_TABLES:
            _write_parquet(df, path)
            continue
        team = df["team_id"] if name == "kpis" else df["kr_id"].map(kr_team)
        _write_by_team(df, path, team, row_group_size=_SLICE_ROW_GROUP)


def _write_by_team(df: pd.DataFrame, path: Path, team: pd.Series, *, row_group_size: int) -> None:
    """Write ``df`` sorted by ``team`` (a Series on its index), with the team and the original row number
    as helper columns, in row groups of ``row_group_size``: :func:`_read_by_team` reads some teams' rows
    without reading the rest, in the original order."""
    df = df.assign(**{_SLICE_TEAM: team.astype("string").fillna(""), _SLICE_ROW: np.arange(len(df))})
    df = df.sort_values([_SLICE_TEAM, _SLICE_ROW], kind="stable")
    df.to_parquet(path, index=False, row_group_size=row_group_size)


def _read_by_team(path: Path, teams: Sequence[str] | None = None) -> pd.DataFrame:
    """A table written by :func:`_write_by_team`: the rows of ``teams`` (None: every row), in the original
    order, without the helper columns. A table written without them is read whole (and not filtered)."""
    import pyarrow.parquet as pq

    if _SLICE_ROW not in pq.read_schema(path).names:
        return pd.read_parquet(path)
    df = pd.read_parquet(path, filters=None if teams is None else [(_SLICE_TEAM, "in", list(teams))])
    return df.sort_values(_SLICE_ROW, kind="stable").drop(columns=[_SLICE_TEAM, _SLICE_ROW]).reset_index(drop=True)


def _slice_teams(teams: pd.DataFrame, team_id: str) -> list[str] | None:
    """The teams whose KPIs and check-ins a report of ``team_id`` reads: the team and its ancestors
    (a report shows its own KPIs and key results; what it says about other teams — sub-teams, peers,
    the whole organisation — comes from the shared analyses). None (everything) for an unknown id."""
    parent = dict(zip(teams["team_id"], teams["parent_team_id"]))
    if team_id not in parent:
        return None
    keep = [team_id]
    p = parent[team_id]
    while isinstance(p, str) and p not in keep:
        keep.append(p)
        p = parent.get(p)
    return sorted(keep)


def _read_shared_dataset(folder: Path, meta: Mapping[str, Any], *,
                         team_id: str = "") -> tuple[Dataset, list[str] | None]:
    """The batch's dataset and its scope: with ``team_id``, only the KPIs and check-ins of the teams
    :func:`_slice_teams` names (row-group pruning)."""
    tables = {name: pd.read_parquet(folder / "dataset" / f"{name}.parquet")
              for name in TABLES if name not in _SLICED_TABLES}
    teams = _slice_teams(tables["teams"], team_id) if team_id else None
    for name in _SLICED_TABLES:
        tables[name] = _read_by_team(folder / "dataset" / f"{name}.parquet", teams)
    ds = Dataset(**{name: tables[name] for name in TABLES}, fiscal_year_start=int(meta["fiscal_year_start"]),
                 source=str(meta["source"]), warnings=tuple(meta.get("warnings", ())))
    return ds, teams


# ==================================================================================
# The notebook API
# ==================================================================================
def _resolve_source(source: Any) -> Any:
    """A relative path is tried from the working directory, then the notebooks folder, then the repository."""
    if not isinstance(source, (str, os.PathLike)):
        return source
    text = os.fspath(source)
    if "://" in text:
        return text
    path = Path(text).expanduser()
    if path.is_absolute() or path.exists():
        return path
    for base in (NOTEBOOK_DIR, REPO_DIR):
        if (base / path).exists():
            return (base / path).resolve()
    raise FileNotFoundError(
        f"source {text!r} was not found (looked in {os.getcwd()}, {NOTEBOOK_DIR} and {REPO_DIR}). "
        "Give the path of a data folder; `make demo` writes the sample organisation to data/sample."
    )


def _resolve_as_of(as_of: Any, quarter: Quarter) -> pd.Timestamp:
    if as_of is None or (isinstance(as_of, str) and not as_of.strip()):
        return quarter.end
    try:
        ts = pd.Timestamp(as_of)
    except (TypeError, ValueError):
        raise ValueError(f"as_of must be a date such as '2026-09-30' (or empty for the quarter end), "
                         f"got {as_of!r}.") from None
    if ts is pd.NaT:
        raise ValueError(f"as_of must be a date such as '2026-09-30', got {as_of!r}.")
    return ts.tz_localize(None).normalize() if ts.tzinfo else ts.normalize()


def _default_team(ds: Dataset, quarter: Quarter) -> str:
    tree = ds.team_tree
    with_okrs = set(ds.objectives.loc[ds.objectives["quarter"] == quarter.label, "team_id"])
    leaves = tree.loc[tree["is_leaf"], "team_id"].tolist()
    for tid in leaves:
        if tid in with_okrs:
            return tid
    return leaves[0] if leaves else str(tree["team_id"].iloc[0])


_ACRONYMS = {"kr": "KR", "krs": "KRs", "kpi": "KPI", "kpis": "KPIs", "okr": "OKR", "okrs": "OKRs", "id": "ID",
             "nps": "NPS", "csat": "CSAT"}


def _pretty_header(name: Any) -> Any:
    if not isinstance(name, str):
        return name
    words = [_ACRONYMS.get(w.lower(), w) for w in name.replace("_", " ").split(" ")]
    text = " ".join(words)
    return text[:1].upper() + text[1:] if text else text


def table_html(data: "pd.DataFrame | pd.Series", *, caption: str | None = None, index: bool = False,
               precision: int = 2, max_rows: int = 500, empty: str = "No rows.", headers: str = "pretty") -> str:
    """A DataFrame as an HTML table with every value and header escaped.

    Numbers are right-aligned and rounded to ``precision`` decimals, dates shown as
    ``YYYY-MM-DD``, missing values as "—". Column names are shown as words
    (``objective_title`` → "Objective title", ``kr_id`` → "KR ID") unless ``headers="raw"``.
    At most ``max_rows`` rows are shown (a note says how many were left out). An empty
    frame gives ``empty`` as a note.
    """
    if headers not in ("pretty", "raw"):
        raise ValueError(f"headers must be 'pretty' or 'raw', got {headers!r}.")
    df = data.to_frame() if isinstance(data, pd.Series) else data
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame or Series, got {type(data).__name__}.")
    cap = f"<caption>{html.escape(str(caption))}</caption>" if caption else ""
    if df.empty:  # a caption over an empty table would wrap word by word: caption as a paragraph
        title = f'<p class="okr-caption">{html.escape(str(caption))}</p>' if caption else ""
        return f'{title}<p class="okr-note">{html.escape(empty)}</p>'
    shown = df.head(max_rows).copy()
    numeric = []
    for pos, col in enumerate(shown.columns):
        s = shown[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            shown[col] = s.dt.strftime("%Y-%m-%d")
        elif pd.api.types.is_bool_dtype(s):
            shown[col] = s.map({True: "yes", False: "no"})
        elif pd.api.types.is_numeric_dtype(s):
            numeric.append(pos)
    if headers == "pretty":
        shown.columns = [_pretty_header(c) for c in shown.columns]
    digest = hashlib.sha1(pd.util.hash_pandas_object(shown.astype(str), index=True).to_numpy().tobytes())
    table_id = f"okr-t{digest.hexdigest()[:10]}"  # deterministic: same table, same page
    body = shown.to_html(escape=True, index=index, na_rep="—", border=0, table_id=table_id,
                         classes="okr-table", float_format=lambda x: f"{x:,.{precision}f}")
    if cap:
        body = body.replace(">", ">" + cap, 1)
    offset = shown.index.nlevels if index else 0
    style = ""
    if numeric:
        sel = ", ".join(f"#{table_id} td:nth-child({p + 1 + offset}), #{table_id} th:nth-child({p + 1 + offset})"
                        for p in numeric)
        style = f"<style>{sel} {{ text-align: right; }}</style>"
    note = ""
    if len(df) > max_rows:
        note = f'<p class="okr-note">Showing the first {max_rows} of {len(df)} rows.</p>'
    return style + body + note


def show_table(data: "pd.DataFrame | pd.Series", *, caption: str | None = None, index: bool = False,
               precision: int = 2, max_rows: int = 500, empty: str = "No rows.", headers: str = "pretty") -> None:
    """Display a DataFrame in a notebook as an escaped HTML table (see :func:`table_html`)."""
    from IPython.display import HTML, display

    display(HTML(table_html(data, caption=caption, index=index, precision=precision, max_rows=max_rows,
                            empty=empty, headers=headers)))


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


@dataclass(frozen=True, eq=False)
class ReportContext:
    """Everything a report notebook knows about its run; made by :func:`open_report`.

    Attributes
    ----------
    ds : Dataset
        The organisation's data (from the batch's shared folder, or loaded from ``source``).
    team_id : str
    quarter : Quarter
    as_of : pandas.Timestamp
        Date of the data snapshot (the quarter end unless given).
    min_group_size : int
        People metrics of groups smaller than this are not shown.
    shared_dir : pathlib.Path or None
        The batch's shared-analysis folder, or None when the notebook computes them itself.
    scope : tuple of str or None
        In a batch, the teams whose KPI values and check-ins ``ds`` holds: the report's team and its
        ancestors (every team's other rows are there). Figures about other teams (sub-teams, peers,
        the organisation) come from :meth:`table`. None: ``ds`` is the whole dataset.
    source : str
        Where the data came from, for display (passwords removed).
    generated_at : pandas.Timestamp
        When the notebook ran (local time, minutes).
    """

    ds: Dataset
    team_id: str
    quarter: Quarter
    as_of: pd.Timestamp
    min_group_size: int = 5
    shared_dir: Path | None = None
    source: str = ""
    scope: tuple[str, ...] | None = None
    generated_at: pd.Timestamp = field(default_factory=lambda: pd.Timestamp.now().floor("min"))
    _tables: dict = field(default_factory=dict, repr=False)

    # -- who and when -----------------------------------------------------------
    @property
    def team_name(self) -> str:
        return self.ds.team_name(self.team_id)

    @property
    def organisation(self) -> str:
        """Name of the root team (the company)."""
        tree = self.ds.team_tree
        roots = tree.loc[tree["depth"] == 0, "team_name"]
        return str(roots.iloc[0]) if len(roots) else ""

    @property
    def is_org(self) -> bool:
        """Whether this is the organisation overview (the root team's report)."""
        return self.ds.parent(self.team_id) is None

    @property
    def department(self) -> str | None:
        """Name of the team's department (the ancestor just below the root); None for the root."""
        tree = self.ds.team_tree.set_index("team_id")
        dept = tree.loc[self.team_id, "department_id"]
        if not isinstance(dept, str) or dept not in tree.index:
            return None
        return str(tree.loc[dept, "team_name"])

    @property
    def parents(self) -> list[str]:
        """Names of the parent, grandparent … up to the root."""
        return [self.ds.team_name(t) for t in self.ds.ancestors(self.team_id)]

    # -- shared analyses --------------------------------------------------------
    def table(self, name: str) -> pd.DataFrame:
        """An org-wide shared analysis (see :func:`shared_analyses`), read from the batch or computed here."""
        if name in self._tables:
            return self._tables[name].copy(deep=False)  # a new frame: a caller's edits stay its own
        path = self.shared_dir / f"{name}.parquet" if self.shared_dir is not None else None
        registry = shared_analyses()
        if path is not None and path.exists():
            table = _read_by_team(path)
        elif name not in registry:
            raise KeyError(f"{name!r} is not a shared analysis; known: {', '.join(sorted(registry))}.")
        elif self.scope is not None:  # ds holds only this team's KPIs and check-ins: computing here would be wrong
            raise KeyError(f"the batch's shared folder {str(self.shared_dir)!r} has no {name!r} table (it was "
                           "written by other code); run the batch again, or open the report with shared=''.")
        else:
            table = registry[name](self.ds, quarter=self.quarter, as_of=self.as_of,
                                   min_group_size=self.min_group_size)
        self._tables[name] = table
        return table.copy(deep=False)

    def team_table(self, name: str, *, column: str = "team_id", teams: Sequence[str] | None = None) -> pd.DataFrame:
        """Some teams' rows of a shared analysis: rows whose ``column`` is one of ``teams`` (default: this
        team), in the table's order.

        In a batch, a table with a ``team_id`` column is read for those teams only (the shared folder
        stores it sorted by team), so a notebook does not hold the whole organisation's rows.
        """
        wanted = [self.team_id] if teams is None else [str(t) for t in teams]
        key = (name, column, tuple(sorted(set(wanted))))
        if key in self._tables:
            return self._tables[key].copy(deep=False)
        path = self.shared_dir / f"{name}.parquet" if self.shared_dir is not None else None
        if column == "team_id" and name not in self._tables and path is not None and path.exists():
            table = _read_by_team(path, sorted(set(wanted)))
        else:
            table = self.table(name)
        if column not in table.columns:
            raise KeyError(f"shared analysis {name!r} has no {column!r} column to slice by; "
                           f"its columns are {', '.join(map(str, table.columns))}.")
        table = table.loc[table[column].isin(wanted)].reset_index(drop=True)
        self._tables[key] = table
        return table.copy(deep=False)

    # -- display ----------------------------------------------------------------
    def _identity(self) -> dict[str, Any]:
        return {
            "title": f"{self.team_name} — {self.quarter.label} quarterly review",
            "organisation": self.organisation,
            "team_id": self.team_id,
            "team_name": self.team_name,
            "kind": "org" if self.is_org else "team",
            "department": self.department,
            "quarter": self.quarter.label,
            "as_of": self.as_of.date().isoformat(),
            "generated_at": self.generated_at.strftime("%Y-%m-%d %H:%M"),
            "version": _version(),
        }

    def header_html(self) -> str:
        """The report's header block: team, parents, quarter, data as-of date, generation time."""
        e = html.escape
        q = self.quarter
        rows = [
            ("Team", f"{e(self.team_name)} <span class=\"okr-note\">({e(self.team_id)})</span>"),
            ("Part of", " › ".join(e(p) for p in reversed(self.parents)) or "—"),
            ("Quarter", f"{e(q.label)} ({q.start:%d %b %Y} – {q.end:%d %b %Y})"),
            ("Data as of", f"{self.as_of:%d %b %Y}"),
            ("Generated", f"{self.generated_at:%d %b %Y %H:%M}"),
        ]
        dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
        title = "Organisation overview" if self.is_org else "Quarterly review"
        return (f'<header class="okr-header"><h1>{e(self.team_name)} · {title}</h1>'
                f"<dl>{dl}</dl></header>")

    def show_header(self) -> None:
        """Display the header block (and hand the report's identity to the renderer)."""
        from IPython.display import HTML, display

        display(HTML(self.header_html()))
        display({SUMMARY_MIMETYPE: self._identity(), "text/plain": ""}, raw=True)

    def provenance(self) -> pd.DataFrame:
        """Where the numbers come from: data source, snapshot date, tool version, data warnings (item, value)."""
        rows = [
            ("Data source", self.source or self.ds.source),
            ("Data as of", self.as_of.date().isoformat()),
            ("Quarter", f"{self.quarter.label} ({self.quarter.start.date()} to {self.quarter.end.date()})"),
            ("Smallest group shown for people metrics", str(self.min_group_size)),
            ("Analyses", "shared by the batch run" if self.shared_dir is not None else "computed in this notebook"),
            ("okr-analysis version", _version()),
        ]
        rows += [("Data warning", w) for w in self.ds.warnings]
        return pd.DataFrame(rows, columns=["item", "value"])

    def record_summary(self, *, score: float | None = None, band: str | None = None,
                       status_counts: Mapping[str, int] | None = None, **extra: Any) -> None:
        """Hand the report's headline numbers to the runner (the index lists them); not shown in the report.

        Call it in the notebook's last cell. Values must be JSON-friendly.
        """
        from IPython.display import display

        krs = self.team_table("key_results")
        payload = {
            **self._identity(),
            "score": None if score is None or pd.isna(score) else float(score),
            "band": band,
            "status_counts": dict(status_counts) if status_counts else None,
            "n_objectives": int(krs["objective_id"].nunique()),
            "n_key_results": int(len(krs)),
            **extra,
        }
        payload = _jsonable(payload)
        display({SUMMARY_MIMETYPE: payload,
                 "text/plain": f"report summary: score={payload['score']}, band={payload['band']}"}, raw=True)


def open_report(source: Any = "", *, team_id: str = "", quarter: str = "", as_of: Any = "",
                min_group_size: int = 5, shared: "str | os.PathLike[str]" = "") -> ReportContext:
    """Start a report notebook: load the data (or the batch's shared copy) and check the parameters.

    Parameters
    ----------
    source : path, URL, mapping or Dataset
        The data source (see :func:`okr_analysis.load`); a relative path is looked up from the
        working directory, then the notebooks folder, then the repository. Ignored for loading
        when ``shared`` is given (the batch already loaded it).
    team_id : str
        The team to review; ``""`` = the first team with objectives in the quarter.
    quarter : str
        Fiscal quarter such as ``"2026Q3"``; ``""`` = the latest quarter in the data.
    as_of : str or date
        Data snapshot date; ``""`` = the quarter end.
    min_group_size : int
        People metrics of groups smaller than this are not shown.
    shared : path
        A batch's shared-analysis folder (set by :func:`build_reports`); ``""`` = compute here.
        From a shared folder only the KPI values and check-ins of the team and its ancestors are
        read (``ReportContext.scope``), so a notebook's memory and start-up time do not grow with
        the size of the organisation; figures about other teams come from ``ctx.table``.

    Returns
    -------
    ReportContext
    """
    from .loaders import load

    if isinstance(min_group_size, bool) or not isinstance(min_group_size, int) or min_group_size < 1:
        raise ValueError(f"min_group_size must be a whole number of people, 1 or more, got {min_group_size!r}.")
    shared_dir = Path(shared).resolve() if shared not in ("", None) else None
    scope = None
    if shared_dir is not None:
        meta_path = shared_dir / "meta.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"shared folder {str(shared_dir)!r} has no meta.json: it is not a batch's "
                                    "shared-analysis folder. Pass shared='' to compute the analyses here.")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format") != _CACHE_FORMAT:
            raise ValueError(f"shared folder {str(shared_dir)!r} was written by another version of okr-analysis "
                             f"(cache format {meta.get('format')!r}); run the batch again, or pass shared=''.")
        ds, scope = _read_shared_dataset(shared_dir, meta, team_id=team_id)
        label = str(meta.get("source", ""))
    else:
        ds = load(_resolve_source(source))
        label = os.fspath(source) if isinstance(source, (str, os.PathLike)) else ds.source
    if quarter:
        q = ds.quarter(quarter)
    elif ds.latest_quarter is not None:
        q = ds.quarter(ds.latest_quarter)
    else:
        raise ValueError("quarter was not given and the data has no objectives to take the latest quarter from.")
    team = team_id or _default_team(ds, q)
    ds.team_name(team)  # raises a ValueError naming known teams
    as_of_ts = _resolve_as_of(as_of, q)
    if shared_dir is not None:
        expected = {"quarter": q.label, "as_of": as_of_ts.date().isoformat(), "min_group_size": min_group_size}
        found = {k: meta.get(k) for k in expected}
        if found != expected:
            raise ValueError(f"the shared folder {str(shared_dir)!r} was computed for {found}, but this notebook "
                             f"runs with {expected}. Pass shared='' to compute the analyses here.")
    return ReportContext(ds=ds, team_id=team, quarter=q, as_of=as_of_ts, min_group_size=min_group_size,
                         shared_dir=shared_dir, source=label,
                         scope=None if scope is None else tuple(scope))


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
    pkg = Path(__file__).resolve().parent
    return _files_hash(pkg.glob("*.py"), pkg)


def _template_hash(template_dir: Path) -> str:
    return _files_hash([p for p in template_dir.rglob("*") if p.is_file()], template_dir)


def _sha(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


# ==================================================================================
# Results
# ==================================================================================
@dataclass(frozen=True)
class TeamError:
    """Why a team's report failed.

    ``stage`` is ``"execute"`` (a notebook cell raised: ``ename``/``evalue`` of that error,
    ``cell_index``, ``exec_count``), ``"render"`` (HTML), ``"pdf"`` (printing) or ``"worker"``.
    """

    stage: str
    ename: str
    evalue: str
    cell_index: int | None = None
    exec_count: int | None = None
    traceback: str = ""

    def __str__(self) -> str:
        where = f" in cell {self.cell_index}" if self.cell_index is not None else ""
        return f"{self.ename}: {self.evalue} ({self.stage}{where})"


@dataclass(frozen=True)
class TeamOutcome:
    """What happened to one team's report in a batch.

    Attributes
    ----------
    team_id, team_name : str
    kind : str
        ``"org"`` for the organisation overview, ``"team"`` otherwise.
    file : str
        The file stem inside the quarter folder (:func:`team_file_name`).
    status : str
        ``"rendered"``, ``"skipped"`` (up to date), ``"failed"`` or ``"cancelled"``.
    state : str
        What the published report is now: ``"ok"``, ``"stale"`` (an older good report is kept:
        the last attempt failed or the inputs changed), ``"failed"`` (no good report) or ``"missing"``.
    html, pdf, notebook : pathlib.Path or None
        The published (last good) files.
    failed_html, failed_notebook : pathlib.Path or None
        The executed notebook of a failed run, with its error, and its HTML page.
    error : TeamError or None
    duration_s : float
    summary : dict
        What the notebook recorded (team, score, band, status counts …).
    """

    team_id: str
    team_name: str
    kind: str
    file: str
    status: str
    state: str
    html: Path | None = None
    pdf: Path | None = None
    notebook: Path | None = None
    failed_html: Path | None = None
    failed_notebook: Path | None = None
    error: TeamError | None = None
    duration_s: float = 0.0
    summary: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status in ("rendered", "skipped")

    @property
    def stale(self) -> bool:
        return self.state == "stale"


@dataclass(frozen=True)
class BuildResult:
    """The outcome of :func:`build_reports`.

    Attributes
    ----------
    quarter : str
    folder : pathlib.Path
        ``<out>/<quarter>``.
    teams : tuple of TeamOutcome
        One per team of this batch, in tree order (the organisation overview first).
    manifest : dict
        The contents of ``build.json``.
    manifest_path, index_path : pathlib.Path
    messages : tuple of str
        Things to tell the user (e.g. how to get PDFs when Chromium is missing).
    duration_s : float
    """

    quarter: str
    folder: Path
    teams: tuple[TeamOutcome, ...]
    manifest: dict
    manifest_path: Path
    index_path: Path
    messages: tuple[str, ...] = ()
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no team of this batch failed or was cancelled."""
        return all(t.ok for t in self.teams)

    @property
    def failures(self) -> list[TeamOutcome]:
        return [t for t in self.teams if not t.ok]

    @property
    def rendered(self) -> list[TeamOutcome]:
        return [t for t in self.teams if t.status == "rendered"]

    @property
    def skipped(self) -> list[TeamOutcome]:
        return [t for t in self.teams if t.status == "skipped"]

    def __getitem__(self, team_id: str) -> TeamOutcome:
        for t in self.teams:
            if t.team_id == team_id:
                return t
        raise KeyError(team_id)

    def summary(self) -> str:
        """A few lines for a terminal."""
        lines = [f"{self.quarter}: {len(self.rendered)} rendered, {len(self.skipped)} up to date, "
                 f"{len(self.failures)} failed in {self.duration_s:.1f} s → {self.index_path}"]
        for t in self.failures:
            kept = " (last good report kept, marked stale)" if t.stale else ""
            lines.append(f"  FAILED {t.team_id}: {t.error}{kept}")
            if t.failed_notebook:
                lines.append(f"         executed notebook: {t.failed_notebook}")
        lines += [f"  note: {m}" for m in self.messages]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<BuildResult {self.quarter}: {len(self.rendered)} rendered, {len(self.skipped)} skipped, "
                f"{len(self.failures)} failed, ok={self.ok}>")


# ==================================================================================
# The worker: a warm kernel, one HTMLExporter, one Chromium
# ==================================================================================
_ENGINE_NAME = "okr_analysis_warm"
_RESET_CODE = """\
get_ipython().reset(new_session=True)
import os as _okr_os, sys as _okr_sys
_okr_os.chdir({cwd!r})
if "matplotlib.pyplot" in _okr_sys.modules:
    _okr_sys.modules["matplotlib.pyplot"].close("all")
del _okr_os, _okr_sys
"""


def _register_engine() -> None:
    """A papermill engine that runs notebooks on a caller's running kernel (``km=``).

    Same as papermill's nbclient engine, plus: before the notebook it resets the kernel
    (namespace, execution count, working directory, open figures) so each notebook starts
    clean; and it reuses the worker's kernel client (``kc=``) instead of connecting a new one
    per notebook (0.07 s instead of 0.28 s of overhead a notebook; papermill given only ``km``
    also leaves each new client's channels open, leaking ~10 file descriptors a notebook).
    """
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger
    from papermill.utils import merge_kwargs, remove_args

    class _WarmClient(PapermillNotebookClient):
        def __init__(self, nb_man, reset_code: str, kc=None, **kw):
            super().__init__(nb_man, **kw)
            self._reset_code = reset_code
            self.kc = kc  # setup_kernel() connects a new client only when this is None

        def papermill_execute_cells(self):
            msg_id = self.kc.execute(self._reset_code, silent=True, store_history=False, allow_stdin=False)
            reply = self.wait_for_reply(msg_id)
            if reply is None or reply["content"].get("status") != "ok":
                content = reply["content"] if reply else {}
                raise RuntimeError(f"could not reset the kernel: {content.get('ename')}: {content.get('evalue')}")
            super().papermill_execute_cells()

    class _WarmEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                     stderr_file=None, start_timeout=60, execution_timeout=None, **kwargs):
            kwargs = remove_args(["input_path"], **kwargs)
            reset_code = kwargs.pop("reset_code")
            kc = kwargs.pop("kc", None)
            safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
            final_kwargs = merge_kwargs(
                safe_kwargs,
                timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
                startup_timeout=start_timeout,
                kernel_name=kernel_name,
                log=logger,
                log_output=log_output,
                stdout_file=stdout_file,
                stderr_file=stderr_file,
            )
            client = _WarmClient(nb_man, reset_code, kc, **final_kwargs)
            try:
                return client.execute()
            finally:
                if kc is None and client.kc is not None:
                    client.kc.stop_channels()

    papermill_engines.register(_ENGINE_NAME, _WarmEngine)


@dataclass(frozen=True)
class _WorkerConfig:
    notebook: str
    template_dir: str
    kernel_name: str
    cwd: str
    warm_imports: tuple[str, ...]
    chromium: str | None
    cell_timeout: float | None
    log_dir: str


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class _Worker:
    """Runs team tasks in one process; see :func:`_worker_init`."""

    def __init__(self, cfg: _WorkerConfig):
        # Ordered for overlap: the kernel boots while this process imports nbconvert, then imports the
        # notebook's modules while the browser starts on its own thread.
        warnings.filterwarnings("ignore", message="Kernel is running over TCP")
        self.cfg = cfg
        self.km = None
        self.kc = None
        self.runs = 0
        self._dirty = False
        self._log = None
        self._launch_kernel()
        import nbformat
        import papermill  # noqa: F401

        from .render import HtmlRenderer, PdfPrinter

        _register_engine()
        # Playwright's sync API must stay on one thread: the browser lives on its own thread, so it
        # starts (~2 s) while the kernel warms up, and every print is handed to that thread.
        self.printer = None
        self._pdf_thread = None
        self._browser_start = None
        if cfg.chromium:
            from concurrent.futures import ThreadPoolExecutor

            self.printer = PdfPrinter(cfg.chromium)
            self._pdf_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="okr-pdf")
            self._browser_start = self._pdf_thread.submit(self.printer.start)
        self.renderer = HtmlRenderer(cfg.template_dir)  # built once per process
        warm_id, warm_kc = self._warm_kernel()
        with contextlib.suppress(Exception):  # compile the templates while the kernel imports
            self.renderer.render(nbformat.v4.new_notebook())
        self._finish_warmup(warm_id, warm_kc)

    @property
    def pdf_error(self) -> str:
        """Why PDFs cannot be printed in this worker ('' when they can)."""
        if self.printer is None:
            return "no Chromium"
        try:
            self._browser_start.result()
        except Exception as exc:  # a broken browser install: HTML still works
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return f"Chromium at {self.cfg.chromium} could not start ({type(exc).__name__}: {first})."
        return ""

    def print_pdf(self, html_path: Path, pdf_path: Path, footer: str) -> None:
        self._pdf_thread.submit(self.printer.print_pdf, html_path, pdf_path, footer=footer).result()

    # -- kernel -----------------------------------------------------------------
    def _launch_kernel(self) -> None:
        """Start the kernel process (returns at once; the kernel boots in the background)."""
        import subprocess

        from jupyter_client.manager import KernelManager

        if self._log is None:
            Path(self.cfg.log_dir).mkdir(parents=True, exist_ok=True)
            self._log = open(Path(self.cfg.log_dir) / f"kernel-{os.getpid()}.log", "ab")  # noqa: SIM115
        self.km = KernelManager(kernel_name=self.cfg.kernel_name)
        env = {**_KERNEL_ENV, **os.environ}  # the user's own setting wins
        self.km.start_kernel(cwd=self.cfg.cwd, stdout=subprocess.DEVNULL, stderr=self._log, env=env)
        self.runs = 0
        self._dirty = False

    def _warm_kernel(self):
        """Connect the worker's client, then send the kernel the notebook's imports (without waiting)."""
        kc = self.kc = self.km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=120)
        kc.allow_stdin = False
        code = "\n".join(
            ["import importlib as _okr_il"]
            + [f"try:\n    _okr_il.import_module({m!r})\nexcept Exception:\n    pass" for m in self.cfg.warm_imports]
            + ["del _okr_il"]
        )
        return kc.execute(code, silent=True, store_history=False), kc

    @staticmethod
    def _finish_warmup(msg_id, kc, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                msg = kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
                if msg["parent_header"].get("msg_id") == msg_id:
                    return
        except Exception:  # a slow warm-up only costs time in the first notebook
            pass

    def _restart_kernel(self) -> None:
        with contextlib.suppress(Exception):
            self.kc.stop_channels()
        with contextlib.suppress(Exception):
            self.km.shutdown_kernel(now=True)
        self._launch_kernel()
        self._finish_warmup(*self._warm_kernel())

    def close(self) -> None:
        if self._pdf_thread is not None:
            with contextlib.suppress(Exception):
                self._pdf_thread.submit(self.printer.close).result(timeout=30)
            self._pdf_thread.shutdown(wait=False)
        if self.kc is not None:
            with contextlib.suppress(Exception):
                self.kc.stop_channels()
        if self.km is not None:
            with contextlib.suppress(Exception):
                self.km.shutdown_kernel(now=True)
        if self._log is not None:
            self._log.close()

    # -- one team ---------------------------------------------------------------
    def run(self, task: Mapping[str, Any]) -> dict[str, Any]:
        import nbformat
        import papermill as pm
        from papermill.exceptions import PapermillExecutionError

        t0 = time.perf_counter()
        folder = Path(task["folder"])
        stem = task["file"]
        final = {ext: folder / f"{stem}.{ext}" for ext in ("ipynb", "html", "pdf")}
        failed_nb, failed_html = folder / f"{stem}.failed.ipynb", folder / f"{stem}.failed.html"
        out: dict[str, Any] = {"team_id": task["team_id"], "error": None, "summary": {}, "pdf_error": ""}
        if self._dirty or self.km is None or self.runs >= _KERNEL_MAX_RUNS or not self.km.is_alive():
            self._restart_kernel()
        self.runs += 1
        tmp_nb = temp_path_for(final["ipynb"])
        tmp_html = temp_path_for(final["html"])
        nb = None
        try:
            try:
                nb = pm.execute_notebook(
                    task.get("notebook", self.cfg.notebook), str(tmp_nb), parameters=dict(task["parameters"]),
                    engine_name=_ENGINE_NAME, km=self.km, kc=self.kc, kernel_name=self.cfg.kernel_name,
                    reset_code=_RESET_CODE.format(cwd=self.cfg.cwd), progress_bar=False,
                    request_save_on_cell_execute=False, execution_timeout=self.cfg.cell_timeout,
                )
            except PapermillExecutionError as exc:
                out["error"] = TeamError("execute", str(exc.ename), str(exc.evalue), exc.cell_index,
                                         exc.exec_count, _ANSI.sub("", "\n".join(exc.traceback or [])))
            except Exception as exc:  # dead kernel, cell timeout, papermill trouble
                out["error"] = TeamError("execute", type(exc).__name__, str(exc).strip()[:2000])
            if out["error"] is not None:
                self._dirty = True  # a fresh kernel for the next team, whatever state the failure left behind
                if nb is None and tmp_nb.exists():
                    nb = nbformat.read(tmp_nb, as_version=4)
                if tmp_nb.exists():
                    os.replace(tmp_nb, failed_nb)
                    out["failed_notebook"] = failed_nb.name
                if nb is not None:
                    with contextlib.suppress(Exception):
                        body, res = self.renderer.render(nb, show_errors=True,
                                                         resources={"okr_summary": dict(task["identity"])})
                        atomic_write(failed_html, body)
                        out["failed_html"] = failed_html.name
                return out
            try:
                body, res = self.renderer.render(nb, resources={"okr_summary": dict(task["identity"])})
                out["summary"] = res.get("okr_summary", {})
                tmp_html.write_text(body, encoding="utf-8")
            except Exception as exc:
                out["error"] = TeamError("render", type(exc).__name__, str(exc)[:2000])
                os.replace(tmp_nb, failed_nb)
                out["failed_notebook"] = failed_nb.name
                return out
            if task["pdf"]:
                if self.pdf_error:
                    out["pdf_error"] = self.pdf_error
                else:
                    try:
                        self.print_pdf(tmp_html, final["pdf"], footer=task["footer"])
                    except Exception as exc:
                        out["error"] = TeamError("pdf", type(exc).__name__, str(exc).splitlines()[0][:2000]
                                                 if str(exc) else "")
            os.replace(tmp_html, final["html"])
            os.replace(tmp_nb, final["ipynb"])
            if out["error"] is None:
                for stale in (failed_nb, failed_html):
                    with contextlib.suppress(FileNotFoundError):
                        stale.unlink()
            return out
        finally:
            for tmp in (tmp_nb, tmp_html):
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            out["duration_s"] = round(time.perf_counter() - t0, 3)


_WORKER: _Worker | None = None


def _exit_with_parent(ppid: int) -> None:
    """Exit this worker once the batch process is gone (killed without a chance to stop its workers);
    the worker's kernel and browser then exit too, as they watch this process."""
    while True:
        time.sleep(1.0)
        if os.getppid() != ppid:
            os._exit(1)


def _worker_init(cfg: _WorkerConfig) -> None:
    """ProcessPoolExecutor initializer: build this process's warm kernel, exporter and browser."""
    global _WORKER
    import threading
    from multiprocessing import util

    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True, name="okr-parent-watch").start()
    _WORKER = _Worker(cfg)
    util.Finalize(None, _WORKER.close, exitpriority=10)


def _worker_ready() -> dict[str, Any]:
    return {"pid": os.getpid()}


def _worker_run(task: Mapping[str, Any]) -> dict[str, Any]:
    try:
        result = _WORKER.run(task)
    except Exception as exc:  # never lose a team's outcome to a worker bug
        result = {"team_id": task["team_id"], "summary": {}, "pdf_error": "",
                  "error": TeamError("worker", type(exc).__name__, str(exc)[:2000])}
    result["error"] = asdict(result["error"]) if result.get("error") else None
    return result


# ==================================================================================
# The runner
# ==================================================================================
def _notebook_imports(nb_path: Path) -> tuple[str, ...]:
    """Top-level modules a notebook imports (warmed up in each worker's kernel)."""
    import ast

    import nbformat

    mods = ["pandas", "okr_analysis", "okr_analysis.report", "IPython.display"]
    nb = nbformat.read(nb_path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        src = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                mods.append(node.module)
                mods += [f"{node.module}.{a.name}" for a in node.names]
    if any(m.split(".")[0] in ("matplotlib", "seaborn") for m in mods) or "okr_analysis.plots" in mods:
        mods.append("matplotlib.pyplot")
    return tuple(dict.fromkeys(mods))


def _check_parameters(nb_path: Path, extra: Mapping[str, Any]) -> dict[str, Any]:
    """Reject unknown parameters before anything runs (papermill itself only warns)."""
    import papermill as pm

    declared = pm.inspect_notebook(str(nb_path))
    missing = [p for p in RUNNER_PARAMETERS if p not in declared]
    if missing:
        raise ValueError(
            f"notebook {str(nb_path)!r} does not declare the parameter(s) {', '.join(missing)} that the runner "
            f"passes; add them to its cell tagged 'parameters' (it declares: {', '.join(declared) or 'nothing'})."
        )
    clash = [p for p in extra if p in RUNNER_PARAMETERS]
    if clash:
        raise ValueError(f"parameters {', '.join(clash)} are set by build_reports itself; pass them as its "
                         "keyword arguments (source, team ids, quarter, as_of, min_group_size) instead.")
    unknown = [p for p in extra if p not in declared]
    if unknown:
        raise ValueError(
            f"unknown notebook parameter(s) {', '.join(map(repr, unknown))}: {nb_path.name} takes "
            f"{', '.join(declared)}. Fix the name or add the parameter to the notebook's 'parameters' cell."
        )
    return declared


def _normalise_formats(formats: Any) -> tuple[str, ...]:
    if isinstance(formats, str):
        formats = [f.strip() for f in formats.split(",") if f.strip()]
    try:
        fmts = tuple(dict.fromkeys(str(f).lower() for f in formats))
    except TypeError:
        raise TypeError(f"formats must be a list such as ('html', 'pdf') or a string 'html,pdf', got {formats!r}.") \
            from None
    bad = [f for f in fmts if f not in FORMATS]
    if bad or not fmts:
        raise ValueError(f"formats must be one or more of {', '.join(FORMATS)}, got {formats!r}.")
    return fmts


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
        from .render import render_index_row

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
        from .render import render_index_page

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


# ==================================================================================
# The batch's data: loaded here, or in a child process that exits once the shared analyses are written
# ==================================================================================
def _plan_data(ds: Dataset, *, quarter: Any, as_of: Any) -> dict[str, Any]:
    """What the batch needs to know of the data to plan its reports (small: the team tree, not the KPIs)."""
    if isinstance(quarter, str) and quarter.strip().lower() == "latest":
        if ds.latest_quarter is None:
            raise NoObjectivesError("latest", [])
        quarter = ds.latest_quarter
    q = ds.quarter(quarter)
    if q.label not in ds.quarters:
        raise NoObjectivesError(q.label, ds.quarters)
    tree = ds.team_tree
    roots = tree.loc[tree["depth"] == 0, "team_id"].tolist()
    return {"quarter": q, "as_of": _resolve_as_of(as_of, q), "tree": tree, "roots": roots,
            "order": {tid: i for i, tid in enumerate(t for r in roots for t in ds.subtree(r))},
            "input_hash": dataset_hash(ds), "source": ds.source, "kpi_rows": len(ds.kpis)}


#: Up to this many KPI rows the workers warm up (kernels, exporters, browsers: ~2 GB for two) while the shared
#: analyses are computed, which saves the warm-up time (~10 s). Above it they start once the data is let go:
#: the data process's memory grows with the organisation (~0.35 GB and ~0.3 GB per million KPI rows; 1.2 GB at
#: 2,000 teams of three years), and overlapping it with the warm-up would make the batch's peak grow with it too
#: (benchmarks/results/scale.md).
_WARM_EARLY_MAX_ROWS = 1_000_000


class _LocalData:
    """A batch's data held in this process (a Dataset or tables passed in: the caller holds them anyway)."""

    def __init__(self, source: Any, *, fiscal_year_start: int = 1):
        from .loaders import load

        self._ds: Dataset | None = load(source, fiscal_year_start=fiscal_year_start)

    def plan(self, *, quarter: Any, as_of: Any) -> dict[str, Any]:
        return _plan_data(self._ds, quarter=quarter, as_of=as_of)

    def write_shared(self, folder: Path, **options: Any) -> None:
        _write_shared(self._ds, folder, **options)

    def close(self) -> None:
        """Drop the dataset (the notebooks read the shared folder) and give its memory back."""
        if self._ds is not None:
            self._ds = None
            _release()


def _send(conn: Any, message: tuple) -> None:
    """Send to the batch process; an exception that cannot be pickled goes as a RuntimeError with its text."""
    try:
        conn.send(message)
    except Exception:
        err = message[1]
        conn.send(("error", RuntimeError(f"{type(err).__name__}: {err}"), message[2]))


def _caught(records: list[warnings.WarningMessage]) -> list[tuple[type[Warning], str]]:
    return [(w.category, str(w.message)) for w in records]


def _use_filters(filters: Sequence[tuple]) -> None:
    """Make ``filters`` (another process's ``warnings.filters``) this process's warning filters."""
    warnings.resetwarnings()
    for action, message, category, module, lineno in filters:
        if message is None and module is None:
            warnings.simplefilter(action, category, lineno, append=True)
        else:
            warnings.filterwarnings(action, getattr(message, "pattern", message or ""), category,
                                    getattr(module, "pattern", module or ""), lineno, append=True)


def _data_process(conn: Any, source: Any, fiscal_year_start: int, quarter: Any, as_of: Any, ppid: int,
                  filters: Sequence[tuple]) -> None:
    """The child of :class:`_ChildData`: load and plan, then write the shared analyses when asked, then exit.

    The batch process's warning filters apply here; the warnings they let through are sent to the batch
    process, which issues them again (its caller sees them as if the data had been loaded there), and so
    are exceptions."""
    import threading

    from .loaders import load

    threading.Thread(target=_exit_with_parent, args=(ppid,), daemon=True).start()
    with contextlib.suppress(Exception):  # "okr-data" in ps and top (Linux); the workers stay "python"
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(15, b"okr-data", 0, 0, 0)  # PR_SET_NAME
    with warnings.catch_warnings(record=True) as records:
        _use_filters(filters)
        try:
            ds = load(source, fiscal_year_start=fiscal_year_start)
            plan = _plan_data(ds, quarter=quarter, as_of=as_of)
        except BaseException as err:  # noqa: BLE001 - every failure goes to the batch process
            _send(conn, ("error", err, _caught(records)))
            return
        _send(conn, ("plan", plan, _caught(records)))
        del records[:]
        try:
            message = conn.recv()
        except EOFError:
            return
        if message[0] != "write":
            return
        try:
            _write_shared(ds, Path(message[1]), **message[2])
        except BaseException as err:  # noqa: BLE001
            _send(conn, ("error", err, _caught(records)))
            return
        _send(conn, ("written", None, _caught(records)))


class _ChildData:
    """A batch's data loaded from a path or URL in a child process (spawned), which plans, writes the shared
    analyses and exits: the batch process never holds the organisation's data, so its memory stays the
    same whatever the size of the organisation; the child's peak ends with it."""

    def __init__(self, source: Any, *, fiscal_year_start: int = 1):
        self._source = source
        self._fiscal_year_start = fiscal_year_start
        self._proc: Any = None
        self._conn: Any = None
        self._busy = False  # a request is outstanding: the child is loading or computing

    def _receive(self, doing: str) -> Any:
        self._busy = True
        try:
            kind, value, caught = self._conn.recv()
        except EOFError:
            self._proc.join(10)
            raise RuntimeError(
                f"the process {doing} ended unexpectedly (exit code {self._proc.exitcode}); if the machine ran "
                "out of memory, free some or run the batch on a larger one.") from None
        self._busy = False
        for category, text in caught:
            warnings.warn(text, category, stacklevel=4)
        if kind == "error":
            raise value
        return value

    def plan(self, *, quarter: Any, as_of: Any) -> dict[str, Any]:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self._conn, child_end = ctx.Pipe()
        self._proc = ctx.Process(target=_data_process, name="okr-analysis data", daemon=True,
                                 args=(child_end, self._source, self._fiscal_year_start, quarter, as_of,
                                       os.getpid(), list(warnings.filters)))
        self._proc.start()
        child_end.close()
        return self._receive("loading the data")

    def write_shared(self, folder: Path, **options: Any) -> None:
        self._conn.send(("write", str(folder), options))
        self._receive("computing the shared analyses")

    def close(self) -> None:
        """Let the child exit (it may wait for a write that is not needed); stop it at once if it is still
        working (the batch was interrupted or failed)."""
        if self._proc is None:
            return
        if self._busy:
            self._proc.terminate()
        else:
            with contextlib.suppress(OSError, ValueError):
                self._conn.send(("stop",))
        self._proc.join(10)
        if self._proc.is_alive():  # pragma: no cover - a child that ignores the stop
            self._proc.kill()
            self._proc.join(5)
        self._conn.close()
        self._proc = None


def _open_data(source: Any, *, fiscal_year_start: int = 1) -> "_LocalData | _ChildData":
    """A path or URL: loaded in a child process (:class:`_ChildData`); anything else here."""
    if isinstance(source, (str, os.PathLike)):
        return _ChildData(source, fiscal_year_start=fiscal_year_start)
    return _LocalData(source, fiscal_year_start=fiscal_year_start)


def build_reports(
    source: Any,
    *,
    quarter: str,
    teams: Sequence[str] | None = None,
    as_of: Any = None,
    formats: "Sequence[str] | str" = ("html", "pdf"),
    out: "str | os.PathLike[str]" = "reports",
    jobs: int | None = None,
    org_overview: bool = True,
    force: bool = False,
    min_group_size: int = 5,
    progress: "bool | Callable[[TeamOutcome, int, int], Any]" = False,
    continue_on_error: bool = True,
    parameters: Mapping[str, Any] | None = None,
    notebook: "str | os.PathLike[str] | None" = None,
    cell_timeout: float | None = 600,
    executor: str = "local",
    scheduler: str | None = None,
    fiscal_year_start: int = 1,
) -> BuildResult:
    """Render the quarterly review report of every team (HTML and PDF), an index and a manifest.

    Parameters
    ----------
    source : path, URL, mapping or Dataset
        The data source, as for :func:`okr_analysis.load`. Loaded once per batch: a path or URL in a
        child process that also computes the shared analyses and exits before the reports render, so
        the batch process never holds the organisation's data (a Dataset or tables passed in are the
        caller's, and are let go of once the shared analyses are written).
    quarter : str
        Fiscal quarter such as ``"2026Q3"`` (or ``"latest"``); it must have objectives in the data.
    teams : list of str, optional
        Team ids to report on; default every team below the root (departments and teams).
    as_of : date, optional
        Data snapshot date shown in the reports; default the quarter end.
    formats : {"html", "pdf"} or "html,pdf"
        HTML is always written (the PDF is printed from it). Without Chromium, PDFs are
        skipped with a :class:`ReportWarning` saying how to get them.
    out : path
        Output root; files go to ``<out>/<quarter>/``.
    jobs : int, optional
        Worker processes (default ``os.cpu_count()``, at most one per report).
    org_overview : bool
        Also render the organisation overview (the root team's report, listed first).
    force : bool
        Re-render reports that are up to date.
    min_group_size : int
        People metrics of groups smaller than this are not shown (passed to the notebook).
    progress : bool or callable
        ``True`` shows a tqdm bar on stderr; a callable is called as
        ``progress(outcome, done, total)`` after each team.
    continue_on_error : bool
        ``True`` (default): a failing team never stops the others. ``False``: stop at the
        first failure, cancel the teams not started and raise :class:`BuildError`.
    parameters : mapping, optional
        Extra notebook parameters; each must be declared by the notebook.
    notebook : path, optional
        Another report notebook (default :data:`NOTEBOOK`); it must declare
        :data:`RUNNER_PARAMETERS`.
    cell_timeout : float or None
        Seconds one cell may run before the team fails (None: no limit).
    executor : {"local", "dask"}
        ``"local"``: worker processes on this machine. ``"dask"``: the workers of a Dask
        distributed cluster, each keeping a warm kernel, exporter and browser; outcomes, files,
        manifest and index are the same (see README.md, Dask section).
    scheduler : str, optional
        With ``executor="dask"``, the address of an existing cluster's scheduler
        (``tcp://HOST:PORT``); its workers must see the output folder and the source at the same
        paths (a shared filesystem). Default: a local cluster of ``jobs`` workers, closed afterwards.
    fiscal_year_start : int
        First month of the fiscal year, as for :func:`okr_analysis.load` (a path or URL source).

    Returns
    -------
    BuildResult
        Per-team outcomes (``status``, ``state``, paths, ``error`` with the failing cell's
        ``ename``/``evalue``), the manifest and ``ok``.

    Raises
    ------
    ValueError, TypeError
        Bad arguments, unknown teams (:class:`UnknownTeamsError`), a quarter without objectives
        (:class:`NoObjectivesError`) or notebook parameters — before anything runs.
    okr_analysis.ValidationError
        The source fails validation.
    BuildError
        With ``continue_on_error=False``, after the first failure.
    OSError
        With ``executor="dask"``: the scheduler cannot be reached or has no workers.
    """
    import multiprocessing

    t_start = time.perf_counter()
    if multiprocessing.parent_process() is not None:
        raise RuntimeError(
            "build_reports was called while one of its worker processes was starting, which happens when a "
            "script calls it at top level: put the call under `if __name__ == \"__main__\":`."
        )
    # -- arguments, checked before any work ----------------------------------------
    fmts = _normalise_formats(formats)
    from .executors import check_executor

    executor, scheduler = check_executor(executor, scheduler)
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"jobs must be a positive whole number (or None for all CPUs), got {jobs!r}.")
    if isinstance(min_group_size, bool) or not isinstance(min_group_size, int) or min_group_size < 1:
        raise ValueError(f"min_group_size must be a whole number of people, 1 or more, got {min_group_size!r}.")
    if not (isinstance(progress, bool) or callable(progress)):
        raise TypeError(f"progress must be True, False or a callable(outcome, done, total), got {progress!r}.")
    if teams is not None and (isinstance(teams, str) or not all(isinstance(t, str) for t in teams)):
        raise TypeError(f"teams must be a list of team id strings, got {teams!r}.")
    extra = dict(parameters or {})
    nb_path = Path(notebook).resolve() if notebook is not None else NOTEBOOK
    if not nb_path.exists():
        raise FileNotFoundError(f"notebook {str(nb_path)!r} does not exist.")
    _check_parameters(nb_path, extra)
    # the root's report is the organisation overview (unless a single notebook was asked for)
    org_nb_path = ORG_NOTEBOOK.resolve() if notebook is None and ORG_NOTEBOOK.exists() else nb_path
    if org_nb_path != nb_path:
        _check_parameters(org_nb_path, extra)
    template_dir = TEMPLATE_DIR

    # -- data, quarter, teams ------------------------------------------------------------
    # A path or URL is loaded in a child process that also computes the shared analyses and then
    # exits, so this process never holds the organisation's data and its memory does not grow with it.
    src_path = (str(Path(os.fspath(source)).resolve())
                if isinstance(source, (str, os.PathLike)) and "://" not in os.fspath(source) else None)
    data = _open_data(source, fiscal_year_start=fiscal_year_start)
    source = None  # held through `data` only: a Dataset handed over is let go once the shared analyses are written
    try:
        return _build(data, src_path, quarter=quarter, teams=teams, as_of=as_of, fmts=fmts, out=out, jobs=jobs,
                      org_overview=org_overview, force=force, min_group_size=min_group_size, progress=progress,
                      continue_on_error=continue_on_error, extra=extra, nb_path=nb_path, org_nb_path=org_nb_path,
                      template_dir=template_dir, cell_timeout=cell_timeout, executor=executor,
                      scheduler=scheduler, t_start=t_start)
    finally:
        data.close()


def _build(data: "_LocalData | _ChildData", src_path: str | None, *, quarter: Any, teams: Sequence[str] | None,
           as_of: Any, fmts: tuple[str, ...], out: Any, jobs: int | None, org_overview: bool, force: bool,
           min_group_size: int, progress: Any, continue_on_error: bool, extra: dict[str, Any], nb_path: Path,
           org_nb_path: Path, template_dir: Path, cell_timeout: float | None, executor: str, scheduler: str | None,
           t_start: float) -> BuildResult:
    """:func:`build_reports` once its arguments are checked and its data is open."""
    plan = data.plan(quarter=quarter, as_of=as_of)
    q, as_of_ts, tree, roots, order = plan["quarter"], plan["as_of"], plan["tree"], plan["roots"], plan["order"]
    known_ids = tree["team_id"].tolist()
    if teams is None:
        wanted = [t for t in known_ids if t not in roots]
    else:
        unknown = [t for t in teams if t not in set(known_ids)]
        if unknown:
            raise UnknownTeamsError(unknown, known_ids)
        wanted = list(dict.fromkeys(teams))
    if org_overview:
        wanted = roots + [t for t in wanted if t not in roots]
    wanted.sort(key=lambda t: order.get(t, len(order)))
    files = {t: team_file_name(t) for t in known_ids}
    if len(set(files.values())) != len(files):  # pragma: no cover - a 40-bit hash collision
        raise ValueError("two team ids map to the same file name; rename one of them.")

    # -- PDF support -------------------------------------------------------------------
    messages: list[str] = []
    chromium = None
    if "pdf" in fmts:
        from .render import pdf_support

        chromium, why = pdf_support()
        if chromium is None:
            messages.append(why)
            warnings.warn(why, ReportWarning, stacklevel=2)
    want_pdf = chromium is not None

    # -- keys: what a report depends on -------------------------------------------------
    input_hash = plan["input_hash"]
    nb_hash = _files_hash(sorted({nb_path, org_nb_path}))
    tpl_hash = _template_hash(template_dir)
    pkg_hash = _package_hash()
    version = _version()
    base_key = _sha(input_hash, nb_hash, tpl_hash, pkg_hash, version, q.label, as_of_ts.date().isoformat(),
                    min_group_size, extra)

    def key_of(tid: str) -> str:
        return _sha(base_key, tid, "org" if tid in roots else "team")

    src_label = src_path if src_path is not None else plan["source"]

    folder = Path(out) / q.label
    folder.mkdir(parents=True, exist_ok=True)
    folder = folder.resolve()
    with _folder_lock(folder):
        _clean_temporaries(folder)
        previous = _read_manifest(folder / "build.json")
        prev_entries = {e["team_id"]: e for e in previous.get("teams", []) if isinstance(e, dict) and "team_id" in e}
        names = dict(zip(tree["team_id"], tree["team_name"]))
        dept_names = {tid: names.get(d) for tid, d in zip(tree["team_id"], tree["department_id"])}

        def base_entry(tid: str) -> dict[str, Any]:
            return {"team_id": tid, "team_name": names[tid], "kind": "org" if tid in roots else "team",
                    "department": dept_names.get(tid) if tid not in roots else None, "order": order.get(tid, 0),
                    "file": files[tid]}

        # Carry over teams of earlier batches that are still in the data; mark them stale if inputs changed.
        entries: dict[str, dict] = {}
        for tid, e in prev_entries.items():
            if tid in names and tid not in wanted:
                e = {**e, **base_entry(tid)}
                if e.get("state") == "ok" and e.get("key") != key_of(tid):
                    e["state"] = "stale"
                entries[tid] = e

        # Plan: skip what is up to date.
        tasks: list[dict[str, Any]] = []
        outcomes: dict[str, TeamOutcome] = {}
        for tid in wanted:
            prev = prev_entries.get(tid, {})
            stem = files[tid]
            needed = [folder / f"{stem}.html", folder / f"{stem}.ipynb"] + ([folder / f"{stem}.pdf"] if want_pdf else [])
            if (not force and prev.get("key") == key_of(tid) and prev.get("state") == "ok"
                    and all(p.exists() for p in needed)):
                entry = {**prev, **base_entry(tid), "status": "skipped", "duration_s": 0.0,
                         "pdf": f"{stem}.pdf" if (folder / f"{stem}.pdf").exists() else None}
                entries[tid] = entry
                outcomes[tid] = _outcome_from_entry(entry, folder)
                continue
            if prev:  # until it is re-rendered, the index keeps listing the last good report (even if killed)
                entries[tid] = {**prev, **base_entry(tid)}
                if prev.get("state") == "ok" and prev.get("key") != key_of(tid):
                    entries[tid]["state"] = "stale"
            identity = {"title": f"{names[tid]} — {q.label} quarterly review", "team_id": tid,
                        "team_name": names[tid], "quarter": q.label, "as_of": as_of_ts.date().isoformat(),
                        "organisation": names[roots[0]] if roots else "", "version": version}
            tasks.append({
                "team_id": tid, "file": stem, "folder": str(folder), "pdf": want_pdf, "identity": identity,
                "notebook": str(org_nb_path if tid in roots else nb_path),
                "footer": f"{names[tid]} · {q.label} quarterly review",
                "parameters": {"source": src_label, "team_id": tid, "quarter": q.label,
                               "as_of": as_of_ts.date().isoformat(), "min_group_size": min_group_size,
                               "shared": "", **extra},
            })

        header = {
            "tool": "okr-analysis", "version": version, "manifest_format": 1, "generated_at": _now(),
            "duration_s": None, "quarter": q.label, "organisation": names[roots[0]] if roots else "",
            "source": src_label, "input_hash": input_hash,
            "parameters": {"as_of": as_of_ts.date().isoformat(), "min_group_size": min_group_size,
                           "formats": list(fmts), "jobs": jobs, "executor": executor,
                           "scheduler": scheduler, "org_overview": org_overview, "force": force,
                           "teams": list(teams) if teams is not None else None, "extra": _jsonable(extra)},
            "notebook": {"path": str(nb_path), "org_path": str(org_nb_path), "sha256": nb_hash},
            "template": {"path": str(template_dir), "sha256": tpl_hash},
            "package_sha256": pkg_hash,
            "pdf": {"requested": "pdf" in fmts, "available": want_pdf, "chromium": chromium},
            "shared": None, "messages": messages,
        }
        manifest = _Manifest(folder, header, entries, sorted(set(entries) | set(wanted),
                                                             key=lambda t: order.get(t, len(order))))

        done = len(outcomes)
        total = len(wanted)
        bar = None
        if progress is True:
            from tqdm import tqdm

            bar = tqdm(total=total, initial=done, unit="report", desc=f"{q.label} reports", leave=True)

        def finish(tid: str, result: Mapping[str, Any] | None, status: str | None = None,
                   write: bool = True) -> TeamOutcome:
            nonlocal done
            prev = prev_entries.get(tid, {})
            stem = files[tid]
            entry = {**base_entry(tid), "attempted_at": _now()}
            error = (result or {}).get("error")
            if status == "cancelled":
                entry.update(status="cancelled", error=None, duration_s=0.0)
            elif error:
                entry.update(status="failed", error=error, duration_s=result.get("duration_s", 0.0))
            else:
                entry.update(status="rendered", error=None, duration_s=result.get("duration_s", 0.0),
                             key=key_of(tid), rendered_at=_now(), summary=result.get("summary", {}))
            if entry["status"] != "rendered":  # keep what the last good run published
                for k in ("key", "rendered_at", "summary"):
                    if k in prev:
                        entry[k] = prev[k]
            entry["html"] = f"{stem}.html" if (folder / f"{stem}.html").exists() else None
            entry["notebook"] = f"{stem}.ipynb" if (folder / f"{stem}.ipynb").exists() else None
            entry["pdf"] = f"{stem}.pdf" if (folder / f"{stem}.pdf").exists() else None
            entry["failed_html"] = f"{stem}.failed.html" if (folder / f"{stem}.failed.html").exists() else None
            entry["failed_notebook"] = (f"{stem}.failed.ipynb"
                                        if (folder / f"{stem}.failed.ipynb").exists() else None)
            if entry["status"] == "rendered":
                entry["state"] = "ok"
            elif entry["html"] and (entry["status"] == "failed" or prev.get("state") in ("ok", "stale")):
                entry["state"] = "stale"
            else:
                entry["state"] = "failed" if entry["status"] == "failed" else "missing"
            entries[tid] = entry
            outcome = _outcome_from_entry(entry, folder)
            outcomes[tid] = outcome
            done += 1
            if write:  # at once when files the last manifest named are gone (a failed report now rendered)
                manifest.write(force=bool(prev.get("failed_html") or prev.get("failed_notebook")))
            if bar is not None:
                bar.update(1)
                if not outcome.ok:
                    bar.set_postfix(failed=sum(1 for o in outcomes.values() if not o.ok))
            elif callable(progress):
                progress(outcome, done, total)
            return outcome

        stopped = False
        try:
            if tasks:
                stopped = _run_tasks(
                    tasks, data=data, quarter=q, as_of=as_of_ts, min_group_size=min_group_size, folder=folder,
                    input_hash=input_hash, src_label=src_label, pkg_hash=pkg_hash, nb_path=nb_path,
                    template_dir=template_dir, chromium=chromium, jobs=jobs, cell_timeout=cell_timeout,
                    continue_on_error=continue_on_error, finish=finish, messages=messages, header=header,
                    executor=executor, scheduler=scheduler,
                    warm_early=plan["kpi_rows"] <= _WARM_EARLY_MAX_ROWS,
                )
        finally:
            if bar is not None:
                bar.close()
            # Teams never attempted (interrupted or stopped) keep their previous entry or show as missing.
            for t in tasks:
                if t["team_id"] not in outcomes:
                    finish(t["team_id"], None, status="cancelled", write=False)
            data = manifest.write(duration_s=round(time.perf_counter() - t_start, 3), messages=messages)

    result = BuildResult(
        quarter=q.label, folder=folder, teams=tuple(outcomes[t] for t in wanted if t in outcomes), manifest=data,
        manifest_path=folder / "build.json", index_path=folder / "index.html", messages=tuple(messages),
        duration_s=round(time.perf_counter() - t_start, 3),
    )
    if stopped:
        first = result.failures[0]
        raise BuildError(f"report of team {first.team_id!r} failed: {first.error}; stopped the batch "
                         "(continue_on_error=False).", result)
    return result


def cache_folder(folder: Path) -> Path:
    """The private folder where a batch writing to ``folder`` keeps its shared analyses and kernel logs.

    It holds the whole validated dataset, so it lives **outside** the output folder (which is published):
    ``$OKR_ANALYSIS_CACHE/<hash of the output folder>``, by default under the system's temporary folder,
    created readable by its owner only. On a remote Dask cluster set ``OKR_ANALYSIS_CACHE`` to a folder on
    a filesystem the workers share.
    """
    import tempfile

    base = os.environ.get("OKR_ANALYSIS_CACHE") or os.path.join(tempfile.gettempdir(),
                                                                 f"okr-analysis-{os.getuid()}")
    root = Path(base) / hashlib.sha256(str(Path(folder).resolve()).encode()).hexdigest()[:16]
    root.mkdir(parents=True, exist_ok=True)
    for p in (Path(base), root):
        with contextlib.suppress(OSError):
            p.chmod(0o700)
    return root


def _release() -> None:
    """Give the memory of dropped tables back to the system: Python's garbage, Arrow's pool and glibc's heap."""
    import gc

    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()
    _trim_heap()


def _trim_heap() -> None:
    """Hand the free pages of glibc's heap back to the system (``malloc_trim``; a no-op elsewhere).

    glibc keeps freed memory for reuse; a process that frees more than it will need again (the batch
    after its shared analyses, and a little at each manifest rewrite) would otherwise only ever grow.
    """
    import ctypes

    with contextlib.suppress(OSError, AttributeError):  # glibc only
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _run_tasks(tasks: list[dict[str, Any]], *, data: "_LocalData | _ChildData", quarter: Quarter,
               as_of: pd.Timestamp, min_group_size: int, folder: Path, input_hash: str, src_label: str,
               pkg_hash: str, nb_path: Path, template_dir: Path, chromium: str | None, jobs: int | None,
               cell_timeout: float | None, continue_on_error: bool, finish: Callable, messages: list[str], header: dict,
               executor: str = "local", scheduler: str | None = None, warm_early: bool = True) -> bool:
    """Start the workers, write the shared analyses, run the tasks. True if stopped early.

    ``data`` holds the dataset (here or in a child process); it is closed once the shared analyses are
    written. With ``warm_early`` the workers warm up meanwhile; without it (large data), they start after it
    is closed, so the batch's peak memory is the rendering's whatever the size of the data."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    import nbformat

    nb_meta = nbformat.read(nb_path, as_version=4).metadata
    kernel_name = nb_meta.get("kernelspec", {}).get("name", "python3")
    cache_root = cache_folder(folder)
    shutil.rmtree(folder / ".cache", ignore_errors=True)  # where earlier builds kept it: raw data in a published folder
    shutil.rmtree(cache_root / "logs", ignore_errors=True)  # kernel logs of the previous batch
    cache_key = _sha(input_hash, pkg_hash, quarter.label, as_of.date().isoformat(), min_group_size,
                     sorted(shared_analyses()))[:16]
    shared_dir = cache_root / cache_key
    cfg = _WorkerConfig(
        notebook=str(nb_path), template_dir=str(template_dir), kernel_name=kernel_name, cwd=str(nb_path.parent),
        warm_imports=_notebook_imports(nb_path), chromium=chromium, cell_timeout=cell_timeout,
        log_dir=str(cache_root / "logs"),
    )
    n_workers = max(1, min(jobs or os.cpu_count() or 1, len(tasks)))

    def prepare_shared() -> None:
        """Write the shared analyses (once per input) and point every task at them."""
        if not shared_dir.exists():
            tmp = cache_root / f".{cache_key}.tmp-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            data.write_shared(tmp, quarter=quarter, as_of=as_of, min_group_size=min_group_size,
                              input_hash=input_hash, source_label=src_label)
            try:
                os.replace(tmp, shared_dir)
            except OSError:  # pragma: no cover - appeared meanwhile
                shutil.rmtree(tmp, ignore_errors=True)
        data.close()  # the notebooks read the shared folder from now on
        for old in cache_root.iterdir():
            if old.is_dir() and old.name not in (cache_key, "logs"):
                shutil.rmtree(old, ignore_errors=True)
        header["shared"] = str(shared_dir)
        for task in tasks:
            task["parameters"]["shared"] = str(shared_dir)

    pdf_note: list[bool] = []

    def handle(task: Mapping[str, Any], result: Mapping[str, Any] | None, exc: BaseException | None) -> bool:
        """Record one team's result; True when the batch must stop (``continue_on_error=False``)."""
        if exc is not None:  # the worker process died (BrokenProcessPool, KilledWorker) or similar
            result = {"team_id": task["team_id"], "summary": {}, "duration_s": 0.0,
                      "error": asdict(TeamError("worker", type(exc).__name__, str(exc)[:2000]))}
        if result.get("pdf_error") and not pdf_note:
            messages.append(f"PDFs were skipped: {result['pdf_error']}")
            pdf_note.append(True)
        outcome = finish(task["team_id"], result)
        return not outcome.ok and not continue_on_error

    if executor == "dask":
        return _run_tasks_dask(tasks, cfg=cfg, scheduler=scheduler, jobs=jobs, n_workers=n_workers,
                               prepare_shared=prepare_shared, handle=handle, warm_early=warm_early)

    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx, initializer=_worker_init, initargs=(cfg,))
    stopped = False
    try:
        if not warm_early:
            prepare_shared()
        # Spawn every worker now: with small data, kernels, exporters and browsers warm up while the shared
        # analyses are computed.
        for _ in range(n_workers):
            pool.submit(_worker_ready)
        if warm_early:
            prepare_shared()
        pending = {}
        for task in tasks:
            pending[pool.submit(_worker_run, task)] = task
        while pending:
            finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for fut in finished:
                task = pending.pop(fut)
                if fut.cancelled():
                    continue
                try:
                    result, exc = fut.result(), None
                except Exception as err:
                    result, exc = None, err
                if handle(task, result, exc) and not stopped:
                    stopped = True
                    for other in pending:
                        other.cancel()
    except BaseException:  # KeyboardInterrupt and the like: stop now; every output file is atomic
        procs = list((getattr(pool, "_processes", None) or {}).values())  # shutdown() forgets them
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.terminate()  # their kernels and browsers exit with them (parent-death watch, closed pipe)
        raise
    pool.shutdown(wait=True, cancel_futures=True)
    return stopped


# ==================================================================================
# The Dask executor: the same tasks on a Dask distributed cluster
# ==================================================================================
_DASK_IDLE: dict[_WorkerConfig, list[_Worker]] = {}
_DASK_LOCK = None  # a threading.Lock, made on first use in the Dask worker process


def _dask_lock():
    global _DASK_LOCK
    if _DASK_LOCK is None:
        import threading

        _DASK_LOCK = threading.Lock()
    return _DASK_LOCK


def _dask_checkout(cfg: _WorkerConfig) -> _Worker:
    """A warm worker of this batch from the process's pool (made on first use; other batches' are closed)."""
    import atexit

    with _dask_lock():
        first = not _DASK_IDLE
        stale = [w for c, ws in _DASK_IDLE.items() if c != cfg for w in ws]
        for c in [c for c in _DASK_IDLE if c != cfg]:
            del _DASK_IDLE[c]
        idle = _DASK_IDLE.setdefault(cfg, [])
        worker = idle.pop() if idle else None
    for w in stale:
        w.close()
    if first and not stale:
        atexit.register(_dask_close)
    return worker if worker is not None else _Worker(cfg)


def _dask_checkin(cfg: _WorkerConfig, worker: _Worker) -> None:
    with _dask_lock():
        _DASK_IDLE.setdefault(cfg, []).append(worker)


def _dask_warm(cfg: _WorkerConfig) -> dict[str, Any]:
    """Dask task: start this worker's kernel, exporter and browser before the first team arrives."""
    _dask_checkin(cfg, _dask_checkout(cfg))
    return {"pid": os.getpid()}


def _dask_run(cfg: _WorkerConfig, task: Mapping[str, Any]) -> dict[str, Any]:
    """Dask task: one team's report, on a warm worker of the Dask worker process."""
    try:
        worker = _dask_checkout(cfg)
    except Exception as exc:
        return {"team_id": task["team_id"], "summary": {}, "pdf_error": "",
                "error": asdict(TeamError("worker", type(exc).__name__, str(exc)[:2000]))}
    try:
        try:  # each Dask task thread holds its own checked-out worker while it runs
            result = worker.run(task)
        except Exception as exc:
            result = {"team_id": task["team_id"], "summary": {}, "pdf_error": "",
                      "error": TeamError("worker", type(exc).__name__, str(exc)[:2000])}
        result["error"] = asdict(result["error"]) if result.get("error") else None
        return result
    finally:
        _dask_checkin(cfg, worker)


def _dask_close() -> int:
    """Close every warm worker of this process (their kernels and browsers); run on each Dask worker at the end."""
    with _dask_lock():
        workers = [w for ws in _DASK_IDLE.values() for w in ws]
        _DASK_IDLE.clear()
    for w in workers:
        with contextlib.suppress(Exception):
            w.close()
    return len(workers)


def _dask_missing(paths: Sequence[str]) -> list[str]:
    """Dask task: which of ``paths`` this worker cannot see (or, for the output folder, cannot write)."""
    return [p for p in paths if not os.path.isdir(p) or not os.access(p, os.W_OK | os.X_OK)]


def _dask_check_paths(client: Any, scheduler: str | None, paths: list[str]) -> None:
    """Fail early, with what to do, when a worker cannot see the output folder or the batch's cache."""
    try:
        missing = client.run(_dask_missing, paths)
    except Exception:  # pragma: no cover - a worker left meanwhile: the tasks will report it
        return
    blind = {addr: m for addr, m in missing.items() if m}
    if blind:
        addr, paths_ = next(iter(blind.items()))
        raise OSError(
            f"{len(blind)} worker(s) of the Dask cluster at {scheduler or 'localhost'} cannot use "
            f"{', '.join(paths_)} (e.g. worker {addr}). The workers write the reports into the output folder "
            "and read the shared analyses from the batch cache: put the output folder on a filesystem the "
            "workers share, mounted at the same path, and set OKR_ANALYSIS_CACHE to a folder on it."
        )


def _run_tasks_dask(tasks: list[dict[str, Any]], *, cfg: _WorkerConfig, scheduler: str | None, jobs: int | None,
                    n_workers: int, prepare_shared: Callable[[], None],
                    handle: Callable[[Mapping[str, Any], Any, Any], bool], warm_early: bool = True) -> bool:
    """Run the tasks on a Dask cluster (``scheduler``, or a local one); True if stopped early.

    With ``warm_early`` the workers warm up while the shared analyses are computed; without it, the shared
    analyses come first (the cluster is connected to, or a local one started, before them).

    At most one task per worker thread is in flight (``jobs`` lowers that), so stopping after a
    failure lets the running teams finish and starts no other — as the local executor does.
    """
    import uuid

    from distributed import as_completed

    from .executors import dask_client, n_threads

    token = uuid.uuid4().hex[:8]
    with dask_client(scheduler, n_workers=n_workers) as client:  # first: an unreachable scheduler fails at once
        slots = n_threads(client)
        if jobs:
            slots = min(slots, jobs)
        slots = max(1, min(slots, len(tasks)))
        workers = list(client.scheduler_info().get("workers", {}))[:slots]
        in_flight: dict[Any, dict[str, Any]] = {}
        try:
            if not warm_early:
                prepare_shared()
            # Warm each worker's kernel, exporter and browser (while the shared analyses are computed here).
            warm = [client.submit(_dask_warm, cfg, pure=False, workers=[w], allow_other_workers=True,
                                  key=f"okr-report-warm-{token}-{i}") for i, w in enumerate(workers)]
            if warm_early:
                prepare_shared()
            _dask_check_paths(client, scheduler, [tasks[0]["folder"], tasks[0]["parameters"]["shared"]])
            queue = list(enumerate(tasks))
            stopped = False
            running = as_completed(loop=client.loop)

            def submit_next() -> None:
                i, task = queue.pop(0)
                fut = client.submit(_dask_run, cfg, task, pure=False, key=f"okr-report-{token}-{i}")
                in_flight[fut] = task
                running.add(fut)

            for _ in range(min(slots, len(queue))):
                submit_next()
            for fut in running:
                task = in_flight.pop(fut)
                try:
                    result, exc = fut.result(), None
                except Exception as err:  # KilledWorker (the worker process died), lost connection …
                    result, exc = None, err
                if handle(task, result, exc):
                    stopped = True
                    queue.clear()  # the teams not started stay cancelled
                if queue and not stopped:
                    submit_next()
            del warm
        except BaseException:  # KeyboardInterrupt and the like: cancel, close the client (and a local cluster)
            with contextlib.suppress(Exception):
                client.cancel(list(in_flight))
            raise
        finally:
            with contextlib.suppress(Exception):  # no kernels or browsers left behind on a shared cluster
                client.run(_dask_close)
    return stopped
