"""OKR hygiene: established OKR advice as lint findings, each with a stable code.

:func:`lint` checks one quarter at one as-of date and returns one row per
finding. The codes (see :data:`LINT_CODES` and the documentation, docs/methods/hygiene.md) are stable:
reports and scripts may filter on them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .io.dataset import Dataset
from .io.quarters import Quarter
from .rules import LINT_DEFAULTS
from .scoring import _quarter_checkins, _resolve, _unmeasurable

__all__ = ["lint", "LINT_CODES", "LINT_COLUMNS"]

_D = LINT_DEFAULTS
#: code -> (severity, what it checks). Findings come out in this order. The thresholds quoted are
#: :func:`lint`'s defaults (:data:`okr_analysis.rules.LINT_DEFAULTS`).
LINT_CODES: dict[str, tuple[str, str]] = {
    "TEAM_OBJECTIVE_COUNT": ("warning", f"a team has fewer than {_D['min_objectives']:g} or more than "
                                        f"{_D['max_objectives']:g} objectives in the quarter "
                                        "(no objectives: info for a company or department, warning for a team)"),
    "OBJECTIVE_KR_COUNT": ("warning", f"an objective has fewer than {_D['min_krs']:g} or more than "
                                      f"{_D['max_krs']:g} key results"),
    "KR_UNMEASURABLE": ("warning", "a key result cannot be measured: no target, no baseline where one is "
                                   "needed (increase/decrease), or target equal to baseline"),
    "KR_STALE": ("warning", f"a key result has no check-in in the {_D['stale_days']:g} days up to the as-of date"),
    "OBJECTIVE_NOT_ALIGNED": ("info", "an objective is not aligned to any parent objective while its parent "
                                      "team has objectives that quarter"),
    "OBJECTIVE_ONLY_MILESTONES": ("info", "all key results of an objective are milestones (outputs, not outcomes)"),
    "TEAM_TOO_MANY_KPIS": ("info", f"a team tracks more than {_D['max_kpis']:g} KPIs"),
    "CONFIDENCE_DROP": ("warning", f"confidence in a key result fell by {_D['confidence_drop']:g} or more points "
                                   "between consecutive check-ins"),
}
#: Columns of :func:`lint`, in order (its docstring describes each one).
LINT_COLUMNS = ["code", "severity", "quarter", "team_id", "objective_id", "kr_id", "message"]
_EPS = 1e-9


def _check_count(name: str, value: Any, *, minimum: float = 0) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not value >= minimum:
        raise ValueError(f"{name} must be a number >= {minimum:g}, got {value!r}.")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _frame(code: str, quarter: str, team_id: Any, objective_id: Any = None, kr_id: Any = None,
           message: Any = (), severity: Any = None) -> pd.DataFrame:
    """Findings of one rule as a frame (id and message arguments are sequences of equal length)."""
    n = len(message)
    return pd.DataFrame({
        "code": [code] * n,
        "severity": [LINT_CODES[code][0]] * n if severity is None else list(severity),
        "quarter": [quarter] * n,
        "team_id": list(team_id),
        "objective_id": [None] * n if objective_id is None else list(objective_id),
        "kr_id": [None] * n if kr_id is None else list(kr_id),
        "message": list(message),
    })


def lint(
    ds: Dataset,
    quarter: "str | Quarter",
    *,
    as_of: Any = None,
    min_objectives: int = LINT_DEFAULTS["min_objectives"],
    max_objectives: int = LINT_DEFAULTS["max_objectives"],
    min_krs: int = LINT_DEFAULTS["min_krs"],
    max_krs: int = LINT_DEFAULTS["max_krs"],
    stale_days: int = LINT_DEFAULTS["stale_days"],
    max_kpis: int = LINT_DEFAULTS["max_kpis"],
    confidence_drop: float = LINT_DEFAULTS["confidence_drop"],
) -> pd.DataFrame:
    """Check a quarter's OKRs against established OKR advice.

    Parameters
    ----------
    ds : Dataset
    quarter : str or Quarter
        A quarter with objectives, e.g. ``'2026Q3'``.
    as_of : date-like, optional
        Default: the quarter's last day; a later date is treated as the last day,
        an earlier date than the quarter's start is an error. Only check-ins dated
        in the quarter up to ``as_of`` are looked at.
    min_objectives, max_objectives : int, default 1 and 3
        TEAM_OBJECTIVE_COUNT fires outside this range.
    min_krs, max_krs : int, default 2 and 5
        OBJECTIVE_KR_COUNT fires outside this range.
    stale_days : int, default 14
        KR_STALE fires when the latest check-in is more than this many days
        before ``as_of`` (a check-in exactly 14 days before still counts). A KR
        with no check-in at all is measured from the quarter's first day, so it
        is not stale during the first 14 days of the quarter.
    max_kpis : int, default 7
        TEAM_TOO_MANY_KPIS fires when a team has values of more than this many
        distinct metrics in the ``kpis`` table in the window of one quarter's
        length ending on ``as_of`` (at the quarter's end: the quarter itself).
    confidence_drop : float, default 3
        CONFIDENCE_DROP fires for each pair of consecutive check-ins of a KR (in
        the quarter, up to ``as_of``; check-ins without a confidence are skipped)
        whose confidence falls by this much or more.

    Returns
    -------
    pandas.DataFrame
        One row per finding, ordered by code (in the order of :data:`LINT_CODES`), then
        team_id, objective_id, kr_id (and date for CONFIDENCE_DROP). Columns:

        code : str
            Stable code, a key of :data:`LINT_CODES`.
        severity : str
            ``warning`` (fix it: scores or statuses are unreliable or the set of OKRs
            breaks a rule) or ``info`` (worth a look).
        quarter : str
            The quarter checked.
        team_id : str
            The team concerned (for objective and KR findings: the owning team).
        objective_id : str
            The objective concerned; missing for team findings.
        kr_id : str
            The key result concerned; missing for team and objective findings.
        message : str
            A sentence naming the ids and the numbers, and what to do.

        An empty frame with these columns when nothing is found.

    Raises
    ------
    ValueError
        When the quarter has no objectives (the message lists those that do),
        ``as_of`` is before the quarter's start, or a threshold is not a number >= 0.
    """
    q, ts = _resolve(ds, quarter, as_of)
    for name, value in (("min_objectives", min_objectives), ("max_objectives", max_objectives),
                        ("min_krs", min_krs), ("max_krs", max_krs), ("stale_days", stale_days),
                        ("max_kpis", max_kpis), ("confidence_drop", confidence_drop)):
        _check_count(name, value)
    label = q.label
    tree = ds.team_tree
    names = dict(zip(tree["team_id"], tree["team_name"]))
    objs = ds.objectives.loc[ds.objectives["quarter"] == label].reset_index(drop=True)
    krs = ds.key_results_in(q).reset_index(drop=True)
    obj_title = dict(zip(objs["objective_id"], objs["title"]))

    def team_ref(tid: str) -> str:
        return f"team {tid} ({names.get(tid, tid)})"

    def obj_ref(oid: str, tid: str) -> str:
        return f"objective {oid} {obj_title.get(oid, '')!r} (team {tid})"

    def kr_ref(row: Any) -> str:
        return f"key result {row.kr_id} {row.title!r} (objective {row.objective_id}, team {row.team_id})"

    found: list[pd.DataFrame] = []

    # TEAM_OBJECTIVE_COUNT ---------------------------------------------------------
    n_obj = objs.groupby("team_id").size().reindex(tree["team_id"], fill_value=0).to_numpy()
    bad = (n_obj < min_objectives) | (n_obj > max_objectives)
    if bad.any():
        t = tree.loc[bad]
        n = n_obj[bad]
        rng = f"{min_objectives}–{max_objectives}"
        msgs = [
            (f"{_cap(team_ref(tid))} has no objectives in {label}; set {rng} objectives so that the team's "
             "focus is written down (or leave OKRs to its teams if that is the practice)." if k == 0 else
             f"{_cap(team_ref(tid))} has {_plural(int(k), 'objective')} in {label}; keep {rng} so that each "
             "gets real attention.")
            for tid, k in zip(t["team_id"], n)
        ]
        sev = np.where((n < min_objectives) & (n == 0) & ~t["is_leaf"].to_numpy(), "info", "warning")
        found.append(_frame("TEAM_OBJECTIVE_COUNT", label, t["team_id"].to_numpy(), message=msgs,
                            severity=sev))

    # OBJECTIVE_KR_COUNT -----------------------------------------------------------
    n_kr = objs["objective_id"].map(krs.groupby("objective_id").size()).fillna(0).astype("int64").to_numpy()
    bad = (n_kr < min_krs) | (n_kr > max_krs)
    if bad.any():
        o = objs.loc[bad]
        msgs = [f"{_cap(obj_ref(oid, tid))} has {_plural(int(k), 'key result')}; use {min_krs}–{max_krs}: "
                "enough to define success, few enough to focus."
                for oid, tid, k in zip(o["objective_id"], o["team_id"], n_kr[bad])]
        found.append(_frame("OBJECTIVE_KR_COUNT", label, o["team_id"].to_numpy(), o["objective_id"].to_numpy(),
                            message=msgs))

    # KR_UNMEASURABLE --------------------------------------------------------------
    bad = _unmeasurable(krs)
    if bad.any():
        k = krs.loc[bad]
        msgs = []
        for row in k.itertuples(index=False):
            if pd.isna(row.target):
                why = "has no target"
                fix = "set the value that would count as success"
            elif pd.isna(row.baseline):
                why = f"has no baseline, which a key result with direction {row.direction} needs"
                fix = "give the value it starts from"
            else:
                why = f"has its target equal to its baseline ({row.target:g}), so progress cannot be measured"
                fix = "set a target different from the baseline, or make it a maintain_at_least/at_most key result"
            msgs.append(f"{_cap(kr_ref(row))} {why}; "
                        f"{fix}.")
        found.append(_frame("KR_UNMEASURABLE", label, k["team_id"].to_numpy(), k["objective_id"].to_numpy(),
                            k["kr_id"].to_numpy(), msgs))

    # KR_STALE -----------------------------------------------------------------------
    ci = _quarter_checkins(ds, q, ts, krs["kr_id"])
    # (reindex, not map: Series.map with an empty datetime mapper fails in pandas 3)
    last = pd.Series(ci.groupby("kr_id")["date"].max().reindex(krs["kr_id"]).to_numpy(), index=krs.index)
    since = (ts - last.fillna(q.start)).dt.days.to_numpy()
    bad = since > stale_days
    if bad.any():
        k = krs.loc[bad]
        msgs = []
        for row, d, days in zip(k.itertuples(index=False), last[bad], since[bad]):
            what = (f"was last checked in on {d.date()}, {days} days before {ts.date()}" if pd.notna(d) else
                    f"has no check-in since {label} started on {q.start.date()}, {days} days before {ts.date()}")
            msgs.append(f"{_cap(kr_ref(row))} {what}; "
                        f"check in at least every {stale_days} days so that its status is current.")
        found.append(_frame("KR_STALE", label, k["team_id"].to_numpy(), k["objective_id"].to_numpy(),
                            k["kr_id"].to_numpy(), msgs))

    # OBJECTIVE_NOT_ALIGNED ------------------------------------------------------------
    parent_team = objs["team_id"].map(dict(zip(tree["team_id"], tree["parent_team_id"])))
    parent_objs = objs.groupby("team_id")["objective_id"].agg(lambda s: sorted(s))
    has = parent_team.map(parent_objs)
    bad = (objs["parent_objective_id"].isna() & parent_team.notna() & has.notna()).to_numpy()
    if bad.any():
        o = objs.loc[bad]
        msgs = []
        for oid, tid, pt, pobjs in zip(o["objective_id"], o["team_id"], parent_team[bad], has[bad]):
            shown = ", ".join(pobjs[:5]) + (" …" if len(pobjs) > 5 else "")
            msgs.append(f"{_cap(obj_ref(oid, tid))} is not aligned to any parent objective, while its parent "
                        f"{team_ref(pt)} has {_plural(len(pobjs), 'objective')} in {label} ({shown}); set "
                        "parent_objective_id to the one it contributes to, or say why it stands alone.")
        found.append(_frame("OBJECTIVE_NOT_ALIGNED", label, o["team_id"].to_numpy(), o["objective_id"].to_numpy(),
                            message=msgs))

    # OBJECTIVE_ONLY_MILESTONES ----------------------------------------------------------
    ms = krs.assign(_m=krs["direction"] == "milestone").groupby("objective_id")["_m"].agg(["all", "size"])
    ms = ms[ms["all"] & (ms["size"] > 0)]
    if len(ms):
        o = objs.loc[objs["objective_id"].isin(ms.index)]
        msgs = [f"All {_plural(int(ms.loc[oid, 'size']), 'key result')} of {obj_ref(oid, tid)} are milestones: "
                "they measure outputs (things delivered), not outcomes; add a key result that measures the change "
                "the work should bring."
                for oid, tid in zip(o["objective_id"], o["team_id"])]
        found.append(_frame("OBJECTIVE_ONLY_MILESTONES", label, o["team_id"].to_numpy(),
                            o["objective_id"].to_numpy(), message=msgs))

    # TEAM_TOO_MANY_KPIS --------------------------------------------------------------------
    k = ds.kpis
    window = (k["date"] > ts - pd.Timedelta(days=q.days)) & (k["date"] <= ts)
    per_team = k.loc[window].groupby("team_id")["metric"].agg(lambda s: sorted(s.unique()))
    per_team = per_team[per_team.map(len) > max_kpis]
    if len(per_team):
        per_team = per_team.sort_index()
        msgs = []
        for tid, metrics in per_team.items():
            shown = ", ".join(metrics[:10]) + (" …" if len(metrics) > 10 else "")
            msgs.append(f"{_cap(team_ref(tid))} tracks {len(metrics)} KPIs ({shown}), more than {max_kpis}: "
                        "when everything is a priority, nothing is; pick the few that matter this quarter.")
        found.append(_frame("TEAM_TOO_MANY_KPIS", label, per_team.index.to_numpy(), message=msgs))

    # CONFIDENCE_DROP ---------------------------------------------------------------------------
    c = ci.loc[ci["confidence"].notna()]
    prev = c.groupby("kr_id")["confidence"].shift()
    prev_date = c.groupby("kr_id")["date"].shift()
    bad = ((prev - c["confidence"]) >= confidence_drop - _EPS).to_numpy()
    if bad.any():
        d = c.loc[bad].merge(krs[["kr_id", "title", "objective_id", "team_id"]], on="kr_id", how="left")
        msgs = [f"Confidence in {kr_ref(row)} fell from {p:g} to {row.confidence:g} between the check-ins of "
                f"{pd_.date()} and {row.date.date()}; "
                "ask the team what changed and what help it needs."
                for row, p, pd_ in zip(d.itertuples(index=False), prev[bad], prev_date[bad])]
        found.append(_frame("CONFIDENCE_DROP", label, d["team_id"].to_numpy(), d["objective_id"].to_numpy(),
                            d["kr_id"].to_numpy(), msgs))

    if not found:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in LINT_COLUMNS})
    out = pd.concat(found, ignore_index=True)
    for col in LINT_COLUMNS:
        out[col] = out[col].astype("str")
    rank = {code: i for i, code in enumerate(LINT_CODES)}
    out["_r"] = out["code"].map(rank)
    out = out.sort_values(["_r", "team_id", "objective_id", "kr_id"], kind="stable", na_position="first")
    return out[LINT_COLUMNS].reset_index(drop=True)
