"""The sections of a team's quarterly review (``notebooks/team_quarterly_review.ipynb``).

Each section is one call, e.g. ``team.scorecard(ctx)`` with the :class:`ReportContext` from
:func:`open_report`; it displays escaped HTML tables and static charts and returns the data it showed.
"""

from __future__ import annotations

import html
import warnings
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..forecasting import forecast_key_result
from ..monitoring import control_chart
from ..plots import (
    plot_kr_progress,
    plot_kr_scores,
    plot_lagged_correlations,
    plot_peer_comparison,
)
from ..privacy import people_metrics as _people_metrics
from ..privacy import suppressed_label
from .common import (
    _ARROWS,
    _STATUS_ORDER,
    _band_cell,
    _fmt,
    _forecasts,
    _hidden_krs,
    _hidden_reason,
    _show_figure,
    _small_team,
    methods,
    record_summary,
)
from .display import _display_html, _para, _show, show_sentences
from .shared import SHARED_ANALYSES

__all__ = [
    "hygiene",
    "key_result_charts",
    "kpi_panel",
    "leading_indicators",
    "methods",
    "record_summary",
    "scorecard",
    "summary",
    "summary_sentences",
]



# ==================================================================================
# Sections
# ==================================================================================
def summary_sentences(ctx: Any) -> list[str]:
    """The report's opening sentences, computed from the numbers (plain text, not yet escaped)."""
    krs = ctx.team_table("kr_scores")
    if krs.empty:
        return [f"{ctx.team_name} has no key results in {ctx.quarter.label}."]
    sentences = []
    hidden = _hidden_krs(ctx, krs)
    teams = ctx.team_table("team_scores")
    # a team score would let a reader work suppressed key results out: only without suppression
    if not hidden.any() and len(teams) and pd.notna(teams["score"].iloc[0]):
        row = teams.iloc[0]
        objs = ctx.team_table("objective_scores")
        met = int(objs["met_expectation"].fillna(False).astype(bool).sum()) if len(objs) else 0
        sentences.append(
            f"{ctx.team_name} scores {row['score']:.2f} ({row['band']}) as of {ctx.as_of:%d %b %Y}; "
            f"{met} of {len(objs)} objective{'s' if len(objs) != 1 else ''} meet{'s' if len(objs) == 1 else ''} "
            "expectations so far."
        )
    if hidden.any():
        k = int(hidden.sum())
        sentences.append(f"{k} key result{'s' if k != 1 else ''} on people metrics {'is' if k == 1 else 'are'} "
                         f"not shown: {_hidden_reason(ctx)}.")
        krs = krs[~hidden]
        if krs.empty:
            return sentences
    n = len(krs)
    counts = krs["status"].value_counts()
    on = int(counts.get("on track", 0))
    sentence = f"{on} of {n} key result{'s' if n != 1 else ''} {'is' if on == 1 else 'are'} on track"
    fc = _forecasts(ctx)
    p_hit = fc.set_index("kr_id")["p_hit"] if fc is not None and len(fc) and "p_hit" in fc else pd.Series(dtype=float)
    worrying = krs[krs["status"].isin(["at risk", "off track"])].copy()
    if len(worrying):
        worrying["order"] = worrying["status"].map(_STATUS_ORDER)
        parts = []
        for r in worrying.sort_values(["order", "score"]).head(3).itertuples(index=False):
            label = r.metric if isinstance(r.metric, str) else r.title
            part = f"{label} is {r.status}"
            p = p_hit.get(r.kr_id, np.nan)
            if pd.notna(p):
                part += f", {p:.0%} likely to reach {_fmt(r.target, r.unit)} by {ctx.quarter.end:%d %b}"
            parts.append(part)
        more = len(worrying) - len(parts)
        sentence += "; " + "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
    nodata = int(counts.get("no data", 0))
    if nodata:
        sentence += f"; {nodata} ha{'s' if nodata == 1 else 've'} no check-in yet"
    sentences.append(sentence + ".")
    cands = ctx.team_table("candidates")
    declining = cands[cands["reason"] == "declining"]["metric"].unique().tolist() if len(cands) else []
    people = _people_metrics(ctx.ds)
    if _small_team(ctx):
        declining = [m for m in declining if m not in people]
    if declining:
        sentences.append(f"Declining KPI{'s' if len(declining) > 1 else ''}: {', '.join(declining)} — "
                         "candidates for next quarter's key results.")
    findings = ctx.team_table("lint")
    if len(findings):
        sentences.append(f"{len(findings)} OKR hygiene finding{'s' if len(findings) != 1 else ''} "
                         "(see the hygiene section).")
    return sentences


def summary(ctx: Any) -> list[str]:
    """Display the summary sentences; returns them."""
    sentences = summary_sentences(ctx)
    show_sentences(sentences)
    return sentences


def scorecard(ctx: Any) -> pd.DataFrame:
    """Objectives and their key results: baseline, target, current, score, band, status, p_hit, kind, met.

    Returns
    -------
    DataFrame
        One row per key result: objective_title, objective_kind, met_expectation, kr_id, title, metric,
        direction, baseline, target, current, unit, score, band, status, p_hit.
    """
    krs = ctx.team_table("kr_scores")
    objs = ctx.team_table("objective_scores")
    if krs.empty:
        _display_html(_para(f"{ctx.team_name} has no key results in {ctx.quarter.label}.", "okr-note"))
        return krs
    fc = _forecasts(ctx)
    table = krs.merge(objs[["objective_id", "score", "band", "met_expectation", "status"]]
                      .rename(columns={"score": "objective_score", "band": "objective_band",
                                       "status": "objective_status"}), on="objective_id", how="left")
    if fc is not None and len(fc):
        table = table.merge(fc[["kr_id", "p_hit"]], on="kr_id", how="left")
    else:
        table["p_hit"] = np.nan
    hidden = _hidden_krs(ctx, table)
    label = suppressed_label(ctx.min_group_size)
    if hidden.any():
        for col in ("current", "progress", "score", "band", "status", "p_hit"):
            table[col] = table[col].astype(object)
            table.loc[hidden, col] = label if col in ("status",) else None
        # an objective score would let a reader work the suppressed key results out
        affected = set(table.loc[hidden, "objective_id"])
        for col in ("objective_score", "objective_band", "met_expectation"):
            table[col] = table[col].astype(object)
            table.loc[table["objective_id"].isin(affected), col] = None
        table.loc[table["objective_id"].isin(affected), "objective_status"] = label
    e = html.escape
    rows = []
    for obj_id, group in table.groupby("objective_id", sort=False):
        first = group.iloc[0]
        met = first["met_expectation"]
        met_text = "—" if pd.isna(met) else ("met" if bool(met) else "not met")
        need = "1.0" if first["objective_kind"] == "committed" else "0.7"
        rows.append(
            f'<tr class="okr-objective"><td colspan="6"><strong>{e(str(first["objective_title"]))}</strong> '
            f'<span class="okr-note">{e(str(first["objective_kind"]))} · needs {need} · {met_text}</span></td>'
            f'<td class="num">{_fmt(first["objective_score"])}</td><td>{_band_cell(first["objective_band"])}</td>'
            f'<td>{e(str(first["objective_status"]))}</td><td></td></tr>')
        for r in group.itertuples(index=False):
            base = "—" if pd.isna(r.baseline) else _fmt(r.baseline, r.unit)
            p = "—" if pd.isna(r.p_hit) else f"{r.p_hit:.0%}"
            rows.append(
                f"<tr><td>{e(str(r.title))}</td><td>{e(str(r.direction).replace('_', ' '))}</td>"
                f'<td class="num">{e(base)}</td><td class="num">{e(_fmt(r.target, r.unit))}</td>'
                f'<td class="num">{e(_fmt(r.current, r.unit))}</td><td class="num">{e(_fmt(r.progress))}</td>'
                f'<td class="num">{e(_fmt(r.score))}</td><td>{_band_cell(r.band)}</td><td>{e(str(r.status))}</td>'
                f'<td class="num">{p}</td></tr>')
    head = ("<tr><th>Key result</th><th>Direction</th><th>Baseline</th><th>Target</th><th>Current</th>"
            "<th>Progress</th><th>Score</th><th>Band</th><th>Status</th><th>P(hit)</th></tr>")
    caption = (f"Scorecard of {e(ctx.team_name)}, {e(ctx.quarter.label)}, as of {ctx.as_of:%d %b %Y}. "
               "Bands: red &lt; 0.4 ≤ yellow &lt; 0.7 ≤ green.")
    _display_html(f'<table class="okr-table okr-scorecard"><caption>{caption}</caption><thead>{head}</thead>'
                  f"<tbody>{''.join(rows)}</tbody></table>")

    visible = table[~hidden]
    if len(visible):
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(visible) + 1.2))
        plot_kr_scores(visible, ax=ax, title=f"Key-result scores, {ctx.quarter.label}")
        _show_figure(fig)
    cols = ["objective_title", "objective_kind", "met_expectation", "kr_id", "title", "metric", "direction", "baseline",
            "target", "current", "unit", "score", "band", "status", "p_hit"]
    return table[cols]


def key_result_charts(ctx: Any) -> int:
    """One chart per key result: check-ins against the expected pace and the target (and the forecast cone
    when forecasts are available). Returns the number of charts drawn."""
    krs = ctx.team_table("kr_scores")
    if krs.empty:
        _display_html(_para("No key results to chart.", "okr-note"))
        return 0

    q = ctx.quarter
    ci = ctx.ds.checkins
    drawn = 0
    hidden = _hidden_krs(ctx, krs)
    if hidden.any():
        _display_html(_para(f"{int(hidden.sum())} key result(s) on people metrics are not charted: "
                            f"{_hidden_reason(ctx)}.", "okr-note"))
    for r in krs[~hidden].itertuples(index=False):
        points = ci[(ci["kr_id"] == r.kr_id) & (ci["date"] >= q.start) & (ci["date"] <= ctx.as_of)]
        fig, ax = plt.subplots(figsize=(7.5, 3.2))
        drawn_by_forecast = False
        if "forecasts" in SHARED_ANALYSES:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    forecast_key_result(ctx.ds, r.kr_id, as_of=ctx.as_of).plot(ax=ax)
                drawn_by_forecast = True
            except ValueError:
                drawn_by_forecast = False
        if not drawn_by_forecast:
            plot_kr_progress(points, direction=r.direction, baseline=r.baseline, target=r.target,
                             start=q.start, end=q.end, as_of=ctx.as_of, unit=r.unit, title=str(r.title), ax=ax)
        _show_figure(fig)
        drawn += 1
    return drawn


def kpi_panel(ctx: Any) -> pd.DataFrame:
    """The team's KPIs: trend and assessment arrow, peers, control-chart signals, and charts.

    People metrics of a team smaller than ``min_group_size`` are suppressed.

    Returns
    -------
    DataFrame
        One row per metric: metric, latest, assessment, slope, p_value, peer_rank, n_peers,
        peer_percentile, vs_benchmark, signals (people metrics of a small team read "suppressed …").
    """
    mon = ctx.team_table("monitor")
    if mon.empty:
        _display_html(_para(f"No KPI data for {ctx.team_name} up to {ctx.as_of:%d %b %Y}.", "okr-note"))
        return mon
    people = _people_metrics(ctx.ds)
    small = _small_team(ctx)
    label = suppressed_label(ctx.min_group_size)
    units = ctx.ds.metrics.set_index("metric")["unit"]
    view = mon[["metric", "latest", "assessment", "slope", "p_value", "peer_rank", "n_peers", "peer_percentile",
                "vs_benchmark", "signals"]].copy()
    view["assessment"] = view["assessment"].map(lambda a: _ARROWS.get(a, a))
    view["latest"] = [_fmt(v, units.get(m, "")) for v, m in zip(view["latest"], view["metric"])]
    hidden = view["metric"].isin(people) & small
    if hidden.any():
        for col in view.columns[1:]:
            view[col] = view[col].astype(object)
            view.loc[hidden, col] = label
    _show(view, caption=f"KPIs of {ctx.team_name} over the 13 weeks to {ctx.as_of:%d %b %Y} "
                        "(trend: Mann–Kendall with Sen's slope; signals: control-chart rules)",
          empty="No KPIs.")

    shown = [m for m in mon["metric"] if not (small and m in people)]
    if shown:
        ncols = 3
        nrows = int(np.ceil(len(shown) / ncols))
        fig, axes = plt.subplots(nrows, ncols, figsize=(11, 2.8 * nrows), squeeze=False)
        for ax, metric in zip(axes.flat, shown):
            series = ctx.ds.kpi_series(ctx.team_id, metric)
            series = series[series.index <= ctx.as_of].tail(52)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                control_chart(series, baseline=26, label=metric, autocorrelation="adjust").plot(ax=ax)
            ax.set_title(metric, fontsize=9)
            ax.tick_params(labelsize=7)
            ax.set_xlabel("")
            if ax.get_legend():
                ax.get_legend().remove()
            unit = units.get(metric, "")
            ax.set_ylabel(unit if isinstance(unit, str) else "", fontsize=8)
        for ax in list(axes.flat)[len(shown):]:
            ax.axis("off")
        fig.suptitle("Control charts, last 52 weeks (limits from the first 26, allowing for autocorrelation; "
                     "signals marked)", fontsize=10)
        _show_figure(fig)
        bench = ctx.team_table("benchmark", teams=[ctx.team_id] + ctx.ds.peers(ctx.team_id))
        comparable = [m for m in shown if (bench["metric"] == m).sum() > 1]
        if comparable:
            nrows = int(np.ceil(len(comparable) / ncols))
            fig, axes = plt.subplots(nrows, ncols, figsize=(11, 2.9 * nrows), squeeze=False)
            small_ids = set(ctx.ds.teams.loc[ctx.ds.teams["headcount"].fillna(10**9) < ctx.min_group_size,
                                             "team_id"])
            for ax, metric in zip(axes.flat, comparable):
                rows = bench[bench["metric"] == metric]
                if metric in people:  # never show a small peer team's people metric on its own
                    rows = rows[~rows["team_id"].isin(small_ids)]
                plot_peer_comparison(rows, team_id=ctx.team_id, metric=metric, ax=ax,
                                     unit=units.get(metric, "") if isinstance(units.get(metric, ""), str) else "")
                ax.set_title(metric, fontsize=9)
                ax.tick_params(labelsize=7)
            for ax in list(axes.flat)[len(comparable):]:
                ax.axis("off")
            fig.suptitle("The team against its peers (latest value; dashed: company median)", fontsize=10)
            _show_figure(fig)
    if hidden.any():
        _display_html(_para(f"People metrics of {ctx.team_name} are not shown: the team has fewer than "
                            f"{ctx.min_group_size} people.", "okr-note"))
    return view


def _driver_view(rows: pd.DataFrame, ctx: Any) -> pd.DataFrame:
    names = {"*": "all teams (pooled)"}
    view = rows.assign(scope=rows["team_id"].map(lambda t: names.get(t, ctx.ds.team_name(t) if t in
                                                                     set(ctx.ds.teams["team_id"]) else t)))
    cols = ["leading", "lagging", "scope", "lag", "correlation", "ci_low", "ci_high", "q_value", "oos_skill",
            "verdict", "reason"]
    order = {"leads": 0, "reverse": 1, "contemporaneous": 2, "no evidence": 3, "insufficient data": 4}
    view = view.assign(_o=view["verdict"].map(order).fillna(9), _s=(view["team_id"] != "*"))
    return view.sort_values(["_o", "lagging", "leading", "_s"])[cols].reset_index(drop=True)


def leading_indicators(ctx: Any) -> pd.DataFrame:
    """Drivers of the lagging metrics behind this team's key results, pooled over all teams and for this
    team, with lag and evidence; and a heat map of lagged correlations.

    A small team's own estimates of people metrics are never shown (they stay in the pooled rows).
    """
    drivers = ctx.team_table("drivers", teams=["*", ctx.team_id])  # pooled rows and this team's
    krs = ctx.team_table("kr_scores")
    targets = sorted(set(krs["metric"].dropna()) & set(drivers["lagging"])) if len(drivers) else []
    if not targets:
        _display_html(_para(f"None of {ctx.team_name}'s key results is measured by a lagging KPI with candidate "
                            "drivers in the catalogue.", "okr-note"))
        return pd.DataFrame()
    rows = drivers[drivers["lagging"].isin(targets) & drivers["team_id"].isin(["*", ctx.team_id])]
    people = _people_metrics(ctx.ds)
    if _small_team(ctx):
        rows = rows[(rows["team_id"] == "*") | ~(rows["lagging"].isin(people) | rows["leading"].isin(people))]
    found = rows[(rows["verdict"] == "leads") & (rows["team_id"] == "*")]
    if len(found):
        unit = {"W": "week", "M": "month", "Q": "quarter"}.get(str(found["freq"].iloc[0]), "period")
        text = "; ".join(f"{r.leading} leads {r.lagging} by {int(r.lag)} {unit}{'s' if r.lag != 1 else ''} "
                         f"(correlation {r.correlation:+.2f}, q = {r.q_value:.2g})" for r in found.itertuples())
        _display_html(_para(f"Across the organisation: {text}."))
    else:
        _display_html(_para("No leading KPI in the catalogue predicts these key results' metrics with enough "
                            "evidence (see the table for what was tested).", "okr-note"))
    view = _driver_view(rows, ctx)
    shown = view[view["verdict"] != "no evidence"]
    _show(shown, caption=f"Drivers of {', '.join(targets)}: pooled and for {ctx.team_name} "
                         "(only pairs with a verdict other than 'no evidence')",
          empty="Every tested driver gives 'no evidence'.")
    lc = ctx.table("lagged_correlations")
    leading = set(ctx.ds.metrics.loc[ctx.ds.metrics["kind"] == "leading", "metric"])
    lc = lc[lc["metric_y"].isin(targets) & lc["metric_x"].isin(leading) & (lc["lag"] >= 0)]
    if len(lc):
        fig, ax = plt.subplots(figsize=(8.5, 0.45 * lc[["metric_x", "metric_y"]].drop_duplicates().shape[0] + 1.8))
        plot_lagged_correlations(lc, ax=ax, title="Lagged correlations, all teams (leading metric first)")
        _show_figure(fig)
    return view


def hygiene(ctx: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """OKR hygiene findings for this team and candidate key results for next quarter."""
    findings = ctx.team_table("lint")
    _show(findings[["severity", "code", "message"]] if len(findings) else findings,
          caption=f"OKR hygiene findings, {ctx.quarter.label}",
          empty="No findings: the team's OKRs follow every hygiene rule.")
    cands = ctx.team_table("candidates")
    if len(cands) and _small_team(ctx):
        cands = cands[~cands["metric"].isin(_people_metrics(ctx.ds))]
    cols = ["metric", "reason", "latest", "suggested_baseline", "suggested_target", "direction", "evidence"]
    _show(cands[cols] if len(cands) else cands,
          caption=f"Candidate key results for {ctx.quarter.next().label}",
          empty="No KPI stands out as a candidate key result for next quarter.")
    return findings, cands
