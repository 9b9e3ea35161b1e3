"""The :class:`Dataset`: the validated, typed tables of one data source, plus helpers.

A ``Dataset`` is what :func:`okr_analysis.load` returns and what every analysis
takes. Its tables follow :mod:`okr_analysis.schemas` exactly (all columns
present, defaults filled, dtypes fixed), so analyses never re-check types.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Iterable, Mapping

import pandas as pd

from .coercion import _empty_table
from .quarters import Quarter, to_day
from .schemas import TABLES
from .validation import tables_from_frames

__all__ = ["Dataset", "check_dataset"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Validated OKR and KPI tables of one organisation.

    Attributes
    ----------
    teams, objectives, key_results, checkins, kpis, metrics : pandas.DataFrame
        The six tables, typed as documented in docs/guide/data-format.md.
        ``objectives.quarter`` holds canonical labels such as ``'2026Q3'``.
    benchmarks : pandas.DataFrame
        External benchmarks (metric, value, source); empty when the source has none.
    initiatives : pandas.DataFrame
        What teams launched and the KPI each should move (initiative_id, team_id, title, start,
        metric, end, kr_id); empty when the source has none (see :func:`okr_analysis.impact.initiative_impact`).
    fiscal_year_start : int
        Calendar month in which the fiscal year starts (1 = January).
    source : str
        Where the data came from (path or URL with any password removed).
    warnings : tuple of str
        Non-fatal findings of validation (e.g. check-ins outside their quarter).

    Build one with :func:`okr_analysis.load` or :meth:`Dataset.from_frames`.
    """

    teams: pd.DataFrame
    objectives: pd.DataFrame
    key_results: pd.DataFrame
    checkins: pd.DataFrame
    kpis: pd.DataFrame
    metrics: pd.DataFrame
    benchmarks: pd.DataFrame
    initiatives: pd.DataFrame = None  # type: ignore[assignment]  # None: an empty, typed table
    fiscal_year_start: int = 1
    source: str = "<frames>"
    warnings: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.initiatives is None:
            object.__setattr__(self, "initiatives", _empty_table(TABLES["initiatives"]))

    # -- construction -----------------------------------------------------------
    @classmethod
    def from_frames(
        cls,
        tables: Mapping[str, pd.DataFrame],
        *,
        fiscal_year_start: int = 1,
        source: str = "<frames>",
    ) -> "Dataset":
        """Validate and type in-memory tables (raw values as read from a file are fine).

        Raises
        ------
        okr_analysis.ValidationError
            Listing every problem found.
        """
        typed, notes = tables_from_frames(tables, fiscal_year_start=fiscal_year_start, source=source)
        return cls(**typed, fiscal_year_start=fiscal_year_start, source=source, warnings=tuple(notes))

    # -- quarters ---------------------------------------------------------------
    def quarter(self, label: "str | Quarter") -> Quarter:
        """Parse a quarter label with this dataset's fiscal calendar."""
        return Quarter.parse(label, fiscal_year_start=self.fiscal_year_start)

    def resolve(self, quarter: "str | Quarter | None", as_of: Any = None, *,
                as_of_required: bool = False) -> tuple[Quarter, pd.Timestamp]:
        """Check a (quarter, as_of) pair as every quarter-based analysis takes it.

        Returns the quarter and the effective as-of date (midnight): ``as_of`` defaults to the
        quarter's end (unless ``as_of_required``), a date after the end counts as the end, and a date
        before the start is an error. The quarter must have objectives.

        Raises
        ------
        ValueError
            Naming the argument, what was found and the valid range.
        """
        if quarter is None:
            raise ValueError(f"quarter is required; quarters with objectives: {', '.join(self.quarters) or 'none'}.")
        q = self.quarter(quarter)
        if q.label not in self.quarters:
            raise ValueError(f"quarter {q.label!r} has no objectives in {self.source}; "
                             f"quarters with objectives: {', '.join(self.quarters) or 'none'}.")
        if as_of is None:
            if as_of_required:
                raise ValueError(f"as_of is required: the date the forecast is made on, e.g. as_of='{q.start.date()}' "
                                 "or later in the quarter (only data up to that day are used).")
            return q, q.end
        ts = to_day(as_of)
        if ts is None:
            raise ValueError(f"as_of must be a date such as '{q.start.date()}', got {as_of!r}.")
        if ts < q.start:
            later = "" if as_of_required else ", or leave as_of out to use the quarter's end"
            raise ValueError(f"as_of {ts.date()} is before quarter {q.label} starts (it runs from {q.start.date()} "
                             f"to {q.end.date()}); give a date on or after {q.start.date()}{later}.")
        return q, min(ts, q.end)

    @cached_property
    def quarters(self) -> list[str]:
        """Quarters that have objectives, oldest first (canonical labels)."""
        labels = self.objectives["quarter"].dropna().unique().tolist()
        return sorted(labels, key=lambda s: self.quarter(s))

    @property
    def latest_quarter(self) -> str | None:
        """The most recent quarter with objectives."""
        return self.quarters[-1] if self.quarters else None

    # -- the team tree ------------------------------------------------------------
    @cached_property
    def team_tree(self) -> pd.DataFrame:
        """One row per team: team_id, team_name, parent_team_id, headcount, depth, department_id, is_leaf.

        ``depth`` is 0 for a root (the company), 1 for its children (departments), and so on.
        ``department_id`` is the team's ancestor at depth 1 (itself for a department, missing for a root).
        """
        t = self.teams.set_index("team_id")
        parent = t["parent_team_id"].to_dict()
        depth: dict[str, int] = {}
        dept: dict[str, Any] = {}
        for tid in t.index:
            chain = [tid]
            while isinstance(parent.get(chain[-1]), str):
                chain.append(parent[chain[-1]])
            depth[tid] = len(chain) - 1
            dept[tid] = chain[-2] if len(chain) >= 2 else None
        has_children = set(p for p in parent.values() if isinstance(p, str))
        out = self.teams[["team_id", "team_name", "parent_team_id", "headcount"]].copy()
        out["depth"] = out["team_id"].map(depth).astype("int64")
        out["department_id"] = out["team_id"].map(dept).astype("str")
        out["is_leaf"] = ~out["team_id"].isin(has_children)
        return out.reset_index(drop=True)

    def _check_team(self, team_id: str) -> None:
        if team_id not in set(self.teams["team_id"]):
            known = ", ".join(sorted(self.teams["team_id"])[:10])
            raise ValueError(f"team_id {team_id!r} is not in the teams table; known teams include: {known}.")

    def parent(self, team_id: str) -> str | None:
        """The parent team's id, or None for a root."""
        self._check_team(team_id)
        p = self.teams.loc[self.teams["team_id"] == team_id, "parent_team_id"].iloc[0]
        return p if isinstance(p, str) else None

    def children(self, team_id: str) -> list[str]:
        """Direct children of a team."""
        self._check_team(team_id)
        return self.teams.loc[self.teams["parent_team_id"] == team_id, "team_id"].tolist()

    def ancestors(self, team_id: str) -> list[str]:
        """Parent, grandparent, … up to the root."""
        out: list[str] = []
        p = self.parent(team_id)
        while p is not None:
            out.append(p)
            p = self.parent(p)
        return out

    def subtree(self, team_id: str) -> list[str]:
        """The team and all its descendants (pre-order)."""
        self._check_team(team_id)
        kids: dict[str, list[str]] = {}
        for tid, p in zip(self.teams["team_id"], self.teams["parent_team_id"]):
            if isinstance(p, str):
                kids.setdefault(p, []).append(tid)
        out, stack = [], [team_id]
        while stack:
            t = stack.pop()
            out.append(t)
            stack.extend(reversed(kids.get(t, [])))
        return out

    def peers(self, team_id: str) -> list[str]:
        """Teams with the same parent, excluding the team itself."""
        p = self.parent(team_id)
        sib = self.teams.loc[self.teams["parent_team_id"] == p, "team_id"] if p else self.teams.loc[
            self.teams["parent_team_id"].isna(), "team_id"]
        return [t for t in sib.tolist() if t != team_id]

    def team_name(self, team_id: str) -> str:
        """Display name of a team."""
        self._check_team(team_id)
        return str(self.teams.loc[self.teams["team_id"] == team_id, "team_name"].iloc[0])

    # -- joined views -----------------------------------------------------------
    def key_results_in(self, quarter: "str | Quarter | None" = None) -> pd.DataFrame:
        """Key results joined with their objective (team_id, quarter, objective kind and title).

        Columns: the ``key_results`` columns plus team_id, quarter, objective_title,
        objective_kind, parent_objective_id. All quarters when ``quarter`` is None.
        """
        obj = self.objectives.rename(columns={"title": "objective_title", "kind": "objective_kind"})
        if quarter is not None:
            obj = obj[obj["quarter"] == self.quarter(quarter).label]
        cols = ["objective_id", "team_id", "quarter", "objective_title", "objective_kind", "parent_objective_id"]
        return self.key_results.merge(obj[cols], on="objective_id", how="inner")

    def kpi_series(self, team_id: str, metric: str) -> pd.Series:
        """One team's values of one metric, indexed by date (sorted)."""
        k = self.kpis
        s = k.loc[(k["team_id"] == team_id) & (k["metric"] == metric), ["date", "value"]]
        return s.set_index("date")["value"].sort_index().rename(metric)

    def metric_info(self, metric: str) -> pd.Series:
        """The catalogue row of one metric."""
        row = self.metrics.loc[self.metrics["metric"] == metric]
        if row.empty:
            raise ValueError(f"metric {metric!r} is not in the metrics table.")
        return row.iloc[0]

    # -- summary ----------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Counts and ranges, as printed by ``okr-analysis validate``."""
        k = self.kpis
        dates = pd.concat([k["date"], self.checkins["date"]]).dropna()
        tree = self.team_tree
        return {
            "source": self.source,
            "teams": int(len(self.teams)),
            "departments": int((tree["depth"] == 1).sum()),
            "people": int(self.teams.loc[tree["is_leaf"].to_numpy(), "headcount"].fillna(0).sum()),
            "quarters": self.quarters,
            "objectives": int(len(self.objectives)),
            "key_results": int(len(self.key_results)),
            "checkins": int(len(self.checkins)),
            "metrics": int(len(self.metrics)),
            "kpi_rows": int(len(k)),
            "date_from": None if dates.empty else dates.min().date().isoformat(),
            "date_to": None if dates.empty else dates.max().date().isoformat(),
            "benchmarks": int(len(self.benchmarks)),
            "initiatives": int(len(self.initiatives)),
            "warnings": len(self.warnings),
        }

    def __repr__(self) -> str:
        s = self.summary()
        return (
            f"<Dataset {s['source']}: {s['teams']} teams, {len(s['quarters'])} quarters, "
            f"{s['key_results']} key results, {s['metrics']} metrics, {s['kpi_rows']} KPI rows>"
        )

    def known_on(self, as_of: Any) -> "Dataset":
        """The dataset as it was known at the end of ``as_of``: KPI values and check-ins dated after it removed."""

        ts = pd.Timestamp(as_of)
        return replace(self, kpis=self.kpis.loc[self.kpis["date"] <= ts].reset_index(drop=True),
                       checkins=self.checkins.loc[self.checkins["date"] <= ts].reset_index(drop=True))

    def filter_teams(self, team_ids: Iterable[str]) -> "Dataset":
        """A dataset restricted to some teams (their objectives, KRs, check-ins and KPIs)."""
        keep = set(team_ids)
        obj = self.objectives[self.objectives["team_id"].isin(keep)]
        krs = self.key_results[self.key_results["objective_id"].isin(set(obj["objective_id"]))]
        return Dataset(
            teams=self.teams[self.teams["team_id"].isin(keep)].reset_index(drop=True),
            objectives=obj.reset_index(drop=True),
            key_results=krs.reset_index(drop=True),
            checkins=self.checkins[self.checkins["kr_id"].isin(set(krs["kr_id"]))].reset_index(drop=True),
            kpis=self.kpis[self.kpis["team_id"].isin(keep)].reset_index(drop=True),
            metrics=self.metrics,
            benchmarks=self.benchmarks,
            initiatives=self.initiatives[self.initiatives["team_id"].isin(keep)].reset_index(drop=True),
            fiscal_year_start=self.fiscal_year_start,
            source=self.source,
            warnings=self.warnings,
        )


def check_dataset(ds: Any, *, name: str = "ds") -> Dataset:
    """``ds`` if it is a :class:`Dataset`; otherwise a ``TypeError`` that names the argument and the fix.

    Every analysis that takes a dataset checks it with this, so the message is the same everywhere.
    """
    if not isinstance(ds, Dataset):
        raise TypeError(f"{name} must be an okr_analysis Dataset, got {type(ds).__name__}; load the data first: "
                        f"{name} = okr_analysis.load(source).")
    return ds
