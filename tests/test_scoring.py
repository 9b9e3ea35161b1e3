"""Scoring: hand-built organisations with hand-computed scores (arithmetic in the comments).

The quarter is 2026Q3: 1 July to 30 September 2026, 92 days. ``expected`` at the
end of day D is (days from 1 July to D, both counted) / 92.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

from conftest import tiny_tables
from okr_analysis import DataWarning
from okr_analysis.io import from_frames
from okr_analysis.scoring import (
    KR_COLUMNS,
    OBJECTIVE_COLUMNS,
    TEAM_COLUMNS,
    score,
    score_band,
    score_key_results,
    score_objectives,
    score_teams,
)

Q = "2026Q3"


def add_checkins(t: dict, kr_id: str, dates: list[str], values: list[float], confidence: float = 7.0) -> None:
    """Append check-ins of one KR to the tables ``t`` (in place)."""
    new = pd.DataFrame({"kr_id": kr_id, "date": pd.to_datetime(dates), "value": values,
                        "confidence": confidence, "comment": None})
    t["checkins"] = pd.concat([t["checkins"], new], ignore_index=True)


def load(t: dict):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return from_frames(t, source="test")


def kr_row(df: pd.DataFrame, kr_id: str) -> pd.Series:
    return df.set_index("kr_id").loc[kr_id]


def full_tables() -> dict:
    """tiny_tables() plus check-ins so that most KRs are scored at the quarter's end.

    Already in tiny_tables (weekly from 2026-07-06 to 2026-09-21, 12 check-ins):
      k1a decrease 5 -> 2, weight 2: 5 - 0.25 i   (last: 2.25)
      k2a maintain_at_least 9: 9.2, 8.8 alternating (last: 8.8)
      k3a milestone: 0, 0.25, 0.5, 1.0 on 07-06 .. 07-27
    Added here:
      kc1 increase 40 -> 60:       50 on 08-03
      kd1 decrease 5 -> 2:         2 on 09-07
      kd2 maintain_at_least 9:     9.5, 8.5, 9.0, 9.1
      k1b decrease 1.5 -> 0.5:     1.5, 1.0
      k3b increase 75 -> 90:       84 on 08-10
    No check-ins: kc2 (milestone), k2b (increase 40 -> 60).
    """
    t = tiny_tables()
    add_checkins(t, "kc1", ["2026-08-03"], [50])
    add_checkins(t, "kd1", ["2026-09-07"], [2])
    add_checkins(t, "kd2", ["2026-07-07", "2026-07-21", "2026-08-04", "2026-08-18"], [9.5, 8.5, 9.0, 9.1])
    add_checkins(t, "k1b", ["2026-07-06", "2026-08-03"], [1.5, 1.0])
    add_checkins(t, "k3b", ["2026-08-10"], [84])
    return t


@pytest.fixture(scope="module")
def full_ds():
    return load(full_tables())


# ----------------------------------------------------------------------------------
# Key results
# ----------------------------------------------------------------------------------
def test_kr_columns_and_types(full_ds):
    kr = score_key_results(full_ds, Q)
    assert list(kr.columns) == KR_COLUMNS
    assert kr["kr_id"].tolist() == ["kc1", "kc2", "kd1", "kd2", "k1a", "k1b", "k2a", "k2b", "k3a", "k3b"]
    assert (kr["quarter"] == Q).all()
    assert (kr["as_of"] == pd.Timestamp("2026-09-30")).all()
    assert kr["n_checkins"].dtype == "int64"
    assert kr["last_checkin_date"].dtype == "datetime64[ns]"
    for c in ("baseline", "target", "current", "progress", "score", "expected", "pace", "confidence", "weight"):
        assert kr[c].dtype == "float64", c


def test_increase_undershoot_and_overshoot():
    t = tiny_tables()
    # k2b increase 40 -> 60
    add_checkins(t, "k2b", ["2026-07-06", "2026-07-20", "2026-08-03"], [35, 45, 70])
    ds = load(t)
    # as_of 07-06: current 35: progress (35-40)/(60-40) = -0.25 (went backwards), score 0
    r = kr_row(score_key_results(ds, Q, as_of="2026-07-06"), "k2b")
    assert r["current"] == 35
    assert r["progress"] == pytest.approx(-0.25)
    assert r["score"] == 0.0
    assert r["band"] == "red"
    # as_of 07-20: current 45: progress 5/20 = 0.25
    r = kr_row(score_key_results(ds, Q, as_of="2026-07-20"), "k2b")
    assert r["progress"] == pytest.approx(0.25)
    assert r["score"] == pytest.approx(0.25)
    # end: current 70: progress 30/20 = 1.5 kept unclipped, score 1
    r = kr_row(score_key_results(ds, Q), "k2b")
    assert r["progress"] == pytest.approx(1.5)
    assert r["score"] == 1.0
    assert r["band"] == "green"
    assert r["status"] == "on track"
    assert r["n_checkins"] == 3
    assert r["last_checkin_date"] == pd.Timestamp("2026-08-03")


def test_decrease(full_ds):
    kr = score_key_results(full_ds, Q)
    # k1a: last 2.25: (2.25 - 5) / (2 - 5) = 2.75 / 3
    r = kr_row(kr, "k1a")
    assert r["current"] == pytest.approx(2.25)
    assert r["progress"] == pytest.approx(2.75 / 3)
    assert r["band"] == "green"
    # k1b: (1.0 - 1.5) / (0.5 - 1.5) = 0.5
    assert kr_row(kr, "k1b")["score"] == pytest.approx(0.5)
    # kd1: reached exactly: (2 - 5) / (2 - 5) = 1
    assert kr_row(kr, "kd1")["score"] == pytest.approx(1.0)


def test_decrease_overshoot_and_wrong_way():
    t = tiny_tables()
    add_checkins(t, "k1b", ["2026-07-06", "2026-08-03"], [1.8, 0.2])  # decrease 1.5 -> 0.5
    ds = load(t)
    # 07-06: (1.8 - 1.5) / (0.5 - 1.5) = -0.3: worse than the baseline
    r = kr_row(score_key_results(ds, Q, as_of="2026-07-06"), "k1b")
    assert r["progress"] == pytest.approx(-0.3)
    assert r["score"] == 0.0
    # end: (0.2 - 1.5) / (-1) = 1.3
    r = kr_row(score_key_results(ds, Q), "k1b")
    assert r["progress"] == pytest.approx(1.3)
    assert r["score"] == 1.0


def test_maintain_at_least_partial_compliance(full_ds):
    kr = score_key_results(full_ds, Q)
    # k2a: 9.2 (meets 9), 8.8 (misses) x 6 -> 6 / 12
    r = kr_row(kr, "k2a")
    assert r["score"] == pytest.approx(0.5)
    assert r["progress"] == pytest.approx(0.5)
    assert np.isnan(r["pace"])
    assert r["status"] == "off track"  # latest 8.8 < 9
    # kd2: 9.5 y, 8.5 n, 9.0 y (equal meets the line), 9.1 y -> 3 / 4
    r = kr_row(kr, "kd2")
    assert r["score"] == pytest.approx(0.75)
    assert r["status"] == "on track"  # latest 9.1 >= 9
    # k2a at as_of 07-06: one check-in, 9.2 -> 1/1; at 07-13: 9.2, 8.8 -> 1/2
    assert kr_row(score_key_results(full_ds, Q, as_of="2026-07-06"), "k2a")["score"] == 1.0
    r = kr_row(score_key_results(full_ds, Q, as_of="2026-07-13"), "k2a")
    assert (r["score"], r["status"]) == (0.5, "off track")


def test_maintain_at_most():
    t = tiny_tables()
    t["key_results"].loc[t["key_results"]["kr_id"] == "kd2", "direction"] = "maintain_at_most"
    add_checkins(t, "kd2", ["2026-07-07", "2026-07-14", "2026-07-21", "2026-07-28"], [8, 10, 9, 9.5])
    ds = load(t)
    # <= 9: 8 y, 10 n, 9 y, 9.5 n -> 2 / 4; latest 9.5 > 9 -> off track
    r = kr_row(score_key_results(ds, Q), "kd2")
    assert (r["score"], r["status"], r["band"]) == (0.5, "off track", "yellow")
    # as_of 07-21: 8, 10, 9 -> 2 / 3, latest 9 meets the line -> on track
    r = kr_row(score_key_results(ds, Q, as_of="2026-07-21"), "kd2")
    assert r["score"] == pytest.approx(2 / 3)
    assert r["status"] == "on track"


def test_milestone():
    t = tiny_tables()
    add_checkins(t, "kc2", ["2026-07-06", "2026-08-03"], [0.4, 1.2])
    ds = load(t)
    kr = score_key_results(ds, Q)
    # k3a: 0, 0.25, 0.5, 1.0 -> current 1 = done
    r = kr_row(kr, "k3a")
    assert (r["current"], r["progress"], r["score"], r["status"]) == (1.0, 1.0, 1.0, "on track")
    # kc2: 1.2 -> progress 1.2 unclipped, score 1
    r = kr_row(kr, "kc2")
    assert (r["progress"], r["score"]) == (pytest.approx(1.2), 1.0)
    # kc2 at 07-20: current 0.4, expected 20/92, pace 0.4 * 92 / 20 = 1.84 -> on track
    r = kr_row(score_key_results(ds, Q, as_of="2026-07-20"), "kc2")
    assert r["score"] == pytest.approx(0.4)
    assert r["pace"] == pytest.approx(0.4 * 92 / 20)
    assert r["status"] == "on track"


def test_milestone_status_by_pace():
    ds = load(tiny_tables())
    # k3a at 07-06: current 0, expected 6/92, pace 0 -> off track
    r = kr_row(score_key_results(ds, Q, as_of="2026-07-06"), "k3a")
    assert (r["score"], r["status"]) == (0.0, "off track")
    # at 07-13: 0.25 / (13/92) = 1.77 -> on track
    assert kr_row(score_key_results(ds, Q, as_of="2026-07-13"), "k3a")["status"] == "on track"


def test_no_checkin_is_no_data(full_ds):
    kr = score_key_results(full_ds, Q)
    for kr_id in ("kc2", "k2b"):
        r = kr_row(kr, kr_id)
        assert r["status"] == "no data"
        assert r["n_checkins"] == 0
        assert np.isnan(r["current"]) and np.isnan(r["progress"]) and np.isnan(r["score"])
        assert pd.isna(r["band"]) and pd.isna(r["last_checkin_date"])


def test_as_of_before_first_checkin(full_ds):
    # first check-ins are on 07-06
    kr = score_key_results(full_ds, Q, as_of="2026-07-03")
    assert (kr["status"] == "no data").all()
    assert kr["score"].isna().all()
    assert (kr["n_checkins"] == 0).all()
    assert kr["expected"].iloc[0] == pytest.approx(3 / 92)
    obj = score_objectives(full_ds, Q, as_of="2026-07-03")
    assert obj["score"].isna().all() and (obj["status"] == "no data").all()
    assert obj["met_expectation"].isna().all()
    teams = score_teams(full_ds, Q, as_of="2026-07-03").set_index("team_id")
    assert teams["rollup_score"].isna().all()
    assert teams.loc["co", "n_no_data"] == 10
    assert teams.loc["co", "n_krs"] == 10


def test_checkins_outside_quarter_or_after_as_of_are_ignored():
    t = tiny_tables()
    add_checkins(t, "k2b", ["2026-06-29", "2026-07-08", "2026-07-15", "2026-10-02"], [58, 44, 46, 99])
    with pytest.warns(DataWarning, match="outside their objective's quarter"):
        ds = from_frames(t)
    # 06-29 (Q2) and 10-02 (Q4) are ignored even at as_of = end: current 46
    r = kr_row(score_key_results(ds, Q), "k2b")
    assert (r["current"], r["n_checkins"]) == (46, 2)
    # as_of 07-10: only 07-08 -> 44
    r = kr_row(score_key_results(ds, Q, as_of="2026-07-10"), "k2b")
    assert (r["current"], r["n_checkins"]) == (44, 1)


def test_same_day_checkins_last_row_wins():
    t = tiny_tables()
    add_checkins(t, "k2b", ["2026-07-08", "2026-07-08"], [44, 48])
    r = kr_row(score_key_results(load(t), Q), "k2b")
    assert r["current"] == 48  # (48 - 40) / 20 = 0.4
    assert r["score"] == pytest.approx(0.4)


def test_confidence_is_the_latest():
    t = tiny_tables()
    add_checkins(t, "k2b", ["2026-07-08"], [44], confidence=9)
    add_checkins(t, "k2b", ["2026-07-15"], [46], confidence=4)
    ds = load(t)
    assert kr_row(score_key_results(ds, Q), "k2b")["confidence"] == 4
    assert kr_row(score_key_results(ds, Q, as_of="2026-07-10"), "k2b")["confidence"] == 9


def test_unmeasurable_kr_is_left_unscored():
    t = tiny_tables()
    t["key_results"].loc[t["key_results"]["kr_id"] == "k2b", "baseline"] = 60  # target 60 = baseline
    add_checkins(t, "k2b", ["2026-07-08"], [50])
    with pytest.warns(DataWarning, match="target equal"):
        ds = from_frames(t)
    with pytest.warns(DataWarning, match="k2b"):
        kr = score_key_results(ds, Q)
    r = kr_row(kr, "k2b")
    assert r["status"] == "unmeasurable"
    assert np.isnan(r["score"]) and np.isnan(r["progress"])
    with pytest.warns(DataWarning):
        obj = score_objectives(ds, Q).set_index("objective_id")
    assert obj.loc["o2", "n_unmeasurable"] == 1
    # o2 = k2a alone: 0.5
    assert obj.loc["o2", "score"] == pytest.approx(0.5)


def test_unmeasurable_without_baseline_bypassing_validation():
    # A Dataset built without validation (the loader rejects this): still no crash.
    ds = load(tiny_tables())
    kr = ds.key_results.copy()
    kr.loc[kr["kr_id"] == "k1a", "baseline"] = np.nan
    ds = dataclasses.replace(ds, key_results=kr)
    with pytest.warns(DataWarning, match="k1a"):
        r = kr_row(score_key_results(ds, Q), "k1a")
    assert r["status"] == "unmeasurable"


# ----------------------------------------------------------------------------------
# Status at several as-of dates
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "as_of, current, expected, status",
    [
        # k1a decrease 5 -> 2, value 5 - 0.25 i on 07-06 + 7 i
        # 07-06: progress 0, pace 0 -> off track
        ("2026-07-06", 5.0, 6 / 92, "off track"),
        # 07-13: progress 0.25/3 = 0.0833; expected 13/92 = 0.1413; pace 0.590 -> off track
        ("2026-07-13", 4.75, 13 / 92, "off track"),
        # 07-27: progress 0.75/3 = 0.25; expected 27/92 = 0.2935; pace 0.852 -> at risk
        ("2026-07-27", 4.25, 27 / 92, "at risk"),
        # 08-31: progress 2/3; expected 62/92 = 0.6739; pace 0.989 -> on track
        ("2026-08-31", 3.0, 62 / 92, "on track"),
        # end: progress 2.75/3 = 0.9167; expected 1; pace 0.9167 -> on track
        ("2026-09-30", 2.25, 1.0, "on track"),
    ],
)
def test_status_at_several_dates(full_ds, as_of, current, expected, status):
    r = kr_row(score_key_results(full_ds, Q, as_of=as_of), "k1a")
    assert r["current"] == pytest.approx(current)
    assert r["expected"] == pytest.approx(expected)
    progress = (current - 5) / (2 - 5)
    assert r["pace"] == pytest.approx(progress / expected)
    assert r["status"] == status


def test_status_thresholds_exact():
    t = tiny_tables()
    # k2b increase 40 -> 60 at as_of 08-15: expected = (31 + 15) / 92 = 0.5
    # pace 0.9 needs progress 0.45 -> value 49; pace 0.7 needs progress 0.35 -> value 47
    add_checkins(t, "k2b", ["2026-08-15"], [49])
    add_checkins(t, "k3b", ["2026-08-15"], [80.25])  # 75 -> 90: progress 5.25/15 = 0.35, pace 0.7
    add_checkins(t, "kc1", ["2026-08-15"], [46.8])  # progress 0.34, pace 0.68
    kr = score_key_results(load(t), Q, as_of="2026-08-15")
    assert kr_row(kr, "k2b")["expected"] == pytest.approx(0.5)
    assert kr_row(kr, "k2b")["status"] == "on track"
    assert kr_row(kr, "k3b")["status"] == "at risk"
    assert kr_row(kr, "kc1")["status"] == "off track"


def test_status_after_quarter_uses_expected_one(full_ds):
    late = score_key_results(full_ds, Q, as_of="2027-01-15")
    end = score_key_results(full_ds, Q)
    pd.testing.assert_frame_equal(late, end)
    assert (late["expected"] == 1.0).all()
    # kc1 progress 0.5 -> pace 0.5 -> off track; k3b 0.6 -> off track
    assert kr_row(late, "kc1")["status"] == "off track"


# ----------------------------------------------------------------------------------
# Bands and arguments
# ----------------------------------------------------------------------------------
def test_bands():
    b = score_band([0.0, 0.39999, 0.4, 0.69999, 0.7, 1.0, np.nan])
    assert b.iloc[:6].tolist() == ["red", "red", "yellow", "yellow", "green", "green"]
    assert pd.isna(b.iloc[6])
    # float rounding does not drop a computed 0.7 to yellow
    assert score_band([0.1 * 7 - 1e-12]).iloc[0] == "green"


def test_as_of_validation(full_ds):
    with pytest.raises(ValueError, match=r"as_of 2026-06-30 is before quarter 2026Q3 .*2026-07-01 to 2026-09-30"):
        score_key_results(full_ds, Q, as_of="2026-06-30")
    with pytest.raises(ValueError, match="as_of must be a date"):
        score_key_results(full_ds, Q, as_of="soon")
    # a time of day is dropped; after the end means the end
    kr = score_key_results(full_ds, Q, as_of=pd.Timestamp("2026-07-13 15:30"))
    assert kr["as_of"].iloc[0] == pd.Timestamp("2026-07-13")
    assert score_teams(full_ds, Q, as_of="2030-01-01")["as_of"].iloc[0] == pd.Timestamp("2026-09-30")


def test_unknown_quarter_lists_known(full_ds):
    with pytest.raises(ValueError, match=r"'2026Q2' has no objectives.*2026Q3"):
        score_key_results(full_ds, "2026Q2")
    with pytest.raises(ValueError, match="not a quarter"):
        score_objectives(full_ds, "third quarter")
    with pytest.raises(TypeError, match="ds must be an okr_analysis Dataset"):
        score_teams(full_tables(), Q)
    # other spellings of the quarter work
    assert len(score_key_results(full_ds, "Q3 2026")) == 10


def test_score_dispatch(full_ds):
    pd.testing.assert_frame_equal(score(full_ds, Q, level="objective"), score_objectives(full_ds, Q))
    assert list(score(full_ds, Q).columns) == KR_COLUMNS
    assert list(score(full_ds, Q, level="team").columns) == TEAM_COLUMNS
    with pytest.raises(ValueError, match=r"level must be one of 'kr', 'objective', 'team', got 'dept'"):
        score(full_ds, Q, level="dept")


# ----------------------------------------------------------------------------------
# Objectives
# ----------------------------------------------------------------------------------
def test_objective_scores_weights_and_expectation(full_ds):
    obj = score_objectives(full_ds, Q)
    assert list(obj.columns) == OBJECTIVE_COLUMNS
    o = obj.set_index("objective_id")
    # o1 (committed): k1a 2.75/3 weight 2, k1b 0.5 weight 1 -> (2 * 0.91667 + 0.5) / 3 = 0.77778
    assert o.loc["o1", "score"] == pytest.approx((2 * 2.75 / 3 + 0.5) / 3)
    assert o.loc["o1", "band"] == "green"
    assert not o.loc["o1", "met_expectation"]  # committed needs 1.0
    # oc: kc1 0.5, kc2 no data -> 0.5 (left out, counted)
    assert o.loc["oc", "score"] == pytest.approx(0.5)
    assert (o.loc["oc", "n_krs"], o.loc["oc", "n_scored"], o.loc["oc", "n_no_data"]) == (2, 1, 1)
    # od1: kd1 1.0, kd2 0.75 -> 0.875, aspirational >= 0.7 -> met
    assert o.loc["od1", "score"] == pytest.approx(0.875)
    assert o.loc["od1", "met_expectation"]
    # o3: k3a 1.0, k3b (84 - 75) / 15 = 0.6 -> 0.8
    assert o.loc["o3", "score"] == pytest.approx(0.8)
    # o2: k2a 0.5 (k2b no data) -> 0.5, aspirational, not met
    assert o.loc["o2", "score"] == pytest.approx(0.5)
    assert not o.loc["o2", "met_expectation"]
    assert str(obj["met_expectation"].dtype) == "boolean"


def test_committed_objective_met_at_one():
    t = tiny_tables()
    add_checkins(t, "k1a", ["2026-09-28"], [2.0])  # reaches 2: progress 1
    add_checkins(t, "k1b", ["2026-09-28"], [0.5])  # reaches 0.5: progress 1
    o = score_objectives(load(t), Q).set_index("objective_id")
    assert o.loc["o1", "score"] == pytest.approx(1.0)
    assert o.loc["o1", "met_expectation"]


def test_aspirational_met_at_point_seven():
    t = tiny_tables()
    add_checkins(t, "k3b", ["2026-08-10"], [75 + 0.4 * 15])  # 0.4
    # o3: (1.0 + 0.4) / 2 = 0.7 exactly -> met (aspirational)
    o = score_objectives(load(t), Q).set_index("objective_id")
    assert o.loc["o3", "score"] == pytest.approx(0.7)
    assert o.loc["o3", "met_expectation"]
    assert o.loc["o3", "band"] == "green"


def test_weights_change_the_objective_score():
    t = full_tables()
    t["key_results"].loc[t["key_results"]["kr_id"] == "k1a", "weight"] = 1
    t["key_results"].loc[t["key_results"]["kr_id"] == "k1b", "weight"] = 3
    o = score_objectives(load(t), Q).set_index("objective_id")
    # (1 * 0.91667 + 3 * 0.5) / 4 = 0.60417
    assert o.loc["o1", "score"] == pytest.approx((2.75 / 3 + 1.5) / 4)


def test_objective_status_is_weakest_kr(full_ds):
    o = score_objectives(full_ds, Q, as_of="2026-07-27").set_index("objective_id")
    # o1 at 07-27: k1a at risk (pace 0.852), k1b (1.5 on 07-06: progress 0) off track -> off track
    assert o.loc["o1", "status"] == "off track"
    assert (o.loc["o1", "n_at_risk"], o.loc["o1", "n_off_track"]) == (1, 1)
    # o3 at 07-27: k3a 1.0 done -> on track, k3b no data (left out) -> on track
    assert o.loc["o3", "status"] == "on track"
    assert o.loc["o3", "n_no_data"] == 1
    # oc at 07-27: no KR has a check-in -> no data
    assert o.loc["oc", "status"] == "no data"
    t = full_tables()
    add_checkins(t, "k1b", ["2026-07-20"], [1.25])  # progress 0.25 at 07-27: pace 0.852 -> at risk
    o = score_objectives(load(t), Q, as_of="2026-07-27").set_index("objective_id")
    assert o.loc["o1", "status"] == "at risk"


def test_aligned_objectives(full_ds):
    o = score_objectives(full_ds, Q).set_index("objective_id")
    # od1 <- o1 (0.77778), o2 (0.5): mean 0.63889
    assert o.loc["od1", "n_aligned"] == 2
    assert o.loc["od1", "aligned_objective_ids"] == "o1, o2"
    assert o.loc["od1", "aligned_score"] == pytest.approx(((2 * 2.75 / 3 + 0.5) / 3 + 0.5) / 2)
    # oc <- od1 (0.875), o3 (0.8): mean 0.8375
    assert o.loc["oc", "aligned_score"] == pytest.approx(0.8375)
    assert o.loc["oc", "aligned_objective_ids"] == "o3, od1"
    # leaves: nothing aligned to them
    assert o.loc["o1", "n_aligned"] == 0
    assert np.isnan(o.loc["o1", "aligned_score"]) and pd.isna(o.loc["o1", "aligned_objective_ids"])


def test_aligned_score_skips_unscored_children(full_ds):
    # at 07-27 od1 has no check-in (kd2's 07-07 and 07-21 exist: 9.5 y, 8.5 n -> 0.5, latest misses)
    o = score_objectives(full_ds, Q, as_of="2026-07-27").set_index("objective_id")
    # kd1 no data, kd2 0.5 -> od1 0.5; o3: k3a 1.0 -> 1.0 -> oc aligned (0.5 + 1.0) / 2
    assert o.loc["od1", "score"] == pytest.approx(0.5)
    assert o.loc["oc", "aligned_score"] == pytest.approx(0.75)
    # at 07-03 nothing is scored: aligned_score NaN but n_aligned still 2
    o = score_objectives(full_ds, Q, as_of="2026-07-03").set_index("objective_id")
    assert o.loc["oc", "n_aligned"] == 2 and np.isnan(o.loc["oc", "aligned_score"])


# ----------------------------------------------------------------------------------
# Teams and roll-ups
# ----------------------------------------------------------------------------------
def test_team_rollups_three_levels(full_ds):
    teams = score_teams(full_ds, Q)
    assert list(teams.columns) == TEAM_COLUMNS
    # tree order: parent before children, siblings by id
    assert teams["team_id"].tolist() == ["co", "d1", "t1", "t2", "d2", "t3"]
    tm = teams.set_index("team_id")
    assert tm["level"].to_dict() == {"co": "company", "d1": "department", "t1": "team", "t2": "team",
                                     "d2": "department", "t3": "team"}
    o1 = (2 * 2.75 / 3 + 0.5) / 3  # 0.77778
    # own scores: mean of own objectives
    assert tm.loc["t1", "score"] == pytest.approx(o1)
    assert tm.loc["d1", "score"] == pytest.approx(0.875)
    assert tm.loc["co", "score"] == pytest.approx(0.5)
    assert np.isnan(tm.loc["d2", "score"]) and tm.loc["d2", "n_objectives"] == 0
    # d1 subtree: od1 0.875, o1 0.77778, o2 0.5 -> 0.71759 green
    assert tm.loc["d1", "rollup_score"] == pytest.approx((0.875 + o1 + 0.5) / 3)
    assert tm.loc["d1", "rollup_band"] == "green"
    assert (tm.loc["d1", "rollup_n_teams"], tm.loc["d1", "rollup_n_objectives"]) == (3, 3)
    # d2 subtree: o3 0.8 (d2 owns none)
    assert tm.loc["d2", "rollup_score"] == pytest.approx(0.8)
    # company: oc 0.5, od1 0.875, o1, o2 0.5, o3 0.8 -> 3.45278 / 5 = 0.69056 yellow
    assert tm.loc["co", "rollup_score"] == pytest.approx((0.5 + 0.875 + o1 + 0.5 + 0.8) / 5)
    assert tm.loc["co", "rollup_band"] == "yellow"
    assert (tm.loc["co", "rollup_n_teams"], tm.loc["co", "rollup_n_objectives"]) == (6, 5)
    # leaves: roll-up = own score
    assert tm.loc["t3", "rollup_score"] == tm.loc["t3", "score"]
    # KR counts over the subtree at the end (expected 1):
    #   on track: kd1 (reached), kd2 (9.1 >= 9), k1a (0.917), k3a (done)
    #   off track: kc1 (0.5), k1b (0.5), k2a (8.8 < 9), k3b (0.6); no data: kc2, k2b
    row = tm.loc["co"]
    assert (row["n_krs"], row["n_on_track"], row["n_at_risk"], row["n_off_track"], row["n_no_data"],
            row["n_unmeasurable"]) == (10, 4, 0, 4, 2, 0)
    row = tm.loc["d1"]  # kd1, kd2, k1a, k1b, k2a, k2b
    assert (row["n_krs"], row["n_on_track"], row["n_off_track"], row["n_no_data"]) == (6, 3, 2, 1)
    assert tm.loc["t2", "n_no_data"] == 1


def test_teams_without_objectives_and_deeper_tree():
    t = tiny_tables()
    # a fourth level: squad s1 under t1, with one objective aligned to o1
    t["teams"] = pd.concat([t["teams"], pd.DataFrame({"team_id": ["s1", "s2"], "team_name": ["Squad", "Idle"],
                                                      "parent_team_id": ["t1", "t1"], "headcount": [4, 2]})],
                           ignore_index=True)
    t["objectives"] = pd.concat([t["objectives"], pd.DataFrame({
        "objective_id": ["os"], "team_id": ["s1"], "quarter": [Q], "title": ["Squad goal"],
        "parent_objective_id": ["o1"], "kind": ["aspirational"]})], ignore_index=True)
    t["key_results"] = pd.concat([t["key_results"], pd.DataFrame({
        "kr_id": ["ks"], "objective_id": ["os"], "title": ["x"], "direction": ["increase"],
        "baseline": [0], "target": [10], "weight": [1]})], ignore_index=True)
    add_checkins(t, "ks", ["2026-08-01"], [3])  # 0.3
    tm = score_teams(load(t), Q).set_index("team_id")
    assert tm.loc["s1", "depth"] == 3 and tm.loc["s1", "level"] == "team"
    assert tm.loc["t1", "level"] == "department"  # t1 now has children
    # t1 subtree: o1 (k1a only: 2.75/3) and os 0.3
    assert tm.loc["t1", "rollup_score"] == pytest.approx((2.75 / 3 + 0.3) / 2)
    assert tm.loc["t1", "rollup_n_teams"] == 3
    assert tm.loc["s2", "n_objectives"] == 0 and np.isnan(tm.loc["s2", "rollup_score"])
    assert tm.loc["s2", "n_krs"] == 0
    o = score_objectives(load(t), Q).set_index("objective_id")
    assert o.loc["o1", "aligned_score"] == pytest.approx(0.3)


def test_scores_only_the_requested_quarter():
    t = tiny_tables()
    t["objectives"] = pd.concat([t["objectives"], pd.DataFrame({
        "objective_id": ["q4"], "team_id": ["t1"], "quarter": ["2026Q4"], "title": ["Next"],
        "parent_objective_id": ["o1"], "kind": ["aspirational"]})], ignore_index=True)
    t["key_results"] = pd.concat([t["key_results"], pd.DataFrame({
        "kr_id": ["kq4"], "objective_id": ["q4"], "title": ["x"], "direction": ["milestone"],
        "target": [1], "weight": [1]})], ignore_index=True)
    add_checkins(t, "kq4", ["2026-10-05"], [1])
    ds = load(t)
    assert "kq4" not in set(score_key_results(ds, Q)["kr_id"])
    assert score_objectives(ds, Q).set_index("objective_id").loc["o1", "n_aligned"] == 0
    q4 = score_key_results(ds, "2026Q4")
    assert q4["kr_id"].tolist() == ["kq4"] and q4["score"].iloc[0] == 1.0


def test_quarter_with_objective_but_no_key_results():
    t = tiny_tables()
    t["objectives"] = pd.concat([t["objectives"], pd.DataFrame({
        "objective_id": ["x"], "team_id": ["t1"], "quarter": ["2026Q4"], "title": ["Next"],
        "parent_objective_id": [None], "kind": ["committed"]})], ignore_index=True)
    ds = load(t)
    kr = score_key_results(ds, "2026Q4")
    assert kr.empty and list(kr.columns) == KR_COLUMNS
    o = score_objectives(ds, "2026Q4")
    assert o[["objective_id", "n_krs", "status"]].values.tolist() == [["x", 0, "no data"]]
    assert np.isnan(o["score"].iloc[0]) and pd.isna(o["met_expectation"].iloc[0])
    tm = score_teams(ds, "2026Q4").set_index("team_id")
    assert tm.loc["t1", "n_objectives"] == 1 and tm.loc["co", "rollup_n_objectives"] == 1
    assert tm["n_krs"].eq(0).all() and tm["rollup_score"].isna().all()


# ----------------------------------------------------------------------------------
# The sample organisation (smoke test)
# ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample(request):
    pytest.importorskip("okr_analysis.sample", reason="okr_analysis/sample.py is not there yet")
    return request.getfixturevalue("sample_ds")


def test_sample_scores(sample):
    q = sample.latest_quarter
    kr = score_key_results(sample, q, as_of=sample.quarter(q).start + pd.Timedelta(days=45))
    assert list(kr.columns) == KR_COLUMNS and len(kr) == len(sample.key_results_in(q))
    assert kr["score"].dropna().between(0, 1).all()
    assert set(kr["status"]) <= {"on track", "at risk", "off track", "no data", "unmeasurable"}
    obj = score_objectives(sample, q)
    assert len(obj) == (sample.objectives["quarter"] == q).sum()
    assert obj["n_aligned"].sum() == obj["parent_objective_id"].isin(set(obj["objective_id"])).sum()
    teams = score_teams(sample, q)
    assert len(teams) == len(sample.teams)
    root = teams[teams["depth"] == 0].iloc[0]
    assert root["rollup_n_teams"] == len(sample.teams)
    assert root["n_krs"] == len(kr)
    assert 0 <= root["rollup_score"] <= 1
