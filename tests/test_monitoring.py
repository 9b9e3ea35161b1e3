"""KPI monitoring: trends, control charts, benchmarks, candidate key results and the monitor table.

Reference values come from published sources named in each test; the fast, vectorised
Mann–Kendall/Theil–Sen engine is checked against pymannkendall and scipy series by series.
Organisations are built from ``tiny_tables()`` (weekly KPIs on Mondays, 2026Q3 = July to
September 2026) with their ``kpis`` replaced.
"""

from __future__ import annotations

import dataclasses
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pymannkendall as mk  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

from conftest import tiny_tables  # noqa: E402
from okr_analysis import DataWarning  # noqa: E402
from okr_analysis.loaders import from_frames  # noqa: E402
from okr_analysis.monitoring import (  # noqa: E402
    RULES,
    ControlChartResult,
    _mk_fast,
    _mk_reference,
    benchmark,
    candidate_key_results,
    control_chart,
    kpi_trends,
    monitor,
)

LAST = pd.Timestamp("2026-09-28")  # a Monday: the last KPI date of the hand-built organisations

TREND_COLUMNS = ["team_id", "metric", "freq", "window_start", "window_end", "n_points", "latest", "trend",
                 "assessment", "slope", "slope_low", "slope_high", "p_value", "tau", "s", "variance_factor",
                 "method", "fitted_start", "fitted_end", "higher_is_better"]
BENCH_COLUMNS = ["team_id", "team_name", "parent_team_id", "metric", "latest_period", "latest", "n_peers",
                 "peer_rank", "peer_percentile", "peer_median", "company_median", "benchmark_value",
                 "benchmark_source", "vs_benchmark", "higher_is_better"]
CANDIDATE_COLUMNS = ["team_id", "metric", "reason", "latest", "suggested_baseline", "suggested_target",
                     "direction", "evidence", "quarter", "for_quarter"]
MONITOR_COLUMNS = ["team_id", "metric", "trend", "assessment", "slope", "slope_low", "slope_high", "p_value",
                   "latest", "n_points", "peer_rank", "n_peers", "peer_percentile", "vs_benchmark", "n_signals",
                   "signals", "window_start", "window_end"]


# ----------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------
def load(t: dict):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return from_frames(t, source="test")


def kpi_rows(team: str, metric: str, values, *, end: pd.Timestamp = LAST) -> pd.DataFrame:
    """Weekly rows (Mondays) ending on ``end``; NaN values are left out (missing weeks)."""
    values = np.asarray(values, dtype=float)
    dates = pd.date_range(end=end, periods=len(values), freq="7D")
    ok = ~np.isnan(values)
    return pd.DataFrame({"team_id": team, "metric": metric, "date": dates[ok], "value": values[ok]})


def org_with(series: dict, **extra) -> object:
    """tiny_tables() whose KPIs are exactly ``series``: {(team, metric): values}."""
    t = tiny_tables()
    t["kpis"] = pd.concat([kpi_rows(tm, m, v) for (tm, m), v in series.items()], ignore_index=True)
    t.update(extra)
    return load(t)


def one_trend(values, metric: str = "csat", **kw) -> pd.Series:
    ds = org_with({("t1", metric): values})
    out = kpi_trends(ds, window=len(values), **kw)
    assert len(out) == 1
    return out.iloc[0]


# Gilbert (1987), Statistical Methods for Environmental Pollution Monitoring, ch. 16,
# Mann–Kendall worked example (p. 212): 22 values, S = 111, Z reported as 3.1.
GILBERT = [20, 20, 20, 20, 15, 20, 20, 30, 27, 26, 23, 35, 25, 28, 70, 26, 24, 34, 32, 23, 50, 30]


# ----------------------------------------------------------------------------------
# Mann–Kendall and Theil–Sen: published values
# ----------------------------------------------------------------------------------
def test_mann_kendall_gilbert_1987_example():
    """Gilbert (1987), ch. 16, p. 212: S = 111 and Z = 3.1 (original test, ties corrected).

    Z = (S − 1) / sqrt(Var S) = 110 / sqrt(1226.33) = 3.14; the book rounds to 3.1.
    """
    row = one_trend(GILBERT, autocorrelation=False)
    assert row["s"] == 111
    assert row["tau"] == pytest.approx(111 / 231)
    z = stats.norm.isf(row["p_value"] / 2)
    assert z == pytest.approx(3.1, abs=0.05)
    assert z == pytest.approx(110 / np.sqrt(1226 + 1 / 3), rel=1e-9)
    assert row["trend"] == "increasing" and row["assessment"] == "improving"
    assert row["method"] == "original" and row["variance_factor"] == 1


def test_s_and_tau_agree_with_scipy_kendalltau():
    """S = tau_b · sqrt(n0 (n0 − n_ties)) with untied time (scipy's tau-b), for tied data too."""
    for values in (GILBERT, [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7]):
        row = one_trend(values, autocorrelation=False)
        n = len(values)
        n0 = n * (n - 1) / 2
        _, counts = np.unique(values, return_counts=True)
        n_ties = (counts * (counts - 1) / 2).sum()
        tau_b = stats.kendalltau(np.arange(n), values).statistic
        assert row["s"] == pytest.approx(tau_b * np.sqrt(n0 * (n0 - n_ties)))
        assert row["tau"] == pytest.approx(row["s"] / n0)


def test_theil_sen_slope_hollander_wolfe_example_9_1():
    """Hollander, Wolfe & Chicken, Nonparametric Statistical Methods, Example 9.1 (x = 1..5).

    The ten pairwise slopes are .01, −.07, −.0333, −.0575, −.15, −.055, −.08, .04, −.045, −.13;
    their median (the Theil estimate) is (−.0575 − .055) / 2 = −0.05625.
    """
    row = one_trend([1.26, 1.27, 1.12, 1.16, 1.03], min_points=5)
    assert row["slope"] == pytest.approx(-0.05625)
    assert row["n_points"] == 5
    assert row["slope_low"] <= row["slope"] <= row["slope_high"]


def test_slope_confidence_interval_method_matches_published_values():
    """The interval we report is scipy's (Sen 1968); it reproduces R statpsych::ci.theil's documented
    example (Bonett; Hollander & Wolfe 1999): estimate 0.5, 95% CI 0.3243243 to 0.75."""
    y = [21, 4, 9, 12, 35, 18, 10, 22, 24, 1, 6, 8, 13, 16, 19]
    x = [67, 28, 30, 28, 52, 40, 25, 37, 44, 10, 14, 20, 28, 40, 51]
    res = stats.theilslopes(y, x, alpha=0.95)
    assert (res.slope, res.low_slope, res.high_slope) == pytest.approx((0.5, 0.3243243, 0.75), abs=1e-7)


def test_trend_values_equal_the_libraries_on_the_gilbert_data():
    row = one_trend(GILBERT)
    ref_orig = mk.original_test(GILBERT)
    ref_yw = mk.yue_wang_modification_test(GILBERT, lag=1)
    ts = stats.theilslopes(GILBERT, alpha=0.95)
    assert (row["slope"], row["slope_low"], row["slope_high"]) == pytest.approx(
        (ts.slope, ts.low_slope, ts.high_slope))
    assert row["slope"] == pytest.approx(mk.sens_slope(GILBERT).slope)
    # the autocorrelation correction only ever inflates Var(S)
    expected = ref_yw if ref_yw.var_s > ref_orig.var_s else ref_orig
    assert row["p_value"] == pytest.approx(expected.p, rel=1e-9)
    assert row["variance_factor"] == pytest.approx(max(ref_yw.var_s / ref_orig.var_s, 1.0))


def _random_matrix(rng, rows: int, n: int) -> np.ndarray:
    """White noise, AR(1), trends, integer values (ties) and missing periods."""
    e = rng.normal(size=(rows, n))
    Y = e.copy()
    for j in range(1, n):
        Y[:, j] = 0.6 * Y[:, j - 1] + e[:, j]
    kind = rng.integers(0, 4, size=rows)
    Y = np.where((kind == 0)[:, None], e, Y)
    Y = Y + (kind == 2)[:, None] * 0.15 * np.arange(n)
    Y = np.where((kind == 3)[:, None], np.round(2 * Y), Y)
    Y[rng.random(size=Y.shape) < 0.08] = np.nan
    return Y


@pytest.mark.parametrize("n", [6, 9, 13, 26])
def test_fast_engine_equals_pymannkendall_and_scipy(n):
    """The vectorised engine gives what pymannkendall and scipy.stats.theilslopes give, series by series."""
    rng = np.random.default_rng(n)
    Y = _random_matrix(rng, 150, n)
    for correct in (True, False):
        fast = _mk_fast(Y, 0.05, correct)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = _mk_reference(Y, 0.05, correct)
        for field in fast:
            np.testing.assert_allclose(fast[field], ref[field], rtol=1e-9, atol=1e-12, err_msg=field)
    assert np.isfinite(fast["p_value"][fast["n_points"] >= 3]).all()


def test_reference_engine_is_the_libraries():
    """_mk_reference calls pymannkendall (original / Yue–Wang lag 1) and scipy directly."""
    rng = np.random.default_rng(7)
    y = np.cumsum(rng.normal(size=20))  # a random walk: strongly autocorrelated
    ref = _mk_reference(y[None, :], 0.05)
    orig, yw = mk.original_test(y), mk.yue_wang_modification_test(y, lag=1)
    assert yw.var_s > orig.var_s
    assert ref["p_value"][0] == pytest.approx(yw.p) and ref["s"][0] == orig.s
    assert ref["slope"][0] == pytest.approx(stats.theilslopes(y).slope)


def test_engines_agree_on_the_sample_organisation(sample_ds):
    fast = kpi_trends(sample_ds)
    ref = kpi_trends(sample_ds, engine="reference")
    pd.testing.assert_frame_equal(fast, ref, rtol=1e-9)


def test_correction_keeps_white_noise_at_alpha_and_tames_autocorrelation():
    """13-point windows: false trends in white noise stay at or below alpha; AR(1) noise (phi 0.5)
    gives fewer false trends than with the original test."""
    rng = np.random.default_rng(3)
    rows, n = 4000, 13
    white = rng.normal(size=(rows, n))
    p = _mk_fast(white, 0.05, True)["p_value"]
    assert (p < 0.05).mean() <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / rows)
    e = rng.normal(size=(rows, n + 30))
    ar = np.zeros_like(e)
    for j in range(1, e.shape[1]):
        ar[:, j] = 0.5 * ar[:, j - 1] + e[:, j]
    ar = ar[:, 30:]
    corrected = (_mk_fast(ar, 0.05, True)["p_value"] < 0.05).mean()
    original = (_mk_fast(ar, 0.05, False)["p_value"] < 0.05).mean()
    assert corrected < original - 0.02


# ----------------------------------------------------------------------------------
# kpi_trends: windows, assessment, degenerate series
# ----------------------------------------------------------------------------------
def test_kpi_trends_columns_window_and_assessment(tiny_ds):
    """tiny_tables(): every KPI rises by 0.01 a week; frt (lower is better) is therefore worsening."""
    out = kpi_trends(tiny_ds)
    assert list(out.columns) == TREND_COLUMNS
    assert len(out) == 12 and out["team_id"].is_monotonic_increasing
    assert (out["window_end"] == LAST).all()
    assert (out["window_start"] == LAST - pd.Timedelta(weeks=12)).all()
    assert (out["n_points"] == 13).all() and (out["freq"] == "W").all()
    assert (out["trend"] == "increasing").all()
    assert out["slope"].to_numpy() == pytest.approx(0.01)
    frt = out["metric"] == "frt"
    assert (out.loc[frt, "assessment"] == "worsening").all()
    assert (out.loc[~frt, "assessment"] == "improving").all()
    # a perfectly straight line has no residual autocorrelation to correct for
    assert (out["method"] == "original").all()
    first = tiny_ds.kpis[(tiny_ds.kpis["team_id"] == "t1") & (tiny_ds.kpis["metric"] == "csat")]
    row = out[(out["team_id"] == "t1") & (out["metric"] == "csat")].iloc[0]
    assert row["latest"] == pytest.approx(first["value"].iloc[-1])
    assert row["fitted_end"] == pytest.approx(row["latest"])
    assert row["fitted_start"] == pytest.approx(row["latest"] - 0.12)


def test_kpi_trends_as_of_quarter_window_and_freq(tiny_ds):
    out = kpi_trends(tiny_ds, window="quarter", as_of="2026-08-16")
    assert (out["window_start"] == pd.Timestamp("2026-06-29")).all()  # the week of 1 July
    assert (out["window_end"] == pd.Timestamp("2026-08-10")).all()
    assert (out["n_points"] == 6).all()  # Mondays 6 July .. 10 August
    assert (kpi_trends(tiny_ds, window=4, freq="M", min_points=4)["window_end"] == pd.Timestamp("2026-09-01")).all()


def test_incomplete_last_period_is_left_out(tiny_ds):
    """Weekly data up to Monday 21 September: September is not over (28 September is still to come),
    so a monthly window ends with August; with data up to 28 September it ends with September."""
    early = kpi_trends(tiny_ds, window=6, freq="M", as_of="2026-09-21")
    assert (early["window_end"] == pd.Timestamp("2026-08-01")).all()
    assert (early["n_points"] == 6).all()
    full = kpi_trends(tiny_ds, window=6, freq="M", as_of="2026-09-28")
    assert (full["window_end"] == pd.Timestamp("2026-09-01")).all()


def test_insufficient_and_constant_series_give_nan_rows_and_a_warning():
    ds = org_with({("t1", "csat"): [8.0, 8.2, 8.1, 8.4], ("t2", "csat"): [7.0] * 13,
                   ("t3", "csat"): np.linspace(7, 8, 13)})
    with pytest.warns(UserWarning) as rec:
        out = kpi_trends(ds).set_index("team_id")
    messages = " ".join(str(w.message) for w in rec)
    assert "t1/csat" in messages and "t2/csat" in messages
    assert out.loc["t1", "trend"] == "insufficient data" and pd.isna(out.loc["t1", "assessment"])
    assert np.isnan(out.loc["t1", ["slope", "p_value", "tau"]].astype(float)).all()
    assert out.loc["t1", "n_points"] == 4 and out.loc["t1", "latest"] == 8.4
    assert out.loc["t2", "trend"] == "stable" and out.loc["t2", "slope"] == 0 and np.isnan(out.loc["t2", "p_value"])
    assert out.loc["t3", "trend"] == "increasing"


def test_missing_periods_use_their_real_position():
    values = [1.0, 2.0, np.nan, 4.0, 5.0, np.nan, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0]
    row = one_trend(values)
    assert row["n_points"] == 11 and row["slope"] == pytest.approx(1.0)


def test_kpi_trends_rejects_bad_arguments(tiny_ds):
    with pytest.raises(ValueError, match="window"):
        kpi_trends(tiny_ds, window="month")
    with pytest.raises(ValueError, match="window"):
        kpi_trends(tiny_ds, window=1)
    with pytest.raises(ValueError, match="alpha"):
        kpi_trends(tiny_ds, alpha=5)
    with pytest.raises(ValueError, match="freq"):
        kpi_trends(tiny_ds, freq="D")
    with pytest.raises(ValueError, match="as_of"):
        kpi_trends(tiny_ds, as_of="not a date")
    with pytest.raises(TypeError, match="Dataset"):
        kpi_trends(pd.DataFrame())


# ----------------------------------------------------------------------------------
# Control charts
# ----------------------------------------------------------------------------------
# Montgomery, Introduction to Statistical Quality Control (6th ed., Wiley 2009), individuals
# chart example 6.5: weekly mortgage-loan processing costs, Table 6.6. Published: x̄ = 300.5,
# MR̄ = 7.79, UCL = 321.22, LCL = 279.78, moving-range chart UCL = 25.45; in control.
MONTGOMERY = [310, 288, 297, 298, 307, 303, 294, 297, 308, 306, 294, 299, 297, 299, 314, 295, 293, 306, 301, 304]


def test_control_limits_match_montgomery_individuals_example():
    s = pd.Series(MONTGOMERY, index=pd.date_range("2026-01-05", periods=20, freq="7D"), name="cost")
    cc = control_chart(s)
    assert isinstance(cc, ControlChartResult)
    assert cc.centre == pytest.approx(300.5)
    assert round(cc.mr_bar, 2) == 7.79
    assert round(cc.ucl, 2) == 321.22 and round(cc.lcl, 2) == 279.78
    assert round(cc.mr_ucl, 2) == 25.45
    assert cc.sigma == pytest.approx(cc.mr_bar / 1.128)
    assert cc.ucl == pytest.approx(cc.centre + 3 * cc.sigma, rel=1e-3)  # 2.66 = 3 / 1.128
    assert cc.signals.empty  # Montgomery: the process is in control
    assert cc.n_baseline == 20 and cc.baseline_start == s.index[0] and cc.baseline_end == s.index[-1]
    assert list(cc.points.columns) == ["date", "value", "moving_range", "zone", "side", "in_baseline", "signal"]
    assert list(cc.signals.columns) == ["date", "value", "rule", "side", "description"]
    assert np.isnan(cc.points["moving_range"].iloc[0]) and cc.points["moving_range"].iloc[1] == 22
    with pytest.raises(dataclasses.FrozenInstanceError):
        cc.centre = 0


# A baseline of 20 points alternating 10 and 11.128: centre 10.564, mean moving range 1.128, sigma 1;
# it never signals (alternating sides, within 1 sigma).
BASE = [10.0, 11.128] * 10
C = 10.564


def chart_of(tail, **kw):
    values = BASE + [C + d for d in tail]
    s = pd.Series(values, index=pd.date_range("2026-01-05", periods=len(values), freq="7D"))
    return control_chart(s, baseline=20, **kw), s


@pytest.mark.parametrize("tail, rule, side, at", [
    ([0.3, 3.5], "beyond_3sigma", "above", 1),
    ([-2.5, -0.3, -2.5], "2_of_3_beyond_2sigma", "below", 2),
    ([1.5, 1.5, -0.3, 1.5, 1.5], "4_of_5_beyond_1sigma", "above", 4),
    ([-0.5] * 8, "8_same_side", "below", 7),
])
def test_each_run_rule_fires_on_its_pattern_only(tail, rule, side, at):
    cc, s = chart_of(tail)
    assert cc.sigma == pytest.approx(1.0) and cc.centre == pytest.approx(C)
    assert cc.signals[["date", "rule", "side"]].values.tolist() == [[s.index[20 + at], rule, side]]
    assert cc.points["signal"].sum() == 1
    assert cc.signals["description"].iloc[0] == RULES[rule]


def test_rules_do_not_fire_one_point_early():
    assert chart_of([-2.5, -0.3])[0].signals.empty  # only 1 of 3 beyond 2 sigma so far
    assert chart_of([1.5, 1.5, -0.3, 1.5])[0].signals.empty  # 3 of 4 beyond 1 sigma
    assert chart_of([-0.5] * 7)[0].signals.empty  # 7 in a row
    assert chart_of([2.99])[0].signals.empty  # beyond is strict: 2.99 sigma is inside
    cc, _ = chart_of([-0.5] * 10)
    assert len(cc.signals) == 3  # a longer run signals at each point extending it


def test_rules_option_and_zones():
    cc, _ = chart_of([3.5] * 3, rules=["beyond_3sigma"])
    assert set(cc.signals["rule"]) == {"beyond_3sigma"} and len(cc.signals) == 3
    cc, _ = chart_of([0.5, 1.5, 2.5, 3.5, -0.5])
    assert cc.points["zone"].iloc[20:].tolist() == ["C", "B", "A", "beyond", "C"]
    assert cc.points["side"].iloc[20:].tolist() == ["above"] * 4 + ["below"]
    with pytest.raises(ValueError, match="rules"):
        chart_of([0.0], rules=["western_electric_5"])


def test_false_alarm_rates_on_white_noise_are_nominal():
    """Independent N(0, 1) values, 1,000,000 points: each rule fires at its theoretical per-point rate.

    Rates for a point (after the first 7): rule 1 2·P(Z > 3); rule 2 2·p2·(1 − (1 − p2)²) with
    p2 = P(Z > 2); rule 3 2·p1·P(at least 3 of 4 beyond 1 sigma) with p1 = P(Z > 1); rule 4 2·0.5⁸.
    Tolerance: 4 binomial SDs, widened by √3 for the runs, whose flags cluster.
    """
    rng = np.random.default_rng(2026)
    n = 1_000_000
    s = pd.Series(rng.normal(size=n), index=pd.RangeIndex(n))
    cc = control_chart(s)
    assert cc.sigma == pytest.approx(1.0, abs=0.005) and cc.centre == pytest.approx(0.0, abs=0.005)
    p1, p2, p3 = stats.norm.sf([1, 2, 3])
    theory = {
        "beyond_3sigma": 2 * p3,
        "2_of_3_beyond_2sigma": 2 * p2 * (1 - (1 - p2) ** 2),
        "4_of_5_beyond_1sigma": 2 * p1 * (4 * p1 ** 3 * (1 - p1) + p1 ** 4),
        "8_same_side": 2 * 0.5 ** 8,
    }
    sig = cc.signals[cc.signals["date"] >= 7]
    m = n - 7
    for rule, p in theory.items():
        rate = (sig["rule"] == rule).sum() / m
        tol = 4 * np.sqrt(p * (1 - p) / m) * (np.sqrt(3) if rule != "beyond_3sigma" else 1)
        assert abs(rate - p) < tol, (rule, rate, p)


def test_control_chart_inputs():
    dates = pd.date_range("2026-01-05", periods=30, freq="7D")
    values = np.r_[np.tile([1.0, 2.0], 10), [5.0] * 10]
    frame = pd.DataFrame({"date": dates, "value": values})
    by_dates = control_chart(frame, baseline=(None, dates[19]))
    by_count = control_chart(pd.Series(values, index=dates), baseline=20)
    assert by_dates.centre == by_count.centre == 1.5 and by_dates.n_baseline == 20
    assert control_chart(pd.Series(values, index=dates)).n_baseline == 30
    shuffled = pd.Series(values, index=dates).sample(frac=1, random_state=1)
    assert control_chart(shuffled, baseline=20).centre == 1.5  # sorted by date first
    with pytest.raises(ValueError, match="baseline"):
        control_chart(pd.Series(values, index=dates), baseline=1)
    with pytest.raises(ValueError, match="baseline"):
        control_chart(pd.Series(values, index=dates), baseline="all")
    with pytest.raises(ValueError, match="value"):
        control_chart(pd.DataFrame({"when": dates, "value": values}))
    with pytest.raises(TypeError, match="Series"):
        control_chart(values)
    with pytest.warns(UserWarning, match="no variation"):
        flat = control_chart(pd.Series([3.0] * 10 + [4.0], index=dates[:11]), baseline=10)
    assert flat.signals["rule"].tolist() == ["beyond_3sigma"]


def test_control_chart_plot_and_summary():
    cc, _ = chart_of([-0.5] * 8 + [3.5], label="CSAT")
    fig, ax = plt.subplots()
    try:
        assert cc.plot(ax=ax) is ax
        assert "CSAT" in ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
        assert len(ax.patches) >= 3  # the shaded 1/2/3 sigma zones
        assert any(len(c.get_offsets()) == 2 for c in ax.collections)  # the two signal points
        plt.sca(ax)
        assert cc.plot() is ax
    finally:
        plt.close(fig)
    summ = cc.summary()
    assert summ["n_8_same_side"] == 1 and summ["n_beyond_3sigma"] == 1 and summ["centre"] == pytest.approx(C)
    assert cc.table is cc.points


# ----------------------------------------------------------------------------------
# Benchmarks on a three-level tree
# ----------------------------------------------------------------------------------
# co -> d1 -> t1, t2, t3, t4 and co -> d2 -> t5, t6. Latest values (on 2026-09-28):
CSAT = {"t1": 8.0, "t2": 9.0, "t3": 9.0, "t4": 7.0, "t5": 8.5, "t6": 6.0}  # higher is better, benchmark 8.5
FRT = {"t1": 3.0, "t2": 5.0, "t3": 4.0, "t4": 4.0, "t5": 2.0, "t6": 6.0}  # lower is better, no benchmark


def three_level_tables(*, weeks: int = 40, seed: int = 0) -> dict:
    """Stationary noisy weekly KPIs ending on the values above; one later value (t1 csat, 2026-10-05)."""
    rng = np.random.default_rng(seed)
    t = tiny_tables()
    t["teams"] = pd.DataFrame({
        "team_id": ["co", "d1", "d2", "t1", "t2", "t3", "t4", "t5", "t6"],
        "team_name": ["Company", "Dept One", "Dept Two"] + [f"Team {i}" for i in range(1, 7)],
        "parent_team_id": [None, "co", "co", "d1", "d1", "d1", "d1", "d2", "d2"],
        "headcount": [60, 40, 20, 10, 10, 10, 10, 10, 10],
    })
    rows = []
    for metric, latest, sd in (("csat", CSAT, 0.1), ("frt", FRT, 0.1)):
        for team, v in latest.items():
            rows.append(kpi_rows(team, metric, np.r_[v + sd * rng.normal(size=weeks - 1), v]))
    rows.append(pd.DataFrame({"team_id": ["t1"], "metric": ["csat"], "date": [LAST + pd.Timedelta(days=7)],
                              "value": [1.0]}))
    t["kpis"] = pd.concat(rows, ignore_index=True)
    return t


def test_benchmark_three_level_tree_hand_computed():
    ds = load(three_level_tables())
    out = benchmark(ds, as_of=LAST)
    assert list(out.columns) == BENCH_COLUMNS
    assert len(out) == 12 and set(out["team_id"]) == set(CSAT)  # leaves only, departments have no row
    assert (out["latest_period"] == LAST).all()
    got = out.set_index(["metric", "team_id"])
    # csat, d1 {t1 8, t2 9, t3 9, t4 7}; d2 {t5 8.5, t6 6}; ranks: ties share the best rank
    expected_csat = {  # rank, percentile (share of peers it equals or beats), median of the peers
        "t1": (3, 100 / 3, 9.0), "t2": (1, 100.0, 8.0), "t3": (1, 100.0, 8.0), "t4": (4, 0.0, 9.0),
        "t5": (1, 100.0, 6.0), "t6": (2, 0.0, 8.5),
    }
    # frt, lower is better: d1 {t1 3, t2 5, t3 4, t4 4}; d2 {t5 2, t6 6}
    expected_frt = {
        "t1": (1, 100.0, 4.0), "t2": (4, 0.0, 4.0), "t3": (2, 200 / 3, 4.0), "t4": (2, 200 / 3, 4.0),
        "t5": (1, 100.0, 6.0), "t6": (2, 0.0, 2.0),
    }
    for metric, expected in (("csat", expected_csat), ("frt", expected_frt)):
        for team, (rank, pct, med) in expected.items():
            row = got.loc[(metric, team)]
            assert (row["peer_rank"], row["peer_percentile"], row["peer_median"]) == pytest.approx(
                (rank, pct, med)), (metric, team)
            assert row["n_peers"] == (3 if team in ("t1", "t2", "t3", "t4") else 1)
    assert (got.loc["csat", "company_median"] == 8.25).all()  # 6, 7, 8, 8.5, 9, 9
    assert (got.loc["frt", "company_median"] == 4.0).all()  # 2, 3, 4, 4, 5, 6
    assert got.loc["csat", "vs_benchmark"].to_dict() == {
        "t1": "worse", "t2": "better", "t3": "better", "t4": "worse", "t5": "equal", "t6": "worse"}
    assert (got.loc["csat", "benchmark_source"] == "Industry survey").all()
    assert got.loc["frt", "benchmark_value"].isna().all() and got.loc["frt", "vs_benchmark"].isna().all()
    assert got.loc[("csat", "t1"), "parent_team_id"] == "d1" and got.loc[("csat", "t1"), "team_name"] == "Team 1"


def test_benchmark_as_of_and_options():
    ds = load(three_level_tables())
    later = benchmark(ds).set_index(["metric", "team_id"])  # as_of = 2026-10-05, t1's extra csat value
    assert later.loc[("csat", "t1"), "latest"] == 1.0
    assert later.loc[("csat", "t1"), "peer_rank"] == 4 and later.loc[("csat", "t2"), "latest"] == 9.0
    only = benchmark(ds, as_of=LAST, metrics=["frt"])
    assert set(only["metric"]) == {"frt"}
    monthly = benchmark(ds, as_of=LAST, freq="M")
    assert (monthly["latest_period"] == pd.Timestamp("2026-09-01")).all()


def test_benchmark_with_department_rows_and_several_benchmarks():
    t = three_level_tables()
    t["kpis"] = pd.concat([t["kpis"], kpi_rows("d1", "csat", [8.0] * 5), kpi_rows("d2", "csat", [7.0] * 5)],
                          ignore_index=True)
    t["benchmarks"] = pd.DataFrame({"metric": ["csat", "csat"], "value": [8.5, 9.0], "source": ["A", "B"]})
    ds = load(t)
    with pytest.warns(UserWarning, match="several benchmark rows"):
        leaves = benchmark(ds, as_of=LAST)
    assert "d1" not in set(leaves["team_id"]) and (leaves["benchmark_source"].dropna() == "A").all()
    with pytest.warns(UserWarning):
        every = benchmark(ds, as_of=LAST, leaves_only=False).set_index(["metric", "team_id"])
    assert every.loc[("csat", "d1"), "n_peers"] == 1 and every.loc[("csat", "d1"), "peer_rank"] == 1


# ----------------------------------------------------------------------------------
# Candidate key results
# ----------------------------------------------------------------------------------
def test_candidates_bottom_quartile_and_benchmark_with_targets():
    ds = load(three_level_tables())
    out = candidate_key_results(ds, "2026Q3", as_of=LAST)
    assert list(out.columns) == CANDIDATE_COLUMNS
    assert (out["quarter"] == "2026Q3").all() and (out["for_quarter"] == "2026Q4").all()
    got = out[out["reason"] != "declining"].set_index(["team_id", "metric", "reason"])
    # bottom quartile needs 3 peers: t4 csat (worst of d1) and t2 frt; d2 has only one peer each
    assert set(got.index) == {
        ("t4", "csat", "bottom_quartile"), ("t2", "frt", "bottom_quartile"),
        ("t1", "csat", "below_benchmark"), ("t4", "csat", "below_benchmark"), ("t6", "csat", "below_benchmark")}
    assert got.loc[("t4", "csat", "bottom_quartile"), "suggested_target"] == 9.0  # peer median
    assert got.loc[("t2", "frt", "bottom_quartile"), "suggested_target"] == 4.0
    assert got.loc[("t2", "frt", "bottom_quartile"), "direction"] == "decrease"
    assert got.loc[("t6", "csat", "below_benchmark"), "suggested_target"] == 8.5
    assert got.loc[("t6", "csat", "below_benchmark"), "suggested_baseline"] == 6.0
    assert got.loc[("t4", "csat", "below_benchmark"), "direction"] == "increase"
    assert "peer median 9" in got.loc[("t4", "csat", "bottom_quartile"), "evidence"]
    assert "Industry survey" in got.loc[("t1", "csat", "below_benchmark"), "evidence"]
    order = out["reason"].map({"bottom_quartile": 0, "declining": 1, "below_benchmark": 2})
    assert out.assign(o=order).sort_values(["team_id", "metric", "o"]).index.tolist() == out.index.tolist()


def test_candidates_skip_metrics_already_key_results_next_quarter():
    t = three_level_tables()
    t["objectives"] = pd.concat([t["objectives"], pd.DataFrame({
        "objective_id": ["o4"], "team_id": ["t4"], "quarter": ["2026Q4"], "title": ["Happier customers"],
        "parent_objective_id": [None], "kind": ["aspirational"]})], ignore_index=True)
    t["key_results"] = pd.concat([t["key_results"], pd.DataFrame({
        "kr_id": ["k4"], "objective_id": ["o4"], "title": ["CSAT from 7 to 9"], "direction": ["increase"],
        "baseline": [7.0], "target": [9.0], "unit": [""], "weight": [1.0], "metric": ["csat"]})],
        ignore_index=True)
    ds = load(t)
    out = candidate_key_results(ds, "2026Q3", as_of=LAST)
    assert not ((out["team_id"] == "t4") & (out["metric"] == "csat")).any()
    kept = candidate_key_results(ds, "2026Q3", as_of=LAST, skip_existing=False)
    assert ((kept["team_id"] == "t4") & (kept["metric"] == "csat")).sum() == 2


def test_candidates_declining_with_trend_and_signal():
    """A stationary KPI (level 8, sd 0.1) that falls by 1.2 over the last 12 weeks."""
    t = three_level_tables(weeks=52)
    rng = np.random.default_rng(5)
    values = np.r_[8 + 0.1 * rng.normal(size=40), 8 - 0.1 * np.arange(1, 13) + 0.05 * rng.normal(size=12)]
    t["kpis"] = pd.concat([t["kpis"][~((t["kpis"]["team_id"] == "t5") & (t["kpis"]["metric"] == "csat"))],
                           kpi_rows("t5", "csat", values)], ignore_index=True)
    ds = load(t)
    out = candidate_key_results(ds, "2026Q3", as_of=LAST)
    row = out[(out["team_id"] == "t5") & (out["metric"] == "csat") & (out["reason"] == "declining")]
    assert len(row) == 1
    row = row.iloc[0]
    assert row["latest"] == row["suggested_baseline"] == values[-1]
    assert row["suggested_target"] == pytest.approx(8.0, abs=0.1)  # back to the level before the quarter
    assert row["direction"] == "increase"
    assert "Worsening trend" in row["evidence"] and "control-chart signal" in row["evidence"]


def test_candidates_need_data_in_the_quarter(tiny_ds):
    with pytest.raises(ValueError, match="2027Q1"):
        candidate_key_results(tiny_ds, "2027Q1")


def test_sample_built_in_declines_are_candidates(sample_ds):
    """Every decline planted in the sample organisation's final quarter is a 'declining' candidate."""
    from okr_analysis.quarters import Quarter
    from okr_analysis.sample import BUILT_IN_DECLINES

    assert BUILT_IN_DECLINES
    for d in BUILT_IN_DECLINES:
        q = Quarter.containing(d["since"], fiscal_year_start=sample_ds.fiscal_year_start)
        out = candidate_key_results(sample_ds, q.label)
        hit = out[(out["team_id"] == d["team_id"]) & (out["metric"] == d["metric"])
                  & (out["reason"] == "declining")]
        assert len(hit) == 1, d
        hib = bool(sample_ds.metric_info(d["metric"])["higher_is_better"])
        row = hit.iloc[0]
        assert row["direction"] == ("increase" if hib else "decrease")
        assert (row["suggested_target"] > row["suggested_baseline"]) == hib  # the target reverses the decline


# ----------------------------------------------------------------------------------
# The monitor table
# ----------------------------------------------------------------------------------
def test_monitor_table(sample_ds):
    out = monitor(sample_ds)
    assert list(out.columns) == MONITOR_COLUMNS
    pairs = sample_ds.kpis[["team_id", "metric"]].drop_duplicates()
    assert len(out) == len(pairs) and not out.duplicated(["team_id", "metric"]).any()
    assert set(out["trend"]) <= {"increasing", "decreasing", "stable", "insufficient data"}
    assert out["signals"].map(type).eq(str).all()
    with_signals = out[out["n_signals"] > 0]
    assert not with_signals.empty and (with_signals["signals"] != "").all()
    assert (out.loc[out["n_signals"] == 0, "signals"] == "").all()
    assert ((out["n_signals"] >= 0) & (out["n_signals"] <= out["n_points"])).all()
    # the monitor's trend columns are kpi_trends' and its peer columns benchmark's
    trends = kpi_trends(sample_ds)
    pd.testing.assert_series_equal(out["p_value"], trends["p_value"])
    bench = benchmark(sample_ds).set_index(["team_id", "metric"])
    got = out.set_index(["team_id", "metric"])
    pd.testing.assert_series_equal(got["peer_percentile"], bench["peer_percentile"].reindex(got.index))


def test_monitor_signals_match_a_single_control_chart(sample_ds):
    """The batch signal count equals control_chart() on the same 26 baseline and 13 window weeks."""
    out = monitor(sample_ds).set_index(["team_id", "metric"])
    for d in __import__("okr_analysis.sample", fromlist=["BUILT_IN_DECLINES"]).BUILT_IN_DECLINES:
        row = out.loc[(d["team_id"], d["metric"])]
        start = row["window_start"]
        s = sample_ds.kpi_series(d["team_id"], d["metric"])
        s = s[(s.index >= start - pd.Timedelta(weeks=26)) & (s.index <= row["window_end"])]
        cc = control_chart(s, baseline=(None, start - pd.Timedelta(days=1)))
        inside = cc.signals[cc.signals["date"] >= start]
        assert row["n_signals"] == inside["date"].nunique()
        assert row["n_signals"] > 0  # a planted decline shows on the chart


def test_monitor_without_baseline(tiny_ds):
    out = monitor(tiny_ds, as_of="2025-10-06")  # the data start on 2025-07-07: nothing before the window
    assert out["n_signals"].isna().all() and out["signals"].str.startswith("no baseline").all()
    short = monitor(tiny_ds, window=13, baseline_periods=26)
    assert short["n_signals"].notna().all()
    with pytest.raises(ValueError, match="baseline_periods"):
        monitor(tiny_ds, baseline_periods=3)
