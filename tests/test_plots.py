"""Report charts: drawn on the given axes, titled and labelled, from the analyses' real tables."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from okr_analysis import benchmark, score_key_results, score_teams
from okr_analysis.plots import (
    BAND_COLOURS,
    plot_kr_progress,
    plot_kr_scores,
    plot_lagged_correlations,
    plot_peer_comparison,
    plot_score_distribution,
    plot_team_kr_heatmap,
)


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


def test_team_kr_heatmap_shape(sample_ds, ax):
    krs = score_key_results(sample_ds, sample_ds.latest_quarter)
    leaf = krs[krs["team_id"].isin(sample_ds.team_tree.query("is_leaf")["team_id"])]
    plot_team_kr_heatmap(leaf, ax=ax)
    assert len(ax.get_yticklabels()) == leaf["team_id"].nunique()
    assert len(ax.get_xticklabels()) == leaf.groupby("team_id").size().max()


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
    assert ax.patches[0].get_facecolor() != ax.patches[1].get_facecolor()
    assert ax.get_ylabel() == "csat (score)"


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
    assert ax.get_ylabel() == "value (h)"


def test_kr_progress_without_checkins(ax):
    plot_kr_progress(pd.DataFrame(columns=["date", "value"]), direction="milestone", baseline=np.nan, target=1,
                     start="2026-07-01", end="2026-09-30", ax=ax)
    assert "no check-in yet" in [t.get_text() for t in ax.texts]
    assert ax.get_ylabel() == "share done"


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
