"""Forecasting: the engine against statsmodels, interval coverage on simulated series, p_hit in
clear-cut cases, fallbacks, no information after as_of, and the sample organisation's backtest.

The tiny organisation (``conftest.tiny_tables``) has quarter 2026Q3 (1 July – 30 September 2026);
its KPIs are weekly on Mondays from 2025-07-07 to 2026-09-28. Tests replace its KPI values with
noisy series of known shape.
"""

from __future__ import annotations

import dataclasses
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy.signal import lfilter  # noqa: E402
from statsmodels.tsa.ar_model import AutoReg  # noqa: E402

from conftest import tiny_tables  # noqa: E402
from okr_analysis.io import from_frames  # noqa: E402
from okr_analysis.scoring import score_key_results  # noqa: E402
from okr_analysis.forecasting import (  # noqa: E402
    CALIBRATION_COLUMNS,
    KPI_FORECAST_COLUMNS,
    KR_FORECAST_COLUMNS,
    PREDICTION_COLUMNS,
    SCORE_COLUMNS,
    SUMMARY_COLUMNS,
    BacktestResult,
    ForecastWarning,
    KRForecast,
    MIN_CALIBRATION_KRS,
    TEAM_RECORD_PRIOR,
    _team_record,
    _team_record_for,
    auc,
    backtest,
    brier_decomposition,
    expected_calibration_error,
    fit_calibration,
    fit_checkin_mapping,
    fit_push_model,
    forecast_key_result,
    forecast_key_results,
    forecast_kpis,
    forecast_series,
    select_model,
)

Q = "2026Q3"


def load(t: dict):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return from_frames(t, source="test")


def with_kpi(t: dict, team: str, metric: str, values: np.ndarray) -> dict:
    """Replace one team's KPI series (65 weekly values from 2025-07-07) in the tables ``t``."""
    k = t["kpis"]
    sel = (k["team_id"] == team) & (k["metric"] == metric)
    k.loc[sel, "value"] = np.asarray(values, dtype="float64")
    return t


def noisy(level: float, sd: float = 1.0, seed: int = 0, n: int = 65) -> np.ndarray:
    return level + sd * np.random.default_rng(seed).standard_normal(n)


def row(df: pd.DataFrame, kr_id: str) -> pd.Series:
    return df.set_index("kr_id").loc[kr_id]


# ---------------------------------------------------------------------------------------------
# The engine against statsmodels AutoReg
# ---------------------------------------------------------------------------------------------
def _series(kind: str, n: int = 120, seed: int = 0) -> np.ndarray:
    e = np.random.default_rng(seed).standard_normal(n)
    if kind == "rw":
        return 10 + np.cumsum(e + 0.2)
    if kind == "ar1":
        return 10 + lfilter([1], [1, -0.7], e)
    return 10 + np.cumsum(lfilter([1], [1, -0.4], e))


@pytest.mark.parametrize("kind", ["rw", "ar1", "ari"])
@pytest.mark.parametrize("levels", [False, True])
def test_fast_engine_matches_statsmodels_autoreg(kind, levels):
    y = _series(kind)
    best_f, fast = select_model(y, levels=levels, engine="fast")
    best_s, ref = select_model(y, levels=levels, engine="statsmodels")
    # levels=True: KPSS picks d first (d = 0 for the AR(1), d = 1 for the integrated series)
    stationary = levels and kind == "ar1"
    assert len(fast) == len(ref) == (5 if stationary else 10)
    assert {f.d for f in fast} == ({0} if stationary else {1})
    for a, b in zip(fast, ref):
        assert (a.d, a.p, a.const, a.nobs) == (b.d, b.p, b.const, b.nobs)
        np.testing.assert_allclose(a.params, b.params, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(a.ssr, b.ssr, rtol=1e-10)
        np.testing.assert_allclose(a.llf, b.llf, rtol=1e-10)
        np.testing.assert_allclose(a.aic, b.aic, rtol=1e-10)
        np.testing.assert_allclose(a.cov_params(), b.cov_params(), rtol=1e-8, atol=1e-14)
    assert best_f.name == best_s.name


def test_engine_values_are_autoregs_own():
    """One candidate checked directly against AutoReg's reported llf, aic and cov_params."""
    y = _series("ari", seed=3)
    _, fast = select_model(y, levels=False)
    fit = next(f for f in fast if f.d == 1 and f.p == 2 and f.const)
    r = AutoReg(np.diff(y), lags=2, trend="c", hold_back=4).fit()  # P = min(4, 119 // 10) = 4
    np.testing.assert_allclose(fit.params, r.params, rtol=1e-9)
    np.testing.assert_allclose(fit.llf, r.llf, rtol=1e-10)
    np.testing.assert_allclose(fit.aic, r.aic, rtol=1e-10)
    np.testing.assert_allclose(fit.sigma2, r.sigma2, rtol=1e-10)
    np.testing.assert_allclose(fit.cov_params(), r.cov_params(), rtol=1e-8)


def test_engine_with_exog_matches_statsmodels():
    rng = np.random.default_rng(5)
    x = np.cumsum(rng.standard_normal(100))
    y = 3 + np.cumsum(0.5 * np.r_[0, np.diff(x)] + rng.standard_normal(100))
    _, fast = select_model(y, exog=x[:, None], exog_names=["x"])
    _, ref = select_model(y, exog=x[:, None], exog_names=["x"], engine="statsmodels")
    for a, b in zip(fast, ref):
        assert a.exog_names == b.exog_names
        np.testing.assert_allclose(a.params, b.params, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(a.aic, b.aic, rtol=1e-10)
    best, _ = select_model(y, exog=x[:, None], exog_names=["x"])
    assert best.exog_names == ("x",)  # the regressor that built y is kept


# ---------------------------------------------------------------------------------------------
# Interval coverage on simulated series
# ---------------------------------------------------------------------------------------------
def _coverage(kind: str, levels: bool, runs: int = 300, n: int = 104, horizon: int = 8):
    rng = np.random.default_rng({"ar1": 11, "rw": 12, "rwd": 13}[kind])
    inside = {0.8: np.zeros(horizon), 0.95: np.zeros(horizon)}
    for r in range(runs):
        e = rng.standard_normal(n + horizon)
        if kind == "ar1":
            y = 5 + lfilter([1], [1, -0.6], e)
        elif kind == "rw":
            y = 5 + np.cumsum(e)
        else:
            y = 5 + np.cumsum(e + 0.3)
        f = forecast_series(y[:n], horizon=horizon, levels=levels, n_paths=1000, seed=r).quantiles
        future = y[n:]
        inside[0.8] += (future >= f["lower_80"]) & (future <= f["upper_80"])
        inside[0.95] += (future >= f["lower_95"]) & (future <= f["upper_95"])
    return {k: v / runs for k, v in inside.items()}


@pytest.mark.parametrize("kind, levels", [("ar1", True), ("rw", True), ("rw", False), ("rwd", False)])
def test_intervals_cover_at_their_nominal_rate(kind, levels):
    """Over 1000 simulated series, the 80% and 95% intervals at 1 and 8 steps ahead cover the
    realised value at their nominal rate within 3 binomial standard errors."""
    runs = 1000
    cov = _coverage(kind, levels, runs=runs)
    for level, rates in cov.items():
        tol = 3 * np.sqrt(level * (1 - level) / runs)
        for step in (0, 7):
            assert abs(rates[step] - level) <= tol, (kind, levels, level, step + 1, rates[step])


def test_forecast_is_seeded():
    y = _series("rw")
    a = forecast_series(y, horizon=5, seed=1)
    b = forecast_series(y, horizon=5, seed=1)
    c = forecast_series(y, horizon=5, seed=2)
    np.testing.assert_array_equal(a.paths, b.paths)
    assert not np.array_equal(a.paths, c.paths)
    assert a.paths.shape == (2000, 5)


# ---------------------------------------------------------------------------------------------
# Fallbacks: short, constant, empty series
# ---------------------------------------------------------------------------------------------
def test_short_series_falls_back_to_random_walk():
    f = forecast_series([10.0, 11.0, 13.0], horizon=4)
    assert f.method == "random walk with drift (short series)"
    assert "short series (3 values" in f.note
    assert np.isfinite(f.quantiles[["forecast", "lower_95", "upper_95"]].to_numpy()).all()
    assert (f.quantiles["upper_95"] > f.quantiles["lower_95"]).all()


def test_constant_series_is_forecast_as_its_constant():
    for values in ([7.0] * 3, [7.0] * 40):
        f = forecast_series(values, horizon=3)
        assert f.method == "constant (no variation)"
        assert "all" in f.note and "equal 7" in f.note
        assert (f.quantiles[["forecast", "lower_95", "upper_95"]] == 7.0).all().all()


def test_too_short_series_gives_nan_not_an_error():
    f = forecast_series([1.0, 2.0], horizon=2)
    assert f.method == "insufficient data"
    assert f.quantiles[["forecast", "lower_80"]].isna().all().all()


def test_interior_gaps_are_interpolated():
    y = _series("rw", n=60)
    y[[10, 11, 30]] = np.nan
    f = forecast_series(np.r_[np.nan, y, np.nan], horizon=2)
    assert f.n_obs == 60 and f.method.startswith("ARIMA")


def test_forecast_series_arguments():
    with pytest.raises(ValueError, match="horizon"):
        forecast_series([1, 2, 3], horizon=0)
    with pytest.raises(ValueError, match="n_paths"):
        forecast_series([1, 2, 3], horizon=1, n_paths=10)
    with pytest.raises(ValueError, match="engine"):
        select_model(np.arange(30.0), engine="R")


# ---------------------------------------------------------------------------------------------
# Key results on the tiny organisation
# ---------------------------------------------------------------------------------------------
def test_columns_and_order(tiny_ds):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ForecastWarning)
        f = forecast_key_results(tiny_ds, Q, as_of="2026-08-15", n_paths=500)
    assert list(f.columns) == KR_FORECAST_COLUMNS
    assert len(f) == len(tiny_ds.key_results)
    assert f["as_of"].eq(pd.Timestamp("2026-08-15")).all()
    assert f["kr_id"].tolist() == f.sort_values(["team_id", "objective_id", "kr_id"])["kr_id"].tolist()
    assert f["p_hit"].dtype == "float64" and f["forecast_date"].dtype == "datetime64[ns]"
    assert f["n_obs"].dtype == "int64"
    ms = row(f, "kc2")
    assert ms["method"] == "milestone (not forecast)" and np.isnan(ms["p_hit"])
    done = row(f, "k3a")  # milestone checked in at 1.0
    assert done["method"] == "done (milestone)" and done["p_hit"] == 1.0


def test_p_hit_near_one_far_past_target_and_near_zero_far_behind_late():
    t = tiny_tables()
    # k2b: NPS of t2 from 40 to 60 (increase). Far past it: the KPI sits around 80.
    ds_far_past = load(with_kpi(tiny_tables(), "t2", "nps", noisy(80.0, seed=1)))
    f = forecast_key_results(ds_far_past, Q, as_of="2026-08-01", n_paths=2000)
    assert row(f, "k2b")["p_hit"] > 0.99
    assert row(f, "k2b")["history"] == "kpi:nps"
    assert row(f, "k2b")["method"].startswith("ARIMA")
    # Far behind with two weeks left: the KPI sits around 40.
    ds_behind = load(with_kpi(t, "t2", "nps", noisy(40.0, seed=2)))
    g = forecast_key_results(ds_behind, Q, as_of="2026-09-16", n_paths=2000)
    r = row(g, "k2b")
    assert r["p_hit"] < 0.01
    assert r["horizon"] == 2 and r["forecast_date"] == pd.Timestamp("2026-09-28")
    assert r["lower_95"] < r["forecast"] < r["upper_95"] < 60


def checkins_from_kpi(t: dict, kr_id: str, team: str, metric: str, scale: float = 1.0, shift: float = 0.0,
                      dates=None) -> dict:
    """Replace a KR's check-ins by its team's KPI on the check-in dates (times scale, plus shift)."""
    k = t["kpis"]
    kpi = k.loc[(k["team_id"] == team) & (k["metric"] == metric)].set_index("date")["value"]
    ci = t["checkins"]
    if dates is None:
        dates = pd.DatetimeIndex(ci.loc[ci["kr_id"] == kr_id, "date"])
    dates = pd.DatetimeIndex(dates)
    new = pd.DataFrame({"kr_id": kr_id, "date": dates, "value": kpi.reindex(dates).to_numpy() * scale + shift,
                        "confidence": 7.0, "comment": None})
    t["checkins"] = pd.concat([ci.loc[ci["kr_id"] != kr_id], new], ignore_index=True)
    return t


def test_decrease_kr_uses_at_most(tiny_ds):
    # k1a: FRT of t1 from 5 to 2 (decrease, committed), checked in weekly at the KPI's value.
    t = with_kpi(tiny_tables(), "t1", "frt", noisy(1.0, sd=0.1, seed=3))  # well below 2 → hit
    f = forecast_key_results(load(checkins_from_kpi(t, "k1a", "t1", "frt")), Q, as_of="2026-08-15", n_paths=1000)
    assert row(f, "k1a")["p_hit"] > 0.99 and row(f, "k1a")["checkin_mapping"] == "identity"
    t = with_kpi(tiny_tables(), "t1", "frt", noisy(4.0, sd=0.1, seed=3))
    f = forecast_key_results(load(checkins_from_kpi(t, "k1a", "t1", "frt")), Q, as_of="2026-08-15", n_paths=1000)
    assert row(f, "k1a")["p_hit"] < 0.01


def test_maintain_kr_p_hit_is_the_last_checkin_and_expected_score_the_share():
    """k2a: keep CSAT of t2 at 9.0+ (aspirational). Its 12 weekly check-ins (6 July – 21 September)
    alternate 9.2 and 8.8. On 29 September no check-in is left on its cadence before 30 September:
    p_hit is whether the last one meets the line, expected_score the share that do."""
    t = tiny_tables()
    f = forecast_key_results(load(t), Q, as_of="2026-09-29", n_paths=500, calibrate=False)
    r = row(f, "k2a")
    assert r["n_future_checkins"] == 0 and r["current"] == 8.8
    assert r["p_hit"] == 0.0 and r["expected_score"] == pytest.approx(0.5) and r["pace_status"] == "off track"
    ci = t["checkins"]
    ci.loc[(ci["kr_id"] == "k2a") & (ci["date"] == ci.loc[ci["kr_id"] == "k2a", "date"].max()), "value"] = 9.2
    r = row(forecast_key_results(load(t), Q, as_of="2026-09-29", n_paths=500, calibrate=False), "k2a")
    assert r["p_hit"] == 1.0 and r["expected_score"] == pytest.approx(7 / 12) and r["pace_status"] == "on track"


def test_maintain_kr_forecasts_the_checkins_to_come():
    """CSAT far above the line, checked in at the KPI: the last check-in meets it almost surely; a
    committed objective with one missed check-in still can hit (the last check-in decides) but its
    expected score is below 1."""
    t = with_kpi(tiny_tables(), "t2", "csat", noisy(9.8, sd=0.05, seed=4))
    t = checkins_from_kpi(t, "k2a", "t2", "csat")
    f = forecast_key_results(load(t), Q, as_of="2026-07-20", n_paths=1000, calibrate=False)
    r = row(f, "k2a")
    assert r["expectation"] == 0.7 and r["p_hit"] > 0.99 and r["expected_score"] > 0.99
    assert r["n_future_checkins"] == 10  # 27 July … 28 September
    t["objectives"].loc[t["objectives"]["objective_id"] == "o2", "kind"] = "committed"
    ci = t["checkins"]
    ci.loc[(ci["kr_id"] == "k2a") & (ci["date"] == pd.Timestamp("2026-07-06")), "value"] = 8.9
    r = row(forecast_key_results(load(t), Q, as_of="2026-08-20", n_paths=1000, calibrate=False), "k2a")
    assert r["expectation"] == 1.0 and r["p_hit"] > 0.8  # the old rule said 0: one miss ruled it out
    assert 0.85 < r["expected_score"] <= 12 / 13 + 1e-12  # one of 13 check-ins has already missed


def _checkin_only_tables(values: list[float]) -> dict:
    """k3b (engagement 75 → 90) without a metric: its history is its check-ins."""
    t = tiny_tables()
    t["key_results"].loc[t["key_results"]["kr_id"] == "k3b", "metric"] = None
    dates = pd.date_range("2026-07-06", periods=len(values), freq="7D")
    new = pd.DataFrame({"kr_id": "k3b", "date": dates, "value": values, "confidence": 7.0, "comment": None})
    t["checkins"] = pd.concat([t["checkins"], new], ignore_index=True)
    return t


def test_short_and_constant_checkin_histories_fall_back_cleanly():
    f = forecast_key_results(load(_checkin_only_tables([75.0, 77.0, 80.0])), Q, as_of="2026-07-20", n_paths=1000)
    r = row(f, "k3b")
    assert r["history"] == "checkins" and r["n_obs"] == 3
    assert r["method"] == "random walk with drift (short series)" and "short series" in r["note"]
    assert 0 < r["p_hit"] < 1 and r["lower_80"] < r["forecast"] < r["upper_80"]
    f = forecast_key_results(load(_checkin_only_tables([76.0] * 4)), Q, as_of="2026-07-27", n_paths=1000)
    r = row(f, "k3b")
    assert r["method"] == "constant (no variation)" and r["p_hit"] == 0.0 and r["forecast"] == 76.0
    with pytest.warns(ForecastWarning, match="could not be forecast"):
        f = forecast_key_results(load(_checkin_only_tables([76.0, 78.0])), Q, as_of="2026-07-14", n_paths=1000)
    r = row(f, "k3b")
    assert r["method"] == "insufficient data" and np.isnan(r["p_hit"]) and np.isnan(r["forecast"])


def test_arguments_are_checked(tiny_ds):
    with pytest.raises(ValueError, match="before quarter 2026Q3 starts"):
        forecast_key_results(tiny_ds, Q, as_of="2026-06-01")
    with pytest.raises(ValueError, match="as_of is required"):
        forecast_key_results(tiny_ds, Q, as_of=None)
    with pytest.raises(ValueError, match="has no objectives"):
        forecast_key_results(tiny_ds, "2025Q1", as_of="2025-02-01")
    with pytest.raises(TypeError, match="Dataset"):
        forecast_key_results({}, Q, as_of="2026-08-01")
    with pytest.raises(ValueError, match="seed"):
        forecast_key_results(tiny_ds, Q, as_of="2026-08-01", seed=-1)
    with pytest.raises(ValueError, match="kr_id 'nope'"):
        forecast_key_result(tiny_ds, "nope", as_of="2026-08-01")


# ---------------------------------------------------------------------------------------------
# No information after as_of
# ---------------------------------------------------------------------------------------------
def _perturb_future(ds, as_of: str):
    """Every KPI and check-in value, and every check-in's confidence (the calibration reads it), dated after
    as_of changed (and one new row each)."""
    ts = pd.Timestamp(as_of)
    k = ds.kpis.copy()
    late = k["date"] > ts
    k.loc[late, "value"] = k.loc[late, "value"] * 3 + 17
    ci = ds.checkins.copy()
    late_ci = ci["date"] > ts
    ci.loc[late_ci, "value"] = -ci.loc[late_ci, "value"] - 5
    ci.loc[late_ci, "confidence"] = 10 - ci.loc[late_ci, "confidence"]
    extra_k = k.iloc[[0]].assign(date=k["date"].max() + pd.Timedelta(days=7), value=1e6)
    extra_ci = ci.iloc[[0]].assign(date=ts + pd.Timedelta(days=2), value=1e6)
    assert late.any() and late_ci.any()
    return dataclasses.replace(ds, kpis=pd.concat([k, extra_k], ignore_index=True),
                               checkins=pd.concat([ci, extra_ci], ignore_index=True))


@pytest.mark.parametrize("with_drivers", [False, True])
def test_no_information_after_as_of_reaches_the_forecast(sample_ds, with_drivers):
    as_of = "2026-08-10"
    a = forecast_key_results(sample_ds, Q, as_of=as_of, n_paths=500, with_drivers=with_drivers)
    b = forecast_key_results(_perturb_future(sample_ds, as_of), Q, as_of=as_of, n_paths=500,
                             with_drivers=with_drivers)
    pd.testing.assert_frame_equal(a, b)
    assert a["p_hit"].notna().sum() > 40
    if with_drivers:
        assert a["drivers"].notna().any()  # csat ← first_response_time (lag 2) is found and used


def test_kpi_forecasts_ignore_the_future(sample_ds):
    as_of = "2026-06-30"
    a = forecast_kpis(sample_ds, as_of=as_of, teams=["support-tier1"], n_paths=300)
    b = forecast_kpis(_perturb_future(sample_ds, as_of), as_of=as_of, teams=["support-tier1"], n_paths=300)
    pd.testing.assert_frame_equal(a, b)


# ---------------------------------------------------------------------------------------------
# Drivers
# ---------------------------------------------------------------------------------------------
def test_drivers_table_adds_lagged_leading_kpi(sample_ds):
    table = pd.DataFrame({"leading": ["first_response_time"], "lagging": ["csat"], "team_id": ["*"],
                          "lag": [2], "verdict": ["leads"]})
    f = forecast_key_results(sample_ds, Q, as_of="2026-08-10", n_paths=500, with_drivers=True, drivers=table)
    csat = f.loc[(f["metric"] == "csat") & f["history"].eq("kpi:csat")]
    assert len(csat)
    used = csat["drivers"].dropna()
    assert (used == "first_response_time (lag 2)").all() and len(used) >= 1
    assert csat.loc[csat["drivers"].notna(), "method"].str.endswith("+ first_response_time (lag 2)").all()
    other = f.loc[f["metric"].ne("csat")]
    assert other["drivers"].isna().all()


# ---------------------------------------------------------------------------------------------
# One key result and its plot
# ---------------------------------------------------------------------------------------------
def test_forecast_key_result_matches_the_table_and_plots(sample_ds):
    as_of = "2026-08-10"
    table = forecast_key_results(sample_ds, Q, as_of=as_of, n_paths=500)
    kr = table.loc[table["history"].str.startswith("kpi:") & table["direction"].eq("increase"), "kr_id"].iloc[0]
    one = forecast_key_result(sample_ds, kr, as_of=as_of, n_paths=500)
    assert isinstance(one, KRForecast)
    assert one.p_hit == row(table, kr)["p_hit"] and one.method == row(table, kr)["method"]
    last = one.table.iloc[-1]
    assert last["date"] == row(table, kr)["forecast_date"]
    np.testing.assert_allclose(last[["forecast", "lower_80", "upper_80", "lower_95", "upper_95"]].to_numpy(float),
                               row(table, kr)[["forecast", "lower_80", "upper_80", "lower_95", "upper_95"]]
                               .to_numpy(float))
    assert list(one.summary().columns) == KR_FORECAST_COLUMNS
    assert one.history.index.max() <= pd.Timestamp(as_of)
    fig, ax = plt.subplots()
    out = one.plot(ax=ax)
    assert out is ax
    labels = [line.get_label() for line in ax.get_lines()]
    assert "expected pace" in labels and any(lab.startswith("target") for lab in labels)
    assert "forecast check-ins (median)" in labels and "history" in labels
    assert "likely by" in ax.get_title() and "ARIMA" not in ax.get_title() and ax.get_ylabel() == one.unit
    assert len(ax.collections) >= 2  # the 80% and 95% bands
    plt.close(fig)
    assert "KRForecast" in repr(one)


# ---------------------------------------------------------------------------------------------
# KPI forecasts
# ---------------------------------------------------------------------------------------------
def test_forecast_kpis_to_the_end_of_next_quarter(sample_ds):
    f = forecast_kpis(sample_ds, as_of="2026-08-15", metrics=["engagement", "csat"], teams=["support-tier1"],
                      n_paths=300)
    assert list(f.columns) == KPI_FORECAST_COLUMNS
    assert set(f["metric"]) == {"engagement", "csat"}
    for _, g in f.groupby("metric"):
        assert g["period_start"].min() == pd.Timestamp("2026-08-17")  # the Monday after the last one used
        assert g["period_start"].max() <= pd.Timestamp("2026-12-31") < g["period_start"].max() + pd.Timedelta(7, "D")
        assert g["step"].tolist() == list(range(1, len(g) + 1))
        assert (g["lower_95"] <= g["lower_80"]).all() and (g["upper_80"] <= g["upper_95"]).all()
        assert g["method"].str.startswith("ARIMA").all()
    h = forecast_kpis(sample_ds, as_of="2026-08-15", metrics=["csat"], teams=["support-tier1"], horizon=3,
                      n_paths=300)
    assert len(h) == 3
    with pytest.raises(ValueError, match="metrics"):
        forecast_kpis(sample_ds, metrics=["nope"])


# ---------------------------------------------------------------------------------------------
# Backtest on the sample organisation (the acceptance numbers)
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample_backtest(sample_ds) -> BacktestResult:
    return backtest(sample_ds)


def test_backtest_tables(sample_backtest, tmp_path):
    bt = sample_backtest
    assert list(bt.predictions.columns) == PREDICTION_COLUMNS
    assert list(bt.summary.columns) == SUMMARY_COLUMNS
    assert list(bt.calibration.columns) == CALIBRATION_COLUMNS
    assert bt.options["quarters"] == ["2025Q4", "2026Q1", "2026Q2", "2026Q3"]
    assert bt.summary["at"].tolist() == ["0.3333", "0.5", "0.6667", "all"]
    p = bt.predictions
    assert set(p["direction"]) <= {"increase", "decrease", "maintain_at_least", "maintain_at_most"}
    assert (p["as_of"] < p["quarter"].map(lambda s: pd.Timestamp(s[:4] + "-" + str(3 * int(s[-1]) - 2) + "-01")
                                          + pd.DateOffset(months=3))).all()
    # the base rate of a quarter comes from the other quarters only
    for q, g in p.groupby("quarter"):
        others = p.loc[p["quarter"] != q].drop_duplicates("kr_id")["hit"].mean()
        assert g["base_rate"].nunique() == 1 and g["base_rate"].iloc[0] == pytest.approx(others)
    all_n = int(bt.summary.loc[bt.summary["at"] == "all", "n"].iloc[0])
    cal = bt.calibration
    for f in ("p_hit", "p_model", "pace_calibrated"):
        assert int(cal.loc[(cal["at"] == "all") & (cal["forecaster"] == f), "n"].sum()) == all_n
    assert list(bt.scores.columns) == SCORE_COLUMNS
    paths = bt.write(tmp_path / "bt")
    assert [x.name for x in paths] == ["predictions.csv", "summary.csv", "calibration.csv", "scores.csv"]
    assert len(pd.read_csv(paths[0])) == len(p)
    fig, ax = plt.subplots()
    assert bt.plot(ax=ax) is ax
    plt.close(fig)


def test_backtest_beats_the_pace_rule_and_the_base_rate(sample_backtest):
    """Acceptance: on the sample organisation (seed 0), p_hit's Brier score is at least 20% lower
    than the pace rule's on the same KRs, and lower than the leave-one-quarter-out base rate's."""
    s = sample_backtest.summary.set_index("at").loc["all"]
    assert s["n"] >= 400
    assert s["brier_p_hit"] <= 0.8 * s["brier_pace_rule"], s.to_dict()
    assert s["brier_p_hit"] < s["brier_base_rate"], s.to_dict()
    # intervals of the last check-in: the model's own (first quarter, no history) cover more than nominal
    # (half the paths follow the check-ins' own trend: measured 0.90 and 0.98); recalibrated on earlier
    # quarters (split-conformal factors) they cover about what they claim (within 3 binomial standard errors)
    assert 0.76 <= s["coverage_80"] <= 0.88 and 0.92 <= s["coverage_95"] <= 0.99
    p = sample_backtest.predictions
    rec = p.loc[p["calibration"].str.contains("intervals ×", regex=False) & p["in_80"].notna()]
    assert len(rec) >= 400
    se80, se95 = np.sqrt(0.8 * 0.2 / len(rec)), np.sqrt(0.95 * 0.05 / len(rec))
    assert abs(rec["in_80"].astype(float).mean() - 0.80) <= 3 * se80
    assert abs(rec["in_95"].astype(float).mean() - 0.95) <= 3 * se95


def test_backtest_arguments(sample_ds, tiny_ds):
    with pytest.raises(ValueError, match="at must hold fractions"):
        backtest(sample_ds, at=(0, 0.5))
    with pytest.raises(ValueError, match="no objectives"):
        backtest(sample_ds, quarters=["2024Q1"])


# ---------------------------------------------------------------------------------------------
# One outcome: the check-in path at the key result's cadence, mapped from the KPI
# ---------------------------------------------------------------------------------------------
def _ramp(seed: int = 7) -> np.ndarray:
    """NPS rising 0.4 a week with noise: 65 weekly values from 2025-07-07."""
    return 34.5 + 0.4 * np.arange(65) + np.random.default_rng(seed).normal(0, 1.0, 65)


def test_checkins_on_another_scale_than_the_kpi_are_mapped():
    """k2b (NPS of t2, increase 40 → 60) checked in weekly at the KPI, and the same key result
    whose check-ins and target are on another scale (2·KPI + 10): the fitted map is linear 10 + 2·KPI
    and the model's probability is the same."""
    dates = pd.date_range("2026-07-06", periods=7, freq="7D")
    a = checkins_from_kpi(with_kpi(tiny_tables(), "t2", "nps", _ramp()), "k2b", "t2", "nps", dates=dates)
    b = checkins_from_kpi(with_kpi(tiny_tables(), "t2", "nps", _ramp()), "k2b", "t2", "nps", scale=2, shift=10,
                          dates=dates)
    kr = b["key_results"]
    kr.loc[kr["kr_id"] == "k2b", ["baseline", "target"]] = [90.0, 130.0]
    fa = row(forecast_key_results(load(a), Q, as_of="2026-08-20", n_paths=2000, calibrate=False), "k2b")
    fb = row(forecast_key_results(load(b), Q, as_of="2026-08-20", n_paths=2000, calibrate=False), "k2b")
    assert fa["checkin_mapping"] == "identity" and fb["checkin_mapping"].startswith("linear 10 + 2·KPI")
    assert fa["history"] == fb["history"] == "kpi:nps"
    assert 0.05 < fa["p_model"] < 0.95
    assert fb["p_model"] == pytest.approx(fa["p_model"], abs=0.005)
    assert fb["forecast"] == pytest.approx(2 * fa["forecast"] + 10, rel=1e-6)


def test_checkin_cadence_sets_the_final_checkin():
    """Check-ins every two weeks: three are still to come after 20 August (31 Aug, 14 and 28 Sep), and
    the forecast is of the one on 28 September; the check-in path holds those three dates."""
    dates = pd.date_range("2026-07-06", periods=4, freq="14D")  # 6 Jul … 17 Aug
    t = checkins_from_kpi(with_kpi(tiny_tables(), "t2", "nps", _ramp()), "k2b", "t2", "nps", dates=dates)
    ds = load(t)
    r = row(forecast_key_results(ds, Q, as_of="2026-08-20", n_paths=500, calibrate=False), "k2b")
    assert r["checkin_cadence"] == 14 and r["n_future_checkins"] == 3
    assert r["forecast_date"] == pd.Timestamp("2026-09-28")
    one = forecast_key_result(ds, "k2b", as_of="2026-08-20", n_paths=500, calibration=False)
    assert list(one.table["date"]) == list(pd.to_datetime(["2026-08-31", "2026-09-14", "2026-09-28"]))
    assert one.paths.shape == (500, 3) and one.p_model == r["p_model"]
    assert len(one.history_table) >= 5  # the weekly KPI is simulated to the week of 28 September


def test_kpi_that_does_not_explain_the_checkins_is_not_used():
    """k1a's check-ins fall steadily (5, 4.75, …) while its FRT KPI is flat noise around 1: the KPI
    does not explain them, so the key result is forecast from its check-ins."""
    t = with_kpi(tiny_tables(), "t1", "frt", noisy(1.0, sd=0.3, seed=3))
    r = row(forecast_key_results(load(t), Q, as_of="2026-08-20", n_paths=500, calibrate=False), "k1a")
    assert r["history"] == "checkins" and "does not explain" in r["note"]


def test_partial_last_week_of_daily_kpis_is_dropped():
    """A daily ``sum`` KPI (10 a day, 70 a week): on Wednesday 12 August the week of 10 August holds 3 days
    (30), which would look like a drop; it is left out, so the history is the constant 70."""
    t = tiny_tables()
    t["metrics"].loc[t["metrics"]["metric"] == "nps", "aggregation"] = "sum"
    days = pd.date_range("2025-07-07", "2026-09-30", freq="D")
    k = t["kpis"]
    k = k.loc[~((k["team_id"] == "t2") & (k["metric"] == "nps"))]
    t["kpis"] = pd.concat([k, pd.DataFrame({"team_id": "t2", "metric": "nps", "date": days, "value": 10.0})],
                          ignore_index=True)
    one = forecast_key_result(load(t), "k2b", as_of="2026-08-12", n_paths=200, calibration=False)
    assert one.history.index.max() == pd.Timestamp("2026-08-03")
    assert (one.history == 70.0).all() and one.method == "constant (no variation)"
    # on Sunday the week is complete and counts
    one = forecast_key_result(load(t), "k2b", as_of="2026-08-16", n_paths=200, calibration=False)
    assert one.history.index.max() == pd.Timestamp("2026-08-10") and one.history.iloc[-1] == 70.0


def test_fit_checkin_mapping_kinds():
    kd = pd.date_range("2026-01-05", periods=10, freq="7D")
    x = np.arange(10.0)
    assert fit_checkin_mapping(kd, x, kd[:5], x[:5]).kind == "identity"
    m = fit_checkin_mapping(kd, x, kd[:5] + pd.Timedelta(days=2), 3 * x[:5] - 1)  # mid-week check-ins
    assert m.kind == "linear" and m.a == pytest.approx(-1) and m.b == pytest.approx(3) and m.s < 1e-9
    m = fit_checkin_mapping(kd, x, kd[:2], x[:2] + 0.5)
    assert m.kind == "offset" and m.a == pytest.approx(0.5) and m.n == 2
    m = fit_checkin_mapping(kd, x, kd[:6], np.array([5.0, 1.0, 4.0, 0.0, 3.0, 2.0]))
    assert m.kind == "unrelated"
    assert fit_checkin_mapping(kd, x, [], []).label.startswith("identity (no check-in")


def test_checkins_one_week_late_are_mapped_to_the_previous_weeks_kpi():
    """k2b's check-ins quote the NPS of the week before their date (reported a week late): the mapping is
    the identity with a one-week lag, so the key result keeps its KPI history (before, the KPI 'did not
    explain' such check-ins and the key result was forecast from its check-ins alone)."""
    kd = pd.date_range("2026-01-05", periods=10, freq="7D")
    x = np.array([3.0, 1.0, 4.0, 1.5, 5.0, 9.0, 2.0, 6.0, 5.5, 3.5])
    m = fit_checkin_mapping(kd, x, kd[1:8], x[0:7])
    assert m.kind == "identity" and m.lag == 1 and m.s == 0 and m.label.startswith("identity, one week late")
    assert fit_checkin_mapping(kd, x, kd[1:8], x[1:8]).lag == 0
    dates = pd.date_range("2026-07-06", periods=7, freq="7D")
    t = checkins_from_kpi(with_kpi(tiny_tables(), "t2", "nps", noisy(40.0, sd=3.0, seed=5)), "k2b", "t2", "nps",
                          dates=dates)
    k = t["kpis"]
    kpi = k.loc[(k["team_id"] == "t2") & (k["metric"] == "nps")].set_index("date")["value"]
    ci = t["checkins"]
    sel = ci["kr_id"] == "k2b"
    ci.loc[sel, "value"] = kpi.reindex(pd.DatetimeIndex(ci.loc[sel, "date"]) - pd.Timedelta(days=7)).to_numpy()
    r = row(forecast_key_results(load(t), Q, as_of="2026-08-20", n_paths=500, calibrate=False), "k2b")
    assert r["history"] == "kpi:nps" and r["checkin_mapping"].startswith("identity, one week late")


# ---------------------------------------------------------------------------------------------
# The planned-push model: a stationary KPI around its level, moved by the team's plan
# ---------------------------------------------------------------------------------------------
def _push_case(seed: int = 0, shock: float = 0.0):
    """156 weeks from 2023-10-02: level 50 + 0.5/year, a yearly swing of ±3, AR(1) noise (φ 0.5, sd 1), an
    earlier quarter's push of +5 (kept) and this quarter's planned push of +4 followed as planned; as-of
    6 weeks into the quarter (the last value shocked by ``shock``), 7 weeks to go."""
    dates = pd.date_range("2023-10-02", periods=156, freq="7D")
    days = (dates - dates[0]).days.to_numpy()
    rng = np.random.default_rng(seed)
    noise = lfilter([1], [1, -0.5], rng.normal(0, np.sqrt(1 - 0.25), 156))
    season = 3 * np.cos(2 * np.pi * dates.day_of_year.to_numpy() / 365.25)
    e0, e1 = pd.Timestamp("2025-04-01"), pd.Timestamp("2025-06-30")
    q0, q1 = dates[143], dates[143] + pd.Timedelta(days=90)
    def ramp(a, b, d):
        return np.clip(np.asarray((d - a) / (b - a), dtype="float64"), 0, 1)
    mean = 50 + 0.5 * days / 365.25 + season + 5 * ramp(e0, e1, dates) + 4 * ramp(q0, q1, dates)
    y = mean + noise
    n = 149  # as-of: 6 weeks into the quarter
    y = y[:n].copy()
    y[-1] += shock
    return y, dates[:n], mean[n - 1 + 7], dict(quarter_start=q0, quarter_end=q1, move=4.0, earlier=[(e0, e1)])


def test_push_model_estimates_the_earlier_push_and_wins_the_aic():
    y, dates, _, kw = _push_case()
    fit = fit_push_model(y, dates, horizon=7, **kw)
    assert fit is not None and fit.name == "level + planned push, AR(1)"
    # the earlier quarter's push, kept (over 40 seeds: mean 4.99, sd 0.64)
    assert fit.beta[-1] == pytest.approx(5.0, abs=2.0)
    assert fit.phi == pytest.approx(0.5, abs=0.15)
    best, cands = select_model(y)
    assert fit.aic < min(c.aic for c in cands)              # stationary noise: beats the integrated models
    assert fit_push_model(y[:100], dates[:100], horizon=7, **kw) is None   # under two years: not tried
    # the two least-squares steps are statsmodels' OLS of y − push on the regressors and AutoReg(1) of the
    # residuals without a constant
    import statsmodels.api as sm

    days = (dates - dates[0]).days.to_numpy().astype(float)
    t = 2 * np.pi * (dates.as_unit("ns").asi8 // 86_400_000_000_000) / 365.25
    def ramp(a, b):
        return np.clip(np.asarray((dates - a) / (b - a), dtype="float64"), 0, 1)
    X = np.column_stack([np.ones(len(y)), days / 365.25, np.sin(t), np.cos(t), ramp(*kw["earlier"][0])])
    ols = sm.OLS(y - 4.0 * ramp(kw["quarter_start"], kw["quarter_end"]), X).fit()
    np.testing.assert_allclose(fit.beta, ols.params, rtol=1e-8, atol=1e-8)
    ar = AutoReg(ols.resid, lags=1, trend="n").fit()
    assert fit.phi == pytest.approx(float(ar.params[0]), rel=1e-9)
    assert fit.ssr == pytest.approx(float(ar.ssr), rel=1e-9)


def test_push_model_reverts_a_lucky_last_week_to_the_level():
    """The last observed week is 3 sd above the level: the planned-push model's forecast 7 weeks on is near
    the true mean (level + swing + both pushes); the integrated candidates stay near the lucky value."""
    y, dates, truth, kw = _push_case(seed=1, shock=3.0)
    fit = fit_push_model(y, dates, horizon=7, **kw)
    paths = fit.simulate(4000, np.random.default_rng(0))
    assert paths.shape == (4000, 7)
    assert np.median(paths[:, -1]) == pytest.approx(truth, abs=0.8)
    arima = forecast_series(y, horizon=7, levels=False, n_paths=2000)
    assert abs(np.median(arima.paths[:, -1]) - truth) > abs(np.median(paths[:, -1]) - truth) + 0.5
    # wide enough: the 80% interval of the simulated value holds the true mean
    lo, hi = np.quantile(paths[:, -1], [0.1, 0.9])
    assert lo < truth < hi and 1.5 < hi - lo < 5


# ---------------------------------------------------------------------------------------------
# After the quarter, and no look-ahead
# ---------------------------------------------------------------------------------------------
def test_after_the_quarter_p_hit_is_the_scored_outcome(sample_ds):
    """Quarter-end consistency: on or after the quarter's last day, p_hit is the outcome the score
    reports, for every key result of every quarter of the sample."""
    for label in sample_ds.quarters:
        q = sample_ds.quarter(label)
        sc = score_key_results(sample_ds, label).set_index("kr_id")
        f = forecast_key_results(sample_ds, label, as_of=q.end, n_paths=100).set_index("kr_id")
        assert f["final"].all() and (f["method"] == "final (quarter over)").all()
        maintain = sc["direction"].str.startswith("maintain")
        hit = np.where(maintain, sc["status"] == "on track", sc["score"] >= 1 - 1e-9).astype(float)
        expected = pd.Series(hit, index=sc.index).where(sc["score"].notna())
        pd.testing.assert_series_equal(f["p_hit"], expected.reindex(f.index), check_names=False)
        assert (f["outcome"].where(f["p_hit"].notna()) == np.where(f["p_hit"] == 1, "hit", "missed")).where(
            f["p_hit"].notna(), True).all()
        later = forecast_key_results(sample_ds, label, as_of=q.end + pd.Timedelta(days=40), n_paths=100)
        pd.testing.assert_series_equal(later.set_index("kr_id")["p_hit"], f["p_hit"])


def test_values_after_as_of_times_ten_change_nothing(sample_ds):
    """Every KPI value and check-in dated after as_of (a Wednesday) multiplied by 10: the same table,
    calibration included."""
    as_of = pd.Timestamp("2026-08-12")
    k, ci = sample_ds.kpis.copy(), sample_ds.checkins.copy()
    k.loc[k["date"] > as_of, "value"] *= 10
    ci.loc[ci["date"] > as_of, "value"] *= 10
    later = dataclasses.replace(sample_ds, kpis=k, checkins=ci)
    a = forecast_key_results(sample_ds, Q, as_of=as_of, n_paths=500)
    b = forecast_key_results(later, Q, as_of=as_of, n_paths=500)
    pd.testing.assert_frame_equal(a, b)
    assert a["calibration"].str.startswith("logistic").sum() > 40


# ---------------------------------------------------------------------------------------------
# Calibration from the organisation's history
# ---------------------------------------------------------------------------------------------
def test_calibration_uses_earlier_quarters_only(sample_ds, tiny_ds):
    cal = fit_calibration(sample_ds, Q, as_of="2026-08-10", n_paths=500)
    assert cal.fitted and cal.quarters == ("2025Q4", "2026Q1", "2026Q2") and cal.n >= MIN_CALIBRATION_KRS
    first = fit_calibration(sample_ds, "2025Q4", as_of="2025-11-10", n_paths=500)
    assert not first.fitted and first.label.startswith("none: 0 key results")
    f = forecast_key_results(sample_ds, "2025Q4", as_of="2025-11-10", n_paths=500)
    open_ = f["p_model"].notna() & (f["n_future_checkins"] > 0)
    assert (f.loc[open_, "p_hit"] == f.loc[open_, "p_model"]).all()
    assert f.loc[open_, "calibration"].str.startswith("none").all()
    g = forecast_key_results(sample_ds, Q, as_of="2026-08-10", n_paths=500)
    assert not [c for c in g.columns if c.startswith("_")]  # the calibration's inputs are not published
    o = g.loc[g["p_model"].notna() & (g["n_future_checkins"] > 0)]
    # its inputs: the latest check-in's confidence up to as_of, the team's record in the earlier quarters
    conf = score_key_results(sample_ds, Q, as_of="2026-08-10").set_index("kr_id")["confidence"]
    record = _team_record_for(sample_ds.known_on(pd.Timestamp("2026-08-10")), sample_ds.quarter(Q), o["team_id"])
    np.testing.assert_allclose(cal.team_record_of(o["team_id"]), record)
    assert np.ptp(record) > 0 and cal.team_record_of(["no-such-team"])[0] == 0.0
    np.testing.assert_allclose(o["p_hit"], cal.apply(o["p_model"], o["pace_status"], o["direction"],
                                                     confidence=o["kr_id"].map(conf), team_record=record,
                                                     history=o["history"]))
    assert not np.allclose(o["p_hit"], cal.apply(o["p_model"], o["pace_status"], o["direction"]))
    off = forecast_key_results(sample_ds, Q, as_of="2026-08-10", n_paths=500, calibrate=False)
    assert (off["p_hit"].fillna(-1) == off["p_model"].fillna(-1)).all()


def test_team_record_is_the_shrunk_earlier_hit_rate():
    """A team's record: its earlier hit rate shrunk towards the organisation's by TEAM_RECORD_PRIOR pseudo key
    results, as a logit difference; a team without earlier key results (or no history at all) gets 0."""
    q1 = pd.DataFrame({"team_id": ["a"] * 4 + ["b"] * 4, "hit": [1.0, 1.0, 1.0, np.nan, 0.0, 0.0, 0.0, 1.0]})
    q2 = pd.DataFrame({"team_id": ["a", "b"], "hit": [1.0, 0.0]})
    rate = 5 / 9
    m = TEAM_RECORD_PRIOR

    def lg(x):
        return np.log(x / (1 - x))

    got = _team_record([q1, q2], ["a", "b", "c", "a"])
    want = [lg((4 + m * rate) / (4 + m)) - lg(rate), lg((1 + m * rate) / (5 + m)) - lg(rate), 0.0,
            lg((4 + m * rate) / (4 + m)) - lg(rate)]
    np.testing.assert_allclose(got, want)
    assert got[0] > 0 > got[1]
    np.testing.assert_array_equal(_team_record([], ["a", "b"]), [0.0, 0.0])


def test_calibration_reads_confidence_and_the_team_record(sample_ds):
    """On the sample's earlier quarters, key results with a confident owner and teams that hit more often
    before hit more often: with the same model probability and status, p_hit rises with both."""
    cal = fit_calibration(sample_ds, Q, as_of="2026-08-10", n_paths=500)
    assert cal.fitted and len(cal.params) == 9
    p = cal.apply([0.5] * 4, ["on track"] * 4, ["increase"] * 4, confidence=[2.0, 9.0, 9.0, np.nan],
                  team_record=[0.0, 0.0, 1.0, 0.0], history=["kpi:csat"] * 4)
    assert p[0] < p[1] < p[2]
    # unknown inputs: no confidence, the organisation's rate, not a KPI history
    np.testing.assert_allclose(cal.apply([0.5], ["on track"], ["increase"]),
                               cal.apply([0.5], ["on track"], ["increase"], confidence=[np.nan], team_record=[0.0],
                                         history=["checkins"]))


def _history_frame(p_model, hit, quarters, confidence=7.0) -> pd.DataFrame:
    n = len(hit)
    return pd.DataFrame({"quarter": quarters, "p_model": p_model, "hit": np.asarray(hit, dtype="float64"),
                         "pace_status": np.where(np.arange(n) % 2, "on track", "off track"),
                         "direction": "increase", "_confidence": confidence, "_team_record": 0.0,
                         "history": "kpi:x"})


def test_calibration_weight_is_chosen_by_leaving_one_earlier_quarter_out():
    """The recalibration is trusted only as far as it beat p_model on the earlier quarters out of sample."""
    from okr_analysis.forecasting import CALIBRATION_WEIGHTS, _fit_calibration

    rng = np.random.default_rng(3)
    n = 300
    quarters = np.repeat(["2025Q4", "2026Q1", "2026Q2"], n // 3)
    span = ("2025Q4", "2026Q2")
    # p_model right in every quarter, while what confidence says flips from quarter to quarter: a regression
    # fitted on some quarters misleads on the others → weight 0, p_hit = p_model
    pm = rng.uniform(0.1, 0.9, n)
    hit = rng.random(n) < pm
    conf = np.where(quarters == "2025Q4", 10.0 * hit, np.where(quarters == "2026Q1", 10.0 * ~hit, 5.0))
    flip = _fit_calibration(_history_frame(pm, hit, quarters, conf), span, 0.5)
    assert flip.fitted and flip.weight == 0.0 and "weight 0 (leave one quarter out)" in flip.label
    p = np.array([0.2, 0.9])
    np.testing.assert_allclose(flip.apply(p, ["on track"] * 2, ["increase"] * 2, confidence=[10.0, 0.0]), p)
    # p_model far too low (outcomes at the rate 1 - (1 - p)^4) in every quarter: the regression corrects it
    # → weight 1
    pm = rng.uniform(0.05, 0.6, n)
    hit = rng.random(n) < 1 - (1 - pm) ** 4
    low = _fit_calibration(_history_frame(pm, hit, quarters), span, 0.5)
    assert low.weight == 1.0 and low.weight in CALIBRATION_WEIGHTS
    assert (low.apply([0.3], ["on track"], ["increase"], confidence=[7.0], history=["kpi:x"]) > 0.5).all()
    # a single earlier quarter: nothing to leave out, the regression is used
    one = _fit_calibration(_history_frame(pm, hit, "2026Q2"), ("2026Q2",), 0.5)
    assert one.weight == 1.0 and "leave one quarter out" not in one.label


def test_interval_recalibration_is_split_conformal(sample_ds):
    """The factors are the conformal quantiles of earlier quarters' scores; the table applies them."""
    cal = fit_calibration(sample_ds, Q, as_of="2026-08-10", n_paths=500)
    c80, c95 = cal.interval_scale
    assert cal.interval_n >= MIN_CALIBRATION_KRS and 0 < c80 < 1.5 and 0 < c95 < 1.5
    assert f"intervals ×{c80:.2f} (80%), ×{c95:.2f} (95%)" in cal.label
    raw = forecast_key_results(sample_ds, Q, as_of="2026-08-10", n_paths=500, calibrate=False)
    new = forecast_key_results(sample_ds, Q, as_of="2026-08-10", n_paths=500)
    open_ = (new["p_model"].notna() & (new["n_future_checkins"] > 0)).to_numpy()
    f = raw["forecast"].to_numpy()[open_]
    np.testing.assert_allclose(new["forecast"].to_numpy()[open_], f)
    for c, k, sign in (("lower_80", c80, -1), ("upper_80", c80, 1), ("lower_95", c95, -1), ("upper_95", c95, 1)):
        np.testing.assert_allclose(new[c].to_numpy()[open_], f + k * (raw[c].to_numpy()[open_] - f))
    # the closed rows (no check-in to come) keep their point intervals
    assert (new.loc[~open_, "lower_80"].fillna(-1) == raw.loc[~open_, "lower_80"].fillna(-1)).all()
    # the one-KR forecast uses the same factors on its check-in path
    kr = new.loc[open_, "kr_id"].iloc[0]
    one = forecast_key_result(sample_ds, kr, as_of="2026-08-10", n_paths=500, calibration=cal)
    row = new.set_index("kr_id").loc[kr]
    assert one.table["upper_80"].iloc[-1] == pytest.approx(row["upper_80"])
    # … and the same p_hit: its confidence and its team's record enter the calibration as in the table
    assert one.p_hit == pytest.approx(row["p_hit"]) and one.p_hit != pytest.approx(one.p_model)
    assert not [c for c in one.row.index if c.startswith("_")]
    # on one team's slice with the organisation's calibration: the team's record is the organisation's figure
    team = str(row["team_id"])
    sliced = forecast_key_result(sample_ds.filter_teams([team]), kr, as_of="2026-08-10", n_paths=500,
                                 calibration=cal)
    assert sliced.p_hit == pytest.approx(row["p_hit"])


def test_conformal_factors_give_nominal_coverage_on_exchangeable_data():
    """Intervals twice too wide (normal final values, bounds at ±2.563 and ±3.92 sd): the factors shrink them
    to cover 80% and 95% of new values from the same distribution (the split-conformal guarantee)."""
    from okr_analysis.forecasting import _interval_scale

    rng = np.random.default_rng(5)

    def frame(n):
        f = rng.normal(0, 3, n)
        return pd.DataFrame({"forecast": f, "lower_80": f - 2.563, "upper_80": f + 2.563, "lower_95": f - 3.92,
                             "upper_95": f + 3.92, "n_future_checkins": 3, "final_value": f + rng.normal(0, 1, n)})

    (c80, c95), n = _interval_scale(frame(2000))
    assert n == 2000 and c80 == pytest.approx(0.5, abs=0.05) and c95 == pytest.approx(0.5, abs=0.05)
    test = frame(4000)
    for level, lo, hi, c in ((0.80, "lower_80", "upper_80", c80), (0.95, "lower_95", "upper_95", c95)):
        f = test["forecast"]
        inside = (test["final_value"] >= f - c * (f - test[lo])) & (test["final_value"] <= f + c * (test[hi] - f))
        assert abs(inside.mean() - level) <= 3 * np.sqrt(level * (1 - level) / 4000) + 3 * np.sqrt(
            level * (1 - level) / 2000)
    assert _interval_scale(frame(MIN_CALIBRATION_KRS - 1)) == (None, MIN_CALIBRATION_KRS - 1)


# ---------------------------------------------------------------------------------------------
# Scores
# ---------------------------------------------------------------------------------------------
def test_auc_reference_value():
    # the textbook example (scikit-learn's roc_auc_score documentation): 0.75
    assert auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert auc([0.5, 0.5], [0, 1]) == pytest.approx(0.5) and np.isnan(auc([0.2], [1]))


def test_brier_decomposition_is_exact_for_few_distinct_forecasts():
    rng = np.random.default_rng(1)
    p = rng.choice([0.1, 0.3, 0.6, 0.9], 500)
    y = (rng.random(500) < p).astype(float)
    d = brier_decomposition(p, y)
    assert d.brier == pytest.approx(np.mean((p - y) ** 2))
    assert d.reliability - d.resolution + d.uncertainty == pytest.approx(d.brier, abs=1e-12)
    assert d.uncertainty == pytest.approx(y.mean() * (1 - y.mean()))
    # a perfectly calibrated constant forecast: no reliability error, no resolution
    c = brier_decomposition(np.full(500, y.mean()), y)
    assert c.reliability == pytest.approx(0) and c.resolution == pytest.approx(0)
    assert expected_calibration_error(np.full(500, y.mean()), y) == pytest.approx(0, abs=1e-12)


def test_backtest_p_hit_is_what_the_forecast_said_and_baselines_are_out_of_sample(sample_backtest, sample_ds):
    p = sample_backtest.predictions
    g = p.loc[(p["quarter"] == "2026Q2") & (p["at"] == 0.5)]
    f = forecast_key_results(sample_ds, "2026Q2", as_of=g["as_of"].iloc[0]).set_index("kr_id")
    np.testing.assert_allclose(g["p_hit"].to_numpy(), f.loc[g["kr_id"], "p_hit"].to_numpy())
    assert g["calibration"].str.startswith("logistic on").all()
    assert p.loc[p["quarter"] == "2025Q4", "calibration"].str.startswith("none").all()  # no earlier quarter
    # calibrated pace status: the status's hit rate at the same point in the other quarters
    r = g.iloc[0]
    other = p.loc[(p["quarter"] != "2026Q2") & (p["at"] == 0.5) & (p["pace_status"] == r["pace_status"])]
    assert r["pace_calibrated"] == pytest.approx(other["hit"].mean())


def test_backtest_scores(sample_backtest):
    sc = sample_backtest.scores.set_index(["at", "forecaster"])
    s = sample_backtest.summary.set_index("at")
    for at in ("0.3333", "0.5", "0.6667", "all"):
        assert sc.loc[(at, "p_hit"), "brier"] == pytest.approx(s.loc[at, "brier_p_hit"])
        assert sc.loc[(at, "p_hit"), "brier_low"] <= s.loc[at, "brier_p_hit"] <= sc.loc[(at, "p_hit"), "brier_high"]
        assert s.loc[at, "diff_low"] <= s.loc[at, "brier_p_hit"] - s.loc[at, "brier_pace_calibrated"] <= s.loc[
            at, "diff_high"]
        pr = sc.loc[(at, "pace_rule")]  # two distinct values: the decomposition is exact
        assert pr["reliability"] - pr["resolution"] + pr["uncertainty"] == pytest.approx(pr["brier"], abs=1e-12)
    # the recalibration makes p_hit more reliable than the model's own probability
    assert sc.loc[("all", "p_hit"), "reliability"] < sc.loc[("all", "p_model"), "reliability"]
    fig, ax = plt.subplots()
    assert sample_backtest.plot_reliability(ax=ax) is ax and "ECE" in ax.get_title()
    plt.close(fig)


def test_one_key_result_after_the_quarter_says_final(sample_ds):
    """What the scorecard and the chart need once the quarter is over: final, the outcome, no cone."""
    q = sample_ds.quarter("2026Q2")
    sc = score_key_results(sample_ds, "2026Q2").set_index("kr_id")
    kr = sc.index[(sc["direction"] == "increase") & sc["score"].notna()][0]
    one = forecast_key_result(sample_ds, kr, as_of=q.end, n_paths=200)
    expected = "hit" if sc.loc[kr, "score"] >= 1 - 1e-9 else "missed"
    assert one.final and one.outcome == expected and one.p_hit == (1.0 if expected == "hit" else 0.0)
    assert one.table.empty and f"final: {expected}" in repr(one)
    fig, ax = plt.subplots()
    one.plot(ax=ax)
    assert f"final: {expected}" in ax.get_title() and any(
        line.get_label().startswith("target") for line in ax.get_lines())
    plt.close(fig)
