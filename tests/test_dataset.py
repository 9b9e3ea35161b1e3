"""Dataset helpers: the team tree, joined views, summary."""

import pandas as pd
import pytest

from conftest import tiny_tables
from okr_analysis.io import from_frames


def test_team_tree_depths_and_departments(tiny_ds):
    tree = tiny_ds.team_tree.set_index("team_id")
    assert tree["depth"].to_dict() == {"co": 0, "d1": 1, "d2": 1, "t1": 2, "t2": 2, "t3": 2}
    assert tree.loc["t1", "department_id"] == "d1" and tree.loc["t3", "department_id"] == "d2"
    assert pd.isna(tree.loc["co", "department_id"])
    assert tree["is_leaf"].to_dict() == {"co": False, "d1": False, "d2": False, "t1": True, "t2": True, "t3": True}


def test_navigation(tiny_ds):
    ds = tiny_ds
    assert ds.parent("t1") == "d1" and ds.parent("co") is None
    assert ds.children("d1") == ["t1", "t2"]
    assert ds.ancestors("t2") == ["d1", "co"]
    assert ds.subtree("co") == ["co", "d1", "t1", "t2", "d2", "t3"]
    assert ds.peers("t1") == ["t2"] and ds.peers("t3") == []
    assert ds.team_name("t3") == "Team Three"


def test_unknown_team_names_the_argument(tiny_ds):
    with pytest.raises(ValueError, match="team_id 'zz' is not in the teams table"):
        tiny_ds.children("zz")


def test_key_results_in_joins_the_objective(tiny_ds):
    kr = tiny_ds.key_results_in("Q3 2026")
    assert len(kr) == 10
    assert {"team_id", "quarter", "objective_title", "objective_kind", "parent_objective_id"} <= set(kr.columns)
    assert kr.set_index("kr_id").loc["k1a", "team_id"] == "t1"
    assert tiny_ds.key_results_in("2026Q2").empty


def test_kpi_series_and_metric_info(tiny_ds):
    s = tiny_ds.kpi_series("t2", "csat")
    assert s.index.is_monotonic_increasing and len(s) == 65 and s.iloc[0] == pytest.approx(8.5)
    assert bool(tiny_ds.metric_info("frt")["higher_is_better"]) is False
    with pytest.raises(ValueError, match="metric 'x' is not in the metrics table"):
        tiny_ds.metric_info("x")


def test_quarters_and_summary(tiny_ds):
    assert tiny_ds.quarters == ["2026Q3"] and tiny_ds.latest_quarter == "2026Q3"
    s = tiny_ds.summary()
    assert (s["teams"], s["departments"], s["people"], s["key_results"]) == (6, 2, 30, 10)
    assert s["date_from"] == "2025-07-07"
    assert "6 teams" in repr(tiny_ds)


def test_filter_teams(tiny_ds):
    sub = tiny_ds.filter_teams(["t1"])
    assert set(sub.kpis["team_id"]) == {"t1"}
    assert set(sub.key_results["kr_id"]) == {"k1a", "k1b"}
    assert set(sub.checkins["kr_id"]) == {"k1a"}


def test_resolve_quarter_and_as_of(tiny_ds):
    q, ts = tiny_ds.resolve("2026Q3")
    assert q.label == "2026Q3" and ts == pd.Timestamp("2026-09-30")
    assert tiny_ds.resolve("Q3 2026", "2026-08-15 17:30")[1] == pd.Timestamp("2026-08-15")
    assert tiny_ds.resolve("2026Q3", "2027-01-01")[1] == pd.Timestamp("2026-09-30")  # after the end: the end
    with pytest.raises(ValueError, match=r"as_of 2026-06-30 is before quarter 2026Q3 starts .* or leave as_of out"):
        tiny_ds.resolve("2026Q3", "2026-06-30")
    with pytest.raises(ValueError, match="as_of is required"):
        tiny_ds.resolve("2026Q3", None, as_of_required=True)
    with pytest.raises(ValueError, match=r"quarter '2026Q2' has no objectives .* quarters with objectives: 2026Q3"):
        tiny_ds.resolve("2026Q2")
    with pytest.raises(ValueError, match="as_of must be a date"):
        tiny_ds.resolve("2026Q3", "someday")


def test_known_on_drops_later_kpis_and_checkins(tiny_ds):
    cut = tiny_ds.known_on("2026-07-20")
    assert cut.kpis["date"].max() == pd.Timestamp("2026-07-20")
    assert cut.checkins["date"].max() <= pd.Timestamp("2026-07-20")
    assert len(cut.checkins) < len(tiny_ds.checkins) and len(cut.kpis) < len(tiny_ds.kpis)
    pd.testing.assert_frame_equal(cut.key_results, tiny_ds.key_results)  # the plan itself is not cut


def test_check_dataset_names_the_argument_and_the_fix(tiny_ds):
    from okr_analysis.io import check_dataset

    assert check_dataset(tiny_ds) is tiny_ds
    with pytest.raises(TypeError, match=r"data must be an okr_analysis Dataset, got dict; .*data = okr_analysis.load"):
        check_dataset({"teams": None}, name="data")
    from okr_analysis import kpi_trends, score_key_results

    for call in (lambda: score_key_results("data/sample", "2026Q3"), lambda: kpi_trends("data/sample")):
        with pytest.raises(TypeError, match="ds must be an okr_analysis Dataset, got str"):
            call()
