"""The sections of the organisation overview (``notebooks/org_quarterly_overview.ipynb``).
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..plots import plot_score_distribution, plot_team_kr_heatmap
from ..privacy import suppressed_label
from .common import _hidden_krs, _scored_teams, _show_figure, methods, record_summary
from .display import _display_html, _para, _show, show_sentences
from .team import _driver_view

__all__ = [
    "ORG_MAX_TEAMS",
    "department_scores",
    "lint_counts",
    "methods",
    "org_drivers",
    "org_summary",
    "record_summary",
    "summary",
    "team_kr_heatmap",
    "teams_at_risk",
]



def org_drivers(ctx: Any) -> pd.DataFrame:
    """The org-wide driver table: every pair's pooled verdict, and for how many teams it holds."""
    drivers = ctx.table("drivers")
    if drivers.empty:
        _display_html(_para("No leading/lagging metric pairs in the catalogue.", "okr-note"))
        return drivers
    pooled = drivers[drivers["team_id"] == "*"]
    per_team = drivers[drivers["team_id"] != "*"]
    holds = (per_team.assign(leads=per_team["verdict"] == "leads")
             .groupby(["leading", "lagging"])["leads"].agg(["sum", "size"]).reset_index()
             .rename(columns={"sum": "teams_where_it_leads", "size": "teams_tested"}))
    view = _driver_view(pooled, ctx).drop(columns=["scope"]).merge(holds, on=["leading", "lagging"], how="left")
    found = view[view["verdict"] != "no evidence"]
    _show(found, caption="Leading indicators across the organisation (pooled over teams; Benjamini–Hochberg "
                         "q-values over every test)", empty="No leading KPI predicts any outcome with enough evidence.")
    others = len(view) - len(found)
    if others:
        pairs = ", ".join(f"{a} → {b}" for a, b in zip(view.loc[view["verdict"] == "no evidence", "leading"],
                                                        view.loc[view["verdict"] == "no evidence", "lagging"]))
        _display_html(_para(f"{others} other pair{'s' if others != 1 else ''} tested with no evidence: {pairs}.",
                            "okr-note"))
    return view


def org_summary(ctx: Any) -> list[str]:
    """Opening sentences of the organisation overview."""
    teams = _scored_teams(ctx)
    root = teams[teams["depth"] == 0]
    krs = ctx.table("kr_scores")
    sentences = []
    if len(root) and pd.notna(root["rollup_score"].iloc[0]):
        r = root.iloc[0]
        sentences.append(f"{r['team_name']} scores {r['rollup_score']:.2f} ({r['rollup_band']}) across "
                         f"{int(r['rollup_n_teams'])} teams and {int(r['rollup_n_objectives'])} objectives as of "
                         f"{ctx.as_of:%d %b %Y}.")
    counts = krs["status"].value_counts()
    sentences.append(f"Of {len(krs)} key results, {int(counts.get('on track', 0))} are on track, "
                     f"{int(counts.get('at risk', 0))} at risk and {int(counts.get('off track', 0))} off track"
                     + (f"; {int(counts.get('no data', 0))} have no check-in yet." if counts.get("no data", 0)
                        else "."))
    leaves = teams[teams["is_leaf"] & teams["score"].notna()]
    if len(leaves):
        low = leaves.sort_values("score").head(3)
        sentences.append("Lowest-scoring teams: " + ", ".join(f"{n} ({s:.2f})" for n, s in
                                                                zip(low["team_name"], low["score"])) + ".")
    return sentences


def summary(ctx: Any) -> list[str]:
    """Display the overview's opening sentences (:func:`org_summary`); returns them."""
    sentences = org_summary(ctx)
    show_sentences(sentences)
    return sentences


def department_scores(ctx: Any) -> pd.DataFrame:
    """Score distribution by department (chart) and each department's roll-up (table)."""

    teams = _scored_teams(ctx)
    leaves = teams[teams["is_leaf"]].copy()
    leaves["score"] = leaves["score"].astype(float)
    fig, ax = plt.subplots(figsize=(8, 0.8 * max(leaves["department"].nunique(), 1) + 1.5))
    plot_score_distribution(leaves, ax=ax)
    _show_figure(fig)
    depts = teams[teams["depth"] == 1][["team_name", "rollup_n_teams", "rollup_n_objectives", "rollup_score",
                                        "rollup_band", "n_on_track", "n_at_risk", "n_off_track", "n_no_data"]]
    depts = depts.rename(columns={"team_name": "department"}).reset_index(drop=True)
    hidden_depts = depts["rollup_score"].isna() & teams[teams["depth"] == 1]["suppressed"].to_numpy()
    for col in ("rollup_score", "rollup_band"):
        depts[col] = depts[col].astype(object)
        depts.loc[hidden_depts, col] = suppressed_label(ctx.min_group_size)
    _show(depts, caption="Departments (roll-up over all their teams)")
    note = int(teams["suppressed"].sum())
    if note:
        _display_html(_para(f"{note} team score(s) are not shown on their own: a team with fewer than "
                            f"{ctx.min_group_size} people and key results on people metrics, and the next-"
                            "smallest team beside it, so that the department's roll-up cannot be used to work "
                            "the small team's score out. They are included in their department's roll-up, "
                            "which has enough people.", "okr-note"))
    return depts


#: The organisation overview draws at most this many teams in its heat map and lists at most this many
#: teams at risk: a company of thousands of teams gets the ones that need attention first.
ORG_MAX_TEAMS = 40


def team_kr_heatmap(ctx: Any, *, max_teams: int = ORG_MAX_TEAMS) -> pd.DataFrame:
    """Team × key-result heat map of scores (leaf teams; suppressed teams' people key results left blank).

    With more than ``max_teams`` leaf teams, the ``max_teams`` with the lowest mean key-result score
    (of the scores shown) are drawn, and a note says how many there are in all. Returns the rows drawn.
    """

    krs = ctx.table("kr_scores").copy()
    tree = ctx.ds.team_tree.set_index("team_id")
    krs = krs[krs["team_id"].map(tree["is_leaf"]).fillna(False).astype(bool)]
    hidden = _hidden_krs(ctx, krs)
    krs.loc[hidden, "score"] = np.nan
    krs["team"] = krs["team_id"].map(tree["team_name"])
    if krs.empty:
        _display_html(_para("No key results in leaf teams.", "okr-note"))
        return krs
    n_teams = krs["team_id"].nunique()
    if n_teams > max_teams:
        mean = krs.groupby("team_id")["score"].mean().rename("mean").reset_index()
        worst = mean.sort_values(["mean", "team_id"], na_position="last", kind="stable")["team_id"].head(max_teams)
        krs = krs[krs["team_id"].isin(set(worst))]
        _display_html(_para(f"The {max_teams} teams with the lowest mean key-result score, of {n_teams:,} teams; "
                            "every team's scores are in its own report and on the index page.", "okr-note"))
    fig, ax = plt.subplots(figsize=(9, 0.4 * krs["team_id"].nunique() + 1.5))
    plot_team_kr_heatmap(krs, team_label="team", ax=ax)
    _show_figure(fig)
    return krs


def lint_counts(ctx: Any) -> pd.DataFrame:
    """Hygiene findings counted by department and code."""
    findings = ctx.table("lint")
    if findings.empty:
        _show(findings, empty="No hygiene findings anywhere in the organisation.")
        return findings
    tree = ctx.ds.team_tree.set_index("team_id")
    dept = findings["team_id"].map(tree["department_id"]).map(tree["team_name"]).fillna("(company)")
    table = pd.crosstab(dept.rename("department"), findings["code"]).reset_index()
    table.columns.name = None
    _show(table, caption=f"OKR hygiene findings by department, {ctx.quarter.label}", headers="raw")
    return table


def teams_at_risk(ctx: Any, *, max_rows: int = ORG_MAX_TEAMS) -> pd.DataFrame:
    """Teams with key results at risk or off track, worst first (at most ``max_rows``; a note gives the
    number left out). Returns the rows shown."""
    teams = _scored_teams(ctx)
    risky = teams[(teams["n_off_track"] + teams["n_at_risk"] > 0) & teams["is_leaf"]].copy()
    risky = risky.sort_values(["n_off_track", "n_at_risk"], ascending=False, kind="stable")
    view = risky[["team_name", "department", "score", "band", "n_off_track", "n_at_risk", "n_on_track"]]
    view = view.assign(score=view["score"].where(view["score"].notna(), suppressed_label(ctx.min_group_size)))
    more = len(view) - max_rows
    view = view.head(max_rows)
    _show(view, caption="Teams with key results at risk or off track" + (f" (the {max_rows} worst)" if more > 0
                                                                           else ""),
          empty="No team has a key result at risk or off track.")
    if more > 0:
        _display_html(_para(f"… and {more:,} more teams with key results at risk or off track; each team's report "
                            "lists them.", "okr-note"))
    return view
