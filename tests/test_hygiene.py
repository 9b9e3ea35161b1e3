"""Hygiene lint: every rule firing and not firing, on hand-built organisations.

tiny_tables() (2026Q3 = 1 July to 30 September 2026): company co -> departments d1, d2 -> teams
t1, t2 (under d1), t3 (under d2). Objectives: oc (co), od1 (d1, aligned to oc), o1 (t1) and o2
(t2) aligned to od1, o3 (t3) aligned to oc; d2 owns none. Every objective has 2 KRs. Check-ins:
k1a and k2a weekly 07-06 .. 09-21, k3a 07-06 .. 07-27; the others none. Teams t1..t3 track 4 KPIs.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

from conftest import tiny_tables
from okr_analysis import DataWarning
from okr_analysis.hygiene import LINT_CODES, LINT_COLUMNS, lint
from okr_analysis.io import from_frames

Q = "2026Q3"


def load(t: dict):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return from_frames(t, source="test")


def add_rows(t: dict, table: str, **cols) -> None:
    t[table] = pd.concat([t[table], pd.DataFrame(cols)], ignore_index=True)


def add_checkins(t: dict, kr_id: str, dates: list[str], values: list[float], confidence=7.0) -> None:
    add_rows(t, "checkins", kr_id=kr_id, date=pd.to_datetime(dates), value=values, confidence=confidence,
             comment=None)


def codes(findings: pd.DataFrame, code: str) -> pd.DataFrame:
    return findings[findings["code"] == code].reset_index(drop=True)


def clean_tables() -> dict:
    """tiny_tables() with nothing to flag at as_of 2026-07-10.

    d2 gets an objective od2 (aligned to oc) with two KRs; every KR gets a check-in
    on 07-06 (so none is stale), and no milestone-only objective exists.
    """
    t = tiny_tables()
    add_rows(t, "objectives", objective_id=["od2"], team_id=["d2"], quarter=[Q], title=["Ship well"],
             parent_objective_id=["oc"], kind=["aspirational"])
    add_rows(t, "key_results", kr_id=["kx1", "kx2"], objective_id=["od2", "od2"], title=["A", "B"],
             direction=["increase", "maintain_at_least"], baseline=[0, None], target=[10, 5], weight=[1, 1])
    have = set(t["checkins"]["kr_id"])
    for kr_id in t["key_results"]["kr_id"]:
        if kr_id not in have:
            add_checkins(t, kr_id, ["2026-07-06"], [0.5])
    return t


@pytest.fixture(scope="module")
def tiny_lint():
    return lint(load(tiny_tables()), Q)


def test_clean_organisation_has_no_findings():
    out = lint(load(clean_tables()), Q, as_of="2026-07-10")
    assert out.empty
    assert list(out.columns) == LINT_COLUMNS
    assert all(str(out[c].dtype) == "str" for c in LINT_COLUMNS)


def test_columns_and_order(tiny_lint):
    assert list(tiny_lint.columns) == LINT_COLUMNS
    assert set(tiny_lint["code"]) <= set(LINT_CODES)
    assert set(tiny_lint["severity"]) <= {"warning", "info"}
    assert (tiny_lint["quarter"] == Q).all()
    rank = tiny_lint["code"].map({c: i for i, c in enumerate(LINT_CODES)})
    assert rank.is_monotonic_increasing


# ----------------------------------------------------------------------------------
# TEAM_OBJECTIVE_COUNT
# ----------------------------------------------------------------------------------
def test_team_objective_count_department_without_objectives_is_info(tiny_lint):
    f = codes(tiny_lint, "TEAM_OBJECTIVE_COUNT")
    assert f[["team_id", "severity"]].values.tolist() == [["d2", "info"]]
    assert pd.isna(f["objective_id"].iloc[0]) and pd.isna(f["kr_id"].iloc[0])
    assert "Team d2 (Dept Two) has no objectives in 2026Q3" in f["message"].iloc[0]


def test_team_objective_count_leaf_without_and_too_many():
    t = clean_tables()
    # t3 loses o3; t1 gets 3 more objectives (4 in all)
    t["objectives"] = t["objectives"][t["objectives"]["objective_id"] != "o3"]
    t["key_results"] = t["key_results"][t["key_results"]["objective_id"] != "o3"]
    t["checkins"] = t["checkins"][~t["checkins"]["kr_id"].isin(["k3a", "k3b"])]
    add_rows(t, "objectives", objective_id=["x1", "x2", "x3"], team_id=["t1"] * 3, quarter=[Q] * 3,
             title=["X1", "X2", "X3"], parent_objective_id=["od1"] * 3, kind=["aspirational"] * 3)
    out = lint(load(t), Q, as_of="2026-07-10")
    f = codes(out, "TEAM_OBJECTIVE_COUNT")
    assert f[["team_id", "severity"]].values.tolist() == [["t1", "warning"], ["t3", "warning"]]
    assert "has 4 objectives in 2026Q3; keep 1–3" in f["message"].iloc[0]
    # 3 objectives is fine; so is 1
    out = lint(load(t), Q, as_of="2026-07-10", max_objectives=4)
    assert codes(out, "TEAM_OBJECTIVE_COUNT")["team_id"].tolist() == ["t3"]


# ----------------------------------------------------------------------------------
# OBJECTIVE_KR_COUNT
# ----------------------------------------------------------------------------------
def test_objective_kr_count(tiny_lint):
    assert codes(tiny_lint, "OBJECTIVE_KR_COUNT").empty  # every objective has 2
    t = clean_tables()
    t["key_results"] = t["key_results"][t["key_results"]["kr_id"] != "k2b"]  # o2: 1 KR
    t["checkins"] = t["checkins"][t["checkins"]["kr_id"] != "k2b"]
    ids = [f"k1x{i}" for i in range(4)]  # o1: 2 + 4 = 6 KRs
    add_rows(t, "key_results", kr_id=ids, objective_id=["o1"] * 4, title=ids, direction=["increase"] * 4,
             baseline=[0] * 4, target=[1] * 4, weight=[1] * 4)
    for k in ids:
        add_checkins(t, k, ["2026-07-06"], [0.1])
    out = codes(lint(load(t), Q, as_of="2026-07-10"), "OBJECTIVE_KR_COUNT")
    assert out[["team_id", "objective_id"]].values.tolist() == [["t1", "o1"], ["t2", "o2"]]
    assert "Objective o1 'Answer fast' (team t1) has 6 key results; use 2–5" in out["message"].iloc[0]
    assert "has 1 key result;" in out["message"].iloc[1]
    assert pd.isna(out["kr_id"]).all()


def test_objective_without_key_results():
    t = clean_tables()
    add_rows(t, "objectives", objective_id=["oe"], team_id=["t2"], quarter=[Q], title=["Empty"],
             parent_objective_id=["od1"], kind=["aspirational"])
    out = codes(lint(load(t), Q, as_of="2026-07-10"), "OBJECTIVE_KR_COUNT")
    assert out["objective_id"].tolist() == ["oe"]
    assert "has 0 key results" in out["message"].iloc[0]


# ----------------------------------------------------------------------------------
# KR_UNMEASURABLE
# ----------------------------------------------------------------------------------
def test_kr_unmeasurable_target_equals_baseline(tiny_lint):
    assert codes(tiny_lint, "KR_UNMEASURABLE").empty
    t = clean_tables()
    t["key_results"].loc[t["key_results"]["kr_id"] == "k2b", "baseline"] = 60  # target 60
    with pytest.warns(DataWarning, match="KR_UNMEASURABLE"):
        ds = from_frames(t)
    out = codes(lint(ds, Q, as_of="2026-07-10"), "KR_UNMEASURABLE")
    assert out[["team_id", "objective_id", "kr_id", "severity"]].values.tolist() == [["t2", "o2", "k2b", "warning"]]
    assert "target equal to its baseline (60)" in out["message"].iloc[0]
    # maintain KRs and milestones need no baseline: not flagged
    assert not {"k2a", "k3a", "kx2"} & set(out["kr_id"])


def test_kr_unmeasurable_without_baseline_bypassing_validation():
    # The loader rejects an increase KR without a baseline; a Dataset built around it still lints.
    ds = load(clean_tables())
    kr = ds.key_results.copy()
    kr.loc[kr["kr_id"] == "k3b", "baseline"] = np.nan
    kr.loc[kr["kr_id"] == "kc1", "target"] = np.nan
    out = codes(lint(dataclasses.replace(ds, key_results=kr), Q, as_of="2026-07-10"), "KR_UNMEASURABLE")
    assert out["kr_id"].tolist() == ["kc1", "k3b"]
    assert "has no target" in out["message"].iloc[0]
    assert "has no baseline, which a key result with direction increase needs" in out["message"].iloc[1]


# ----------------------------------------------------------------------------------
# KR_STALE
# ----------------------------------------------------------------------------------
def test_kr_stale_last_checkin():
    ds = load(clean_tables())
    # k3a: last check-in 07-27. 08-10 is 14 days later: still fresh; 08-11 is 15: stale.
    assert "k3a" not in set(codes(lint(ds, Q, as_of="2026-08-10"), "KR_STALE")["kr_id"])
    out = codes(lint(ds, Q, as_of="2026-08-11"), "KR_STALE")
    assert "k3a" in set(out["kr_id"])
    msg = out.set_index("kr_id").loc["k3a", "message"]
    assert "was last checked in on 2026-07-27, 15 days before 2026-08-11" in msg
    # k1a checks in weekly: never stale
    assert "k1a" not in set(out["kr_id"])
    # stale_days is an option
    assert "k3a" not in set(codes(lint(ds, Q, as_of="2026-08-11", stale_days=20), "KR_STALE")["kr_id"])


def test_kr_stale_without_any_checkin():
    ds = load(tiny_tables())  # kc1 has no check-in at all
    # 07-15 is 14 days after the quarter's start (07-01): not stale yet; 07-16: stale
    assert "kc1" not in set(codes(lint(ds, Q, as_of="2026-07-15"), "KR_STALE")["kr_id"])
    out = codes(lint(ds, Q, as_of="2026-07-16"), "KR_STALE").set_index("kr_id")
    assert "has no check-in since 2026Q3 started on 2026-07-01, 15 days before 2026-07-16" in out.loc["kc1", "message"]
    assert out.loc["kc1", "team_id"] == "co" and out.loc["kc1", "objective_id"] == "oc"


def test_kr_stale_ignores_checkins_outside_the_quarter():
    t = clean_tables()
    add_checkins(t, "k3a", ["2026-10-03"], [1.0])  # next quarter: does not refresh k3a
    out = codes(lint(load(t), Q), "KR_STALE")
    assert "k3a" in set(out["kr_id"])


# ----------------------------------------------------------------------------------
# OBJECTIVE_NOT_ALIGNED
# ----------------------------------------------------------------------------------
def test_objective_not_aligned():
    t = clean_tables()
    obj = t["objectives"]
    obj.loc[obj["objective_id"] == "o1", "parent_objective_id"] = None  # d1 has od1: fires
    obj.loc[obj["objective_id"] == "od2", "parent_objective_id"] = None  # co has oc: fires
    out = codes(lint(load(t), Q, as_of="2026-07-10"), "OBJECTIVE_NOT_ALIGNED")
    assert out[["team_id", "objective_id", "severity"]].values.tolist() == [["d2", "od2", "info"],
                                                                           ["t1", "o1", "info"]]
    assert "parent team d1 (Dept One) has 1 objective in 2026Q3 (od1)" in out["message"].iloc[1]


def test_objective_not_aligned_does_not_fire_without_parent_objectives(tiny_lint):
    # oc belongs to the root (no parent team): never flagged
    assert codes(tiny_lint, "OBJECTIVE_NOT_ALIGNED").empty
    t = tiny_tables()
    obj = t["objectives"]
    # o3's parent team d2 has no objectives this quarter: an unaligned o3 is fine
    obj.loc[obj["objective_id"] == "o3", "parent_objective_id"] = None
    assert codes(lint(load(t), Q), "OBJECTIVE_NOT_ALIGNED").empty


def test_objective_not_aligned_only_counts_the_quarter():
    t = tiny_tables()
    obj = t["objectives"]
    obj.loc[obj["objective_id"] == "o3", "parent_objective_id"] = None
    # d2 has an objective, but in 2026Q4: o3 in 2026Q3 is not flagged
    add_rows(t, "objectives", objective_id=["od2"], team_id=["d2"], quarter=["2026Q4"], title=["Later"],
             parent_objective_id=[None], kind=["aspirational"])
    assert codes(lint(load(t), Q), "OBJECTIVE_NOT_ALIGNED").empty


# ----------------------------------------------------------------------------------
# OBJECTIVE_ONLY_MILESTONES
# ----------------------------------------------------------------------------------
def test_objective_only_milestones(tiny_lint):
    # oc and o3 mix a milestone with a measured KR: fine
    assert codes(tiny_lint, "OBJECTIVE_ONLY_MILESTONES").empty
    t = clean_tables()
    kr = t["key_results"]
    kr.loc[kr["kr_id"] == "k3b", ["direction", "baseline", "target"]] = ["milestone", None, 1]
    out = codes(lint(load(t), Q, as_of="2026-07-10"), "OBJECTIVE_ONLY_MILESTONES")
    assert out[["team_id", "objective_id", "severity"]].values.tolist() == [["t3", "o3", "info"]]
    assert "All 2 key results of objective o3 'Ship chat' (team t3) are milestones" in out["message"].iloc[0]


# ----------------------------------------------------------------------------------
# TEAM_TOO_MANY_KPIS
# ----------------------------------------------------------------------------------
def _add_metrics(t: dict, team: str, names: list[str], dates) -> None:
    add_rows(t, "metrics", metric=names)
    for m in names:
        add_rows(t, "kpis", team_id=team, metric=m, date=pd.to_datetime(dates), value=1.0)


def test_team_too_many_kpis(tiny_lint):
    assert codes(tiny_lint, "TEAM_TOO_MANY_KPIS").empty  # 4 KPIs each
    t = clean_tables()
    _add_metrics(t, "t1", ["m1", "m2", "m3", "m4"], ["2026-07-06", "2026-08-03"])  # t1: 4 + 4 = 8
    _add_metrics(t, "t2", ["m5", "m6", "m7"], ["2026-07-06"])  # t2: 4 + 3 = 7, the limit
    out = codes(lint(load(t), Q, as_of="2026-09-30"), "TEAM_TOO_MANY_KPIS")
    assert out[["team_id", "severity"]].values.tolist() == [["t1", "info"]]
    assert "Team t1 (Team One) tracks 8 KPIs (csat, engagement, frt, m1, m2, m3, m4, nps), more than 7" in \
        out["message"].iloc[0]
    assert pd.isna(out["objective_id"]).all()


def test_team_too_many_kpis_window():
    t = clean_tables()
    # t1's extra metrics were only reported a year ago: not tracked now
    _add_metrics(t, "t1", ["m1", "m2", "m3", "m4"], ["2025-07-07"])
    assert codes(lint(load(t), Q), "TEAM_TOO_MANY_KPIS").empty
    # window = one quarter's length (92 days) ending on as_of: at 07-10, values from 2026-04-10 count
    t = clean_tables()
    _add_metrics(t, "t1", ["m1", "m2", "m3", "m4"], ["2026-04-11"])
    ds = load(t)
    assert codes(lint(ds, Q, as_of="2026-07-10"), "TEAM_TOO_MANY_KPIS")["team_id"].tolist() == ["t1"]
    assert codes(lint(ds, Q, as_of="2026-07-12"), "TEAM_TOO_MANY_KPIS").empty


# ----------------------------------------------------------------------------------
# CONFIDENCE_DROP
# ----------------------------------------------------------------------------------
def test_confidence_drop(tiny_lint):
    assert codes(tiny_lint, "CONFIDENCE_DROP").empty  # confidences are constant
    t = clean_tables()
    ci = t["checkins"]
    k1a = ci.index[ci["kr_id"] == "k1a"]
    # 8, 8, 5 (-3: fires), 6, 4 (-2: not), 4, NaN, 1 (4 -> 1 across the missing one: fires), ...
    ci.loc[k1a[:8], "confidence"] = [8, 8, 5, 6, 4, 4, np.nan, 1]
    out = codes(lint(load(t), Q), "CONFIDENCE_DROP")
    assert out[["team_id", "objective_id", "kr_id", "severity"]].values.tolist() == [
        ["t1", "o1", "k1a", "warning"], ["t1", "o1", "k1a", "warning"]]
    assert "fell from 8 to 5 between the check-ins of 2026-07-13 and 2026-07-20" in out["message"].iloc[0]
    assert "fell from 4 to 1 between the check-ins of 2026-08-10 and 2026-08-24" in out["message"].iloc[1]
    # before the first drop nothing fires; the threshold is an option
    assert codes(lint(load(t), Q, as_of="2026-07-19"), "CONFIDENCE_DROP").empty
    assert len(codes(lint(load(t), Q, confidence_drop=2), "CONFIDENCE_DROP")) == 3


def test_no_checkins_yet_and_objective_without_key_results():
    t = tiny_tables()
    add_rows(t, "objectives", objective_id=["x"], team_id=["t1"], quarter=["2026Q4"], title=["Next"],
             parent_objective_id=["o1"], kind=["aspirational"])
    ds = load(t)
    # before the first check-in (07-06) of 2026Q3: nothing stale yet (2 days in), no drop
    out = lint(ds, Q, as_of="2026-07-03")
    assert out["code"].tolist() == ["TEAM_OBJECTIVE_COUNT"]
    # 2026Q4 has one objective (t1's), no key results and no check-ins at all
    out = lint(ds, "2026Q4")
    assert codes(out, "OBJECTIVE_KR_COUNT")["objective_id"].tolist() == ["x"]
    assert codes(out, "TEAM_OBJECTIVE_COUNT")["team_id"].tolist() == ["co", "d1", "d2", "t2", "t3"]
    assert codes(out, "TEAM_OBJECTIVE_COUNT")["severity"].tolist() == ["info", "info", "info", "warning", "warning"]
    # x's parent team d1 has no objectives in 2026Q4 (od1 is 2026Q3): x is aligned anyway
    assert codes(out, "OBJECTIVE_NOT_ALIGNED").empty


# ----------------------------------------------------------------------------------
# Arguments
# ----------------------------------------------------------------------------------
def test_arguments():
    ds = load(tiny_tables())
    with pytest.raises(ValueError, match="stale_days must be a number >= 0, got -1"):
        lint(ds, Q, stale_days=-1)
    with pytest.raises(ValueError, match="max_kpis must be a number"):
        lint(ds, Q, max_kpis="7")
    with pytest.raises(ValueError, match=r"'2025Q1' has no objectives.*2026Q3"):
        lint(ds, "2025Q1")
    with pytest.raises(ValueError, match="before quarter 2026Q3 starts"):
        lint(ds, Q, as_of="2026-01-01")
    # after the end = the end
    pd.testing.assert_frame_equal(lint(ds, Q, as_of="2027-03-01"), lint(ds, Q))


# ----------------------------------------------------------------------------------
# The sample organisation (smoke test)
# ----------------------------------------------------------------------------------
def test_sample_lint_finds_the_planted_problems(request):
    pytest.importorskip("okr_analysis.sample", reason="okr_analysis/sample.py is not there yet")
    ds = request.getfixturevalue("sample_ds")
    out = lint(ds, ds.latest_quarter)
    assert list(out.columns) == LINT_COLUMNS
    # the sample documents: unaligned team objectives, an objective with a single key result,
    # one with only milestones, a stale key result, a confidence drop of 4 points in a week
    assert {"OBJECTIVE_NOT_ALIGNED", "OBJECTIVE_KR_COUNT", "OBJECTIVE_ONLY_MILESTONES", "KR_STALE",
            "CONFIDENCE_DROP"} <= set(out["code"])
    assert out["message"].str.len().gt(40).all()
