"""Report charts: drawn on the given axes, titled and labelled, from the analyses' real tables."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from matplotlib.colors import to_rgba

from okr_analysis import benchmark, score_key_results, score_teams
from okr_analysis.forecasting import forecast_key_result
from okr_analysis.monitoring import control_chart
from okr_analysis.plots import (
    BAND_COLOURS,
    plot_control_charts,
    plot_kr_progress,
    plot_kr_scores,
    plot_lagged_correlations,
    plot_peer_comparison,
    plot_peer_comparisons,
    plot_score_distribution,
    plot_team_kr_heatmap,
)
from okr_analysis.reports.common import figure_alt_text
from okr_analysis.style import PEERS, TEAM, alt_text


def assert_legend_outside(ax):
    """The legend's box does not overlap the axes' data area."""
    fig = ax.figure
    fig.canvas.draw()
    legend = ax.get_legend()
    assert legend is not None
    box, area = legend.get_window_extent(), ax.get_window_extent()
    assert not box.overlaps(area), (box, area)


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_kr_scores_bars_follow_scores_and_bands(tiny_ds, ax):
    krs = score_key_results(tiny_ds, "2026Q3", as_of="2026-08-15")
    out = plot_kr_scores(krs, ax=ax)
    assert out is ax
    bars = ax.patches
    assert len(bars) == len(krs)
    widths = [b.get_width() for b in bars]
    assert widths == pytest.approx(krs["score"].fillna(0).clip(0, 1).tolist())
    scored = krs["band"].notna().to_numpy()
    expected = [matplotlib.colors.to_rgba(BAND_COLOURS[b]) for b in krs.loc[scored, "band"]]
    assert [tuple(bars[i].get_facecolor()) for i in np.flatnonzero(scored)] == expected
    assert ax.get_title() and "score" in ax.get_xlabel()
    assert "no data" in [t.get_text() for t in ax.texts]


def test_score_distribution_has_one_row_per_department(sample_ds, ax):
    teams = score_teams(sample_ds, sample_ds.latest_quarter)
    tree = sample_ds.team_tree.set_index("team_id")
    leaves = teams[teams["is_leaf"]].assign(
        department=lambda d: d["team_id"].map(tree["department_id"]).map(lambda t: sample_ds.team_name(t)))
    plot_score_distribution(leaves, ax=ax)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert sorted(labels) == sorted(leaves["department"].unique())
    assert ax.get_xlabel().startswith("team score")


def test_team_kr_heatmap_is_labelled_with_objective_and_key_result_titles(sample_ds, ax):
    krs = score_key_results(sample_ds, sample_ds.latest_quarter)
    leaf = krs[krs["team_id"].isin(sample_ds.team_tree.query("is_leaf")["team_id"])]
    plot_team_kr_heatmap(leaf, ax=ax)
    rows = leaf[["team_id", "objective_id"]].drop_duplicates()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == len(rows)  # one row per team and objective
    first = leaf.sort_values(["team_id", "objective_id", "kr_id"]).iloc[0]
    assert labels[0] == f"{first['team_id']} · {first['objective_title'][:51]}"[:len(labels[0])]
    assert first["objective_title"][:10] in labels[0]
    assert len(ax.get_xticklabels()) == leaf.groupby(["team_id", "objective_id"]).size().max()
    assert not any("in objective order" in t.get_text() for t in ax.get_xticklabels())
    cells = [t.get_text() for t in ax.texts]
    assert len(cells) == len(leaf)
    # each cell: the start of its key result's title (26 characters at most) over its score
    heads = [c.split("\n")[0] for c in cells]
    assert all(len(h) <= 26 and any(t.startswith(h.rstrip("…")) for t in leaf["title"]) for h in heads)
    red = leaf["score"] < 0.4
    assert ("red" in alt_text(ax)) == bool(red.any())


def test_lagged_correlation_heatmap(ax):
    data = pd.DataFrame({"metric_x": ["a"] * 3 + ["b"] * 3, "metric_y": ["y"] * 6,
                         "lag": [0, 1, 2] * 2, "correlation": [0.1, 0.6, 0.2, -0.1, 0.0, 0.05]})
    plot_lagged_correlations(data, ax=ax)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a → y", "b → y"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"]
    assert "lag" in ax.get_xlabel()


def test_peer_comparison_highlights_the_team(tiny_ds, ax):
    bench = benchmark(tiny_ds)
    peers = bench[bench["team_id"].isin(["t1", "t2"])]
    plot_peer_comparison(peers, team_id="t1", metric="csat", ax=ax, unit="score")
    assert len(ax.patches) == 2
    own = list(peers.loc[peers["metric"] == "csat", "team_id"]).index("t1")
    assert ax.patches[own].get_facecolor() == to_rgba(TEAM)
    assert ax.patches[1 - own].get_facecolor() == to_rgba(PEERS)
    assert ax.get_ylabel() == "csat (score)"
    assert_legend_outside(ax)
    assert "this team" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_peer_comparison_says_the_rank_in_words(tiny_ds, ax):
    bench = benchmark(tiny_ds)
    peers = bench[bench["team_id"].isin(["t1", "t2"]) & (bench["metric"] == "csat")]
    plot_peer_comparison(peers, team_id="t1", metric="csat", ax=ax, unit="score", label="customer satisfaction")
    own = float(peers.loc[peers["team_id"] == "t1", "latest"].iloc[0])
    place = "highest" if own >= peers["latest"].max() else "lowest"
    assert alt_text(ax).startswith(f"customer satisfaction: the team's {own:.3g} score is the {place} of 2")
    assert ax.get_ylabel() == "customer satisfaction (score)"


def test_a_large_peer_group_is_drawn_in_rank_order(ax):
    # 40 peers: a named bar each would be unreadable; one dot per team in rank order, the team marked
    rng = np.random.default_rng(1)
    peers = pd.DataFrame({"team_id": [f"t{i}" for i in range(40)], "metric": "csat",
                          "latest": rng.normal(8, 0.5, 40), "company_median": 8.0})
    plot_peer_comparison(peers, team_id="t7", metric="csat", ax=ax, max_bars=15)
    assert not ax.patches
    others, own = ax.collections
    assert len(others.get_offsets()) == 39 and len(own.get_offsets()) == 1
    rank = int((peers["latest"] < peers.loc[7, "latest"]).sum()) + 1
    assert own.get_offsets()[0].tolist() == pytest.approx([rank, peers.loc[7, "latest"]])
    assert ax.texts[0].get_text() == f"{rank} of 40"
    assert np.all(np.diff(others.get_offsets()[:, 1]) >= 0)  # lowest to highest
    assert ax.get_xlabel() == "40 teams, lowest to highest"


def test_empty_data_draws_a_note_not_an_error(ax):
    empty = pd.DataFrame(columns=["score", "band", "title"])
    plot_kr_scores(empty, ax=ax)
    assert ax.texts[0].get_text() == "no key results"


def test_wrong_table_names_the_missing_columns(ax):
    with pytest.raises(ValueError, match="lacks column\\(s\\) metric_x, metric_y"):
        plot_lagged_correlations(pd.DataFrame({"lag": [1], "correlation": [0.2]}), ax=ax)


def test_kr_progress_draws_checkins_pace_and_target(ax):
    ci = pd.DataFrame({"date": pd.date_range("2026-07-06", periods=5, freq="7D"), "value": [5, 4.6, 4.1, 3.9, 3.5]})
    plot_kr_progress(ci, direction="decrease", baseline=5, target=2, start="2026-07-01", end="2026-09-30",
                     as_of="2026-08-05", unit="h", title="First response from 5 h to 2 h", ax=ax)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["expected pace", "target", "check-ins", "as of"]
    pace = ax.get_lines()[0]
    assert list(pace.get_ydata()) == [5, 2]
    assert list(ax.get_lines()[2].get_ydata()) == [5, 4.6, 4.1, 3.9, 3.5]
    assert ax.get_lines()[2].get_color() == TEAM and ax.get_lines()[1].get_color() == BAND_COLOURS["green"]
    assert ax.get_ylabel() == "value (h)"
    assert ax.get_title() == "First response from 5 h to 2 h: 3.5 h against a target of 2 h"
    assert alt_text(ax) == "First response from 5 h to 2 h: 3.5 h against a target of 2 h."
    assert_legend_outside(ax)


def test_kr_progress_takes_the_metric_description_and_says_final_after_the_quarter(ax):
    ci = pd.DataFrame({"date": pd.date_range("2026-07-06", periods=3, freq="30D"), "value": [70.0, 72.0, 73.3]})
    plot_kr_progress(ci, direction="increase", baseline=70, target=75.7, start="2026-07-01", end="2026-09-30",
                     as_of="2026-09-30", unit="%", title="Engagement from 70% to 75.7%", label="engagement score",
                     ax=ax)
    assert ax.get_ylabel() == "engagement score (%)"
    assert "as of" not in [line.get_label() for line in ax.get_lines()]
    assert alt_text(ax) == "Engagement from 70% to 75.7%: 73.3% against a target of 75.7% — final: missed."
    ax.clear()
    plot_kr_progress(ci, direction="increase", baseline=70, target=75.7, start="2026-07-01", end="2026-09-30",
                     as_of="2026-09-30", unit="%", title="Engagement", outcome="hit", ax=ax)
    assert alt_text(ax).endswith("final: hit.")


def test_kr_progress_without_checkins(ax):
    plot_kr_progress(pd.DataFrame(columns=["date", "value"]), direction="milestone", baseline=np.nan, target=1,
                     start="2026-07-01", end="2026-09-30", ax=ax, title="Launch the help centre")
    assert "no check-in yet" in [t.get_text() for t in ax.texts]
    assert alt_text(ax) == "Launch the help centre: no check-in yet."


def test_a_milestone_is_a_progress_bar_with_the_dates_reached(ax):
    ci = pd.DataFrame({"date": pd.to_datetime(["2026-07-06", "2026-07-20", "2026-08-03", "2026-08-17"]),
                       "value": [0.0, 0.5, 0.5, 1.0]})
    plot_kr_progress(ci, direction="milestone", baseline=np.nan, target=1, start="2026-07-01", end="2026-09-30",
                     as_of="2026-09-01", title="Launch the help centre", ax=ax)
    bars = [p for p in ax.patches if p.get_width() > 0]
    assert [p.get_width() for p in bars] == [1.0, 1.0]  # the track and the share done
    assert bars[1].get_facecolor() == to_rgba(BAND_COLOURS["green"])  # done
    assert not [line for line in ax.get_lines() if len(set(np.asarray(line.get_ydata(), float))) == 1
                and np.asarray(line.get_ydata(), float)[0] == 0]  # no flat line at 0
    steps = [t.get_text() for t in ax.texts]
    assert steps == ["50%\n20 Jul", "100%\n17 Aug"]
    assert alt_text(ax) == "Launch the help centre: done on 17 Aug 2026."
    ax.clear()
    plot_kr_progress(ci.head(3), direction="milestone", baseline=np.nan, target=1, start="2026-07-01",
                     end="2026-09-30", as_of="2026-08-05", title="Launch the help centre", ax=ax)
    share = [p for p in ax.patches if p.get_facecolor() == to_rgba(TEAM)]
    assert len(share) == 1 and share[0].get_width() == 0.5
    assert alt_text(ax) == "Launch the help centre: not done, 50% done as of 5 Aug 2026."
    ax.clear()
    plot_kr_progress(ci.head(3), direction="milestone", baseline=np.nan, target=1, start="2026-07-01",
                     end="2026-09-30", as_of="2026-09-30", title="Launch the help centre", ax=ax)
    assert alt_text(ax) == "Launch the help centre: not done, 50% done as of 30 Sep 2026 — final: missed."
    assert ax.figure.get_size_inches()[1] <= 1.9  # a bar needs a short figure


def test_score_distribution_is_the_same_picture_every_time(tiny_ds):
    """The strip plot's jitter is seeded (a re-rendered report does not change), and the caller's
    NumPy random state is left as it was."""
    import io

    teams = score_teams(tiny_ds, "2026Q3", as_of="2026-08-15").assign(department="Dept")
    pictures = []
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    for _ in range(2):
        fig, ax = plt.subplots()
        plot_score_distribution(teams, ax=ax)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        pictures.append(buf.getvalue())
    assert pictures[0] == pictures[1]
    assert (np.random.get_state()[1] == before).all()


def test_one_palette_okabe_ito():
    """The band colours every chart (and the print CSS) uses: Okabe & Ito's colour-blind-safe set."""
    assert dict(BAND_COLOURS) == {"red": "#D55E00", "yellow": "#E69F00", "green": "#009E73", "none": "#999999"}
    assert (TEAM, PEERS) == ("#0072B2", "#56B4E9")


def test_kr_score_bars_say_the_band_in_words(tiny_ds, ax):
    krs = score_key_results(tiny_ds, "2026Q3", as_of="2026-08-15")
    plot_kr_scores(krs, ax=ax)
    texts = [t.get_text() for t in ax.texts]
    scored = krs[krs["band"].notna()]
    assert [f"{s:.2f} {b}" for s, b in zip(scored["score"], scored["band"])] == [t for t in texts if t != "no data"]
    low = scored.loc[scored["score"].idxmin()]
    assert f"lowest: {low['title']} at {low['score']:.2f}" in alt_text(ax)


def test_lagged_correlations_take_metric_names(ax):
    data = pd.DataFrame({"metric_x": ["csat"] * 2, "metric_y": ["nps"] * 2, "lag": [0, 1], "correlation": [0.1, -0.6]})
    plot_lagged_correlations(data, ax=ax, labels={"csat": "customer satisfaction", "nps": "net promoter score"})
    assert [t.get_text() for t in ax.get_yticklabels()] == ["customer satisfaction → net promoter score"]
    assert "strongest: customer satisfaction → net promoter score at lag 1, correlation -0.60" in alt_text(ax)


@pytest.fixture(scope="module")
def open_and_closed_forecasts(sample_ds):
    """A key result forecast while its quarter is open, the same after the quarter, and a milestone."""
    q = sample_ds.quarter(sample_ds.latest_quarter)
    krs = sample_ds.key_results_in(sample_ds.latest_quarter)
    moving = krs[krs["direction"].isin(["increase", "decrease"])]["kr_id"].iloc[0]
    milestone = krs[krs["direction"] == "milestone"]["kr_id"].iloc[0]
    mid = q.start + (q.end - q.start) / 2
    return (forecast_key_result(sample_ds, moving, as_of=mid, n_paths=200, calibration=False),
            forecast_key_result(sample_ds, moving, as_of=q.end, n_paths=200, calibration=False),
            forecast_key_result(sample_ds, milestone, as_of=mid, n_paths=200, calibration=False))


def test_forecast_chart_title_in_words_and_fan_only_while_the_quarter_is_open(open_and_closed_forecasts, ax):
    open_, closed, _ = open_and_closed_forecasts
    open_.plot(ax=ax, p_hit=0.04)
    title = ax.get_title()
    assert open_.method.split("(")[0] not in title and "p_hit" not in title and "ARIMA" not in title
    assert "against a target of" in title and f"4% likely by {open_.quarter.end.day} {open_.quarter.end:%b %Y}" in title
    fans = [c for c in ax.collections if c.get_label() in ("80% interval", "95% interval")]
    assert len(fans) == 2 and all(tuple(c.get_facecolor()[0][:3]) == to_rgba(TEAM)[:3] for c in fans)
    status = open_.row["pace_status"]
    assert alt_text(ax).endswith(f", {status}; 4% likely to reach it by {open_.quarter.end.day} "
                                 f"{open_.quarter.end:%b %Y}.")
    assert_legend_outside(ax)
    ax.clear()
    closed.plot(ax=ax)
    assert closed.final
    assert not [c for c in ax.collections if "interval" in str(c.get_label())]  # no fan after the quarter
    assert "forecast check-ins (median)" not in [line.get_label() for line in ax.get_lines()]
    assert [line.get_label() for line in ax.get_lines()].count("check-ins") == 1
    assert f"final: {closed.outcome}" in ax.get_title() and alt_text(ax).endswith(f"final: {closed.outcome}.")


def test_forecast_chart_of_a_milestone_is_a_progress_bar(open_and_closed_forecasts, ax):
    milestone = open_and_closed_forecasts[2]
    milestone.plot(ax=ax)
    assert [p.get_width() for p in ax.patches][0] == 1.0  # the bar's track
    share = float(milestone.checkins.iloc[-1]) if len(milestone.checkins) else 0.0
    if len(milestone.checkins):
        assert ax.patches[1].get_width() == pytest.approx(min(share, 1.0))
    assert alt_text(ax).startswith(f"{milestone.title}: ")
    assert "against a target" not in alt_text(ax)


def test_control_charts_are_compact_small_multiples_with_one_legend_below(sample_ds):
    team = "eng-data"
    metrics = sorted(sample_ds.kpis.loc[sample_ds.kpis["team_id"] == team, "metric"].unique())[:7]
    charts = {m: control_chart(sample_ds.kpi_series(team, m).tail(52), baseline=26, label=m) for m in metrics}
    figs = plot_control_charts(charts, units={"absenteeism": "%"}, title="Control charts")
    try:
        assert len(figs) == (1 if len(metrics) <= 9 else 2)  # a last lone row joins the figure before
        first = figs[0]
        rows = int(np.ceil(len(metrics) / 3))
        assert first.get_size_inches()[1] <= rows * 1.8 + 1.0  # short rows, not a page
        panels = [a for a in first.axes if a.get_visible() and a.axison]
        assert len(panels) == len(metrics)
        assert all(p.get_legend() is None for p in panels)
        legends = [a.get_legend() for a in first.axes if a.get_legend() is not None]
        assert len(legends) == 1
        first.canvas.draw()
        lowest = min(p.get_window_extent().y0 for p in panels)
        assert legends[0].get_window_extent().y1 <= lowest  # below every panel
        flagged = [m for m in metrics if charts[m].points["signal"].any()]
        alt = figure_alt_text(first)
        n = len(metrics)
        assert alt.startswith(f"Control charts: control charts of {n} KPIs; {len(flagged)} with signals"
                              if flagged else f"Control charts: control charts of {n} KPIs; none with a signal")
        assert all(m.replace("_", " ") in alt for m in flagged)
        assert panels[0].get_title().startswith(metrics[0].replace("_", " "))
    finally:
        for f in figs:
            plt.close(f)


def test_peer_small_multiples_share_one_legend(sample_ds):
    bench = benchmark(sample_ds)
    team = "eng-data"
    peers = bench[bench["team_id"].isin([team] + sample_ds.peers(team))]
    metrics = sorted(peers["metric"].unique())[:4]
    figs = plot_peer_comparisons(peers, team_id=team, metrics=metrics)
    try:
        assert len(figs) == 1
        panels = [a for a in figs[0].axes if a.axison]
        assert len(panels) == 4 and all(p.get_legend() is None for p in panels)
        legend = [a.get_legend() for a in figs[0].axes if a.get_legend() is not None][0]
        assert [t.get_text() for t in legend.get_texts()][:2] == ["this team", "peers"]
        assert figure_alt_text(figs[0]).count("in its peer group") == 4
    finally:
        for f in figs:
            plt.close(f)


def test_report_alt_text_reads_the_charts_message(ax):
    """The report sections' alt text (reports.common.figure_alt_text) is the message the chart recorded."""
    ci = pd.DataFrame({"date": pd.date_range("2026-07-06", periods=2, freq="7D"), "value": [5.0, 4.0]})
    plot_kr_progress(ci, direction="decrease", baseline=5, target=2, start="2026-07-01", end="2026-09-30",
                     as_of="2026-07-20", unit="h", title="First response", ax=ax)
    assert figure_alt_text(ax.figure) == "First response: 4 h against a target of 2 h."
    fig, other = plt.subplots()
    try:
        other.set_title("A chart nobody described")
        assert figure_alt_text(fig) == "A chart nobody described."
    finally:
        plt.close(fig)


def test_control_charts_split_into_figures_of_two_rows():
    dates = pd.date_range("2025-01-06", periods=40, freq="7D")
    rng = np.random.default_rng(3)
    charts = {f"m{i}": control_chart(pd.Series(rng.normal(10, 1, 40), index=dates), baseline=20) for i in range(11)}
    figs = plot_control_charts(charts)
    try:
        assert [sum(a.axison for a in f.axes) for f in figs] == [6, 5]
        assert all(f.get_size_inches()[1] <= 2 * 1.8 + 1.0 for f in figs)
    finally:
        for f in figs:
            plt.close(f)


def test_initiative_chart_in_the_palette_with_its_sentence(sample_ds, ax):
    from okr_analysis.impact import estimate_impact

    res = estimate_impact(sample_ds, initiatives=["mentoring"])
    res.plot("mentoring", ax=ax)
    observed, counterfactual = ax.get_lines()[:2]
    assert observed.get_color() == TEAM and counterfactual.get_color() == BAND_COLOURS["none"]
    assert alt_text(ax) == res.sentence("mentoring").rstrip(".") + "."
    metric = str(res.table.set_index("initiative_id").loc["mentoring", "metric"])
    assert ax.get_ylabel().startswith(metric.replace("_", " "))
    assert_legend_outside(ax)
