"""The part of an organisation a filtered load keeps (teams, dates, quarter).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import pandas as pd

from .coercion import _as_text
from .quarters import Quarter, to_day
from .raw import _Raw, _stored_name


# ----------------------------------------------------------------------------------
# Filters (pushed down to the source where it can filter)
# ----------------------------------------------------------------------------------
def _descendants(ids: Iterable, parents: Iterable, roots: Iterable[str]) -> frozenset:
    kids: dict[str, list[str]] = {}
    for tid, p in zip(ids, parents):
        if isinstance(tid, str) and isinstance(p, str):
            kids.setdefault(p, []).append(tid)
    out: set[str] = set()
    stack = list(roots)
    while stack:
        t = stack.pop()
        if t not in out:
            out.add(t)
            stack.extend(kids.get(t, []))
    return frozenset(out)


@dataclass(frozen=True)
class _Scope:
    """The part of the organisation a load keeps (see :func:`load`: teams, start, end, quarter)."""

    teams: tuple[str, ...] | None = None
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    quarter: str | None = None
    fiscal_year_start: int = 1

    @property
    def active(self) -> bool:
        return self.teams is not None or self.start is not None or self.end is not None or self.quarter is not None

    @classmethod
    def make(cls, *, teams: Any, start: Any, end: Any, quarter: Any, fiscal_year_start: int) -> "_Scope":
        if teams is not None:
            if isinstance(teams, str):
                teams = (teams,)
            try:
                teams = tuple(teams)
            except TypeError:
                raise TypeError(f"teams must be a team_id or a list of team_ids, got {type(teams).__name__}") from None
            if not teams or not all(isinstance(t, str) for t in teams):
                raise TypeError(f"teams must be a non-empty list of team_id strings, got {list(teams)!r}")

        def day(value: Any, arg: str) -> pd.Timestamp | None:
            if value is None:
                return None
            ts = to_day(value)
            if ts is None:
                raise ValueError(f"{arg}={value!r} is not a date; give a date such as '2026-07-01'")
            return ts

        lo, hi = day(start, "start"), day(end, "end")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"start={lo.date()} is after end={hi.date()}; give start on or before end")
        label = None
        if quarter is not None:
            try:
                label = Quarter.parse(quarter, fiscal_year_start=fiscal_year_start).label
            except ValueError:
                raise ValueError(f"quarter={quarter!r} is not a quarter; write it as 2026Q3, 2026-Q3 or Q3 2026") \
                    from None
        return cls(teams, lo, hi, label, fiscal_year_start)

    def subtree(self, ids: pd.Series, parents: pd.Series, source: str) -> frozenset:
        known = set(ids.dropna())
        unknown = [t for t in self.teams if t not in known]
        if unknown:
            raise ValueError(f"teams: {', '.join(map(repr, unknown))} not in the teams table of {source}; "
                             "give team_ids from that table")
        return _descendants(ids, parents, self.teams)

    def resolve_teams(self, raw: _Raw | None) -> frozenset | None:
        """The team ids of the kept subtrees, from the raw teams table (None: cannot tell yet)."""
        if self.teams is None or raw is None:
            return None
        names = list(raw.frame.columns)
        id_col, parent_col = _stored_name(names, "team_id"), _stored_name(names, "parent_team_id")
        if id_col is None or isinstance(raw.frame[id_col], pd.DataFrame):
            return None
        ids = _as_text(raw.frame[id_col])
        parents = (_as_text(raw.frame[parent_col]) if parent_col is not None
                   and not isinstance(raw.frame[parent_col], pd.DataFrame) else pd.Series([None] * len(ids)))
        return self.subtree(ids, parents, raw.file)

    def objective_ids(self, raw: _Raw | None) -> frozenset | None:
        """Ids of the kept objectives in the raw objectives table (None: keep every key result)."""
        if raw is None or (self.teams is None and self.quarter is None):
            return None
        names = list(raw.frame.columns)
        cols = {c: _stored_name(names, c) for c in ("objective_id", "team_id", "quarter")}
        if any(v is None or isinstance(raw.frame[v], pd.DataFrame) for v in cols.values()):
            return None
        ids = _as_text(raw.frame[cols["objective_id"]])
        keep = ids.notna()
        if self.quarter is not None:
            text = _as_text(raw.frame[cols["quarter"]])
            labels = {}
            for v in text.dropna().unique():
                try:
                    labels[v] = Quarter.parse(v, fiscal_year_start=self.fiscal_year_start).label
                except ValueError:
                    labels[v] = None
            keep &= text.map(labels).eq(self.quarter).fillna(False).astype(bool)
        return frozenset(ids[keep])

    def apply(self, typed: dict[str, pd.DataFrame], source: str) -> dict[str, pd.DataFrame]:
        """The typed tables restricted to the scope (row labels kept, so messages give source rows)."""
        out = dict(typed)

        def within(frame: pd.DataFrame) -> pd.Series:
            keep = pd.Series(True, index=frame.index)
            if self.start is not None:
                keep &= frame["date"] >= self.start
            if self.end is not None:
                keep &= frame["date"] <= self.end
            return keep

        sub = None
        if self.teams is not None and "teams" in typed:
            t = typed["teams"]
            sub = self.subtree(t["team_id"], t["parent_team_id"], source)
            out["teams"] = t[t["team_id"].isin(sub)]
        if "objectives" in out:
            o = out["objectives"]
            keep = pd.Series(True, index=o.index)
            if sub is not None:
                keep &= o["team_id"].isin(sub)
            if self.quarter is not None:
                keep &= o["quarter"] == self.quarter
            out["objectives"] = o[keep]
        if "key_results" in out and "objectives" in out and (self.teams is not None or self.quarter is not None):
            kr = out["key_results"]
            out["key_results"] = kr[kr["objective_id"].isin(set(out["objectives"]["objective_id"]))]
        if "checkins" in out:
            c = out["checkins"]
            keep = within(c)
            if "key_results" in out and (self.teams is not None or self.quarter is not None):
                keep &= c["kr_id"].isin(set(out["key_results"]["kr_id"]))
            out["checkins"] = c[keep]
        if "kpis" in out:
            k = out["kpis"]
            keep = within(k)
            if sub is not None:
                keep &= k["team_id"].isin(sub)
            out["kpis"] = k[keep]
        return out


_SCOPED_TABLES = ("objectives", "key_results", "checkins", "kpis")
