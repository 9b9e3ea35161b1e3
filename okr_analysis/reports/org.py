"""The sections of the organisation overview (``notebooks/org_quarterly_overview.ipynb``).

Each section displays and returns its table; each table comes from a pure function
(``org.department_scores_table(ctx)`` …) that returns it through the privacy gate without displaying it.
"""

from __future__ import annotations

import html
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from ..plots import plot_score_distribution, plot_team_kr_heatmap
from .common import (
    _gate,
    _hidden_krs,
    _scored_teams,
    _show_figure,
    _team_reasons,
    driver_sentences,
    finding_label,
    methods,
    record_summary,
)
from ..formatting import date as _date
from ..formatting import number as _fmt
from ..privacy import suppressed_label
from .display import _display_html, _para, _show, metric_name, show_sentences
from .team import _driver_view

__all__ = [
    "ORG_MAX_TEAMS",
    "department_scores",
    "department_scores_table",
    "drivers_appendix",
    "lint_counts",
    "lint_counts_table",
    "methods",
    "org_drivers",
    "org_drivers_table",
    "org_summary",
    "record_summary",
    "summary",
    "team_kr_heatmap",
    "team_kr_heatmap_table",
    "teams_at_risk",
    "teams_at_risk_table",
]



def org_drivers_table(ctx: Any) -> pd.DataFrame:
    """Every leading/lagging pair's pooled verdict and for how many teams it holds, through the privacy gate.

    Returns
    -------
    DataFrame
        One row per pair, evidence first: leading, lagging, lag, correlation, ci_low, ci_high, q_value,
        oos_skill, verdict, reason (pooled over teams), teams_where_it_leads, teams_tested (counts of the
        per-team tests). Empty when the catalogue has no leading/lagging pairs.
    """
    drivers = ctx.table("drivers")
    if drivers.empty:
        return drivers
    pooled = _gate(ctx, drivers[drivers["team_id"] == "*"], kind="drivers").drop(columns=["suppressed"])
    per_team = drivers[drivers["team_id"] != "*"]  # counted only: how many teams, never which values
    holds = (per_team.assign(leads=per_team["verdict"] == "leads")
             .groupby(["leading", "lagging"])["leads"].agg(["sum", "size"]).reset_index()
             .rename(columns={"sum": "teams_where_it_leads", "size": "teams_tested"}))
    return _driver_view(pooled, ctx).drop(columns=["scope"]).merge(holds, on=["leading", "lagging"], how="left")


def _named(view: pd.DataFrame) -> pd.DataFrame:
    return view.assign(leading=view["leading"].map(metric_name), lagging=view["lagging"].map(metric_name))


def org_drivers(ctx: Any) -> pd.DataFrame:
    """The org-wide drivers in sentences, a small table of the pairs with evidence, and the others named;
    every estimate is in the appendix (:func:`drivers_appendix`). Returns :func:`org_drivers_table`."""
    view = org_drivers_table(ctx)
    if view.empty:
        _display_html(_para("No leading/lagging metric pairs in the catalogue.", "okr-note"))
        return view
    found = view[view["verdict"] != "no evidence"]
    drivers = ctx.table("drivers")
    show_sentences(driver_sentences(_gate(ctx, drivers[drivers["team_id"] == "*"], kind="drivers")))
    _show(_named(found)[["leading", "lagging", "verdict", "lag", "correlation", "teams_where_it_leads",
                         "teams_tested"]],
          caption="Leading indicators across the organisation (pooled over teams)",
          empty="No leading KPI predicts any outcome with enough evidence.")
    others = len(view) - len(found)
    if others:
        none = view[view["verdict"] == "no evidence"]
        pairs = ", ".join(f"{metric_name(a)} → {metric_name(b)}" for a, b in zip(none["leading"], none["lagging"]))
        _display_html(_para(f"{others} other pair{'s' if others != 1 else ''} tested with no evidence: {pairs}.",
                            "okr-note"))
    return view


def drivers_appendix(ctx: Any) -> pd.DataFrame:
    """Every pooled driver estimate of the organisation, as two narrow tables (estimates; evidence) and the
    reason of each verdict with evidence in words. Returns :func:`org_drivers_table`."""
    view = org_drivers_table(ctx)
    if view.empty:
        _display_html(_para("No leading/lagging metric pairs in the catalogue.", "okr-note"))
        return view
    named = _named(view).assign(
        interval=[f"{_fmt(lo)}\u00a0to\u00a0{_fmt(hi)}" if pd.notna(lo) and pd.notna(hi) else "—"
                  for lo, hi in zip(view["ci_low"], view["ci_high"])],
        teams=[f"{int(a)} of {int(b)}" if pd.notna(a) and pd.notna(b) else "—"
               for a, b in zip(view["teams_where_it_leads"], view["teams_tested"])])
    _show(named[["leading", "lagging", "verdict", "lag", "correlation", "interval", "q_value", "oos_skill", "teams"]],
          caption="Every driver tested, pooled over teams (lag in periods; correlation of the prewhitened series "
                  "with its 95% interval; q-value: Benjamini–Hochberg over the primary test of each pair; "
                  "forecast skill: out-of-sample gain over the lagging KPI's own history; teams where it leads)",
          labels={"interval": "95% interval", "q_value": "q-value", "teams": "Teams where it leads"},
          classes="appendix")
    found = named[named["verdict"] != "no evidence"]
    reasons = [f"{r.leading} → {r.lagging}: {r.reason}" for r in found.itertuples(index=False)
               if isinstance(r.reason, str)]
    if reasons:
        _display_html('<p class="okr-caption">Why each verdict with evidence was reached</p>'
                      '<ul class="okr-reasons appendix">' + "".join(f"<li>{html.escape(t)}</li>" for t in reasons)
                      + "</ul>")
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
                         f"{_date(ctx.as_of)}.")
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


def department_scores_table(ctx: Any) -> pd.DataFrame:
    """Each department's roll-up, through the privacy gate.

    Returns
    -------
    DataFrame
        One row per department (depth 1 of the tree): department, rollup_n_teams, rollup_n_objectives,
        rollup_score, rollup_band (the suppression label when complementary suppression hides the
        roll-up), n_on_track, n_at_risk, n_off_track, n_no_data.
    """
    teams = _scored_teams(ctx, label=("rollup_score", "rollup_band"))
    depts = teams[teams["depth"] == 1][["team_name", "rollup_n_teams", "rollup_n_objectives", "rollup_score",
                                        "rollup_band", "n_on_track", "n_at_risk", "n_off_track", "n_no_data"]]
    return depts.rename(columns={"team_name": "department"}).reset_index(drop=True)


def department_scores(ctx: Any) -> pd.DataFrame:
    """Score distribution by department (chart) and each department's roll-up (:func:`department_scores_table`)."""

    teams = _scored_teams(ctx)
    leaves = teams[teams["is_leaf"]].copy()
    leaves["score"] = leaves["score"].astype(float)
    depts = department_scores_table(ctx)  # the department cards first, then the distribution that explains them
    _show(depts, caption="Departments (roll-up over all their teams)",
          labels={"rollup_score": "Score", "rollup_band": "Band"},
          replace={suppressed_label(ctx.min_group_size): "hidden so that a smaller team's figures cannot be "
                                                          "worked out"})
    fig, ax = plt.subplots(figsize=(8, 0.5 * max(leaves["department"].nunique(), 1) + 1.2))
    plot_score_distribution(leaves, ax=ax)
    _show_figure(fig)
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


def _heatmap_rows(ctx: Any, max_teams: int) -> tuple[pd.DataFrame, int]:
    krs = ctx.table("kr_scores").copy()
    tree = ctx.ds.team_tree.set_index("team_id")
    krs = krs[krs["team_id"].map(tree["is_leaf"]).fillna(False).astype(bool)]
    krs = _gate(ctx, krs, kind="kr_scores", blank=krs.columns)  # a hidden key result's cells stay blank
    krs["score"] = krs["score"].astype(float)
    krs["team"] = krs["team_id"].map(tree["team_name"])
    n_teams = krs["team_id"].nunique()
    if n_teams > max_teams:
        mean = krs.groupby("team_id")["score"].mean().rename("mean").reset_index()
        worst = mean.sort_values(["mean", "team_id"], na_position="last", kind="stable")["team_id"].head(max_teams)
        krs = krs[krs["team_id"].isin(set(worst))]
    return krs, n_teams


def team_kr_heatmap_table(ctx: Any, *, max_teams: int = ORG_MAX_TEAMS) -> pd.DataFrame:
    """The leaf teams' key-result scores the heat map draws, through the privacy gate: with more than
    ``max_teams`` leaf teams, the ``max_teams`` with the lowest mean score shown.

    Returns
    -------
    DataFrame
        :func:`okr_analysis.score_key_results`' rows of those teams (a hidden key result's score empty),
        and team (the team's name).
    """
    return _heatmap_rows(ctx, max_teams)[0]


def team_kr_heatmap(ctx: Any, *, max_teams: int = ORG_MAX_TEAMS) -> pd.DataFrame:
    """Team × key-result heat map of scores (leaf teams; suppressed teams' people key results left blank).

    With more than ``max_teams`` leaf teams, the ``max_teams`` with the lowest mean key-result score
    (of the scores shown) are drawn, and a note says how many there are in all. Returns the rows drawn
    (:func:`team_kr_heatmap_table`).
    """
    krs, n_teams = _heatmap_rows(ctx, max_teams)
    if krs.empty:
        _display_html(_para("No key results in leaf teams.", "okr-note"))
        return krs
    if n_teams > max_teams:
        _display_html(_para(f"The {max_teams} teams with the lowest mean key-result score, of {n_teams:,} teams; "
                            "every team's scores are in its own report and on the index page.", "okr-note"))
    fig, ax = plt.subplots(figsize=(9.5, 0.32 * krs[["team_id", "objective_id"]].drop_duplicates().shape[0] + 1.2))
    plot_team_kr_heatmap(krs, team_label="team", ax=ax)
    _show_figure(fig)
    return krs


def lint_counts_table(ctx: Any) -> pd.DataFrame:
    """Hygiene findings (through the privacy gate) counted by department and code.

    Returns
    -------
    DataFrame
        One row per department: department, then one count column per finding code found. Empty when
        there are no findings.
    """
    findings = _gate(ctx, ctx.table("lint"), kind="lint")
    if findings.empty:
        return findings
    tree = ctx.ds.team_tree.set_index("team_id")
    dept = findings["team_id"].map(tree["department_id"]).map(tree["team_name"]).fillna("(company)")
    table = pd.crosstab(dept.rename("department"), findings["code"]).reset_index()
    table.columns.name = None
    return table


def lint_counts(ctx: Any) -> pd.DataFrame:
    """Hygiene findings counted by department and code (:func:`lint_counts_table`)."""
    table = lint_counts_table(ctx)
    if table.empty:
        _show(table, empty="No hygiene findings anywhere in the organisation.")
        return table
    view = table.set_index("department").T
    view.index = [finding_label(c) for c in view.index]
    view.index.name = "Finding"
    view = view.reset_index()
    _show(view, caption=f"OKR hygiene findings by department, {ctx.quarter.label}", headers="raw")
    return table


def _at_risk(ctx: Any) -> pd.DataFrame:
    teams = _scored_teams(ctx, label=("score",))
    risky = teams[(teams["n_off_track"] + teams["n_at_risk"] > 0) & teams["is_leaf"]].copy()
    risky = risky.sort_values(["n_off_track", "n_at_risk"], ascending=False, kind="stable")
    return risky[["team_name", "department", "score", "band", "n_off_track", "n_at_risk", "n_on_track"]]


def _at_risk_view(ctx: Any, view: pd.DataFrame) -> pd.DataFrame:
    """The at-risk list as shown: each team with the key results behind it (visible ones only, off track
    first) and a hidden score's reason in words."""
    if view.empty:
        return view
    tree = ctx.ds.team_tree
    ids = view["team_name"].map(dict(zip(tree["team_name"], tree["team_id"])))
    krs = ctx.table("kr_scores")
    krs = krs[krs["team_id"].isin(set(ids)) & ~_hidden_krs(ctx, krs)]
    krs = krs[krs["status"].isin(["off track", "at risk"])]
    why = {}
    for team_id, group in krs.groupby("team_id"):
        parts = []
        for status in ("off track", "at risk"):
            titles = group.loc[group["status"] == status, "title"].tolist()
            if titles:
                parts.append(f"{status}: {titles[0]}" + (f" and {len(titles) - 1} more" if len(titles) > 1 else ""))
        why[team_id] = "; ".join(parts)
    label = suppressed_label(ctx.min_group_size)
    reasons = _team_reasons(ctx, ids)
    score = [reason if isinstance(v, str) and v == label else v for v, reason in zip(view["score"], reasons)]
    return pd.DataFrame({"team_name": view["team_name"].to_numpy(), "department": view["department"].to_numpy(),
                         "score": score, "band": view["band"].fillna("—").to_numpy(),
                         "n_off_track": view["n_off_track"].to_numpy(), "n_at_risk": view["n_at_risk"].to_numpy(),
                         "reasons": [why.get(t, "") for t in ids]})


def teams_at_risk_table(ctx: Any, *, max_rows: int = ORG_MAX_TEAMS) -> pd.DataFrame:
    """Leaf teams with key results at risk or off track, worst first (at most ``max_rows``), through the
    privacy gate.

    Returns
    -------
    DataFrame
        team_name, department, score (the suppression label when suppression hides it), band (empty then),
        n_off_track, n_at_risk, n_on_track (of the key results shown).
    """
    return _at_risk(ctx).head(max_rows)


def teams_at_risk(ctx: Any, *, max_rows: int = ORG_MAX_TEAMS) -> pd.DataFrame:
    """Teams with key results at risk or off track, worst first (at most ``max_rows``; a note gives the
    number left out). Returns the rows shown (:func:`teams_at_risk_table`)."""
    view = _at_risk(ctx)
    more = len(view) - max_rows
    view = view.head(max_rows)
    _show(_at_risk_view(ctx, view),
          caption="Teams with key results at risk or off track" + (f" (the {max_rows} worst)" if more > 0 else ""),
          labels={"score": "Score"}, empty="No team has a key result at risk or off track.")
    if more > 0:
        _display_html(_para(f"… and {more:,} more teams with key results at risk or off track; each team's report "
                            "lists them.", "okr-note"))
    return view
