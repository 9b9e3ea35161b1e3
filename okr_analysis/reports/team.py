"""The sections of a team's quarterly review (``notebooks/team_quarterly_review.ipynb``).

Each section is one call, e.g. ``team.scorecard(ctx)`` with the :class:`ReportContext` from
:func:`open_report`; it displays escaped HTML tables and static charts and returns the data it showed.
Each table comes from a pure function, e.g. ``team.scorecard_table(ctx)``, that returns it (through the
privacy gate) without displaying anything: a notebook can take it and show it its own way.
"""

from __future__ import annotations

import html
import re
import warnings
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..forecasting import Calibration, forecast_key_result
from ..formatting import date as _date
from ..formatting import number as _fmt
from ..formatting import percent as _percent
from ..formatting import score as _score
from ..impact import ImpactResult
from ..monitoring import control_chart
from ..plots import (
    plot_control_charts,
    plot_kr_progress,
    plot_lagged_correlations,
    plot_peer_comparisons,
)
from ..resample import infer_freq
from ..scoring import score_objectives
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
    _relabel,
    _show_figure,
    driver_sentences,
    empty_section_note,
    finding_label,
    methods,
    plain_message,
    record_summary,
)
from .display import _display_html, _para, _show, metric_name, show_sentences, sparkline_svg
from .shared import SHARED_ANALYSES

__all__ = [
    "discussion",
    "discussion_sentences",
    "drivers_appendix",
    "forecasts_appendix",
    "monitoring_appendix",
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
def _previous_score(ctx: Any) -> tuple[str, float] | None:
    """The team's own score last quarter (mean of its objectives' scores), when the report may show it: not
    for a team whose figures suppression hides this quarter. None when there is none."""
    try:
        prev = ctx.quarter.previous()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            objs = score_objectives(ctx.ds, prev.label)
    except (ValueError, KeyError):
        return None
    objs = objs[objs["team_id"] == ctx.team_id]
    if objs.empty or objs["score"].isna().all():
        return None
    return prev.label, float(objs["score"].mean())


def _headline(ctx: Any, krs: pd.DataFrame, hidden: pd.Series) -> str | None:
    """The one headline sentence: score, band, objectives meeting expectations, change since last quarter
    and key results on track. None when suppression hides the team's score."""
    teams = ctx.team_table("team_scores")
    if hidden.any() or not len(teams) or pd.isna(teams["score"].iloc[0]):
        return None
    supp = ctx.team_table("team_suppression")
    if len(supp) and bool(supp["suppressed"].iloc[0]):
        return None
    row = teams.iloc[0]
    objs = ctx.team_table("objective_scores")
    met = int(objs["met_expectation"].fillna(False).astype(bool).sum()) if len(objs) else 0
    sentence = f"{ctx.team_name} scores {row['score']:.2f} ({row['band']}) as of {_date(ctx.as_of)}"
    prev = _previous_score(ctx)
    if prev is not None:
        label, before = prev
        change = round(row["score"], 2) - round(before, 2)
        if abs(change) < 0.005:
            sentence += f", the same as in {label}"
        else:
            sentence += f", {'up' if change > 0 else 'down'} {abs(change):.2f} from {before:.2f} in {label}"
    n_obj = len(objs)
    on = int((krs["status"] == "on track").sum())
    sentence += (f"; {met} of {n_obj} objective{'s' if n_obj != 1 else ''} meet{'s' if met == 1 else ''} "
                 f"{'its' if n_obj == 1 else 'their'} expectation and {on} of {len(krs)} key "
                 f"result{'s' if len(krs) != 1 else ''} {'is' if on == 1 else 'are'} on track.")
    return sentence


def summary_sentences(ctx: Any) -> list[str]:
    """The report's opening: one headline sentence (score, band, change since last quarter, objectives
    meeting expectations, key results on track), computed from the numbers (plain text, not yet escaped);
    a sentence on hidden key results when suppression hides some, and one on key results without a check-in."""
    krs = ctx.team_table("kr_scores")
    if krs.empty:
        return [f"{ctx.team_name} has no key results in {ctx.quarter.label}."]
    sentences = []
    hidden = _hidden_krs(ctx, krs)
    head = _headline(ctx, krs, hidden)
    if head:
        sentences.append(head)
    if hidden.any():
        k = int(hidden.sum())
        sentences.append(f"{k} key result{'s' if k != 1 else ''} on people metrics {'is' if k == 1 else 'are'} "
                         f"not shown: {_hidden_reason(ctx)}.")
        krs = krs[~hidden]
        if krs.empty:
            return sentences
        n, on = len(krs), int((krs["status"] == "on track").sum())
        sentences.append(f"The one key result shown is {'' if on else 'not '}on track." if n == 1 else
                         f"{on} of {n} key results shown {'is' if on == 1 else 'are'} on track.")
    nodata = int((krs["status"] == "no data").sum())
    if nodata:
        sentences.append(f"{nodata} key result{'s' if nodata != 1 else ''} ha{'s' if nodata == 1 else 've'} "
                         "no check-in yet.")
    return sentences


def summary(ctx: Any) -> list[str]:
    """Display the summary sentences; returns them."""
    sentences = summary_sentences(ctx)
    show_sentences(sentences)
    return sentences


def discussion_sentences(ctx: Any) -> list[str]:
    """One to three things worth discussing, each a sentence with its number: the key result furthest
    behind, a KPI signal, an initiative's result, an OKR hygiene finding (in that order of preference;
    nothing that suppression hides). Plain text, not yet escaped."""
    items: list[str] = []
    krs = ctx.team_table("kr_scores")
    if len(krs):
        krs = krs[~_hidden_krs(ctx, krs)]
        worrying = krs[krs["status"].isin(["at risk", "off track"])].copy()
        if len(worrying):
            fc = _forecasts(ctx)
            p_hit = (fc.set_index("kr_id")["p_hit"] if fc is not None and len(fc) and "p_hit" in fc
                     else pd.Series(dtype=float))
            final = (fc.set_index("kr_id")["final"] if fc is not None and len(fc) and "final" in fc
                     else pd.Series(dtype=bool))
            worrying["order"] = worrying["status"].map(STATUS_ORDER)
            r = worrying.sort_values(["order", "score"]).iloc[0]
            text = f"“{r['title']}” is {r['status']}"
            if pd.notna(r["current"]) and r["direction"] != "milestone":
                text += f" at {_fmt(r['current'], r['unit'])} against a target of {_fmt(r['target'], r['unit'])}"
            elif pd.notna(r["score"]):
                text += f" with a score of {r['score']:.2f}"
            p = p_hit.get(r["kr_id"], np.nan)
            if bool(final.get(r["kr_id"], False)) and pd.notna(p):
                text += "; it " + ("reached its target" if p >= 0.5 else "missed its target")
            elif pd.notna(p):
                text += f"; it is {_percent(p)} likely to reach it by {_date(ctx.quarter.end)}"
            more = len(worrying) - 1
            if more:
                text += f" ({more} more key result{'s' if more != 1 else ''} at risk or off track)"
            items.append(text + ".")
    mon = kpi_table(ctx)
    if len(mon):
        mon = mon[~mon["suppressed"].astype(bool)]
        raw = ctx.team_table("monitor").set_index("metric")
        worse = [m for m in mon["metric"] if raw.loc[m, "assessment"] == "worsening"]
        signals = [m for m in mon["metric"] if pd.notna(raw.loc[m, "n_signals"]) and raw.loc[m, "n_signals"] > 0]
        units = ctx.ds.metrics.set_index("metric")["unit"]
        if worse:
            m = worse[0]
            r = raw.loc[m]
            items.append(f"{metric_name(m)} is getting worse: {_fmt(r['slope'], '')} "
                         f"{units.get(m, '') if isinstance(units.get(m, ''), str) else ''} a period over the "
                         f"{window_label(MONITOR_WINDOW, _kpi_freq(ctx))} to {_date(r['window_end'])}, latest "
                         f"{_fmt(r['latest'], units.get(m, ''))}.".replace("  ", " "))
        elif signals:
            m = signals[0]
            r = raw.loc[m]
            n = int(r["n_signals"])
            items.append(f"{metric_name(m)} had {n} unusual reading{'s' if n != 1 else ''} on its control chart "
                         f"in the {window_label(MONITOR_WINDOW, _kpi_freq(ctx))} to {_date(r['window_end'])}; "
                         f"latest {_fmt(r['latest'], units.get(m, ''))}.")
    table = initiatives_table(ctx)
    if len(table):
        shown = table[~table["suppressed"].astype(bool)] if "suppressed" in table else table
        if len(shown):
            titles = dict(zip(ctx.ds.initiatives["initiative_id"], ctx.ds.initiatives["title"]))
            result = ImpactResult(table, ctx.team_table("impact_series"), ctx.ds.metrics, titles)
            items.append(result.sentence(shown["initiative_id"].iloc[0]))
    findings, _ = hygiene_tables(ctx)
    if len(findings):
        findings = findings[~findings["suppressed"].astype(bool)] if "suppressed" in findings else findings
        if len(findings):
            order = findings.assign(_o=(findings["severity"] != "warning")).sort_values("_o", kind="stable")
            first = order.iloc[0]
            n = len(findings)
            lead = f"{n} OKR hygiene finding{'s' if n != 1 else ''}" + ("; the first: " if n > 1 else ": ")
            items.append(lead + plain_message(ctx, first))
    return items[:3]


def discussion(ctx: Any) -> list[str]:
    """Display the one to three things worth discussing (:func:`discussion_sentences`); returns them."""
    items = discussion_sentences(ctx)
    if items:
        show_sentences(items, title="Worth discussing")
    return items


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
    """The scorecard's outlook cell in words: "final: hit / missed" once the quarter is over, "forecast: 64%
    likely" while it is open, "—" without a forecast."""
    if isinstance(p_hit, (int, float, np.floating)) and pd.notna(p_hit):
        if final:
            return "final: hit" if p_hit >= 0.5 else "final: missed"
        return f"forecast: {_percent(p_hit)} likely"
    return "—"


def _nowrap(text: Any) -> str:
    """Escaped text whose words stay on one line (a status, an outlook)."""
    return html.escape(str(text)).replace(" ", "&nbsp;")


def _status_cell(ctx: Any, status: Any) -> str:
    """A status cell: on one line; a suppression label as the reason it applies (which may wrap)."""
    reasons = _relabel(ctx)
    if str(status) in reasons:
        return html.escape(reasons[str(status)])
    return _nowrap(status)


def _current_vs_target(r: Any) -> str:
    if r.direction == "milestone":
        if pd.isna(r.current):
            return "—"
        return "done" if r.current >= 1 else ("not started" if r.current <= 0 else f"{r.current:.0%} done")
    cur = "—" if pd.isna(r.current) else _fmt(r.current, r.unit)
    verb = {"maintain": "line"}.get(str(r.direction), "target")
    return f"{cur} ({verb} {_fmt(r.target, r.unit)})"


def _sparkline(ctx: Any, r: Any) -> str:
    ci = ctx.ds.checkins
    points = ci[(ci["kr_id"] == r.kr_id) & (ci["date"] >= ctx.quarter.start) & (ci["date"] <= ctx.as_of)]
    points = points.sort_values("date")
    target = float(r.target) if r.direction != "milestone" and pd.notna(r.target) else None
    return sparkline_svg(points["value"].to_numpy(dtype=float), target=target,
                         label=f"Check-ins of {r.title}: {len(points)} this quarter, latest {_fmt(r.current, r.unit)}")


def scorecard(ctx: Any) -> pd.DataFrame:
    """The review: each objective with its score, band and expectation (committed 1.0, aspirational 0.7),
    and each key result on one line: current against target in its unit, a sparkline of its check-ins,
    score and band, status, and the outlook in words ("final: hit / missed" or "forecast: 64% likely").

    Displays :func:`scorecard_table` (one table, through the report's renderer).

    Returns
    -------
    DataFrame
        One row per key result: objective_title, objective_kind, met_expectation, kr_id, title, metric,
        direction, baseline, target, current, unit, score, band, status, p_hit.
    """
    table = scorecard_table(ctx)
    cols = ["objective_title", "objective_kind", "met_expectation", "kr_id", "title", "metric", "direction", "baseline",
            "target", "current", "unit", "score", "band", "status", "p_hit"]
    if table.empty:
        _display_html(_para(f"{ctx.team_name} has no key results in {ctx.quarter.label}.", "okr-note"))
        return ctx.team_table("kr_scores")
    e = html.escape
    rows, kinds = [], []
    for _, group in table.groupby("objective_id", sort=False):
        first = group.iloc[0]
        met = first["met_expectation"]
        met_text = "" if pd.isna(met) else (" · met" if bool(met) else " · not met")
        need = expectation_text(first["objective_kind"])
        rows.append({
            "item": (f"<strong>{e(str(first['objective_title']))}</strong> <span class=\"okr-note\">"
                     f"{e(str(first['objective_kind']))}, needs {need}{met_text}</span>"),
            "now": "", "spark": "",
            "score": (f"{_score(first['objective_score'])}&nbsp;{_band_cell(first['objective_band'])}"
                      if pd.notna(first["objective_score"]) else "—"),
            "status": _status_cell(ctx, first["objective_status"]), "outlook": ""})
        kinds.append("okr-objective")
        for r in group.itertuples(index=False):
            hidden = bool(r.suppressed)
            rows.append({
                "item": e(str(r.title)),
                "now": "—" if hidden else e(_current_vs_target(r)),
                "spark": "" if hidden else _sparkline(ctx, r),
                "score": "—" if hidden or pd.isna(r.score) else f"{_score(r.score)}&nbsp;{_band_cell(r.band)}",
                "status": _status_cell(ctx, r.status),
                "outlook": "—" if hidden else _nowrap(_p_hit_text(r.p_hit, r.final))})
            kinds.append("okr-kr")
    view = pd.DataFrame(rows)
    caption = (f"{ctx.team_name}, {ctx.quarter.label}, as of {_date(ctx.as_of)}. "
               f"Bands: {band_rule()}.")
    _show(view, caption=caption, html_columns=list(view.columns), classes="okr-scorecard",
          labels={"item": "Objective / key result", "now": "Current (target)", "spark": "Check-ins",
                  "score": "Score", "status": "Status", "outlook": "Outlook"},
          replace=_relabel(ctx), row_classes=pd.Series(kinds))
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
    rows = list(krs[~hidden].itertuples(index=False))
    for start in range(0, len(rows), 2):  # two charts side by side: half the height of one per row
        pair = rows[start:start + 2]
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.1), squeeze=False)
        for ax, r in zip(axes.flat, pair):
            _key_result_chart(ctx, r, ax=ax, points=ci[(ci["kr_id"] == r.kr_id) & (ci["date"] >= q.start)
                                                       & (ci["date"] <= ctx.as_of)], shared=shared.get(r.kr_id))
            drawn += 1
        if len(pair) == 1:
            axes.flat[1].axis("off")
        _show_figure(fig)
    return drawn


def _interval(low: Any, high: Any) -> str:
    """An interval in one cell: "0.39 to 0.54"."""
    if pd.isna(low) or pd.isna(high):
        return "—"
    return f"{_fmt(low)}\u00a0to\u00a0{_fmt(high)}"


def _chart_calibration(ctx: Any) -> "Calibration | bool":
    """The shared calibration's interval factors as a :class:`Calibration` that leaves probabilities alone
    (False when there are none: the model's own band)."""
    table = ctx.table("forecast_intervals") if "forecast_intervals" in SHARED_ANALYSES else pd.DataFrame()
    if table.empty:
        return False
    row = table.iloc[0]
    return Calibration(params=None, n=0, quarters=(), at=float(row["at"]), label="intervals of the forecasts table",
                       interval_scale=(float(row["interval_scale_80"]), float(row["interval_scale_95"])),
                       interval_n=int(row["n"]))


def _key_result_chart(ctx: Any, r: Any, *, ax: Any, points: pd.DataFrame, shared: dict | None) -> None:
    """One key result's chart on ``ax``: the forecast's when one can be made, else the check-ins and pace."""
    q = ctx.quarter
    if "forecasts" in SHARED_ANALYSES:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # this kernel's data is one team's slice, so the calibration is not fitted here: the probability
                # the chart states is the shared forecast's (as in the scorecard), and its band is rescaled by
                # the shared calibration's interval factors (as the forecasts table's ranges are)
                fc_one = forecast_key_result(ctx.ds, r.kr_id, as_of=ctx.as_of, calibration=_chart_calibration(ctx))
                sh = shared or {}
                p_hit = sh.get("p_hit", np.nan)
                final = bool(sh.get("final", fc_one.final))
                fc_one.plot(ax=ax, p_hit=p_hit, outcome=(("hit" if p_hit >= 0.5 else "missed")
                                                         if final and pd.notna(p_hit) else None))
            return
        except ValueError:
            pass
    plot_kr_progress(points, direction=r.direction, baseline=r.baseline, target=r.target,
                     start=q.start, end=q.end, as_of=ctx.as_of, unit=r.unit, title=str(r.title), ax=ax)


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


def _peer_text(rank: Any, n_peers: Any) -> str:
    """Where the team stands among its peers, in words ("best of 3", "2nd of 3")."""
    if not isinstance(rank, (int, float, np.floating)) or pd.isna(rank) or pd.isna(n_peers) or n_peers < 1:
        return "—" if not isinstance(rank, str) else rank
    total, place = int(n_peers) + 1, int(rank)
    if place == 1:
        return f"best of {total}"
    if place == total:
        return f"last of {total}"
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(place if place < 20 else place % 10, "th")
    return f"{place}{suffix} of {total}"


def _signal_text(n: Any) -> str:
    if isinstance(n, str):
        return n
    if pd.isna(n) or n == 0:
        return "none"
    return f"{int(n)} unusual reading{'s' if n != 1 else ''}"


def _kpi_view(ctx: Any, shown: pd.DataFrame) -> pd.DataFrame:
    """The KPI panel's small table: each KPI in words with its unit, latest, trend, peers, benchmark, signals."""
    raw = ctx.team_table("monitor").set_index("metric")
    return pd.DataFrame({
        "kpi": [metric_name(m) for m in shown["metric"]],
        "latest": shown["latest"].to_numpy(),
        "trend": shown["assessment"].to_numpy(),
        "peers": [_peer_text(r, n) for r, n in zip(shown["peer_rank"], shown["n_peers"])],
        "vs_benchmark": shown["vs_benchmark"].fillna("—").to_numpy(),
        "signals": [_signal_text(raw["n_signals"].get(m, np.nan)) for m in shown["metric"]],
    })


def _hidden_list_note(ctx: Any, metrics: list[str], what: str = "KPIs") -> str:
    names = ", ".join(metric_name(m) for m in metrics)
    return _para(f"{len(metrics)} {what} on people are not shown ({names}): {_hidden_reason(ctx)}.", "okr-note")


def kpi_panel(ctx: Any) -> pd.DataFrame:
    """The team's KPIs in words: what each measures, latest value, trend, place among peers, benchmark and
    control-chart signals; control charts of the KPIs worth a look and the peer comparison of the key results'
    KPIs. People metrics that suppression hides are named in one note, not shown as cells (the full
    monitoring table is in the appendix, :func:`monitoring_appendix`).

    Returns
    -------
    DataFrame
        :func:`kpi_table` without ``suppressed``: one row per metric: metric, latest, assessment, slope,
        p_value, peer_rank, n_peers, peer_percentile, vs_benchmark, signals (people metrics of a small team
        read "suppressed …").
    """
    mon = ctx.team_table("monitor")
    if mon.empty:
        _display_html(_para(f"No KPI data for {ctx.team_name} up to {_date(ctx.as_of)}.", "okr-note"))
        return mon
    table = kpi_table(ctx)
    freq = _kpi_freq(ctx)
    hidden = table["suppressed"].astype(bool)
    view = table.drop(columns=["suppressed"])
    units = ctx.ds.metrics.set_index("metric")["unit"]
    if (~hidden).any():
        _show(_kpi_view(ctx, view[~hidden]),
              caption=f"KPIs of {ctx.team_name} over the {window_label(MONITOR_WINDOW, freq)} to {_date(ctx.as_of)} "
                      "(what each measures: see the appendix)")
    if hidden.any():
        _display_html(_hidden_list_note(ctx, view.loc[hidden, "metric"].tolist()))

    shown = view.loc[~hidden, "metric"].tolist()
    raw = mon.set_index("metric")
    kr_metrics = set(ctx.team_table("kr_scores")["metric"].dropna())
    labels = {m: metric_name(m) for m in shown}
    unit_map = {m: (u if isinstance(u, str) else "") for m, u in units.items()}
    # control charts only of the KPIs worth a look: a signal or a trend
    # (a key result's own metric is charted with its check-ins above): the three with most signals first
    worth = [m for m in shown if (pd.notna(raw.loc[m, "n_signals"]) and raw.loc[m, "n_signals"] > 0)
             or raw.loc[m, "assessment"] != "stable"]
    worth = sorted(worth, key=lambda m: (-(raw.loc[m, "n_signals"] if pd.notna(raw.loc[m, "n_signals"]) else 0),
                                         raw.loc[m, "assessment"] == "stable"))[:3]
    if worth:
        charts = {}
        for metric in worth:
            series = ctx.ds.kpi_series(ctx.team_id, metric)
            series = series[series.index <= ctx.as_of].tail(CHART_PERIODS)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                charts[metric] = control_chart(series, baseline=BASELINE_PERIODS, label=metric,
                                               autocorrelation="adjust")
        for fig in plot_control_charts(charts, labels=labels, units=unit_map, title=(
                f"Control charts of the KPIs worth a look, last {window_label(CHART_PERIODS, freq)} (limits "
                f"from the first {BASELINE_PERIODS}, allowing for autocorrelation; signals circled)")):
            _show_figure(fig)
    bench = ctx.team_table("benchmark", teams=[ctx.team_id] + ctx.ds.peers(ctx.team_id))
    comparable = [m for m in shown if m in kr_metrics and (bench["metric"] == m).sum() > 1][:3]
    if comparable:
        peers = _gate(ctx, bench, kind="peers")  # never a small peer team's people metric on its own
        for fig in plot_peer_comparisons(peers, team_id=ctx.team_id, metrics=comparable, labels=labels,
                                         units=unit_map, title="The key results' KPIs against the peer teams "
                                                               "(latest value; dashed: company median)"):
            _show_figure(fig)
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
    """Drivers of the lagging metrics behind this team's key results, in sentences (the driver analysis's
    own, pooled over all teams), and a heat map of lagged correlations; the full table of tested pairs is in
    the appendix (:func:`drivers_appendix`).

    Returns :func:`leading_indicators_table` (a small team's own estimates of people metrics are never
    shown: they stay in the pooled rows).
    """
    rows, targets = _driver_rows(ctx)
    if not targets:
        _display_html(_para(f"None of {ctx.team_name}'s key results is measured by a lagging KPI with candidate "
                            "drivers in the catalogue.", "okr-note"))
        return pd.DataFrame()
    sentences = driver_sentences(rows)
    names = ", ".join(metric_name(t) for t in targets)
    if sentences:
        show_sentences(sentences)
    else:
        _display_html(_para(f"No leading KPI in the catalogue predicts {names} with enough evidence.", "okr-note"))
    view = _driver_view(rows, ctx)
    tested = len(view[["leading", "lagging"]].drop_duplicates())
    _display_html(_para(f"{tested} leading–lagging pair{'s' if tested != 1 else ''} about {names} "
                        f"{'was' if tested == 1 else 'were'} tested; every estimate and the lagged correlations are "
                        "in the appendix.", "okr-note"))
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
    """OKR hygiene findings for this team and candidate key results for next quarter, in words
    (displays :func:`hygiene_tables`)."""
    findings, cands = hygiene_tables(ctx)
    if len(findings):
        view = pd.DataFrame({"code": [finding_label(c) for c in findings["code"]],
                             "severity": findings["severity"].to_numpy(),
                             "message": [plain_message(ctx, r) for _, r in findings.iterrows()]})
    else:
        view = findings
    _show(view, caption=f"OKR hygiene findings, {ctx.quarter.label}", replace=_relabel(ctx),
          empty="No findings: the team's OKRs follow every hygiene rule.")
    if len(cands):
        units = ctx.ds.metrics.set_index("metric")["unit"]
        visible = cands[~cands["suppressed"].astype(bool)] if "suppressed" in cands else cands
        cview = pd.DataFrame({
            "kpi": [metric_name(m) for m in visible["metric"]],
            "reason": visible["reason"].astype(str).str.replace("_", " ").to_numpy(),
            "latest": [_fmt(v, units.get(m, "")) for v, m in zip(visible["latest"], visible["metric"])],
            "suggested_target": [_fmt(v, units.get(m, "")) for v, m in zip(visible["suggested_target"],
                                                                            visible["metric"])],
            "direction": visible["direction"].to_numpy(),
        })
    else:
        cview = cands
    _show(cview, caption=f"Candidate key results for {ctx.quarter.next().label}", replace=_relabel(ctx),
          labels={"reason": "Why"},
          empty="No KPI stands out as a candidate key result for next quarter.")
    return findings, cands


def initiatives_table(ctx: Any) -> pd.DataFrame:
    """The effect of this team's initiatives on their KPIs (:func:`okr_analysis.initiative_impact`, through
    the privacy gate): one row per initiative, and ``suppressed`` (bool); empty when the team has none."""
    table = ctx.team_table("impact")
    return _gate(ctx, table, kind="impact") if len(table) else table


def initiatives(ctx: Any) -> pd.DataFrame:
    """Did the team's initiatives work? One sentence and one chart (the team against its counterfactual)
    per initiative. When the team has none, a one-line note marked as an empty section: the rendered report
    then leaves the "Initiatives" section out (its heading cell is tagged ``optional-section``).

    Returns :func:`initiatives_table`.
    """
    table = initiatives_table(ctx)
    if table.empty:
        empty_section_note(f"{ctx.team_name} has no initiative to evaluate.")
        return table
    titles = dict(zip(ctx.ds.initiatives["initiative_id"], ctx.ds.initiatives["title"]))
    result = ImpactResult(table, ctx.team_table("impact_series"), ctx.ds.metrics, titles)
    show_sentences([result.sentence(i) for i in table["initiative_id"]])
    for row in table.itertuples(index=False):
        if str(row.verdict).startswith("suppressed") or not (result.series["initiative_id"] == row.initiative_id).any():
            continue
        fig, ax = plt.subplots(figsize=(7.5, 3.0))
        # the sentence is printed above the charts: the chart's title names it, its alt text is the sentence
        result.plot(row.initiative_id, ax=ax, label=metric_name(row.metric),
                    title=f"{titles.get(row.initiative_id, row.initiative_id)}: {metric_name(row.metric)}, observed "
                          f"and without the initiative")
        _show_figure(fig, alt=result.sentence(row.initiative_id))
    return table


# ==================================================================================
# Appendix: the full tables for analysts
# ==================================================================================
def drivers_appendix(ctx: Any) -> pd.DataFrame:
    """Every tested driver pair about this team's key-result metrics (pooled and the team's own), as two
    narrow tables (the estimates; the evidence) and the reason of each verdict in words.

    Returns :func:`leading_indicators_table`.
    """
    view = leading_indicators_table(ctx)
    if view.empty:
        _display_html(_para("No driver was tested for this team's key results.", "okr-note"))
        return view
    targets = sorted(set(view["lagging"]))
    lc = ctx.table("lagged_correlations")
    leading = set(ctx.ds.metrics.loc[ctx.ds.metrics["kind"] == "leading", "metric"])
    lc = lc[lc["metric_y"].isin(targets) & lc["metric_x"].isin(leading) & (lc["lag"] >= 0)]
    if len(lc):
        n_pairs = lc[["metric_x", "metric_y"]].drop_duplicates().shape[0]
        fig, ax = plt.subplots(figsize=(6.4, 0.2 * n_pairs + 1.2))
        names = {m: metric_name(m) for m in set(lc["metric_x"]) | set(lc["metric_y"])}
        plot_lagged_correlations(lc, ax=ax, labels=names, title="Lagged correlations, all teams (leading KPI first)")
        _show_figure(fig)
    named = view.assign(leading=view["leading"].map(metric_name), lagging=view["lagging"].map(metric_name),
                        interval=[_interval(lo, hi) for lo, hi in zip(view["ci_low"], view["ci_high"])])
    _show(named[["leading", "lagging", "scope", "verdict", "lag", "correlation", "interval", "q_value", "oos_skill"]],
          caption="Every driver tested (lag in periods; correlation of the prewhitened series at that lag with its "
                  "95% interval; q-value: Benjamini–Hochberg over every pair tested; forecast skill: out-of-sample "
                  "gain over the lagging KPI's own history)",
          labels={"interval": "95% interval", "q_value": "q-value"}, classes="appendix")
    found = named[named["verdict"] != "no evidence"]
    reasons = [f"{r.leading} → {r.lagging} ({r.scope}): {r.reason}" for r in found.itertuples(index=False)
               if isinstance(r.reason, str)]
    if reasons:
        _display_html('<p class="okr-caption">Why each verdict with evidence was reached</p>'
                      '<ul class="okr-reasons appendix">' + "".join(f"<li>{html.escape(t)}</li>" for t in reasons)
                      + "</ul>")
    if len(named) > len(found):
        _display_html(_para(f"The other {len(named) - len(found)} rows: neither direction significant at the "
                            "false-discovery threshold, or no out-of-sample confirmation (no evidence).", "okr-note"))
    return view


def monitoring_appendix(ctx: Any) -> pd.DataFrame:
    """The full KPI monitoring table (trend test, peers, control-chart signals), as two narrow tables;
    people metrics that suppression hides are named in one note.

    Returns :func:`kpi_table`.
    """
    table = kpi_table(ctx)
    if table.empty:
        _display_html(_para("No KPI data.", "okr-note"))
        return table
    hidden = table["suppressed"].astype(bool)
    shown = table[~hidden]
    if len(shown):
        raw = ctx.team_table("monitor").set_index("metric")
        names = shown["metric"].map(metric_name)
        trend = pd.DataFrame({"kpi": names.to_numpy(), "latest": shown["latest"].to_numpy(),
                              "assessment": shown["assessment"].to_numpy(), "slope": shown["slope"].to_numpy(),
                              "interval": [_interval(raw["slope_low"].get(m), raw["slope_high"].get(m))
                                           for m in shown["metric"]],
                              "p_value": shown["p_value"].to_numpy(),
                              "n_points": [raw["n_points"].get(m) for m in shown["metric"]]})
        _show(trend, caption="KPI trends (Mann–Kendall test; Sen's slope: the change per period, with its 95% "
                             "interval)", labels={"interval": "95% interval"}, classes="appendix")
        info = ctx.ds.metrics.set_index("metric")
        defs = "".join(f"<li><strong>{html.escape(metric_name(m))}</strong>: "
                       f"{html.escape(str(info['description'].get(m, '')))}"
                       + (f" ({html.escape(str(info['unit'].get(m)))})" if isinstance(info["unit"].get(m), str) else "")
                       + "</li>" for m in table["metric"])
        _display_html('<p class="okr-caption">What each KPI measures</p>'
                      f'<ul class="okr-definitions appendix">{defs}</ul>')
        signals = [f"{n}: {_signal_detail(t)}" for n, t in zip(names, shown["signals"])
                   if isinstance(t, str) and t.strip()]
        if signals:
            _display_html('<p class="okr-caption">Control-chart signals</p><ul class="okr-reasons appendix">'
                          + "".join(f"<li>{html.escape(t)}</li>" for t in signals) + "</ul>")
    if hidden.any():
        _display_html(_hidden_list_note(ctx, table.loc[hidden, "metric"].tolist()))
    return table


_SIGNAL_WORDS = {"beyond_3sigma": "outside the control limits",
                 "2_of_3_beyond_2sigma": "2 of 3 beyond 2 sigma",
                 "4_of_5_beyond_1sigma": "4 of 5 beyond 1 sigma",
                 "8_same_side": "8 in a row on one side"}


def _signal_detail(text: Any) -> str:
    """A control-chart signal summary with its rule in words and dates as "21 Sep 2026"."""
    if not isinstance(text, str) or not text.strip():
        return "none"
    for code, words in _SIGNAL_WORDS.items():
        text = text.replace(code, words)
    text = re.sub(r"\b(\d{4}-\d{2}-\d{2})\b", lambda m: _date(m.group(1)), text)
    return text.replace("_", " ")


_FORECAST_VIEW = ["title", "current", "forecast", "lower_80", "upper_80", "p_hit", "outcome", "method", "n_obs"]


def forecasts_appendix(ctx: Any) -> pd.DataFrame:
    """The key-result forecasts in full: current value, forecast at the quarter's end with its 80% range,
    the chance of reaching the target (or the outcome), the method and the data behind it. Once the quarter
    is over (every outcome final) a one-line note instead of a table that would repeat the scorecard.

    Returns
    -------
    DataFrame
        The shared ``forecasts`` rows of this team through the privacy gate (hidden key results' values
        read the suppression label), with ``suppressed``; empty without forecasts.
    """
    fc = _forecasts(ctx)
    if fc is None or fc.empty:
        _display_html(_para("No forecasts.", "okr-note"))
        return pd.DataFrame() if fc is None else fc
    fc = _gate(ctx, fc, kind="forecasts")
    shown = fc[~fc["suppressed"].astype(bool)]
    if len(shown) and shown["final"].astype(bool).all():
        # the quarter is over: the table would repeat each key result's final value and outcome
        _display_html(_para(f"{ctx.quarter.label} is over: every key result's outcome is final (the scorecard's "
                            "last column); nothing is left to forecast.", "okr-note"))
        shown = shown.iloc[0:0]
    if len(shown):
        view = pd.DataFrame({
            "title": shown["title"].to_numpy(),
            "current": [_fmt(v, u) for v, u in zip(shown["current"], shown["unit"])],
            "forecast": [f"{_fmt(v, u)} ({_fmt(lo)} to {_fmt(hi)})" if pd.notna(lo) and lo != hi else _fmt(v, u)
                         for v, lo, hi, u in zip(shown["forecast"], shown["lower_80"], shown["upper_80"],
                                                 shown["unit"])],
            "p_hit": [_p_hit_text(p, f) for p, f in zip(shown["p_hit"], shown["final"])],
            "method": shown["method"].fillna("—").to_numpy(),
            "n_obs": shown["n_obs"].to_numpy(),
        })
        _show(view, caption=f"Where each key result lands at the end of {ctx.quarter.label} (forecast with its "
                            "80% range; the method and the number of observations behind it)",
              labels={"p_hit": "Outlook"}, classes="appendix")
    if fc["suppressed"].astype(bool).any():
        _display_html(_para(f"{int(fc['suppressed'].sum())} key result(s) on people metrics are not shown: "
                            f"{_hidden_reason(ctx)}.", "okr-note"))
    return fc
