"""Resampling KPIs to weekly, monthly and fiscal-quarterly periods (okr_analysis.resample).

Hand-built organisations from ``tiny_tables()`` with their KPIs replaced; every expected value
is worked out in the test from the rows it builds.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from conftest import tiny_tables
from okr_analysis import DataWarning
from okr_analysis.io import from_frames
from okr_analysis.resample import FREQS, check_freq, infer_freq, kpi_panel, period_start, resample_kpis

COLUMNS = ["team_id", "metric", "period_start", "value", "n_obs"]


def load(t: dict, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return from_frames(t, source="test", **kw)


def org(kpis: pd.DataFrame, *, aggregation: dict | None = None, **kw):
    """tiny_tables() with these KPI rows; metric aggregations overridden by ``aggregation``."""
    t = tiny_tables()
    t["kpis"] = kpis
    if aggregation:
        t["metrics"]["aggregation"] = t["metrics"]["metric"].map(aggregation).fillna(t["metrics"]["aggregation"])
    return load(t, **kw)


def rows(team: str, metric: str, dates, values) -> pd.DataFrame:
    return pd.DataFrame({"team_id": team, "metric": metric, "date": pd.to_datetime(dates), "value": values})


# ----------------------------------------------------------------------------------
# Frequencies and period starts
# ----------------------------------------------------------------------------------
@pytest.mark.parametrize("given, expected", [
    ("W", "W"), ("w", "W"), ("week", "W"), ("Weekly", "W"), (" M ", "M"), ("month", "M"),
    ("monthly", "M"), ("Q", "Q"), ("quarter", "Q"), ("QUARTERLY", "Q"), ("A", "A"), ("a", "A"), ("Y", "A"),
    ("year", "A"), ("yearly", "A"), ("Annual", "A"),
])
def test_check_freq_aliases(given, expected):
    assert check_freq(given) == expected
    assert expected in FREQS


@pytest.mark.parametrize("bad", ["D", "day", "", None, 7])
def test_check_freq_rejects_others(bad):
    with pytest.raises(ValueError, match="freq must be one of 'W'"):
        check_freq(bad)


def test_period_start_week_and_month():
    dates = pd.Series([pd.Timestamp(d) for d in
                       ("2026-07-06", "2026-07-08 15:30", "2026-07-12", "2026-02-28", "2024-02-29")])
    # 2026-07-06 is a Monday; the 12th a Sunday (same week); weeks start on Monday
    assert period_start(dates, "W").tolist() == pd.to_datetime(
        ["2026-07-06", "2026-07-06", "2026-07-06", "2026-02-23", "2024-02-26"]).tolist()
    assert period_start(dates, "M").tolist() == pd.to_datetime(
        ["2026-07-01", "2026-07-01", "2026-07-01", "2026-02-01", "2024-02-01"]).tolist()
    assert period_start(pd.DatetimeIndex(dates), "week").dtype == "datetime64[ns]"


@pytest.mark.parametrize("fys, date, expected", [
    (1, "2026-01-01", "2026-01-01"), (1, "2026-03-31", "2026-01-01"), (1, "2026-08-15", "2026-07-01"),
    (1, "2026-12-31", "2026-10-01"),
    # fiscal year from February: Q1 = Feb–Apr, Q4 = Nov–Jan (crossing the calendar year)
    (2, "2026-01-15", "2025-11-01"), (2, "2026-02-01", "2026-02-01"), (2, "2026-04-30", "2026-02-01"),
    (2, "2026-05-01", "2026-05-01"), (2, "2026-12-10", "2026-11-01"),
    # fiscal year from April (UK/Japan): Q4 = Jan–Mar
    (4, "2026-03-30", "2026-01-01"), (4, "2026-04-06", "2026-04-01"), (4, "2026-10-01", "2026-10-01"),
    # fiscal year from October (US federal): Q1 = Oct–Dec
    (10, "2026-09-30", "2026-07-01"), (10, "2026-11-11", "2026-10-01"),
])
def test_period_start_fiscal_quarters(fys, date, expected):
    got = period_start(pd.Series(pd.to_datetime([date])), "Q", fiscal_year_start=fys)
    assert got.iloc[0] == pd.Timestamp(expected)


@pytest.mark.parametrize("fys, date, expected", [
    (1, "2026-01-01", "2026-01-01"), (1, "2026-12-31", "2026-01-01"), (4, "2026-03-31", "2025-04-01"),
    (4, "2026-04-01", "2026-04-01"), (10, "2026-09-30", "2025-10-01"), (10, "2026-10-02", "2026-10-01"),
])
def test_period_start_fiscal_years(fys, date, expected):
    got = period_start(pd.Series(pd.to_datetime([date])), "A", fiscal_year_start=fys)
    assert got.iloc[0] == pd.Timestamp(expected)


def test_period_start_quarters_agree_with_the_quarter_class():
    from okr_analysis.io import Quarter

    days = pd.Series(pd.date_range("2024-11-01", "2027-02-28", freq="D"))
    for fys in (1, 2, 4, 7, 11, 12):
        starts = period_start(days, "Q", fiscal_year_start=fys)
        expected = [Quarter.containing(d, fiscal_year_start=fys).start for d in days.iloc[::13]]
        assert starts.iloc[::13].tolist() == expected, fys


def test_period_start_keeps_missing_dates_and_checks_arguments():
    s = pd.Series(pd.to_datetime(["2026-05-05", None]))
    for freq in "WMQA":
        out = period_start(s, freq)
        assert pd.isna(out.iloc[1]) and not pd.isna(out.iloc[0])
    with pytest.raises(ValueError, match="fiscal_year_start"):
        period_start(s, "Q", fiscal_year_start=13)
    with pytest.raises(ValueError, match="freq"):
        period_start(s, "D")


def test_infer_freq_from_the_spacing_of_dates(tiny_ds):
    assert infer_freq(tiny_ds) == "W"
    monthly = org(rows("t1", "csat", pd.date_range("2025-01-01", periods=12, freq="MS"), np.arange(12.0)))
    assert infer_freq(monthly) == "M"
    quarterly = org(rows("t1", "csat", pd.date_range("2024-01-01", periods=8, freq="QS"), np.arange(8.0)))
    assert infer_freq(quarterly) == "Q"
    # one date a year (an annual survey; R's ChickEgg as year-end dates) is annual, not quarterly
    yearly = org(rows("t1", "csat", pd.date_range("1930-12-31", periods=54, freq="YE"), np.arange(54.0)))
    assert infer_freq(yearly) == "A"
    assert infer_freq(org(rows("t1", "csat", pd.date_range("2020-03-15", periods=5, freq="12MS"), 1.0))) == "A"
    single = org(rows("t1", "csat", ["2026-07-06"], [1.0]))
    assert infer_freq(single) == "W"
    # gaps are measured within a team and metric, never across series
    two = org(pd.concat([rows("t1", "csat", pd.date_range("2025-01-01", periods=6, freq="MS"), 1.0),
                         rows("t2", "csat", pd.date_range("2025-01-02", periods=6, freq="MS"), 2.0)]))
    assert infer_freq(two) == "M"


# ----------------------------------------------------------------------------------
# resample_kpis
# ----------------------------------------------------------------------------------
JULY = ["2026-07-06", "2026-07-13", "2026-07-20", "2026-07-27"]
AUGUST = ["2026-08-03", "2026-08-10", "2026-08-17", "2026-08-24", "2026-08-31"]


def three_aggregations():
    """frt (mean), csat (sum) and nps (last) for t1 over July and August 2026; rows shuffled."""
    k = pd.concat([
        rows("t1", "frt", JULY + AUGUST, [4, 5, 6, 7, 1, 2, 3, 4, 5]),
        rows("t1", "csat", JULY + AUGUST, [1, 1, 1, 1, 2, 2, 2, 2, 2]),
        rows("t1", "nps", JULY + AUGUST, [10, 20, 30, 40, 50, 60, 70, 80, 90]),
    ], ignore_index=True).sample(frac=1, random_state=3)
    return org(k, aggregation={"csat": "sum", "nps": "last"})


def test_resample_monthly_uses_each_metrics_aggregation():
    out = resample_kpis(three_aggregations(), "M")
    assert list(out.columns) == COLUMNS
    got = out.set_index(["metric", "period_start"])
    jul, aug = pd.Timestamp("2026-07-01"), pd.Timestamp("2026-08-01")
    assert got.loc[("frt", jul), "value"] == 5.5 and got.loc[("frt", aug), "value"] == 3.0  # mean
    assert got.loc[("csat", jul), "value"] == 4.0 and got.loc[("csat", aug), "value"] == 10.0  # sum
    assert got.loc[("nps", jul), "value"] == 40.0 and got.loc[("nps", aug), "value"] == 90.0  # last by date
    assert got.loc[("frt", jul), "n_obs"] == 4 and got.loc[("frt", aug), "n_obs"] == 5
    assert out["n_obs"].dtype == "int64" and out["value"].dtype == "float64"
    assert out["period_start"].dtype == "datetime64[ns]"
    assert out.equals(out.sort_values(["team_id", "metric", "period_start"]).reset_index(drop=True))


def test_resample_quarterly_and_weekly():
    ds = three_aggregations()
    q = resample_kpis(ds, "Q").set_index("metric")
    assert (q["period_start"] == pd.Timestamp("2026-07-01")).all() and (q["n_obs"] == 9).all()
    assert q.loc["frt", "value"] == pytest.approx(np.mean([4, 5, 6, 7, 1, 2, 3, 4, 5]))
    assert q.loc["csat", "value"] == 14 and q.loc["nps", "value"] == 90
    w = resample_kpis(ds, "W")
    assert len(w) == 27 and (w["n_obs"] == 1).all()  # one Monday per week: unchanged
    assert resample_kpis(ds).equals(w)  # default: the data's own frequency


def test_resample_fiscal_quarters():
    """Fiscal year from April: March 2026 closes fiscal Q4 (Jan–Mar), April opens Q1."""
    k = rows("t1", "csat", ["2026-03-02", "2026-03-30", "2026-04-06", "2026-06-29", "2026-07-06"], [1, 2, 3, 4, 5])
    ds = org(k, fiscal_year_start=4, aggregation={"csat": "sum"})
    out = resample_kpis(ds, "Q")
    assert out["period_start"].tolist() == pd.to_datetime(["2026-01-01", "2026-04-01", "2026-07-01"]).tolist()
    assert out["value"].tolist() == [3.0, 7.0, 5.0] and out["n_obs"].tolist() == [2, 2, 1]


def test_resample_filters_and_missing_periods():
    k = pd.concat([rows("t1", "csat", JULY, [1.0, 2, 3, 4]), rows("t2", "csat", ["2026-07-06", "2026-08-31"], [5.0, 6]),
                   rows("t2", "frt", JULY, [7.0, 8, 9, 10])])
    ds = org(k)
    out = resample_kpis(ds, "W", teams=["t2"])
    assert set(out["team_id"]) == {"t2"}
    # periods without an observation are absent, not filled
    assert out[out["metric"] == "csat"]["period_start"].tolist() == pd.to_datetime(["2026-07-06", "2026-08-31"]).tolist()
    assert set(resample_kpis(ds, "W", metrics=["frt"])["metric"]) == {"frt"}
    window = resample_kpis(ds, "W", start="2026-07-13", end="2026-07-20")
    assert window["period_start"].min() == pd.Timestamp("2026-07-13")
    assert window["period_start"].max() == pd.Timestamp("2026-07-20")
    # start/end filter observations before aggregating: a month cut in two keeps only its part
    part = resample_kpis(ds, "M", teams=["t1"], start="2026-07-20")
    assert part["value"].tolist() == [3.5] and part["n_obs"].tolist() == [2]


def test_resample_empty_result_is_typed(tiny_ds):
    out = resample_kpis(tiny_ds, "M", teams=["nobody"])
    assert list(out.columns) == COLUMNS and out.empty
    assert out["period_start"].dtype == "datetime64[ns]" and out["value"].dtype == "float64"
    assert out["n_obs"].dtype == "int64"


def test_resample_rejects_a_bad_freq(tiny_ds):
    with pytest.raises(ValueError, match="freq"):
        resample_kpis(tiny_ds, "daily")


# ----------------------------------------------------------------------------------
# kpi_panel
# ----------------------------------------------------------------------------------
def test_kpi_panel_is_wide_and_regular():
    k = pd.concat([rows("t1", "csat", ["2026-07-06", "2026-07-27"], [1.0, 4.0]),
                   rows("t1", "frt", ["2026-07-13"], [2.0]),
                   rows("t2", "csat", ["2026-08-03", "2026-08-10"], [5.0, 6.0])])
    panel = kpi_panel(org(k), "W")
    assert panel.index.names == ["team_id", "period_start"]
    assert sorted(panel.columns) == ["csat", "frt"]
    t1 = panel.loc["t1"]
    # every week from the team's first to its last observation, gaps as NaN
    assert t1.index.tolist() == pd.date_range("2026-07-06", "2026-07-27", freq="7D").tolist()
    assert t1["csat"].tolist()[0] == 1.0 and np.isnan(t1["csat"].iloc[1]) and t1["csat"].iloc[3] == 4.0
    assert t1["frt"].iloc[1] == 2.0 and t1["frt"].isna().sum() == 3
    assert panel.loc["t2"].index.tolist() == pd.to_datetime(["2026-08-03", "2026-08-10"]).tolist()
    assert panel.loc["t2", "frt"].isna().all()


def test_kpi_panel_monthly_and_metric_filter(tiny_ds):
    panel = kpi_panel(tiny_ds, "M", metrics=["csat"])
    assert list(panel.columns) == ["csat"]
    months = panel.loc["t1"].index
    assert months[0] == pd.Timestamp("2025-07-01") and months[-1] == pd.Timestamp("2026-09-01")
    assert len(months) == 15 and not panel["csat"].isna().any()
    assert kpi_panel(tiny_ds, "W", teams=["nobody"]).empty


# ----------------------------------------------------------------------------------
# The vectorised implementation against the plain pandas way
# ----------------------------------------------------------------------------------
def _pandas_resample(ds, freq):
    """What resample_kpis computes, written the plain pandas way (string groupby per aggregation)."""
    k = ds.kpis.dropna(subset=["value"])
    k = k.assign(period_start=period_start(k["date"], freq, fiscal_year_start=ds.fiscal_year_start).to_numpy())
    agg = ds.metrics.set_index("metric")["aggregation"]
    parts = []
    for how, sub in k.groupby(k["metric"].map(agg).fillna("mean")):
        g = sub.sort_values("date", kind="stable").groupby(["team_id", "metric", "period_start"])["value"]
        parts.append(pd.DataFrame({"value": getattr(g, how)(), "n_obs": g.size().astype("int64")}).reset_index())
    return pd.concat(parts).sort_values(["team_id", "metric", "period_start"]).reset_index(drop=True)[COLUMNS]


def _pandas_panel(long, freq):
    """What kpi_panel lays out: pivot, then each team reindexed to its full range of periods."""
    wide = long.pivot_table(index=["team_id", "period_start"], columns="metric", values="value", aggfunc="first")
    wide.columns.name = None
    step = {"W": pd.DateOffset(weeks=1), "M": pd.DateOffset(months=1), "Q": pd.DateOffset(months=3),
            "A": pd.DateOffset(months=12)}[freq]
    pieces = []
    for team, sub in wide.groupby(level="team_id"):
        idx = sub.index.get_level_values("period_start")
        pieces.append(sub.droplevel("team_id").reindex(pd.date_range(idx.min(), idx.max(), freq=step))
                      .rename_axis("period_start").assign(team_id=team).set_index("team_id", append=True)
                      .swaplevel())
    return pd.concat(pieces)


@pytest.fixture(scope="module")
def gappy_org():
    """A generated organisation with every aggregation in use, a non-January fiscal year, and holes:
    dropped weeks, a team whose metrics start at different times, rows in any order."""
    from okr_analysis.sample import make_sample

    t = make_sample(seed=3, n_teams=9, weeks=60)
    rng = np.random.default_rng(3)
    k = t["kpis"]
    k = k[rng.random(len(k)) > 0.15].copy()  # dropped weeks
    first_team = k["team_id"].iloc[0]
    k = k[~((k["team_id"] == first_team) & (k["metric"] == k["metric"].iloc[0]) & (k["date"] < k["date"].median()))]
    t["kpis"] = k.sample(frac=1.0, random_state=3)  # any row order
    hows = ["mean", "sum", "last"]
    t["metrics"]["aggregation"] = [hows[i % 3] for i in range(len(t["metrics"]))]
    return load(t, fiscal_year_start=4)


@pytest.mark.parametrize("freq", ["W", "M", "Q", "A"])
def test_resample_and_panel_equal_the_plain_pandas_way(gappy_org, freq):
    ds = gappy_org
    assert set(ds.metrics["aggregation"]) == {"mean", "sum", "last"}
    long = resample_kpis(ds, freq)
    # Sums and means agree to rounding (the order of additions may differ); everything else exactly.
    pd.testing.assert_frame_equal(long, _pandas_resample(ds, freq), check_exact=False, rtol=1e-13, atol=0)
    pd.testing.assert_frame_equal(long.drop(columns="value"), _pandas_resample(ds, freq).drop(columns="value"),
                                  check_exact=True)
    pd.testing.assert_frame_equal(kpi_panel(ds, freq), _pandas_panel(long, freq), check_exact=True)
    some = sorted(set(ds.kpis["team_id"]))[::2]
    part = kpi_panel(ds, freq, teams=some, metrics=list(ds.metrics["metric"][:2]))
    pd.testing.assert_frame_equal(part, _pandas_panel(resample_kpis(ds, freq, teams=some, metrics=list(
        ds.metrics["metric"][:2])), freq), check_exact=True)


def test_lexsort_skips_the_sort_only_for_rows_already_in_order():
    """``_lexsort`` = ``np.lexsort`` on sorted rows (where it returns ``arange`` without sorting), unsorted
    rows, ties and empty keys."""
    from okr_analysis.resample import _lexsort

    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(0, 40))
        keys = [rng.integers(0, 3, n) for _ in range(3)]
        if rng.random() < 0.5:  # rows in order: sort them first
            order = np.lexsort(keys)
            keys = [k[order] for k in keys]
        np.testing.assert_array_equal(_lexsort(tuple(keys)), np.lexsort(tuple(keys)))
