"""The minimum group size: people metrics of small groups never reach a report or a CSV.

Rules (see docs/guide/privacy.md):

* A *people metric* is a metric marked ``people_metric`` in the catalogue (engagement, turnover,
  absenteeism, overtime …). A team is *small* when its headcount is below ``min_group_size``
  (default 5); a team without a headcount is not treated as small.
* Primary suppression: every value of a people metric of a small team (a KPI row, a key result on
  a people metric, and any score computed from such a key result) reads
  ``"suppressed (fewer than N people)"``.
* Complementary suppression: a parent's roll-up must not let a reader subtract the shown children
  to get a suppressed one. Within each parent whose roll-up is shown, the suppressed children must
  be at least two teams with at least ``min_group_size`` people together; otherwise the next-smallest
  *eligible* sibling (by headcount, then id) is suppressed too. When no sibling is left, the parent's
  own roll-up is suppressed, and the rule repeats one level up until nothing changes.
* Pooled estimates (drivers, benchmarks, peer percentiles) keep small teams' data; only the small
  team's own rows are suppressed.

Every table that leaves the library for a person (the CLI's tables and CSVs, the report sections, the
index page, ``backtest --out``) passes through one call, :func:`gate`, with the kind of table it is
(:data:`GATE_KINDS`); the ``suppress_*`` functions are :func:`gate` for one kind each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from .io.dataset import Dataset
from .rules import LINT_DEFAULTS

__all__ = [
    "GATE_KINDS",
    "Hidden",
    "gate",
    "hidden_values",
    "suppressed_label",
    "people_metrics",
    "small_teams",
    "complementary_suppression",
    "suppress_kpis",
    "score_suppression",
    "suppress_scores",
    "suppress_forecasts",
    "suppress_drivers",
    "suppress_lint",
]


def suppressed_label(min_group_size: int) -> str:
    """What a suppressed cell reads: the rule, not the group's size (a team suppressed as the complement
    of a smaller one has enough people itself)."""
    return f"suppressed (minimum group size {min_group_size})"


def _check_size(min_group_size: int) -> int:
    if isinstance(min_group_size, bool) or not isinstance(min_group_size, (int, np.integer)) or min_group_size < 1:
        raise ValueError(f"min_group_size must be a whole number of people, 1 or more, got {min_group_size!r}.")
    return int(min_group_size)


def people_metrics(ds: Dataset) -> set[str]:
    """Metrics marked ``people_metric`` in the catalogue."""
    return set(ds.metrics.loc[ds.metrics["people_metric"].astype(bool), "metric"])


def small_teams(ds: Dataset, *, min_group_size: int = 5) -> set[str]:
    """Teams whose headcount is below ``min_group_size``."""
    n = _check_size(min_group_size)
    t = ds.teams
    return set(t.loc[t["headcount"].astype("Float64").fillna(np.inf) < n, "team_id"])


def complementary_suppression(tree: pd.DataFrame, primary: Iterable[str], *, min_group_size: int = 5,
                              eligible: Iterable[str] | None = None) -> pd.DataFrame:
    """Which teams' values (and roll-ups) to suppress so that no suppressed team can be worked out.

    Parameters
    ----------
    tree : DataFrame
        ``team_id``, ``parent_team_id``, ``headcount`` (e.g. ``ds.team_tree``).
    primary : iterable of str
        Teams suppressed in their own right (small teams with people-metric values).
    min_group_size : int
        The minimum group size.
    eligible : iterable of str, optional
        Teams that may be suppressed as complements (those with a people-metric value to hide);
        default every team.

    Returns
    -------
    DataFrame
        One row per team: team_id, parent_team_id, headcount, suppressed (bool), reason
        (``"small group"``, ``"complementary"``, ``"parent of suppressed"`` or ``""``).
    """
    n = _check_size(min_group_size)
    t = tree[["team_id", "parent_team_id", "headcount"]].copy()
    t["headcount"] = t["headcount"].astype("Float64").fillna(np.inf).astype(float)
    reason = {tid: "" for tid in t["team_id"]}
    for tid in primary:
        if tid in reason:
            reason[tid] = "small group"
    ok = set(t["team_id"]) if eligible is None else set(eligible)
    hc = t.set_index("team_id")["headcount"]
    children = {p: g.sort_values(["headcount", "team_id"])["team_id"].tolist()
                for p, g in t.dropna(subset=["parent_team_id"]).groupby("parent_team_id")}
    changed = True
    while changed:
        changed = False
        for parent, kids in children.items():
            if parent not in reason or reason[parent]:
                continue  # the parent's roll-up is not shown: nothing to subtract from
            hidden = [k for k in kids if reason[k]]
            if not hidden:
                continue
            if len(hidden) >= 2 and hc[hidden].sum() >= n:
                continue
            spare = [k for k in kids if not reason[k] and k in ok]
            if spare:
                reason[spare[0]] = "complementary"
            else:
                reason[parent] = "parent of suppressed"
            changed = True
    t["headcount"] = tree["headcount"].values
    t["reason"] = t["team_id"].map(reason)
    t["suppressed"] = t["reason"] != ""
    return t[["team_id", "parent_team_id", "headcount", "suppressed", "reason"]].reset_index(drop=True)


def _hide(frame: pd.DataFrame, mask: pd.Series, columns: Iterable[str], label: str,
          blank: Iterable[str] = ()) -> None:
    blank = set(blank)
    for col in columns:
        if col in frame.columns and mask.any():
            frame[col] = frame[col].astype(object)
            frame.loc[mask, col] = None if col in blank else label


_KR_VALUES = ("current", "progress", "score", "band", "status", "expected", "pace", "n_checkins",
              "last_checkin_date", "confidence", "p_hit")
_OBJ_VALUES = ("score", "band", "met_expectation", "status", "n_no_data", "n_on_track", "n_at_risk",
               "n_off_track", "n_unmeasurable")
_TEAM_VALUES = ("score", "band", "rollup_score", "rollup_band", "n_on_track", "n_at_risk", "n_off_track",
                "n_no_data", "n_unmeasurable")
_KPI_KEYS = ("team_id", "metric", "window_start", "window_end")
_FORECAST_KEYS = ("quarter", "team_id", "objective_id", "kr_id", "title", "direction", "metric", "unit", "baseline",
                  "target", "expectation", "as_of", "forecast_date", "horizon")
_DRIVER_KEYS = ("leading", "lagging", "team_id", "freq")
_IMPACT_KEYS = ("initiative_id", "team_id", "metric", "start")
#: Lint findings whose messages quote a key result's check-in dates or confidence values.
_LINT_KR_DETAILS = ("KR_STALE", "CONFIDENCE_DROP")

#: The kinds of table :func:`gate` knows: kind -> what it hides. A table of a kind must have the columns
#: its rows are matched on (``kr_id``, ``objective_id``, ``team_id``, ``metric``, ``leading``/``lagging``, ``code``).
GATE_KINDS: Mapping[str, str] = {
    "kr_scores": "rows of a hidden key result (score_key_results, or any table with kr_id): its current value, "
                 "progress, score, band, status, pace, check-in count and date, confidence and p_hit",
    "objective_scores": "objectives with a hidden key result: score, band, met_expectation, status, status "
                        "counts; and the aligned_score of their parent objectives",
    "team_scores": "teams with a hidden key result or hidden as a complement: scores, bands, roll-ups and "
                   "status counts",
    "kpis": "KPI rows (monitor, kpi_trends, benchmark …): every value of a people metric of a small team, or of "
            "a team whose key results suppression hides",
    "impact": "initiative rows (initiative_impact): every estimate on a people metric of a small team (or of a "
              "team whose key results suppression hides); id, team, metric and start stay",
    "candidates": "candidate key results: rows of a people metric of a small team are left out",
    "peers": "peer comparisons (benchmark rows drawn beside other teams): rows of a people metric of a small "
             "team are left out",
    "forecasts": "KR forecasts: every value of a hidden key result (current, forecast, intervals, p_hit …)",
    "backtest": "backtest predictions: as forecasts, each quarter with its own key-result scores",
    "drivers": "driver rows: a small team's own rows on a people metric (pooled rows stay)",
    "lint": "hygiene findings: KR_STALE of a hidden key result without its dates, CONFIDENCE_DROP of one left out",
}


@dataclass(frozen=True)
class Hidden:
    """What suppression hides in one organisation and quarter (:func:`hidden_values`).

    Attributes
    ----------
    min_group_size : int
    small_teams : frozenset of str
        Teams below the minimum group size.
    people_metrics : frozenset of str
        Metrics marked ``people_metric``.
    krs : frozenset of str
        Hidden key results (people metrics of small or complementary teams).
    objectives : frozenset of str
        Objectives with a hidden key result.
    aligned_parents : frozenset of str
        Parent objectives of those (their aligned score would give a child away).
    teams : frozenset of str
        Teams whose scores and roll-ups are hidden.
    """

    min_group_size: int
    small_teams: frozenset = frozenset()
    people_metrics: frozenset = frozenset()
    krs: frozenset = frozenset()
    objectives: frozenset = frozenset()
    aligned_parents: frozenset = frozenset()
    teams: frozenset = frozenset()

    @property
    def label(self) -> str:
        """What a suppressed cell reads (:func:`suppressed_label`)."""
        return suppressed_label(self.min_group_size)


def _objectives_of(ds: Dataset, krs: Iterable[str]) -> tuple[frozenset, frozenset]:
    kr = ds.key_results
    objs = set(kr.loc[kr["kr_id"].isin(set(krs)), "objective_id"].dropna())
    obj = ds.objectives
    parents = set(obj.loc[obj["objective_id"].isin(objs), "parent_objective_id"].dropna())
    return frozenset(objs), frozenset(parents)


def hidden_values(ds: Dataset, *, kr_scores: pd.DataFrame | None = None, min_group_size: int = 5,
                  hidden_krs: Iterable[str] | None = None, hidden_teams: Iterable[str] | None = None) -> Hidden:
    """What suppression hides: from a quarter's key-result scores, or from suppression already computed.

    Parameters
    ----------
    ds : Dataset
    kr_scores : DataFrame, optional
        :func:`okr_analysis.score_key_results` of the quarter (the whole organisation's, for complementary
        suppression). Without it (and without ``hidden_krs``) no key result is hidden: enough for KPI and
        driver tables.
    min_group_size : int, default 5
    hidden_krs, hidden_teams : iterable of str, optional
        Hidden key results and teams computed before (a report batch's ``kr_suppression`` and
        ``team_suppression`` tables); used instead of ``kr_scores``.

    Returns
    -------
    Hidden
    """
    n = _check_size(min_group_size)
    krs: set[str] = set()
    teams: set[str] = set()
    if hidden_krs is not None or hidden_teams is not None:
        krs = set(() if hidden_krs is None else hidden_krs)
        teams = set(() if hidden_teams is None else hidden_teams)
    elif kr_scores is not None and not kr_scores.empty:
        hidden_kr, supp = score_suppression(ds, kr_scores, min_group_size=n)
        krs = set(kr_scores.loc[hidden_kr, "kr_id"])
        teams = set(kr_scores.loc[hidden_kr, "team_id"]) | set(supp.loc[supp["suppressed"], "team_id"])
    objs, parents = _objectives_of(ds, krs)
    return Hidden(min_group_size=n, small_teams=frozenset(small_teams(ds, min_group_size=n)),
                  people_metrics=frozenset(people_metrics(ds)), krs=frozenset(krs), objectives=objs,
                  aligned_parents=parents, teams=frozenset(teams))


def _need(table: pd.DataFrame, kind: str, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"gate(kind={kind!r}): the table lacks column(s) {', '.join(missing)}; pass a table "
                         f"of that kind, or choose the kind that matches it (one of {', '.join(GATE_KINDS)}).")


def _kr_mask(out: pd.DataFrame, h: Hidden) -> pd.Series:
    return out["kr_id"].isin(h.krs)


def _people_of_small(out: pd.DataFrame, h: Hidden) -> pd.Series:
    """People-metric rows of teams below the minimum size, and of teams whose key results suppression hides
    (a complement team's KPI would otherwise show its hidden key result's current value)."""
    return out["team_id"].isin(h.small_teams | h.teams) & out["metric"].isin(h.people_metrics)


def _gate_lint(out: pd.DataFrame, h: Hidden) -> pd.DataFrame:
    out["suppressed"] = False
    if out.empty or not h.krs:
        return out
    out = out.loc[~(out["kr_id"].isin(h.krs) & (out["code"] == "CONFIDENCE_DROP")).to_numpy()].copy()
    stale = (out["kr_id"].isin(h.krs) & (out["code"] == "KR_STALE")).to_numpy()
    days = LINT_DEFAULTS["stale_days"]
    out.loc[stale, "message"] = [
        f"Key result {kr} (team {team}) has no check-in in the {days} days up to the as-of date; check in at least "
        f"every {days} days so that its status is current (dates not shown: {h.label})."
        for kr, team in zip(out.loc[stale, "kr_id"], out.loc[stale, "team_id"])]
    out.loc[stale, "suppressed"] = True
    return out.reset_index(drop=True)


def gate(table: pd.DataFrame, ds: Dataset, *, kind: str, min_group_size: int = 5,
         kr_scores: pd.DataFrame | None = None, hidden: Hidden | None = None,
         blank: Iterable[str] = ()) -> pd.DataFrame:
    """The privacy gate: ``table`` as it may be shown to a person, for its kind of table.

    Applies the minimum group size and complementary suppression (the module's rules) the way
    :data:`GATE_KINDS` says for ``kind``: hidden cells read :func:`suppressed_label`, rows that would
    give a hidden value away by being there are left out, and free text that quotes a hidden value
    (the lint ``message``) is rewritten without it. Every command of the CLI, every report section and
    the index page call it; nothing else hides values.

    Parameters
    ----------
    table : DataFrame
        The table as an analysis returned it (or a view of it with the columns its rows are matched on).
    ds : Dataset
        The dataset the table was computed from (teams, headcounts, the metric catalogue).
    kind : str
        One of :data:`GATE_KINDS`.
    min_group_size : int, default 5
        Ignored when ``hidden`` is given (it carries its own).
    kr_scores : DataFrame, optional
        The quarter's key-result scores (:func:`okr_analysis.score_key_results`), needed by the kinds
        that hide key results (``kr_scores``, ``objective_scores``, ``team_scores``, ``forecasts``,
        ``lint``). For ``backtest``: the scores of every quarter in the predictions, concatenated
        (each quarter is suppressed with its own scores).
    hidden : Hidden, optional
        What is hidden, computed before (:func:`hidden_values`); a report batch builds it from its shared
        suppression tables. Used instead of ``kr_scores``.
    blank : iterable of str
        Columns whose hidden cells are left empty instead of reading the label (a display that shows an
        empty cell and says once why).

    Returns
    -------
    DataFrame
        ``table``'s columns, hidden cells replaced, with a ``suppressed`` bool column last (True on rows
        with a hidden value). ``candidates``, ``peers`` and ``lint`` may have fewer rows.
    """
    if kind not in GATE_KINDS:
        raise ValueError(f"kind must be one of {', '.join(GATE_KINDS)}, got {kind!r}.")
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame, got {type(table).__name__}.")
    if kind == "backtest":
        return _gate_backtest(table, ds, min_group_size=min_group_size, kr_scores=kr_scores, blank=blank)
    if hidden is None:
        hidden = hidden_values(ds, kr_scores=kr_scores, min_group_size=min_group_size)
    h = hidden
    out = table.copy()
    if kind == "kr_scores":
        _need(out, kind, ["kr_id"])
        mask = _kr_mask(out, h)
        _hide(out, mask, _KR_VALUES, h.label, blank)
    elif kind == "objective_scores":
        _need(out, kind, ["objective_id"])
        mask = out["objective_id"].isin(h.objectives)
        _hide(out, mask, _OBJ_VALUES, h.label, blank)
        if "aligned_score" in out.columns:
            _hide(out, out["objective_id"].isin(h.aligned_parents), ("aligned_score",), h.label, blank)
    elif kind == "team_scores":
        _need(out, kind, ["team_id"])
        mask = out["team_id"].isin(h.teams)
        _hide(out, mask, _TEAM_VALUES, h.label, blank)
    elif kind == "kpis":
        _need(out, kind, ["team_id", "metric"])
        mask = _people_of_small(out, h)
        _hide(out, mask, [c for c in out.columns if c not in _KPI_KEYS], h.label, blank)
    elif kind == "impact":
        _need(out, kind, ["team_id", "metric"])
        mask = _people_of_small(out, h)
        _hide(out, mask, [c for c in out.columns if c not in _IMPACT_KEYS], h.label, blank)
    elif kind in ("candidates", "peers"):
        _need(out, kind, ["team_id", "metric"])
        out = out.loc[~_people_of_small(out, h).to_numpy()].copy()
        mask = pd.Series(False, index=out.index)
    elif kind == "forecasts":
        _need(out, kind, ["kr_id"])
        mask = _kr_mask(out, h)
        _hide(out, mask, [c for c in out.columns if c not in _FORECAST_KEYS], h.label, blank)
    elif kind == "drivers":
        _need(out, kind, ["team_id", "leading", "lagging"])
        mask = (out["team_id"].isin(h.small_teams)
                & (out["leading"].isin(h.people_metrics) | out["lagging"].isin(h.people_metrics)))
        _hide(out, mask, [c for c in out.columns if c not in _DRIVER_KEYS], h.label, blank)
    else:  # lint
        _need(out, kind, ["code", "kr_id", "team_id", "message"])
        return _gate_lint(out, h)
    out["suppressed"] = mask.to_numpy()
    return out


def _gate_backtest(table: pd.DataFrame, ds: Dataset, *, min_group_size: int, kr_scores: pd.DataFrame | None,
                   blank: Iterable[str]) -> pd.DataFrame:
    _need(table, "backtest", ["quarter", "kr_id"])
    if kr_scores is None:
        raise ValueError("gate(kind='backtest') needs kr_scores: the key-result scores of every quarter in the "
                         "predictions, concatenated (score_key_results(ds, q) for each quarter).")
    if table.empty:
        out = table.copy()
        out["suppressed"] = pd.Series(dtype=bool)
        return out
    parts = [gate(part, ds, kind="forecasts", min_group_size=min_group_size,
                  kr_scores=kr_scores[kr_scores["quarter"] == q], blank=blank)
             for q, part in table.groupby("quarter", sort=False)]
    return pd.concat(parts).loc[table.index]


# ---- one kind each (kept for scripts that call them; the same rules as gate) ---------------------------
def suppress_kpis(frame: pd.DataFrame, ds: Dataset, *, min_group_size: int = 5,
                  keep: Iterable[str] = _KPI_KEYS) -> pd.DataFrame:
    """KPI rows (``team_id``, ``metric``, values …) with people metrics of small teams suppressed.

    Every column not in ``keep`` of a suppressed row reads the suppressed label; a ``suppressed``
    bool column is added (last). ``gate(frame, ds, kind="kpis")`` with the default ``keep``.
    """
    keep = tuple(keep)
    if keep == _KPI_KEYS:
        return gate(frame, ds, kind="kpis", min_group_size=min_group_size)
    h = hidden_values(ds, min_group_size=min_group_size)
    out = frame.copy()
    mask = _people_of_small(out, h)
    _hide(out, mask, [c for c in out.columns if c not in set(keep)], h.label)
    out["suppressed"] = mask.to_numpy()
    return out


def score_suppression(ds: Dataset, kr_scores: pd.DataFrame, *, min_group_size: int = 5) -> tuple[pd.Series, pd.DataFrame]:
    """Hidden key results (bool Series on ``kr_scores``' index) and the team suppression table.

    A key result is hidden when it is on a people metric of a small team, or of a team suppressed as
    a complement. The team table is :func:`complementary_suppression` with the teams that have a
    hidden key result as primary and the teams with people-metric key results as eligible.
    """
    small = small_teams(ds, min_group_size=min_group_size)
    people = kr_scores["metric"].isin(people_metrics(ds))
    primary = set(kr_scores.loc[people & kr_scores["team_id"].isin(small), "team_id"])
    eligible = set(kr_scores.loc[people, "team_id"])
    teams = complementary_suppression(ds.team_tree, primary, min_group_size=min_group_size, eligible=eligible)
    hidden_teams = set(teams.loc[teams["suppressed"], "team_id"])
    return people & kr_scores["team_id"].isin(hidden_teams), teams


_LEVEL_KIND = {"kr": "kr_scores", "objective": "objective_scores", "team": "team_scores"}


def suppress_scores(table: pd.DataFrame, ds: Dataset, *, level: str, kr_scores: pd.DataFrame,
                    min_group_size: int = 5) -> pd.DataFrame:
    """Scores (``level`` kr, objective or team) with what would reveal a small team's people metrics suppressed.

    Key results on people metrics of small teams (and of complementary teams) read the label;
    an objective with such a key result and a team with one lose their scores, bands, statuses
    and counts; a roll-up that could be differenced to a suppressed team is suppressed too
    (:func:`complementary_suppression`). A ``suppressed`` bool column is added (last).
    ``gate(table, ds, kind=f"{level}_scores", kr_scores=kr_scores)``.
    """
    if level not in _LEVEL_KIND:
        raise ValueError(f"level must be 'kr', 'objective' or 'team', got {level!r}.")
    return gate(table, ds, kind=_LEVEL_KIND[level], kr_scores=kr_scores, min_group_size=min_group_size)


def suppress_forecasts(table: pd.DataFrame, ds: Dataset, *, kr_scores: pd.DataFrame,
                       min_group_size: int = 5) -> pd.DataFrame:
    """KR forecasts with hidden key results' values (current, forecast, intervals, p_hit …) suppressed
    (``gate(table, ds, kind="forecasts", kr_scores=kr_scores)``)."""
    return gate(table, ds, kind="forecasts", kr_scores=kr_scores, min_group_size=min_group_size)


def suppress_drivers(table: pd.DataFrame, ds: Dataset, *, min_group_size: int = 5) -> pd.DataFrame:
    """Driver rows: a small team's own rows on a people metric are suppressed; pooled rows (``*``) stay
    (``gate(table, ds, kind="drivers")``)."""
    return gate(table, ds, kind="drivers", min_group_size=min_group_size)


def suppress_lint(findings: pd.DataFrame, ds: Dataset, *, kr_scores: pd.DataFrame,
                  min_group_size: int = 5) -> pd.DataFrame:
    """Hygiene findings (:func:`okr_analysis.lint`) without what they would tell about hidden key results.

    A hidden key result (:func:`score_suppression`) has its last check-in date and its confidence
    suppressed in score tables, so its findings must not quote them: ``KR_STALE`` keeps the finding
    (check in more often) with the dates left out, and ``CONFIDENCE_DROP`` is dropped (that a
    confidence fell is itself the hidden value). Other findings are about the OKRs' form and stay.
    A ``suppressed`` bool column is added (last). ``gate(findings, ds, kind="lint", kr_scores=kr_scores)``.
    """
    return gate(findings, ds, kind="lint", kr_scores=kr_scores, min_group_size=min_group_size)
