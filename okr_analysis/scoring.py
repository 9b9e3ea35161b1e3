"""OKR scoring: key-result scores, bands, in-quarter status and roll-ups.

Every function scores one quarter at one as-of date and returns a tidy
DataFrame with a fixed column order:

* :func:`score_key_results` — one row per key result;
* :func:`score_objectives` — one row per objective, with its aligned contributions;
* :func:`score_teams` — one row per team of the tree, with subtree roll-ups;
* :func:`score` — any of the three by ``level`` (what ``okr-analysis score`` calls).

The rules (formulas, bands, the status rule and the choices made where the
OKR literature leaves room) are written out in docs/methods/scoring.md.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import DataWarning
from .io.dataset import Dataset, check_dataset
from .io.quarters import Quarter
from .rules import (
    BAND_GREEN_FROM,
    BAND_RED_BELOW,
    EXPECTATION,
    PACE_AT_RISK,
    PACE_ON_TRACK,
    STATUSES,
)

__all__ = [
    "score",
    "score_key_results",
    "score_objectives",
    "score_teams",
    "score_band",
    "BAND_RED_BELOW",
    "BAND_GREEN_FROM",
    "PACE_ON_TRACK",
    "PACE_AT_RISK",
    "EXPECTATION",
    "STATUSES",
    "LEVELS",
    "KR_COLUMNS",
    "OBJECTIVE_COLUMNS",
    "TEAM_COLUMNS",
]

# The band thresholds, the pace of a status, the expectations and the statuses are rules the charts,
# report sections and docs quote too: they are defined once, in :mod:`okr_analysis.rules`.
#: Levels accepted by :func:`score`.
LEVELS = ("kr", "objective", "team")

# Computed ratios are compared with this tolerance, so that float rounding
# (0.7 computed as 0.69999999999) does not drop a score into a lower band.
_EPS = 1e-9
_MOVING = ("increase", "decrease")
_MAINTAIN = ("maintain_at_least", "maintain_at_most")
_RANK = {"off track": 0, "at risk": 1, "on track": 2}

#: Columns of :func:`score_key_results`, in order (its docstring describes each one).
KR_COLUMNS = [
    "quarter", "team_id", "objective_id", "objective_title", "objective_kind", "kr_id", "title",
    "direction", "unit", "metric", "weight", "baseline", "target", "current", "progress", "score",
    "band", "status", "expected", "pace", "n_checkins", "last_checkin_date", "confidence", "as_of",
]
#: Columns of :func:`score_objectives`, in order (its docstring describes each one).
OBJECTIVE_COLUMNS = [
    "quarter", "team_id", "objective_id", "objective_title", "objective_kind", "parent_objective_id",
    "n_krs", "n_scored", "score", "band", "met_expectation", "status",
    "n_on_track", "n_at_risk", "n_off_track", "n_no_data", "n_unmeasurable",
    "n_aligned", "aligned_score", "aligned_objective_ids", "expected", "as_of",
]
#: Columns of :func:`score_teams`, in order (its docstring describes each one).
TEAM_COLUMNS = [
    "quarter", "team_id", "team_name", "parent_team_id", "level", "depth", "is_leaf",
    "n_objectives", "score", "band",
    "rollup_n_teams", "rollup_n_objectives", "rollup_score", "rollup_band",
    "n_krs", "n_on_track", "n_at_risk", "n_off_track", "n_no_data", "n_unmeasurable",
    "expected", "as_of",
]
_STATUS_COUNT_COLUMNS = {s: "n_" + s.replace(" ", "_") for s in STATUSES}


# ----------------------------------------------------------------------------------
# Arguments
# ----------------------------------------------------------------------------------
def _resolve(ds: Any, quarter: Any, as_of: Any) -> tuple[Quarter, pd.Timestamp]:
    """Check the arguments (:meth:`Dataset.resolve`); return the quarter and the effective as-of date."""
    return check_dataset(ds).resolve(quarter, as_of)


def _quarter_checkins(ds: Dataset, q: Quarter, as_of: pd.Timestamp, kr_ids: pd.Series) -> pd.DataFrame:
    """Check-ins of the given KRs dated inside the quarter and on or before ``as_of``.

    Sorted by kr_id and date; check-ins of one KR on the same day keep their
    order in the source, so the last row of a day is the latest.
    """
    ci = ds.checkins
    keep = ci["kr_id"].isin(set(kr_ids)) & (ci["date"] >= q.start) & (ci["date"] <= as_of)
    ci = ci.loc[keep, ["kr_id", "date", "value", "confidence"]]
    ci = ci.assign(_row=np.arange(len(ci))).sort_values(["kr_id", "date", "_row"])
    return ci.drop(columns="_row").reset_index(drop=True)


def _unmeasurable(kr: pd.DataFrame) -> pd.Series:
    """KRs that cannot be scored: no target, or an increase/decrease KR with no baseline or target = baseline."""
    moving = kr["direction"].isin(_MOVING)
    return kr["target"].isna() | (moving & (kr["baseline"].isna() | (kr["target"] == kr["baseline"])))


def score_band(scores: Any) -> pd.Series:
    """Band of each score: ``red`` below 0.4, ``yellow`` from 0.4, ``green`` from 0.7; missing stays missing.

    Parameters
    ----------
    scores : array-like of float

    Returns
    -------
    pandas.Series of str
    """
    s = pd.Series(scores, dtype="float64") if not isinstance(scores, pd.Series) else scores.astype("float64")
    v = s.to_numpy()
    out = np.select(
        [v >= BAND_GREEN_FROM - _EPS, v >= BAND_RED_BELOW - _EPS, v < BAND_RED_BELOW - _EPS],
        ["green", "yellow", "red"],
        default=None,
    ).astype(object)
    return pd.Series(out, index=s.index, dtype="str")


# ----------------------------------------------------------------------------------
# Key results
# ----------------------------------------------------------------------------------
def _score_krs(ds: Dataset, q: Quarter, as_of: pd.Timestamp) -> pd.DataFrame:
    kr = ds.key_results_in(q).reset_index(drop=True)
    ci = _quarter_checkins(ds, q, as_of, kr["kr_id"])
    kr_ix = kr.set_index("kr_id")

    g = ci.groupby("kr_id", sort=False)
    last = ci.loc[g.cumcount(ascending=False) == 0].set_index("kr_id")
    n = g.size()

    # maintain KRs: share of check-ins meeting the line
    # (reindex rather than Series.map: map fails on an empty mapper of some dtypes in pandas 3)
    ci_dir = pd.Series(kr_ix["direction"].reindex(ci["kr_id"]).to_numpy(), index=ci.index, dtype="str")
    ci_target = kr_ix["target"].reindex(ci["kr_id"]).to_numpy(dtype="float64")
    meets = np.where(ci_dir == "maintain_at_least", ci["value"] >= ci_target, ci["value"] <= ci_target)
    share = pd.Series(meets.astype("float64"), index=ci.index)[ci_dir.isin(_MAINTAIN)].groupby(
        ci["kr_id"]).mean()

    out = kr.copy()
    out["n_checkins"] = n.reindex(out["kr_id"], fill_value=0).to_numpy(dtype="int64")
    latest = last.reindex(out["kr_id"])
    out["current"] = latest["value"].to_numpy(dtype="float64")
    out["confidence"] = latest["confidence"].to_numpy(dtype="float64")
    out["last_checkin_date"] = latest["date"].to_numpy(dtype="datetime64[ns]")

    d = out["direction"]
    moving, maintain, milestone = d.isin(_MOVING), d.isin(_MAINTAIN), d == "milestone"
    bad = _unmeasurable(out)
    span = (out["target"] - out["baseline"]).where(~bad)
    cur = out["current"]
    kr_share = pd.Series(share.reindex(out["kr_id"]).to_numpy(dtype="float64"), index=out.index)

    progress = pd.Series(np.nan, index=out.index)
    progress[moving] = ((cur - out["baseline"]) / span)[moving]
    progress[maintain] = kr_share[maintain]
    progress[milestone] = cur[milestone]
    progress[bad] = np.nan
    out["progress"] = progress
    out["score"] = progress.clip(0.0, 1.0)
    out["band"] = score_band(out["score"])

    expected = q.elapsed(as_of)
    paced = moving | milestone
    out["expected"] = expected
    out["pace"] = (progress / expected).where(paced)
    pace = out["pace"]
    latest_meets = np.where(d == "maintain_at_least", cur >= out["target"], cur <= out["target"])
    no_data = out["n_checkins"] == 0
    status = np.select(
        [
            bad,
            no_data,
            paced & ((progress >= 1 - _EPS) | (pace >= PACE_ON_TRACK - _EPS)),
            paced & (pace >= PACE_AT_RISK - _EPS),
            paced,
            maintain & latest_meets,
            maintain,
        ],
        ["unmeasurable", "no data", "on track", "at risk", "off track", "on track", "off track"],
        default="no data",
    )
    out["status"] = pd.Series(status.astype(object), index=out.index, dtype="str")
    out["as_of"] = pd.Series(as_of, index=out.index).astype("datetime64[ns]")
    if bad.any():
        ids = out.loc[bad, "kr_id"].tolist()
        shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
        warnings.warn(
            f"{len(ids)} key result(s) of {q.label} cannot be measured (no target, no baseline, or target equal "
            f"to baseline): {shown}; they are left unscored with status 'unmeasurable'. "
            "Run okr-analysis lint for details (KR_UNMEASURABLE).",
            DataWarning,
            stacklevel=3,
        )
    out = out.sort_values(["team_id", "objective_id", "kr_id"], kind="stable")
    return out[KR_COLUMNS].reset_index(drop=True)


def score_key_results(ds: Dataset, quarter: "str | Quarter", *, as_of: Any = None) -> pd.DataFrame:
    """Score every key result of a quarter at an as-of date.

    ``current`` is the latest check-in dated inside the quarter and on or before
    ``as_of`` (check-ins outside the quarter are ignored).

    * increase / decrease: ``progress = (current - baseline) / (target - baseline)``
      (unclipped: overshoot shows as > 1, going backwards as < 0);
      ``score = progress`` clipped to [0, 1].
    * maintain_at_least / maintain_at_most: ``score = progress`` = the share of the
      quarter's check-ins up to ``as_of`` with value >= target (resp. <= target).
    * milestone: ``progress = current`` (the fraction done, 1 = done);
      ``score`` = current clipped to [0, 1]. The target is not used.

    Parameters
    ----------
    ds : Dataset
    quarter : str or Quarter
        A quarter with objectives, e.g. ``'2026Q3'``.
    as_of : date-like, optional
        Default: the quarter's last day. A date after the quarter's end is
        treated as the end; a date before its start is an error.

    Returns
    -------
    pandas.DataFrame
        One row per key result, sorted by team_id, objective_id, kr_id, with columns:

        quarter : str
            Quarter label, e.g. ``'2026Q3'``.
        team_id, objective_id, objective_title, objective_kind : str
            The objective the KR belongs to (kind: committed / aspirational).
        kr_id, title, direction, unit, metric : str
            The KR as defined in ``key_results`` (unit and metric may be missing).
        weight : float
            The KR's weight in its objective's score.
        baseline, target : float
            As defined (baseline missing for maintain KRs and milestones).
        current : float
            Value of the latest check-in in the quarter up to ``as_of``; NaN when none.
        progress : float
            Unclipped progress (see above); NaN with no check-in or when unmeasurable.
        score : float
            Progress clipped to [0, 1]; NaN with no check-in or when unmeasurable.
        band : str
            ``red`` (< 0.4), ``yellow`` (< 0.7) or ``green``; missing when score is.
        status : str
            ``on track``, ``at risk``, ``off track``, ``no data`` (no check-in yet) or
            ``unmeasurable`` (no target, no baseline where needed, or target = baseline).
            Increase/decrease KRs and milestones: on track when ``pace >= 0.9`` or the
            target is reached (progress >= 1), at risk when ``0.7 <= pace < 0.9``, off track
            below. Maintain KRs: on track while the latest check-in meets the line, off
            track when it does not.
        expected : float
            Elapsed fraction of the quarter at the end of ``as_of`` (1.0 at the end).
        pace : float
            ``progress / expected`` for increase/decrease KRs and milestones; NaN otherwise.
        n_checkins : int
            Check-ins in the quarter up to ``as_of``.
        last_checkin_date : datetime64
            Date of the latest such check-in; NaT when none.
        confidence : float
            Confidence (0–10) given with the latest check-in; NaN when none.
        as_of : datetime64
            The effective as-of date.

    Raises
    ------
    ValueError
        When the quarter has no objectives (the message lists those that do) or
        ``as_of`` is not a date or falls before the quarter's start.

    Warns
    -----
    DataWarning
        When some key results cannot be measured.
    """
    q, ts = _resolve(ds, quarter, as_of)
    return _score_krs(ds, q, ts)


# ----------------------------------------------------------------------------------
# Objectives
# ----------------------------------------------------------------------------------
def _status_counts(krs: pd.DataFrame, by: str) -> pd.DataFrame:
    counts = krs.groupby([by, "status"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=list(STATUSES), fill_value=0)
    return counts.rename(columns=_STATUS_COUNT_COLUMNS).astype("int64")


def _score_objs(ds: Dataset, q: Quarter, as_of: pd.Timestamp, krs: pd.DataFrame) -> pd.DataFrame:
    obj = ds.objectives.loc[ds.objectives["quarter"] == q.label].rename(
        columns={"title": "objective_title", "kind": "objective_kind"}).reset_index(drop=True)
    k = krs.assign(
        _w=krs["weight"].where(krs["score"].notna()),
        _ws=krs["weight"] * krs["score"],
        _rank=krs["status"].map(_RANK),
    )
    g = k.groupby("objective_id", sort=False)
    agg = g.agg(n_krs=("kr_id", "size"), n_scored=("score", "count"), _w=("_w", "sum"), _ws=("_ws", "sum"),
                _rank=("_rank", "min"))
    agg["score"] = (agg["_ws"] / agg["_w"]).where(agg["_w"] > 0)

    out = obj.merge(agg, left_on="objective_id", right_index=True, how="left")
    out = out.merge(_status_counts(krs, "objective_id"), left_on="objective_id", right_index=True, how="left")
    for c in ["n_krs", "n_scored", *_STATUS_COUNT_COLUMNS.values()]:
        out[c] = out[c].fillna(0).astype("int64")
    out["score"] = out["score"].astype("float64")
    out["band"] = score_band(out["score"])
    need = out["objective_kind"].map(EXPECTATION).astype("float64")
    met = pd.Series(out["score"] >= need - _EPS, dtype="boolean")
    out["met_expectation"] = met.mask(out["score"].isna())
    inv = {v: s for s, v in _RANK.items()}
    out["status"] = pd.Series(out["_rank"].map(inv).fillna("no data").to_numpy(dtype=object), dtype="str")

    # contributions: this quarter's objectives aligned to each objective
    ch = out.loc[out["parent_objective_id"].notna(), ["objective_id", "parent_objective_id", "score"]]
    ch = ch.sort_values("objective_id")
    ga = ch.groupby("parent_objective_id", sort=False)
    aligned = pd.DataFrame({
        "n_aligned": ga.size(),
        "aligned_score": ga["score"].mean(),
        "aligned_objective_ids": ga["objective_id"].agg(", ".join),
    })
    out = out.merge(aligned, left_on="objective_id", right_index=True, how="left")
    out["n_aligned"] = out["n_aligned"].fillna(0).astype("int64")
    out["aligned_score"] = out["aligned_score"].astype("float64")
    out["aligned_objective_ids"] = out["aligned_objective_ids"].astype("str")
    out["expected"] = q.elapsed(as_of)
    out["as_of"] = pd.Series(as_of, index=out.index).astype("datetime64[ns]")
    out = out.sort_values(["team_id", "objective_id"], kind="stable")
    return out[OBJECTIVE_COLUMNS].reset_index(drop=True)


def score_objectives(ds: Dataset, quarter: "str | Quarter", *, as_of: Any = None) -> pd.DataFrame:
    """Score every objective of a quarter: weighted KR scores, expectation, weakest-KR status, contributions.

    Parameters
    ----------
    ds : Dataset
    quarter : str or Quarter
        A quarter with objectives.
    as_of : date-like, optional
        As in :func:`score_key_results`.

    Returns
    -------
    pandas.DataFrame
        One row per objective of the quarter, sorted by team_id, objective_id, with columns:

        quarter, team_id, objective_id, objective_title, objective_kind : str
            The objective (kind: committed / aspirational).
        parent_objective_id : str
            The objective it is aligned to; missing when none.
        n_krs : int
            Number of key results.
        n_scored : int
            Key results with a score (the others have no check-in yet or are unmeasurable).
        score : float
            Weighted mean of the scored KRs' scores, with the KR weights:
            ``sum(weight * score) / sum(weight)`` over scored KRs only. NaN when none is scored.
        band : str
            ``red`` / ``yellow`` / ``green`` of the score; missing when the score is.
        met_expectation : boolean
            ``score >= 1.0`` for committed objectives, ``>= 0.7`` for aspirational ones;
            missing (``<NA>``) when the score is.
        status : str
            The weakest status among the KRs that have one (off track < at risk < on track);
            ``no data`` when no KR has one (KRs with no data are left out, and counted).
        n_on_track, n_at_risk, n_off_track, n_no_data, n_unmeasurable : int
            Number of KRs by status.
        n_aligned : int
            Objectives of this quarter aligned to this one (``parent_objective_id`` = this id):
            its direct contributions.
        aligned_score : float
            Unweighted mean score of those aligned objectives (scored ones only); NaN when none.
        aligned_objective_ids : str
            Their ids, comma-separated; missing when none.
        expected : float
            Elapsed fraction of the quarter at ``as_of``.
        as_of : datetime64
            The effective as-of date.

    Raises
    ------
    ValueError
        As :func:`score_key_results`.
    """
    q, ts = _resolve(ds, quarter, as_of)
    return _score_objs(ds, q, ts, _score_krs(ds, q, ts))


# ----------------------------------------------------------------------------------
# Teams
# ----------------------------------------------------------------------------------
def _closure(tree: pd.DataFrame) -> pd.DataFrame:
    """Pairs (team_id, ancestor_id) for every team and each of its ancestors, itself included."""
    parent = dict(zip(tree["team_id"], tree["parent_team_id"]))
    teams, ancestors = [], []
    for tid in tree["team_id"]:
        node = tid
        while isinstance(node, str):
            teams.append(tid)
            ancestors.append(node)
            node = parent.get(node)
    return pd.DataFrame({"team_id": teams, "ancestor_id": ancestors}, dtype="str")


def _score_teams(ds: Dataset, q: Quarter, as_of: pd.Timestamp, krs: pd.DataFrame,
                 objs: pd.DataFrame) -> pd.DataFrame:
    tree = ds.team_tree
    closure = _closure(tree)
    out = tree[["team_id", "team_name", "parent_team_id", "depth", "is_leaf"]].copy()
    level = np.where(out["depth"] == 0, "company", np.where(out["is_leaf"], "team", "department"))
    out.insert(4, "level", pd.Series(level.astype(object), index=out.index, dtype="str"))

    own = objs.groupby("team_id").agg(n_objectives=("objective_id", "size"), score=("score", "mean"))
    sub_obj = objs[["team_id", "objective_id", "score"]].merge(closure, on="team_id")
    sub = sub_obj.groupby("ancestor_id").agg(rollup_n_objectives=("objective_id", "size"),
                                             rollup_score=("score", "mean"))
    sub = sub.reindex(pd.Index(tree["team_id"], name="ancestor_id"))
    sub["rollup_n_teams"] = closure.groupby("ancestor_id").size()
    sub_kr = krs[["team_id", "kr_id", "status"]].merge(closure, on="team_id")
    kr_counts = _status_counts(sub_kr, "ancestor_id")
    kr_counts.insert(0, "n_krs", kr_counts.sum(axis=1))

    out = out.merge(own, left_on="team_id", right_index=True, how="left")
    out = out.merge(sub, left_on="team_id", right_index=True, how="left")
    out = out.merge(kr_counts, left_on="team_id", right_index=True, how="left")
    ints = ["n_objectives", "rollup_n_teams", "rollup_n_objectives", "n_krs", *_STATUS_COUNT_COLUMNS.values()]
    for c in ints:
        out[c] = out[c].fillna(0).astype("int64")
    for c in ["score", "rollup_score"]:
        out[c] = out[c].astype("float64")
    out["band"] = score_band(out["score"])
    out["rollup_band"] = score_band(out["rollup_score"])
    out["quarter"] = q.label
    out["quarter"] = out["quarter"].astype("str")
    out["expected"] = q.elapsed(as_of)
    out["as_of"] = pd.Series(as_of, index=out.index).astype("datetime64[ns]")
    # tree order: parents before children, siblings by id
    order = {tid: i for i, tid in enumerate(_preorder(tree))}
    out = out.assign(_o=out["team_id"].map(order)).sort_values("_o", kind="stable")
    return out[TEAM_COLUMNS].reset_index(drop=True)


def _preorder(tree: pd.DataFrame) -> list[str]:
    kids: dict[Any, list[str]] = {}
    for tid, p in zip(tree["team_id"], tree["parent_team_id"]):
        kids.setdefault(p if isinstance(p, str) else None, []).append(tid)
    for v in kids.values():
        v.sort()
    out: list[str] = []
    stack = list(reversed(kids.get(None, [])))
    while stack:
        t = stack.pop()
        out.append(t)
        stack.extend(reversed(kids.get(t, [])))
    return out


def score_teams(ds: Dataset, quarter: "str | Quarter", *, as_of: Any = None) -> pd.DataFrame:
    """Score every team of the tree: its own objectives and the roll-up of its whole subtree.

    Parameters
    ----------
    ds : Dataset
    quarter : str or Quarter
        A quarter with objectives.
    as_of : date-like, optional
        As in :func:`score_key_results`.

    Returns
    -------
    pandas.DataFrame
        One row per team in the teams table (leaf teams, departments and the
        company), in tree order (a parent before its children, siblings by id), with columns:

        quarter : str
        team_id, team_name, parent_team_id : str
        level : str
            ``company`` (a root), ``team`` (a leaf) or ``department`` (any other team).
        depth : int
            0 for the company, 1 for departments, and so on.
        is_leaf : bool
        n_objectives : int
            Objectives the team itself owns in the quarter.
        score : float
            Team score: unweighted mean of the scores of its own objectives (scored
            ones only); NaN when it owns none or none is scored.
        band : str
            Band of ``score``.
        rollup_n_teams : int
            Teams in the subtree (the team and all its descendants).
        rollup_n_objectives : int
            Objectives owned by any team of the subtree, the team's own included.
        rollup_score : float
            Roll-up score: unweighted mean of the scores of all those objectives (every
            objective counts once, whichever level owns it); NaN when none is scored.
            For a leaf team it equals ``score``.
        rollup_band : str
            Band of ``rollup_score``.
        n_krs : int
            Key results of the subtree's objectives.
        n_on_track, n_at_risk, n_off_track, n_no_data, n_unmeasurable : int
            Those KRs by status. KRs with no data or unmeasurable are left out of the
            scores; these columns say how many there were.
        expected : float
            Elapsed fraction of the quarter at ``as_of``.
        as_of : datetime64
            The effective as-of date.

    Raises
    ------
    ValueError
        As :func:`score_key_results`.
    """
    q, ts = _resolve(ds, quarter, as_of)
    krs = _score_krs(ds, q, ts)
    return _score_teams(ds, q, ts, krs, _score_objs(ds, q, ts, krs))


def score(ds: Dataset, quarter: "str | Quarter", *, as_of: Any = None, level: str = "kr") -> pd.DataFrame:
    """Scores at one level: ``'kr'`` (:func:`score_key_results`), ``'objective'``
    (:func:`score_objectives`) or ``'team'`` (:func:`score_teams`).

    This is what ``okr-analysis score SOURCE --quarter Q [--as-of DATE] [--level ...]`` calls.

    Raises
    ------
    ValueError
        For an unknown level, and as :func:`score_key_results`.
    """
    funcs = {"kr": score_key_results, "objective": score_objectives, "team": score_teams}
    if level not in funcs:
        raise ValueError(f"level must be one of {', '.join(repr(v) for v in LEVELS)}, got {level!r}.")
    return funcs[level](ds, quarter, as_of=as_of)
