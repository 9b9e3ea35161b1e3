"""The sections of a team's quarterly review (``notebooks/team_quarterly_review.ipynb``).

Each section is one call, e.g. ``team.scorecard(ctx)`` with the :class:`ReportContext` from
:func:`open_report`; it displays escaped HTML tables and static charts and returns the data it showed.
Each table comes from a pure function, e.g. ``team.scorecard_table(ctx)``, that returns it (through the
privacy gate) without displaying anything: a notebook can take it and show it its own way.
"""

from __future__ import annotations

import html
import warnings
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..forecasting import forecast_key_result
from ..formatting import number as _fmt
from ..formatting import percent as _percent
from ..impact import ImpactResult
from ..monitoring import control_chart
from ..plots import (
    plot_control_charts,
    plot_kr_progress,
    plot_kr_scores,
    plot_lagged_correlations,
    plot_peer_comparisons,
)
from ..resample import infer_freq
from ..rules import (
    BASELINE_PERIODS,
    CHART_PERIODS,
    MONITOR_WINDOW,
    STATUS_ORDER,
    VERDICT_ORDER,
    band_rule,
    expectation_text,
    window_label,
)
from .common import (
    _ARROWS,
    _band_cell,
    _forecasts,
    _gate,
    _hidden_krs,
    _hidden_reason,
    _show_figure,
    driver_sentences,
    methods,
    record_summary,
)
from .display import _display_html, _para, _show, show_sentences
from .shared import SHARED_ANALYSES

__all__ = [
    "hygiene",
    "initiatives",
    "initiatives_table",
    "hygiene_tables",
    "key_result_charts",
    "kpi_panel",
    "kpi_table",
    "leading_indicators",
    "leading_indicators_table",
    "methods",
    "record_summary",
    "scorecard",
    "scorecard_table",
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
        worrying["order"] = worrying["status"].map(STATUS_ORDER)
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
    cands = _gate(ctx, ctx.team_table("candidates"), kind="candidates")
    declining = cands[cands["reason"] == "declining"]["metric"].unique().tolist() if len(cands) else []
    if declining:
        sentences.append(f"Declining KPI{'s' if len(declining) > 1 else ''}: {', '.join(declining)} — "
                         "candidates for next quarter's key results.")
    findings = _gate(ctx, ctx.team_table("lint"), kind="lint")
    if len(findings):
        sentences.append(f"{len(findings)} OKR hygiene finding{'s' if len(findings) != 1 else ''} "
                         "(see the hygiene section).")
    return sentences


def summary(ctx: Any) -> list[str]:
    """Display the summary sentences; returns them."""
    sentences = summary_sentences(ctx)
    show_sentences(sentences)
    return sentences


#: Key-result columns the scorecard leaves empty when suppression hides them (its status says why).
_SCORECARD_BLANK = ("current", "progress", "score", "band", "p_hit")
_SCORECARD_COLUMNS = ["objective_id", "objective_title", "objective_kind", "objective_score", "objective_band",
                      "objective_status", "met_expectation", "kr_id", "title", "metric", "direction", "baseline",
                      "target", "current", "unit", "progress", "score", "band", "status", "p_hit", "final",
                      "suppressed"]


def scorecard_table(ctx: Any) -> pd.DataFrame:
    """The scorecard's rows, through the privacy gate: objectives and their key results, with P(hit).

    Returns
    -------
    DataFrame
        One row per key result (objectives in order): objective_id, objective_title, objective_kind,
        objective_score, objective_band, objective_status, met_expectation (of the objective), kr_id, title,
        metric, direction, baseline, target, current, unit, progress, score, band, status, p_hit (the
        forecast probability of the scored outcome; after the quarter the outcome itself, 1 or 0; missing
        without forecasts), final (bool: the quarter is over, p_hit is the outcome), suppressed (bool). A key
        result that suppression hides has current, progress, score, band and p_hit empty and its status
        reading the suppression label; its objective's score, band and met_expectation are empty and its
        status reads the label.
    """
    krs = ctx.team_table("kr_scores")
    if krs.empty:
        return krs.reindex(columns=_SCORECARD_COLUMNS)
    objs = _gate(ctx, ctx.team_table("objective_scores"), kind="objective_scores",
                 blank=("score", "band", "met_expectation"))
    fc = _forecasts(ctx)
    table = krs.merge(objs[["objective_id", "score", "band", "met_expectation", "status"]]
                      .rename(columns={"score": "objective_score", "band": "objective_band",
                                       "status": "objective_status"}), on="objective_id", how="left")
    if fc is not None and len(fc):
        table = table.merge(fc[["kr_id", "p_hit"]], on="kr_id", how="left")
        # after the quarter p_hit is the observed outcome (1 or 0): the scorecard says "final: hit / missed"
        final = fc.set_index("kr_id")["final"] if "final" in fc else pd.Series(dtype=bool)
        table["final"] = table["kr_id"].map(final).fillna(False).astype(bool)
    else:
        table["p_hit"] = np.nan
        table["final"] = False
    table = _gate(ctx, table, kind="kr_scores", blank=_SCORECARD_BLANK)
    return table[_SCORECARD_COLUMNS]


def _p_hit_text(p_hit: Any, final: bool) -> str:
    """The scorecard's P(hit) cell: the forecast while the quarter is open, the outcome once it is over."""
    if final and pd.notna(p_hit) and isinstance(p_hit, (int, float, np.floating)):
        return "final: hit" if p_hit >= 0.5 else "final: missed"
    return _percent(p_hit)


def scorecard(ctx: Any) -> pd.DataFrame:
    """Objectives and their key results: baseline, target, current, score, band, status, p_hit, kind, met.

    Displays :func:`scorecard_table` as a table and a chart of the scores shown.

    Returns
    -------
    DataFrame
        One row per key result: objective_title, objective_kind, met_expectation, kr_id, title, metric,
        direction, baseline, target, current, unit, score, band, status, p_hit.
    """
    table = scorecard_table(ctx)
    if table.empty:
        _display_html(_para(f"{ctx.team_name} has no key results in {ctx.quarter.label}.", "okr-note"))
        return ctx.team_table("kr_scores")
    hidden = table["suppressed"].astype(bool)
    e = html.escape
    rows = []
    for obj_id, group in table.groupby("objective_id", sort=False):
        first = group.iloc[0]
        met = first["met_expectation"]
        met_text = "—" if pd.isna(met) else ("met" if bool(met) else "not met")
        need = expectation_text(first["objective_kind"])
        rows.append(
            f'<tr class="okr-objective"><td colspan="6"><strong>{e(str(first["objective_title"]))}</strong> '
            f'<span class="okr-note">{e(str(first["objective_kind"]))} · needs {need} · {met_text}</span></td>'
            f'<td class="num">{_fmt(first["objective_score"])}</td><td>{_band_cell(first["objective_band"])}</td>'
            f'<td>{e(str(first["objective_status"]))}</td><td></td></tr>')
        for r in group.itertuples(index=False):
            base = "—" if pd.isna(r.baseline) else _fmt(r.baseline, r.unit)
            p = _p_hit_text(r.p_hit, r.final)
            rows.append(
                f"<tr><td>{e(str(r.title))}</td><td>{e(str(r.direction).replace('_', ' '))}</td>"
                f'<td class="num">{e(base)}</td><td class="num">{e(_fmt(r.target, r.unit))}</td>'
                f'<td class="num">{e(_fmt(r.current, r.unit))}</td><td class="num">{e(_fmt(r.progress))}</td>'
                f'<td class="num">{e(_fmt(r.score))}</td><td>{_band_cell(r.band)}</td><td>{e(str(r.status))}</td>'
                f'<td class="num">{p}</td></tr>')
    head = ("<tr><th>Key result</th><th>Direction</th><th>Baseline</th><th>Target</th><th>Current</th>"
            "<th>Progress</th><th>Score</th><th>Band</th><th>Status</th><th>P(hit)</th></tr>")
    caption = (f"Scorecard of {e(ctx.team_name)}, {e(ctx.quarter.label)}, as of {ctx.as_of:%d %b %Y}. "
               f"Bands: {band_rule(lt='&lt;')}.")
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
    fc = _forecasts(ctx)
    shared = (fc.set_index("kr_id")[["p_hit"] + (["final"] if "final" in fc else [])].to_dict("index")
              if fc is not None and len(fc) else {})
    for r in krs[~hidden].itertuples(index=False):
        points = ci[(ci["kr_id"] == r.kr_id) & (ci["date"] >= q.start) & (ci["date"] <= ctx.as_of)]
        fig, ax = plt.subplots(figsize=(7.5, 3.2))
        drawn_by_forecast = False
        if "forecasts" in SHARED_ANALYSES:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    # calibration=False here: this kernel's data is one team's slice; the probability the chart
                    # states is the shared forecast's, as in the scorecard
                    fc_one = forecast_key_result(ctx.ds, r.kr_id, as_of=ctx.as_of, calibration=False)
                    sh = shared.get(r.kr_id) or {}
                    fc_one.plot(ax=ax, p_hit=sh.get("p_hit", np.nan), outcome=(
                        ("hit" if sh["p_hit"] >= 0.5 else "missed") if sh.get("final") and pd.notna(sh.get("p_hit"))
                        else None))
                drawn_by_forecast = True
            except ValueError:
                drawn_by_forecast = False
        if not drawn_by_forecast:
            plot_kr_progress(points, direction=r.direction, baseline=r.baseline, target=r.target,
                             start=q.start, end=q.end, as_of=ctx.as_of, unit=r.unit, title=str(r.title), ax=ax)
        _show_figure(fig)
        drawn += 1
    return drawn


def _chart_title(forecast: Any, shared: dict | None) -> str:
    """A key-result chart's title: its title and what the scorecard says of it (final outcome, or the shared
    forecast's probability)."""
    head = f"{forecast.title} ({forecast.team_id}, {forecast.quarter.label})"
    p_hit = (shared or {}).get("p_hit", np.nan)
    final = bool((shared or {}).get("final", forecast.final))
    if final:
        outcome = ("hit" if p_hit >= 0.5 else "missed") if pd.notna(p_hit) else (forecast.outcome or "not scored")
        return f"{head}\nfinal: {outcome}"
    if pd.isna(p_hit):
        return f"{head}\n{forecast.method}"
    return f"{head}\n{_percent(p_hit)} likely to reach the target · {forecast.method}"


_KPI_VIEW = ["metric", "latest", "assessment", "slope", "p_value", "peer_rank", "n_peers", "peer_percentile",
             "vs_benchmark", "signals"]


def kpi_table(ctx: Any) -> pd.DataFrame:
    """The team's KPIs as the KPI panel shows them, through the privacy gate.

    Returns
    -------
    DataFrame
        One row per metric: metric, latest (with its unit, as text), assessment (with its arrow), slope,
        p_value, peer_rank, n_peers, peer_percentile, vs_benchmark, signals; every value of a people metric
        of a team below the minimum group size reads the suppression label. Then suppressed (bool).
    """
    mon = ctx.team_table("monitor")
    if mon.empty:
        return mon.reindex(columns=_KPI_VIEW + ["suppressed"])
    units = ctx.ds.metrics.set_index("metric")["unit"]
    view = mon[["team_id"] + _KPI_VIEW].copy()
    view["assessment"] = view["assessment"].map(lambda a: _ARROWS.get(a, a))
    view["latest"] = [_fmt(v, units.get(m, "")) for v, m in zip(view["latest"], view["metric"])]
    return _gate(ctx, view, kind="kpis").drop(columns=["team_id"]).reset_index(drop=True)


def _kpi_freq(ctx: Any) -> str:
    """The frequency the shared ``monitor`` table is computed at: the data's own (``W``, ``M`` or ``Q``)."""
    return infer_freq(ctx.ds)


def kpi_panel(ctx: Any) -> pd.DataFrame:
    """The team's KPIs: trend and assessment arrow, peers, control-chart signals, and charts.

    Displays :func:`kpi_table` (people metrics of a team smaller than ``min_group_size`` are suppressed),
    control charts and a peer comparison of the metrics shown.

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
    table = kpi_table(ctx)
    freq = _kpi_freq(ctx)
    hidden = table["suppressed"].astype(bool)
    view = table.drop(columns=["suppressed"])
    units = ctx.ds.metrics.set_index("metric")["unit"]
    _show(view, caption=f"KPIs of {ctx.team_name} over the {window_label(MONITOR_WINDOW, freq)} to {ctx.as_of:%d %b %Y} "
                        "(trend: Mann–Kendall with Sen's slope; signals: control-chart rules)",
          empty="No KPIs.")

    shown = view.loc[~hidden, "metric"].tolist()
    if shown:
        charts = {}
        for metric in shown:
            series = ctx.ds.kpi_series(ctx.team_id, metric)
            series = series[series.index <= ctx.as_of].tail(CHART_PERIODS)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                charts[metric] = control_chart(series, baseline=BASELINE_PERIODS, label=metric,
                                               autocorrelation="adjust")
        for fig in plot_control_charts(charts, units=units.to_dict(), title=(
                f"Control charts, last {window_label(CHART_PERIODS, freq)} (limits from the first "
                f"{BASELINE_PERIODS}, allowing for autocorrelation; signals circled)")):
            _show_figure(fig)
        bench = ctx.team_table("benchmark", teams=[ctx.team_id] + ctx.ds.peers(ctx.team_id))
        comparable = [m for m in shown if (bench["metric"] == m).sum() > 1]
        if comparable:
            peers = _gate(ctx, bench, kind="peers")  # never a small peer team's people metric on its own
            for fig in plot_peer_comparisons(peers, team_id=ctx.team_id, metrics=comparable, units=units.to_dict(),
                                             title="The team against its peers (latest value; dashed: company median)"):
                _show_figure(fig)
    if hidden.any():
        _display_html(_para(f"People metrics of {ctx.team_name} are not shown: {_hidden_reason(ctx)}.", "okr-note"))
    return view


def _driver_view(rows: pd.DataFrame, ctx: Any) -> pd.DataFrame:
    names = {"*": "all teams (pooled)"}
    view = rows.assign(scope=rows["team_id"].map(lambda t: names.get(t, ctx.ds.team_name(t) if t in
                                                                     set(ctx.ds.teams["team_id"]) else t)))
    cols = ["leading", "lagging", "scope", "lag", "correlation", "ci_low", "ci_high", "q_value", "oos_skill",
            "verdict", "reason"]
    view = view.assign(_o=view["verdict"].map(VERDICT_ORDER).fillna(9), _s=(view["team_id"] != "*"))
    return view.sort_values(["_o", "lagging", "leading", "_s"])[cols].reset_index(drop=True)


def _driver_targets(ctx: Any, drivers: pd.DataFrame) -> list[str]:
    krs = ctx.team_table("kr_scores")
    return sorted(set(krs["metric"].dropna()) & set(drivers["lagging"])) if len(drivers) else []


def _driver_rows(ctx: Any) -> tuple[pd.DataFrame, list[str]]:
    """The driver rows about this team's key-result metrics (pooled and this team's own), through the
    privacy gate with the rows it hides left out; and the lagging metrics they are about."""
    drivers = ctx.team_table("drivers", teams=["*", ctx.team_id])  # pooled rows and this team's
    targets = _driver_targets(ctx, drivers)
    if not targets:
        return drivers.iloc[0:0], targets
    rows = drivers[drivers["lagging"].isin(targets) & drivers["team_id"].isin(["*", ctx.team_id])]
    rows = _gate(ctx, rows, kind="drivers")
    return rows[~rows["suppressed"].astype(bool)].drop(columns=["suppressed"]), targets


def leading_indicators_table(ctx: Any) -> pd.DataFrame:
    """The drivers of the lagging metrics behind this team's key results, through the privacy gate.

    Returns
    -------
    DataFrame
        One row per tested pair and scope, evidence first: leading, lagging, scope ("all teams (pooled)"
        or the team's name), lag, correlation, ci_low, ci_high, q_value, oos_skill, verdict, reason. A
        small team's own rows on people metrics are left out (its data stays in the pooled rows). Empty
        when none of the team's key results is measured by a lagging KPI with candidate drivers.
    """
    rows, targets = _driver_rows(ctx)
    if not targets:
        return pd.DataFrame()
    return _driver_view(rows, ctx)


def leading_indicators(ctx: Any) -> pd.DataFrame:
    """Drivers of the lagging metrics behind this team's key results, pooled over all teams and for this
    team, with lag and evidence; and a heat map of lagged correlations.

    Displays :func:`leading_indicators_table`; a small team's own estimates of people metrics are never
    shown (they stay in the pooled rows).
    """
    rows, targets = _driver_rows(ctx)
    if not targets:
        _display_html(_para(f"None of {ctx.team_name}'s key results is measured by a lagging KPI with candidate "
                            "drivers in the catalogue.", "okr-note"))
        return pd.DataFrame()
    sentences = driver_sentences(rows)
    if sentences:
        show_sentences(sentences)
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


def hygiene_tables(ctx: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """This team's OKR hygiene findings and candidate key results for next quarter, through the privacy gate.

    Returns
    -------
    findings : DataFrame
        :func:`okr_analysis.lint`'s columns and suppressed (bool): a hidden key result's ``KR_STALE``
        finding without its dates, its ``CONFIDENCE_DROP`` left out.
    candidates : DataFrame
        :func:`okr_analysis.candidate_key_results`' columns and suppressed: a small team's people metrics
        left out.
    """
    findings = _gate(ctx, ctx.team_table("lint"), kind="lint")
    cands = _gate(ctx, ctx.team_table("candidates"), kind="candidates")
    return findings, cands


def hygiene(ctx: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """OKR hygiene findings for this team and candidate key results for next quarter
    (displays :func:`hygiene_tables`)."""
    findings, cands = hygiene_tables(ctx)
    _show(findings[["severity", "code", "message"]] if len(findings) else findings,
          caption=f"OKR hygiene findings, {ctx.quarter.label}",
          empty="No findings: the team's OKRs follow every hygiene rule.")
    cols = ["metric", "reason", "latest", "suggested_baseline", "suggested_target", "direction", "evidence"]
    _show(cands[cols] if len(cands) else cands,
          caption=f"Candidate key results for {ctx.quarter.next().label}",
          empty="No KPI stands out as a candidate key result for next quarter.")
    return findings, cands


def initiatives_table(ctx: Any) -> pd.DataFrame:
    """The effect of this team's initiatives on their KPIs (:func:`okr_analysis.initiative_impact`, through
    the privacy gate): one row per initiative, and ``suppressed`` (bool); empty when the team has none."""
    table = ctx.team_table("impact")
    return _gate(ctx, table, kind="impact") if len(table) else table


def initiatives(ctx: Any) -> pd.DataFrame:
    """Did the team's initiatives work? A heading, one sentence and one chart (the team against its
    counterfactual) per initiative; nothing at all when the team has no initiative.

    Returns :func:`initiatives_table`.
    """
    table = initiatives_table(ctx)
    if table.empty:
        return table
    titles = dict(zip(ctx.ds.initiatives["initiative_id"], ctx.ds.initiatives["title"]))
    result = ImpactResult(table, ctx.team_table("impact_series"), ctx.ds.metrics, titles)
    _display_html('<h2 id="initiatives">Initiatives</h2>')
    show_sentences([result.sentence(i) for i in table["initiative_id"]])
    for row in table.itertuples(index=False):
        if str(row.verdict).startswith("suppressed") or not (result.series["initiative_id"] == row.initiative_id).any():
            continue
        fig, ax = plt.subplots(figsize=(7.5, 3.0))
        result.plot(row.initiative_id, ax=ax)
        _show_figure(fig, alt=result.sentence(row.initiative_id))
    return table
