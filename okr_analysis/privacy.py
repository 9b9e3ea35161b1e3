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
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from .io.dataset import Dataset

__all__ = [
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


def _hide(frame: pd.DataFrame, mask: pd.Series, columns: Iterable[str], label: str) -> None:
    for col in columns:
        if col in frame.columns and mask.any():
            frame[col] = frame[col].astype(object)
            frame.loc[mask, col] = label


def suppress_kpis(frame: pd.DataFrame, ds: Dataset, *, min_group_size: int = 5,
                  keep: Iterable[str] = ("team_id", "metric", "window_start", "window_end")) -> pd.DataFrame:
    """KPI rows (``team_id``, ``metric``, values …) with people metrics of small teams suppressed.

    Every column not in ``keep`` of a suppressed row reads the suppressed label; a ``suppressed``
    bool column is added (last).
    """
    label = suppressed_label(_check_size(min_group_size))
    out = frame.copy()
    mask = out["team_id"].isin(small_teams(ds, min_group_size=min_group_size)) & out["metric"].isin(people_metrics(ds))
    _hide(out, mask, [c for c in out.columns if c not in set(keep)], label)
    out["suppressed"] = mask.to_numpy()
    return out


_KR_VALUES = ("current", "progress", "score", "band", "status", "expected", "pace", "n_checkins",
              "last_checkin_date", "confidence")
_OBJ_VALUES = ("score", "band", "met_expectation", "status", "n_no_data", "n_on_track", "n_at_risk",
               "n_off_track", "n_unmeasurable")
_TEAM_VALUES = ("score", "band", "rollup_score", "rollup_band", "n_on_track", "n_at_risk", "n_off_track",
                "n_no_data", "n_unmeasurable")


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


def suppress_scores(table: pd.DataFrame, ds: Dataset, *, level: str, kr_scores: pd.DataFrame,
                    min_group_size: int = 5) -> pd.DataFrame:
    """Scores (``level`` kr, objective or team) with what would reveal a small team's people metrics suppressed.

    Key results on people metrics of small teams (and of complementary teams) read the label;
    an objective with such a key result and a team with one lose their scores, bands, statuses
    and counts; a roll-up that could be differenced to a suppressed team is suppressed too
    (:func:`complementary_suppression`). A ``suppressed`` bool column is added (last).
    """
    label = suppressed_label(_check_size(min_group_size))
    hidden_kr, teams = score_suppression(ds, kr_scores, min_group_size=min_group_size)
    out = table.copy()
    if level == "kr":
        mask = out["kr_id"].isin(set(kr_scores.loc[hidden_kr, "kr_id"]))
        _hide(out, mask, _KR_VALUES, label)
    elif level == "objective":
        hidden_objs = set(kr_scores.loc[hidden_kr, "objective_id"])
        mask = out["objective_id"].isin(hidden_objs)
        _hide(out, mask, _OBJ_VALUES, label)
        # a parent's aligned score averages its aligned children: it would give a hidden child away
        obj = ds.objectives
        parents = set(obj.loc[obj["objective_id"].isin(hidden_objs), "parent_objective_id"].dropna())
        if "aligned_score" in out.columns:
            _hide(out, out["objective_id"].isin(parents), ("aligned_score",), label)
    elif level == "team":
        hidden_teams = set(kr_scores.loc[hidden_kr, "team_id"]) | set(teams.loc[teams["suppressed"], "team_id"])
        mask = out["team_id"].isin(hidden_teams)
        _hide(out, mask, _TEAM_VALUES, label)
    else:
        raise ValueError(f"level must be 'kr', 'objective' or 'team', got {level!r}.")
    out["suppressed"] = mask.to_numpy()
    return out


def suppress_forecasts(table: pd.DataFrame, ds: Dataset, *, kr_scores: pd.DataFrame,
                       min_group_size: int = 5) -> pd.DataFrame:
    """KR forecasts with hidden key results' values (current, forecast, intervals, p_hit …) suppressed."""
    label = suppressed_label(_check_size(min_group_size))
    hidden_kr, _ = score_suppression(ds, kr_scores, min_group_size=min_group_size)
    out = table.copy()
    mask = out["kr_id"].isin(set(kr_scores.loc[hidden_kr, "kr_id"]))
    keep = {"quarter", "team_id", "objective_id", "kr_id", "title", "direction", "metric", "unit", "baseline",
            "target", "expectation", "as_of", "forecast_date", "horizon"}
    _hide(out, mask, [c for c in out.columns if c not in keep], label)
    out["suppressed"] = mask.to_numpy()
    return out


def suppress_drivers(table: pd.DataFrame, ds: Dataset, *, min_group_size: int = 5) -> pd.DataFrame:
    """Driver rows: a small team's own rows on a people metric are suppressed; pooled rows (``*``) stay."""
    label = suppressed_label(_check_size(min_group_size))
    out = table.copy()
    people = people_metrics(ds)
    mask = (out["team_id"].isin(small_teams(ds, min_group_size=min_group_size))
            & (out["leading"].isin(people) | out["lagging"].isin(people)))
    keep = {"leading", "lagging", "team_id", "freq"}
    _hide(out, mask, [c for c in out.columns if c not in keep], label)
    out["suppressed"] = mask.to_numpy()
    return out


#: Lint findings whose messages quote a key result's check-in dates or confidence values.
_LINT_KR_DETAILS = ("KR_STALE", "CONFIDENCE_DROP")


def suppress_lint(findings: pd.DataFrame, ds: Dataset, *, kr_scores: pd.DataFrame,
                  min_group_size: int = 5) -> pd.DataFrame:
    """Hygiene findings (:func:`okr_analysis.lint`) without what they would tell about hidden key results.

    A hidden key result (:func:`score_suppression`) has its last check-in date and its confidence
    suppressed in score tables, so its findings must not quote them: ``KR_STALE`` keeps the finding
    (check in more often) with the dates left out, and ``CONFIDENCE_DROP`` is dropped (that a
    confidence fell is itself the hidden value). Other findings are about the OKRs' form and stay.
    A ``suppressed`` bool column is added (last).
    """
    label = suppressed_label(_check_size(min_group_size))
    out = findings.copy()
    out["suppressed"] = False
    if out.empty or kr_scores.empty:
        return out
    hidden_kr, _ = score_suppression(ds, kr_scores, min_group_size=min_group_size)
    hidden_ids = set(kr_scores.loc[hidden_kr, "kr_id"])
    out = out.loc[~(out["kr_id"].isin(hidden_ids) & (out["code"] == "CONFIDENCE_DROP")).to_numpy()].copy()
    stale = (out["kr_id"].isin(hidden_ids) & (out["code"] == "KR_STALE")).to_numpy()
    out.loc[stale, "message"] = [
        f"Key result {kr} (team {team}) has no check-in in the 14 days up to the as-of date; check in at least "
        f"every 14 days so that its status is current (dates not shown: {label})."
        for kr, team in zip(out.loc[stale, "kr_id"], out.loc[stale, "team_id"])]
    out.loc[stale, "suppressed"] = True
    return out.reset_index(drop=True)
