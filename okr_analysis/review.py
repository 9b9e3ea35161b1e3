"""The sections of the review reports, and the org-wide analyses a batch computes once.

Report notebooks stay thin: each section is one call here, e.g. ``review.scorecard(ctx)``
with the :class:`~okr_analysis.report.ReportContext` from ``report.open_report``. Every
section displays escaped HTML tables and static charts and returns the data it showed,
so it can be tested without a notebook.

:data:`SHARED_ANALYSES` lists the org-wide tables (scores of every team, KPI monitoring,
peer benchmarks, drivers, forecasts …). ``okr-analysis report`` computes each once per
batch and hands every notebook the same copy; a notebook run on its own computes them.
"""

from __future__ import annotations

import html
import warnings
from typing import Any, Callable

import matplotlib

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .dataset import Dataset
from .privacy import people_metrics as _people_metrics
from .privacy import score_suppression, small_teams, suppressed_label
from .quarters import Quarter

__all__ = [
    "SHARED_ANALYSES",
    "summary_sentences",
    "summary",
    "scorecard",
    "key_result_charts",
    "kpi_panel",
    "leading_indicators",
    "hygiene",
    "methods",
    "suppressed_label",
    "record_summary",
    "show_sentences",
    "org_summary",
    "department_scores",
    "team_kr_heatmap",
    "lint_counts",
    "teams_at_risk",
    "org_drivers",
]

_ARROWS = {"improving": "▲ improving", "worsening": "▼ worsening", "stable": "► stable"}
_STATUS_ORDER = {"off track": 0, "at risk": 1, "on track": 2, "no data": 3, "unmeasurable": 4}


# ==================================================================================
# Org-wide analyses, computed once per batch
# ==================================================================================
def _key_results(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    return ds.key_results_in(quarter)


def _kr_scores(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    from .scoring import score_key_results

    return score_key_results(ds, quarter, as_of=as_of)


def _objective_scores(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    from .scoring import score_objectives

    return score_objectives(ds, quarter, as_of=as_of)


def _team_scores(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    from .scoring import score_teams

    return score_teams(ds, quarter, as_of=as_of)


def _kr_suppression(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    """team_id, kr_id, hidden: whether each key result of the quarter is suppressed
    (:func:`okr_analysis.privacy.score_suppression`; computed over the whole organisation once)."""
    krs = _kr_scores(ds, quarter=quarter, as_of=as_of, min_group_size=min_group_size)
    if krs.empty:
        return pd.DataFrame({"team_id": pd.Series(dtype="string"), "kr_id": pd.Series(dtype="string"),
                             "hidden": pd.Series(dtype=bool)})
    hidden, _ = score_suppression(ds, krs, min_group_size=min_group_size)
    return pd.DataFrame({"team_id": krs["team_id"], "kr_id": krs["kr_id"], "hidden": hidden.astype(bool)})


def _team_suppression(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    """team_id, suppressed: whether a team's scores would let a reader work out a small team's people key
    results (it has a hidden key result, or complementary suppression hides its roll-up)."""
    krs = _kr_scores(ds, quarter=quarter, as_of=as_of, min_group_size=min_group_size)
    sensitive: set[str] = set()
    if not krs.empty:
        hidden, supp = score_suppression(ds, krs, min_group_size=min_group_size)
        sensitive = set(krs.loc[hidden, "team_id"]) | set(supp.loc[supp["suppressed"], "team_id"])
    ids = ds.teams["team_id"].reset_index(drop=True)
    return pd.DataFrame({"team_id": ids, "suppressed": ids.isin(sensitive).astype(bool)})


def _lint(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    from .hygiene import lint
    from .privacy import suppress_lint

    return suppress_lint(lint(ds, quarter, as_of=as_of), ds, kr_scores=_kr_scores(
        ds, quarter=quarter, as_of=as_of, min_group_size=min_group_size), min_group_size=min_group_size)


def _kpi_as_of(ds: Dataset, as_of: pd.Timestamp) -> pd.Timestamp | None:
    dates = ds.kpis["date"].dropna()
    if dates.empty or dates.min() > as_of:
        return None
    return min(as_of, dates.max())


def _monitor(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    from .monitoring import monitor

    kpi_as_of = _kpi_as_of(ds, as_of)
    if kpi_as_of is None:
        return pd.DataFrame(columns=["team_id", "metric"])
    return monitor(ds, as_of=kpi_as_of)


def _benchmark(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    from .monitoring import benchmark

    kpi_as_of = _kpi_as_of(ds, as_of)
    if kpi_as_of is None:
        return pd.DataFrame(columns=["team_id", "metric", "latest"])
    return benchmark(ds, as_of=kpi_as_of, min_group_size=min_group_size)


def _candidates(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    from .monitoring import candidate_key_results

    if _kpi_as_of(ds, as_of) is None:
        return pd.DataFrame(columns=["team_id", "metric", "reason"])
    return candidate_key_results(ds, quarter, as_of=as_of)


def _drivers(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    from .leadlag import lead_lag

    known = ds.known_on(as_of)
    if known.kpis.empty or not ((ds.metrics["kind"] == "leading").any() and (ds.metrics["kind"] == "lagging").any()):
        return pd.DataFrame(columns=["leading", "lagging", "team_id", "lag", "verdict"])
    return lead_lag(known, by_team=True).table


def _lagged_correlations(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    from .leadlag import lagged_correlations

    known = ds.known_on(as_of)
    if known.kpis.empty:
        return pd.DataFrame(columns=["metric_x", "metric_y", "lag", "correlation", "n", "p_value"])
    return lagged_correlations(known)


def _forecasts_table(ds: Dataset, *, quarter: Quarter, as_of: pd.Timestamp, min_group_size: int) -> pd.DataFrame:
    from .forecasting import forecast_key_results

    table = forecast_key_results(ds, quarter, as_of=min(as_of, quarter.end))
    return table.drop(columns=[c for c in ("history",) if c in table.columns])


#: name -> f(ds, *, quarter, as_of, min_group_size) -> DataFrame. Tables with a ``team_id``
#: column can be sliced per team with :meth:`ReportContext.team_table`.
SHARED_ANALYSES: dict[str, Callable[..., pd.DataFrame]] = {
    "key_results": _key_results,
    "kr_scores": _kr_scores,
    "kr_suppression": _kr_suppression,
    "team_suppression": _team_suppression,
    "objective_scores": _objective_scores,
    "team_scores": _team_scores,
    "lint": _lint,
    "monitor": _monitor,
    "benchmark": _benchmark,
    "candidates": _candidates,
    "drivers": _drivers,
    "lagged_correlations": _lagged_correlations,
    "forecasts": _forecasts_table,
}


# ==================================================================================
# Display helpers
# ==================================================================================
def _display_html(markup: str) -> None:
    from IPython.display import HTML, display

    display(HTML(markup))


def _show(frame: pd.DataFrame, **kwargs: Any) -> None:
    from .report import table_html

    _display_html(table_html(frame, **kwargs))


def _show_figure(fig: matplotlib.figure.Figure) -> None:
    from IPython.display import display

    fig.tight_layout()
    display(fig)
    plt.close(fig)


def _para(text: str, cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f"<p{klass}>{html.escape(text)}</p>"


def _fmt(value: Any, unit: Any = "") -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "—"
    text = f"{value:,.2f}".rstrip("0").rstrip(".") if isinstance(value, (float, np.floating)) else str(value)
    unit = "" if not isinstance(unit, str) else unit.strip()
    if not unit:
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


def _small_team(ctx: Any) -> bool:
    """Whether the report's team has fewer people than the minimum group size."""
    return ctx.team_id in small_teams(ctx.ds, min_group_size=ctx.min_group_size)


def _hidden_krs(ctx: Any, krs: pd.DataFrame) -> pd.Series:
    """Key results whose values describe people of a team below the minimum group size, or would let a
    reader work such values out from a roll-up (complementary suppression: the shared ``kr_suppression``
    table, computed over the whole organisation; only the rows of ``krs``' teams are read)."""
    if krs.empty:
        return pd.Series(False, index=krs.index)
    supp = ctx.team_table("kr_suppression", teams=sorted(set(krs["team_id"].dropna())))
    return krs["kr_id"].isin(set(supp.loc[supp["hidden"], "kr_id"]))


def _hidden_reason(ctx: Any) -> str:
    if _small_team(ctx):
        return f"the team has fewer than {ctx.min_group_size} people"
    return "they would let a reader work out the figures of a smaller team in the same department"


def _forecasts(ctx: Any) -> pd.DataFrame | None:
    """This team's KR forecasts when the forecasting analysis is part of the shared set."""
    if "forecasts" not in SHARED_ANALYSES:
        return None
    return ctx.team_table("forecasts")


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


def _band_cell(band: Any) -> str:
    if not isinstance(band, str):
        return '<span class="okr-band okr-band-none">—</span>'
    return f'<span class="okr-band okr-band-{html.escape(band)}">{html.escape(band)}</span>'


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
    from .plots import plot_kr_scores

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
    from .plots import plot_kr_progress

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
            from .forecasting import forecast_key_result

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
    from .monitoring import control_chart
    from .plots import plot_peer_comparison

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
        from .plots import plot_lagged_correlations

        fig, ax = plt.subplots(figsize=(8.5, 0.45 * lc[["metric_x", "metric_y"]].drop_duplicates().shape[0] + 1.8))
        plot_lagged_correlations(lc, ax=ax, title="Lagged correlations, all teams (leading metric first)")
        _show_figure(fig)
    return view


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


def show_sentences(sentences: list[str]) -> None:
    """Display sentences as the summary block."""
    _display_html('<div class="okr-summary">' + "".join(_para(s) for s in sentences) + "</div>")


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


_METHODS = [
    ("Scores", "Increase/decrease key results: progress = (current − baseline) / (target − baseline), score = "
               "progress clipped to [0, 1]. Maintain key results: the share of the quarter's check-ins that meet "
               "the line. Milestones: the latest check-in (1 = done). Objective score = weighted mean of its key "
               "results; team score = mean of its objectives. Bands: red < 0.4 ≤ yellow < 0.7 ≤ green; committed "
               "objectives need 1.0, aspirational ones 0.7."),
    ("Status", "Pace = progress / elapsed share of the quarter: on track from 0.9 (or target reached), at risk "
               "from 0.7, off track below. Maintain key results are on track while the latest check-in meets "
               "the line. An objective's status is its weakest key result's."),
    ("KPI trends", "Mann–Kendall test with the Yue–Wang correction for autocorrelation, Theil–Sen slope; "
                   "assessment uses whether higher is better."),
    ("Control charts", "Individuals (XmR) chart: centre and limits from a baseline window; signals by the "
                       "Western Electric rules."),
    ("Forecasts", "Where each key result will land: a model chosen by information criterion, simulated future "
                  "paths, P(hit) = share of paths that reach the target."),
    ("Drivers", "Prewhitened cross-correlation, Granger tests in both directions, Benjamini–Hochberg false-"
                "discovery control, and out-of-sample skill; a driver 'leads' only when all agree."),
    ("Privacy", "People metrics (engagement, turnover …) are not shown for groups smaller than the minimum group "
                "size; individual-level rows never reach a report."),
]


def methods(ctx: Any) -> None:
    """The methods note and data-quality warnings."""
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in _METHODS)
    _display_html(f'<dl class="okr-methods">{items}</dl>')
    _show(ctx.provenance(), caption="Data and method")


def record_summary(ctx: Any) -> None:
    """Hand the index page this report's headline numbers (score, band, status counts); not shown.

    Numbers that suppression hides in the report (a small team's key results on people metrics) are
    not handed on either, so the index cannot reveal them.
    """
    krs = ctx.team_table("kr_scores")
    hidden = _hidden_krs(ctx, krs)
    teams = _scored_teams(ctx, teams=[ctx.team_id])  # roll-ups that complementary suppression hides are None
    score = band = None
    if len(teams) and not hidden.any() and not bool(teams["suppressed"].iloc[0]):
        row = teams.iloc[0]
        col = "score" if bool(row["is_leaf"]) else "rollup_score"  # departments and the company: their subtree
        if pd.notna(row[col]):
            score, band = float(row[col]), str(row["band" if col == "score" else "rollup_band"])
    counts = krs.loc[~hidden, "status"].value_counts()
    status_counts = {s: int(counts.get(s, 0)) for s in ("on track", "at risk", "off track", "no data")}
    if hidden.any():
        status_counts["suppressed"] = int(hidden.sum())
    ctx.record_summary(score=score, band=band, status_counts=status_counts)


# ==================================================================================
# The organisation overview
# ==================================================================================
def _scored_teams(ctx: Any, *, teams: list[str] | None = None) -> pd.DataFrame:
    """Every team's scores (or those of ``teams``: only their rows are read) with its department name;
    a score that would reveal a small team's people key results is suppressed (NaN) with ``suppressed``
    True (the shared ``team_suppression`` table)."""
    wanted = teams

    def rows(name: str) -> pd.DataFrame:
        return ctx.table(name) if wanted is None else ctx.team_table(name, teams=wanted)

    krs, supp = rows("kr_scores"), rows("team_suppression")
    hidden_kr = _hidden_krs(ctx, krs)
    tree = ctx.ds.team_tree.set_index("team_id")
    names = tree["team_name"]
    teams = rows("team_scores").copy()
    teams["department"] = teams["team_id"].map(tree["department_id"]).map(names).fillna("(company)")
    teams["suppressed"] = teams["team_id"].isin(set(supp.loc[supp["suppressed"], "team_id"]))
    mask = teams["suppressed"]
    for col in ("score", "band", "rollup_score", "rollup_band"):
        teams[col] = teams[col].astype(object)
        teams.loc[mask, col] = None
    # status counts of a suppressed team: its visible key results only (none for a suppressed parent)
    visible = krs[~hidden_kr]
    counts = visible.groupby("team_id")["status"].value_counts().unstack(fill_value=0)
    for col, status in (("n_on_track", "on track"), ("n_at_risk", "at risk"), ("n_off_track", "off track"),
                        ("n_no_data", "no data")):
        own = teams["team_id"].map(counts[status] if status in counts else pd.Series(dtype=float)).fillna(0)
        teams[col] = teams[col].astype(float)
        teams.loc[mask & teams["is_leaf"], col] = own[mask & teams["is_leaf"]]
        teams.loc[mask & ~teams["is_leaf"], col] = np.nan
    return teams


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


def department_scores(ctx: Any) -> pd.DataFrame:
    """Score distribution by department (chart) and each department's roll-up (table)."""
    from .plots import plot_score_distribution

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
    from .plots import plot_team_kr_heatmap

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
