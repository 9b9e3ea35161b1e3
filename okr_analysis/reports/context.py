"""The notebook API: :func:`open_report` and the :class:`ReportContext` every section takes.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from .._version import __version__
from ..config import NOTEBOOK_DIR, REPO_DIR
from ..formatting import date as _date
from ..io.dataset import Dataset
from ..io.loading import load
from ..io.quarters import Quarter
from .cache import _CACHE_FORMAT, _read_by_team, _read_shared_dataset
from .render import SUMMARY_MIMETYPE
from .shared import shared_analyses

__all__ = ["ReportContext", "open_report"]



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
            "version": __version__,
        }

    def header_html(self) -> str:
        """The report's header block: team, parents, quarter, data as-of date, generation time."""
        e = html.escape
        q = self.quarter
        rows = [
            ("Team", f"{e(self.team_name)} <span class=\"okr-note\">({e(self.team_id)})</span>"),
            ("Part of", " › ".join(e(p) for p in reversed(self.parents)) or "—"),
            ("Quarter", f"{e(q.label)} ({_date(q.start)} – {_date(q.end)})"),
            ("Data as of", f"{_date(self.as_of)} <span class=\"okr-note\">(generated "
                           f"{_date(self.generated_at)} {self.generated_at:%H:%M})</span>"),
        ]
        dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
        title = "Organisation overview" if self.is_org else "Quarterly review"
        return (f'<header class="okr-header"><h1>{e(self.team_name)} · {title}</h1>'
                f"<dl>{dl}</dl></header>")

    def show_header(self) -> None:
        """Display the header block (and hand the report's identity to the renderer)."""
        # lazy import: notebook display, needed only inside a kernel
        from IPython.display import HTML, display

        display(HTML(self.header_html()))
        display({SUMMARY_MIMETYPE: self._identity(), "text/plain": ""}, raw=True)

    def provenance(self) -> pd.DataFrame:
        """Where the numbers come from: data source, snapshot date, tool version, data warnings (item, value)."""
        rows = [
            ("Data source", self.source or self.ds.source),
            ("Data as of", _date(self.as_of)),
            ("Quarter", f"{self.quarter.label} ({_date(self.quarter.start)} to {_date(self.quarter.end)})"),
            ("Smallest group shown for people metrics", str(self.min_group_size)),
            ("Analyses", "shared by the batch run" if self.shared_dir is not None else "computed in this notebook"),
            ("okr-analysis version", __version__),
        ]
        rows += [("Data warning", w) for w in self.ds.warnings]
        return pd.DataFrame(rows, columns=["item", "value"])

    def record_summary(self, *, score: float | None = None, band: str | None = None,
                       status_counts: Mapping[str, int] | None = None, **extra: Any) -> None:
        """Hand the report's headline numbers to the runner (the index lists them); not shown in the report.

        Call it in the notebook's last cell. Values must be JSON-friendly.
        """
        # lazy import: notebook display, needed only inside a kernel
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
