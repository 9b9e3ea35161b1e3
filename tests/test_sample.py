"""Tests of the sample organisation generator (okr_analysis.sample).

Real computation throughout: the tables are generated and checked against the data
format, against each other, and against the answers the module documents
(``BUILT_IN_DRIVERS``, ``UNRELATED_METRIC``, ``BUILT_IN_DECLINES``).
"""

from __future__ import annotations

import re
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from okr_analysis.io import Quarter, quarter_of
from okr_analysis.sample import (
    BUILT_IN_DECLINES,
    BUILT_IN_DRIVERS,
    SAMPLE_README,
    UNRELATED_METRIC,
    make_sample,
    write_sample,
)
from okr_analysis.io.schemas import AGGREGATIONS, DIRECTIONS, METRIC_KINDS, OBJECTIVE_KINDS
from okr_analysis.io import TABLES

QUARTERS = ["2025Q4", "2026Q1", "2026Q2", "2026Q3"]
LAST_DATE = pd.Timestamp("2026-09-21")  # the last Monday on or before the default end, 2026-09-27


@pytest.fixture(scope="module")
def tables(sample_tables) -> dict[str, pd.DataFrame]:
    return sample_tables


@pytest.fixture(scope="module")
def larger() -> dict[str, pd.DataFrame]:
    """40 leaf teams (10 per department): enough pooled weeks for tight correlation bounds."""
    return make_sample(seed=0, n_teams=40)


def _leaves(teams: pd.DataFrame) -> pd.DataFrame:
    return teams[~teams["team_id"].isin(set(teams["parent_team_id"].dropna()))]


def _wide(kpis: pd.DataFrame, metric: str) -> pd.DataFrame:
    return kpis[kpis["metric"] == metric].pivot(index="date", columns="team_id", values="value")


def _pooled_ccf(leading: pd.DataFrame, lagging: pd.DataFrame, lags=range(11)) -> np.ndarray:
    """corr(Δleading[t - k], Δlagging[t]) for k in lags, pooled over the teams having both.

    Each team's first differences are centred on their own mean before pooling.
    """
    teams = sorted(set(leading.columns) & set(lagging.columns))
    dx = leading[teams].diff().iloc[1:]
    dy = lagging[teams].diff().iloc[1:]
    dx, dy = dx - dx.mean(), dy - dy.mean()
    out = []
    for k in lags:
        a = dx.shift(k).iloc[k:].to_numpy().ravel()
        b = dy.iloc[k:].to_numpy().ravel()
        out.append(float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum())))
    return np.array(out)


def _check_references(t: dict[str, pd.DataFrame]) -> None:
    teams, obj, kr, ci, kpis, metrics = (t[n] for n in ("teams", "objectives", "key_results", "checkins",
                                                        "kpis", "metrics"))
    for frame, key in ((teams, "team_id"), (obj, "objective_id"), (kr, "kr_id"), (metrics, "metric")):
        assert frame[key].notna().all() and frame[key].is_unique, key
    assert not kpis.duplicated(["team_id", "metric", "date"]).any()
    team_ids, obj_ids, metric_ids = set(teams["team_id"]), set(obj["objective_id"]), set(metrics["metric"])
    assert set(teams["parent_team_id"].dropna()) <= team_ids
    assert set(obj["team_id"]) <= team_ids
    assert set(obj["parent_objective_id"].dropna()) <= obj_ids
    assert set(kr["objective_id"]) <= obj_ids
    assert set(kr["metric"].dropna()) <= metric_ids
    assert set(ci["kr_id"]) <= set(kr["kr_id"])
    assert set(kpis["team_id"]) <= team_ids and set(kpis["metric"]) <= metric_ids
    assert set(t["benchmarks"]["metric"]) <= metric_ids
    # every objective has key results, every key result check-ins
    assert set(obj["objective_id"]) == set(kr["objective_id"])
    assert set(kr["kr_id"]) == set(ci["kr_id"])
    # a KR measured by a KPI measures a KPI of its own team
    kr_team = kr.merge(obj[["objective_id", "team_id"]], on="objective_id").dropna(subset=["metric"])
    measured = set(zip(kpis["team_id"], kpis["metric"]))
    assert all(pair in measured for pair in zip(kr_team["team_id"], kr_team["metric"]))


# ----------------------------------------------------------------------------------
# Determinism, format, references
# ----------------------------------------------------------------------------------
def test_same_seed_same_tables_other_seed_other_tables(tables):
    again = make_sample(seed=0)
    for name in TABLES:
        pd.testing.assert_frame_equal(tables[name], again[name])
    other = make_sample(seed=1)
    assert not np.array_equal(tables["kpis"]["value"].to_numpy(), other["kpis"]["value"].to_numpy())
    assert not tables["key_results"]["title"].equals(other["key_results"]["title"])
    assert tables["checkins"]["value"].to_numpy().tolist() != other["checkins"]["value"].to_numpy().tolist()


def test_columns_are_exactly_those_of_the_data_format(tables):
    assert set(tables) == set(TABLES)
    for name, spec in TABLES.items():
        assert list(tables[name].columns) == spec.column_names, name
        for col in spec.columns:
            if col.required:
                assert tables[name][col.name].notna().all(), f"{name}.{col.name}"
            if col.choices:
                assert set(tables[name][col.name].dropna()) <= set(col.choices), f"{name}.{col.name}"


def test_ids_are_unique_and_every_reference_resolves(tables):
    _check_references(tables)


def test_team_tree(tables):
    teams = tables["teams"]
    roots = teams[teams["parent_team_id"].isna()]
    assert roots["team_id"].tolist() == ["acme"] and roots["team_name"].iloc[0] == "Acme Corp"
    departments = teams[teams["parent_team_id"] == "acme"]
    assert sorted(departments["team_id"]) == ["eng", "hr", "sales", "support"]
    leaves = _leaves(teams)
    assert len(leaves) == 12 and set(leaves["parent_team_id"]) == set(departments["team_id"])
    # acyclic: every team reaches the root in at most two steps
    parent = dict(zip(teams["team_id"], teams["parent_team_id"]))
    for tid in teams["team_id"]:
        seen, node = [], tid
        while isinstance(node, str):
            assert node not in seen, f"cycle through {node}"
            seen.append(node)
            node = parent[node]
        assert seen[-1] == "acme" and len(seen) <= 3
    # headcounts: realistic leaves, one below 5 people; parents are the sum of their children
    assert leaves["headcount"].between(4, 40).all()
    assert leaves.loc[leaves["headcount"] < 5, "team_id"].tolist() == ["hr-partners"]
    for tid in ["acme", *departments["team_id"]]:
        kids = teams.loc[teams["parent_team_id"] == tid, "headcount"].sum()
        assert teams.loc[teams["team_id"] == tid, "headcount"].iloc[0] == kids


def test_metric_catalogue(tables):
    m = tables["metrics"].set_index("metric")
    assert len(m) == 16 and m["description"].str.len().gt(10).all() and m["unit"].notna().all()
    assert set(m["kind"]) <= set(METRIC_KINDS) and set(m["aggregation"]) <= set(AGGREGATIONS)
    assert m["higher_is_better"].dtype == bool and m["people_metric"].dtype == bool
    people = {"turnover", "absenteeism", "engagement", "overtime", "training_attendance", "pdp_completion"}
    assert set(m.index[m["people_metric"]]) == people
    assert not m.loc["turnover", "higher_is_better"] and m.loc["engagement", "higher_is_better"]
    assert m.loc["complaints", "aggregation"] == "sum" and m.loc["revenue", "aggregation"] == "sum"
    for d in BUILT_IN_DRIVERS:
        assert m.loc[d["leading"], "kind"] == "leading" and m.loc[d["lagging"], "kind"] == "lagging"
    assert UNRELATED_METRIC in m.index and m.loc[UNRELATED_METRIC, "kind"] == "leading"
    b = tables["benchmarks"]
    assert len(b) >= 5 and b["source"].str.contains("illustrative").all()
    assert {"turnover", "csat", "engagement", "first_response_time", "nps"} <= set(b["metric"])


def test_kpis_are_weekly_on_mondays(tables):
    k = tables["kpis"]
    dates = pd.DatetimeIndex(sorted(k["date"].unique()))
    assert len(dates) == 156 and dates[-1] == LAST_DATE and (dates.day_of_week == 0).all()
    assert (np.diff(dates.to_numpy()) == np.timedelta64(7, "D")).all()
    assert k["value"].notna().all() and np.isfinite(k["value"]).all()
    per_series = k.groupby(["team_id", "metric"]).size()
    assert (per_series == 156).all()
    # every leaf team measures the people metrics and the unrelated one; support teams more than 7 KPIs
    per_team = k.groupby("team_id")["metric"].nunique()
    assert set(per_team.index) == set(_leaves(tables["teams"])["team_id"])
    assert per_team.min() == 7 and per_team["support-tier1"] == 12 and per_team["sales-smb"] == 11
    m = tables["metrics"].set_index("metric")
    for metric, (lo, hi) in {"engagement": (0, 100), "csat": (0, 10), "nps": (-100, 100),
                             "turnover": (0, 100), "training_attendance": (0, 100)}.items():
        assert k.loc[k["metric"] == metric, "value"].between(lo, hi).all(), metric
    assert (k.loc[k["metric"].isin(["complaints", "qualified_leads", UNRELATED_METRIC]), "value"] % 1 == 0).all()
    assert m.loc["absenteeism", "unit"] == "%"
    # winter peak of absenteeism: January–February above July–August in every team
    a = k[k["metric"] == "absenteeism"]
    month = a["date"].dt.month
    winter = a[month.isin([1, 2])].groupby("team_id")["value"].mean()
    summer = a[month.isin([7, 8])].groupby("team_id")["value"].mean()
    assert (winter > summer).all()


# ----------------------------------------------------------------------------------
# OKRs
# ----------------------------------------------------------------------------------
def test_objectives_per_quarter_and_alignment(tables):
    obj, kr, teams = tables["objectives"], tables["key_results"], tables["teams"]
    assert sorted(obj["quarter"].unique()) == QUARTERS
    assert set(obj["kind"]) == set(OBJECTIVE_KINDS)
    parent_team = dict(zip(teams["team_id"], teams["parent_team_id"]))
    by_id = obj.set_index("objective_id")
    leaves = set(_leaves(teams)["team_id"])
    for q, o in obj.groupby("quarter"):
        counts = o.groupby("team_id").size()
        assert set(counts.index) == set(teams["team_id"]), q
        assert counts["acme"] in (1, 2)
        assert counts[["hr", "support", "sales", "eng"]].between(1, 2).all()
        assert counts[sorted(leaves)].between(1, 3).all()
        assert o.loc[o["team_id"] == "acme", "parent_objective_id"].isna().all()
        aligned = o.dropna(subset=["parent_objective_id"])
        # a parent objective belongs to the same quarter and to the parent team
        assert (by_id.loc[aligned["parent_objective_id"], "quarter"].to_numpy() == q).all()
        assert (by_id.loc[aligned["parent_objective_id"], "team_id"].to_numpy()
                == aligned["team_id"].map(parent_team).to_numpy()).all()
        departments = o[o["team_id"].isin(["hr", "support", "sales", "eng"])]
        assert departments["parent_objective_id"].notna().all()
        unaligned = o[o["team_id"].isin(leaves) & o["parent_objective_id"].isna()]
        assert 1 <= len(unaligned) <= 2, q
    # 2–5 key results per objective, except one with a single key result; one objective of milestones only
    n_krs = kr.groupby("objective_id").size()
    assert n_krs.max() <= 5 and n_krs[n_krs < 2].index.tolist() == ["2026Q3-sales-partnerships-o1"]
    only_ms = kr.groupby("objective_id")["direction"].agg(lambda d: (d == "milestone").all())
    assert only_ms[only_ms].index.tolist() == ["2026Q3-eng-platform-o1"]


def test_key_results(tables):
    kr = tables["key_results"]
    assert set(kr["direction"]) == set(DIRECTIONS)
    moving = kr["direction"].isin(["increase", "decrease"])
    assert kr.loc[moving, "baseline"].notna().all() and kr["target"].notna().all()
    assert (kr.loc[kr["direction"] == "increase", "target"] > kr.loc[kr["direction"] == "increase", "baseline"]).all()
    assert (kr.loc[kr["direction"] == "decrease", "target"] < kr.loc[kr["direction"] == "decrease", "baseline"]).all()
    ms = kr[kr["direction"] == "milestone"]
    assert (ms["target"] == 1).all() and ms["baseline"].isna().all() and ms["metric"].isna().all()
    assert set(kr["weight"]) == {1.0, 2.0} and (kr["weight"] == 1).mean() > 0.7
    assert kr["metric"].notna().mean() > 0.4  # most team key results measure a KPI


def test_key_result_titles_show_their_baseline_and_target(tables):
    number = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")
    for row in tables["key_results"].itertuples():
        found = [float(x) for x in number.findall(row.title)]
        if row.direction == "milestone":
            assert found == [], row.title
        elif " from " in row.title:
            assert found == [row.baseline, row.target], row.title
        else:
            assert found == [row.target], row.title
    titles = set(tables["key_results"]["title"])
    assert "Launch live chat" in titles
    assert any(re.fullmatch(r"Maintain CSAT at \d+\.\d\+", t) for t in titles)
    assert any(re.fullmatch(r"PDP completion \d+%", t) for t in titles)


def test_checkins(tables):
    ci, kr, obj, kpis = tables["checkins"], tables["key_results"], tables["objectives"], tables["kpis"]
    assert (ci["date"].dt.day_of_week == 0).all() and ci["date"].max() <= LAST_DATE
    q = ci["kr_id"].map(kr.set_index("kr_id")["objective_id"]).map(obj.set_index("objective_id")["quarter"])
    assert (quarter_of(ci["date"]) == q).all()
    assert not ci.duplicated(["kr_id", "date"]).any()
    # metric KRs report exactly the team's KPI value of that date
    team = kr.set_index("kr_id")["objective_id"].map(obj.set_index("objective_id")["team_id"])
    with_metric = ci.merge(kr[["kr_id", "metric"]].dropna(), on="kr_id")
    with_metric["team_id"] = with_metric["kr_id"].map(team)
    joined = with_metric.merge(kpis, on=["team_id", "metric", "date"], how="left", suffixes=("", "_kpi"))
    assert len(joined) == len(with_metric) > 1000
    assert (joined["value"] == joined["value_kpi"]).all()
    # baselines are the KPI's value at the quarter's first check-in, rounded for the title
    first = joined.sort_values("date").groupby("kr_id").first()
    base = kr.set_index("kr_id")["baseline"].reindex(first.index).dropna()
    value = first.loc[base.index, "value"]
    assert ((base - value).abs() <= np.maximum(0.1 * value.abs(), 0.25)).all()
    # milestones: 0 → 0.25/0.5 → 1, some done, some not
    ms = ci[ci["kr_id"].isin(kr.loc[kr["direction"] == "milestone", "kr_id"])]
    assert set(ms["value"]) <= {0.0, 0.25, 0.5, 1.0}
    assert ms.groupby("kr_id")["value"].is_monotonic_increasing.all()
    last_ms = ms.sort_values("date").groupby("kr_id")["value"].last()
    assert (last_ms == 1).sum() >= 5 and (last_ms < 1).sum() >= 1
    # confidence: whole numbers 0–10, one drop of at least 3 points between consecutive check-ins
    assert ci["confidence"].between(0, 10).all() and (ci["confidence"] % 1 == 0).all()
    c = ci.sort_values(["kr_id", "date"])
    drops = c.groupby("kr_id")["confidence"].diff()
    assert (drops <= -3).sum() >= 1
    assert c.loc[drops <= -3, "comment"].notna().all()
    # comments on some check-ins
    assert 0.05 < ci["comment"].notna().mean() < 0.5
    # a missed week now and then, and one key result gone stale in the latest quarter
    latest = kr.loc[kr["objective_id"].str.startswith("2026Q3"), "kr_id"]
    last_date = ci[ci["kr_id"].isin(latest)].groupby("kr_id")["date"].max()
    assert (last_date <= LAST_DATE - pd.Timedelta(weeks=3)).sum() == 1
    per_kr = ci.groupby("kr_id").size()
    assert per_kr.min() >= 5 and per_kr.max() <= 14


def test_about_half_the_key_results_reach_their_target(tables):
    kr = tables["key_results"].set_index("kr_id")
    last = tables["checkins"].sort_values("date").groupby("kr_id")["value"].last()
    d = kr["direction"]
    moving = d.isin(["increase", "decrease"])
    span = kr["target"] - kr["baseline"]
    progress = ((last - kr["baseline"]) / span)[moving]
    reached = (progress >= 1 - 1e-9).mean()
    assert 0.35 <= reached <= 0.65
    assert (progress < 0.5).mean() > 0.15  # and outcomes vary
    # some on pace early and missing, some behind early and catching up
    ci = tables["checkins"].merge(kr[["baseline", "target"]], left_on="kr_id", right_index=True)
    ci = ci[ci["kr_id"].isin(progress.index)].sort_values("date")
    mid = ci.groupby("kr_id").nth(5).set_index("kr_id")
    mid_progress = (mid["value"] - mid["baseline"]) / (mid["target"] - mid["baseline"])
    hit = progress.reindex(mid_progress.index) >= 1
    assert ((mid_progress > 0.5) & ~hit).sum() >= 3
    assert ((mid_progress < 0.3) & hit).sum() >= 3


# ----------------------------------------------------------------------------------
# The planted answers
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["default", "larger"])
def test_built_in_drivers_show_in_pooled_cross_correlations(which, tables, larger):
    t = tables if which == "default" else larger
    k = t["kpis"]
    assert {(d["leading"], d["lagging"]) for d in BUILT_IN_DRIVERS} == {
        ("training_attendance", "engagement"), ("first_response_time", "csat"), ("qualified_leads", "revenue")}
    for d in BUILT_IN_DRIVERS:
        r = _pooled_ccf(_wide(k, d["leading"]), _wide(k, d["lagging"]))
        lag = d["lag_weeks"]
        assert int(np.argmax(np.abs(r))) == lag, (d, np.round(r, 2))
        assert np.sign(r[lag]) == d["sign"] and abs(r[lag]) > 0.25, (d, np.round(r, 2))
        others = np.delete(np.abs(r), lag)
        assert abs(r[lag]) > 1.5 * others.max(), (d, np.round(r, 2))


def test_unrelated_metric_trends_but_predicts_nothing(tables, larger):
    for t, strict in ((tables, False), (larger, True)):
        k, m = t["kpis"], t["metrics"]
        x = _wide(k, UNRELATED_METRIC)
        # it trends: upwards in (nearly) every team
        taus = [stats.kendalltau(np.arange(len(x)), x[c]).statistic for c in x.columns]
        assert np.mean(np.array(taus) > 0.5) > 0.8
        for lagging in m.loc[m["kind"] == "lagging", "metric"]:
            y = _wide(k, lagging)
            r = _pooled_ccf(x, y)
            n_pairs = (len(y) - 11) * len(set(x.columns) & set(y.columns))
            # |r| < 0.1 with 10 teams per department; the default organisation has only 3 support and
            # 3 sales teams (≈ 460 pooled weeks), where chance alone reaches 0.1, so allow 4 standard errors.
            bound = 0.1 if strict or n_pairs > 1500 else 4 / np.sqrt(n_pairs)
            assert np.abs(r).max() < bound, (lagging, np.round(r, 3))


def test_built_in_declines_are_visible_in_the_final_quarter(tables):
    k, m = tables["kpis"], tables["metrics"].set_index("metric")
    assert len(BUILT_IN_DECLINES) >= 2
    final = Quarter.parse(QUARTERS[-1])
    for d in BUILT_IN_DECLINES:
        assert pd.Timestamp(d["since"]) == final.start + pd.Timedelta(days=(7 - final.start.weekday()) % 7)
        s = k[(k["team_id"] == d["team_id"]) & (k["metric"] == d["metric"])].set_index("date")["value"]
        now = s[quarter_of(pd.Series(s.index)).to_numpy() == final.label]
        before = s[quarter_of(pd.Series(s.index)).to_numpy() == final.previous().label]
        worse = 1 if not m.loc[d["metric"], "higher_is_better"] else -1
        assert worse * (now.mean() - before.mean()) > 2 * before.std(), d
        # a trend test on the final quarter flags it
        res = stats.kendalltau(np.arange(len(now)), now.to_numpy())
        assert worse * res.statistic > 0 and res.pvalue < 0.05, (d, res)


def test_sample_readme_describes_the_answers():
    lines = SAMPLE_README.strip().splitlines()
    assert 15 <= len(lines) <= 40 and lines[0].startswith("## ")
    for d in BUILT_IN_DRIVERS:
        assert f"by {d['lag_weeks']} weeks" in SAMPLE_README
    assert UNRELATED_METRIC in SAMPLE_README
    assert all(d["team_id"] in SAMPLE_README for d in BUILT_IN_DECLINES)


# ----------------------------------------------------------------------------------
# Validation, files, sizes, arguments
# ----------------------------------------------------------------------------------
def test_the_loader_validates_the_sample_without_problems(tables):
    from okr_analysis.io import from_frames

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even a warning (gaps, check-ins outside their quarter)
        ds = from_frames(tables, source="sample")
    assert ds.warnings == ()
    assert ds.quarters == QUARTERS and len(ds.kpis) == len(tables["kpis"])
    assert ds.summary()["departments"] == 4


def _normalised(frame: pd.DataFrame) -> pd.DataFrame:
    """Values as text-free comparables: dates to ISO text, missing to None, numbers to float."""
    out = {}
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            s = s.dt.strftime("%Y-%m-%d")
        if pd.api.types.is_bool_dtype(s):
            out[col] = s.astype(bool).tolist()
        elif pd.api.types.is_numeric_dtype(s):
            out[col] = [None if pd.isna(v) else float(v) for v in s]
        else:
            out[col] = [None if (not isinstance(v, str) and pd.isna(v)) else str(v) for v in s]
    return pd.DataFrame(out)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_write_sample_round_trip(tmp_path, fmt):
    folder = tmp_path / "deep" / "org"
    out = write_sample(folder, seed=3, weeks=40, fmt=fmt)
    assert out == folder and folder.is_dir()
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}.{fmt}" for n in TABLES)
    assert [p.name for p in folder.parent.iterdir()] == ["org"]  # no temporary folder left behind
    expected = make_sample(seed=3, weeks=40)
    for name in TABLES:
        path = folder / f"{name}.{fmt}"
        got = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
        assert list(got.columns) == list(expected[name].columns)
        if "date" in got.columns:
            assert got["date"].astype(str).str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
        pd.testing.assert_frame_equal(_normalised(got), _normalised(expected[name]), check_dtype=False)
    # writing again replaces the tables and leaves other files alone
    (folder / "notes.txt").write_text("mine")
    write_sample(folder, seed=4, weeks=40, fmt=fmt)
    assert (folder / "notes.txt").read_text() == "mine"
    again = pd.read_csv(folder / "kpis.csv") if fmt == "csv" else pd.read_parquet(folder / "kpis.parquet")
    assert not np.array_equal(again["value"].to_numpy(), expected["kpis"]["value"].to_numpy())


def test_write_sample_loads_back(tmp_path):
    from okr_analysis.io import load

    ds = load(write_sample(tmp_path / "org", seed=0))
    assert ds.quarters == QUARTERS and len(ds.teams) == 17


def test_any_number_of_teams():
    t = make_sample(n_teams=200, weeks=60)
    _check_references(t)
    leaves = _leaves(t["teams"])
    assert len(leaves) == 200 and len(t["teams"]) == 205
    assert leaves["team_id"].str.fullmatch(r"(hr|support|sales|eng)-\d{4}").all()
    assert leaves.groupby("parent_team_id").size().tolist() == [50, 50, 50, 50]
    assert "support-0007" in set(leaves["team_id"])
    assert t["kpis"]["date"].nunique() == 60
    assert t["kpis"].groupby("team_id")["metric"].nunique().min() == 7
    assert sorted(t["objectives"]["quarter"].unique()) == QUARTERS
    assert t["objectives"]["team_id"].nunique() == 205 and len(t["checkins"]) > 10_000


@pytest.mark.slow
def test_large_organisation_is_fast():
    start = time.perf_counter()
    t = make_sample(n_teams=2000, weeks=200)
    elapsed = time.perf_counter() - start
    assert len(t["kpis"]) > 3_600_000 and t["kpis"]["date"].nunique() == 200
    assert len(_leaves(t["teams"])) == 2000
    assert elapsed < 60


@pytest.mark.parametrize("kwargs, match", [
    ({"seed": -1}, "seed"),
    ({"seed": 1.5}, "seed"),
    ({"n_teams": 0}, "n_teams"),
    ({"weeks": 5}, "weeks"),
    ({"end": "not a date"}, "end"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_sample(**kwargs)


def test_bad_format(tmp_path):
    with pytest.raises(ValueError, match="fmt"):
        write_sample(tmp_path / "x", fmt="xlsx")
    assert not (tmp_path / "x").exists()


def test_other_end_dates_and_short_histories():
    # end before a quarter's last full week: that quarter is not complete yet
    t = make_sample(end="2026-09-26", weeks=70)
    assert sorted(t["objectives"]["quarter"].unique()) == ["2025Q3", "2025Q4", "2026Q1", "2026Q2"]
    assert t["kpis"]["date"].max() == pd.Timestamp("2026-09-21")
    # a short history keeps only the quarters it covers
    t = make_sample(weeks=20)
    assert sorted(t["objectives"]["quarter"].unique()) == ["2026Q3"]
    _check_references(t)
    # a tiny organisation still validates
    from okr_analysis.io import from_frames

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = from_frames(make_sample(n_teams=2, weeks=30))
    assert len(ds.teams) == 5


# ----------------------------------------------------------------------------------
# Planted initiatives
# ----------------------------------------------------------------------------------
def test_initiatives_are_planted_steps_on_their_team_only(tables, monkeypatch):
    """The initiatives table lists BUILT_IN_INITIATIVES; each adds exactly its step to its team's KPI from the
    start on, and nothing else in the sample changes."""
    import okr_analysis.sample as sample_module
    from okr_analysis.sample import BUILT_IN_INITIATIVES

    ini = tables["initiatives"]
    assert ini["initiative_id"].tolist() == [i["initiative_id"] for i in BUILT_IN_INITIATIVES]
    assert ini["start"].dt.strftime("%Y-%m-%d").tolist() == [i["start"] for i in BUILT_IN_INITIATIVES]
    assert (ini["start"].dt.day_of_week == 0).all() and ini["end"].isna().all()
    kr = tables["key_results"].merge(tables["objectives"][["objective_id", "team_id"]], on="objective_id")
    assert not set(zip(kr["team_id"], kr["metric"])) & set(zip(ini["team_id"], ini["metric"]))
    monkeypatch.setattr(sample_module, "BUILT_IN_INITIATIVES",
                        [dict(i, effect=0.0) for i in BUILT_IN_INITIATIVES])
    plain = make_sample(seed=0)["kpis"]
    k = tables["kpis"]
    diff = k["value"] - plain["value"]
    for planted in BUILT_IN_INITIATIVES:
        mine = (k["team_id"] == planted["team_id"]) & (k["metric"] == planted["metric"])
        after = mine & (k["date"] >= pd.Timestamp(planted["start"]))
        assert np.allclose(diff[after], planted["effect"], atol=0.051)  # KPIs are rounded to 1 or 2 decimals
        assert (diff[mine & ~after] == 0).all()
    touched = np.zeros(len(k), dtype=bool)
    for planted in BUILT_IN_INITIATIVES:
        touched |= (k["team_id"] == planted["team_id"]).to_numpy() & (k["metric"] == planted["metric"]).to_numpy()
    assert (diff[~touched] == 0).all()


def test_scaled_samples_have_no_initiatives():
    t = make_sample(seed=0, n_teams=8, weeks=40)
    assert t["initiatives"].empty and list(t["initiatives"].columns) == TABLES["initiatives"].column_names
