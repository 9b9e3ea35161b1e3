"""Key-result forecasts: where each KR's last check-in will land, and ``p_hit``.

Mid-quarter, a team wants to know how likely it is to reach each key result. The usual
answer is the straight-line pace rule (progress compared with the elapsed share of the
quarter, :func:`okr_analysis.scoring.score_key_results`). This module forecasts instead:

* :func:`forecast_key_results` — every KR of a quarter at an as-of date: the quarter's last
  check-in (point forecast, 80% and 95% intervals) and ``p_hit``, the probability of the outcome the
  score reports (increase/decrease/milestone: the last check-in reaches the target; maintain: the
  last check-in meets the line), from check-in paths simulated at the KR's own cadence and
  recalibrated on the organisation's earlier quarters (:func:`fit_calibration`); after the
  quarter, the observed outcome;
* :func:`forecast_key_result` — one KR, as a :class:`KRForecast` with the check-in path and ``.plot()``;
* :func:`forecast_kpis` — KPI forecasts to the end of the next quarter, for the monitoring views;
* :func:`backtest` — forecasts every past quarter at 1/3, 1/2 and 2/3 of the way through from the
  data up to that date only, and compares ``p_hit`` with what happened and with the base rate,
  the pace rule and the calibrated pace status (Brier and its decomposition, AUC, ECE, a
  reliability table, bootstrap intervals by team);
* :func:`forecast_series` — the forecasting engine on one plain series.

The models (each choice and its reason is in README.md, "Forecasts")
------------------------------------------------------------------------
A series with at least :data:`MIN_MODEL_OBS` weekly values is forecast from a small set of
autoregressive candidates, all fitted by ordinary least squares (the conditional maximum
likelihood of statsmodels' ``AutoReg``) on a common estimation sample so their AICs compare:

* key results: ``ARIMA(p,1,0)`` with and without drift, ``p = 0..P`` — the metric is treated as
  integrated (what a team achieves stays; a mean-reverting model would pull every forecast back
  to the metric's past while the team is working to move it); on a KPI history each is also tried
  with the *quarter trend* regressor (a change of drift since the quarter started,
  :data:`QUARTER_TREND_MIN_WEEKS`) and, with ``seasonal=True``, yearly Fourier terms;
* KPI forecasts (:func:`forecast_kpis`): the same when unit-root tests leave any doubt, else
  ``ARIMA(p,0,0)`` with a constant, ``p = 1..P+1`` (:func:`is_integrated`: d = 0 only when the
  ADF test rejects a unit root and KPSS does not reject stationarity).

``method`` names the AIC-best candidate; the simulated paths come from all candidates in
proportion to their Akaike weights (:func:`aic_weights`), which carries the uncertainty of the
choice into the intervals. Each path also draws its model's parameters from their posterior
(flat prior: innovation variance from a scaled inverse chi-square, coefficients normal given
it), so intervals and ``p_hit`` widen when a model was fitted on little data.

Shorter series fall back to a random walk with a shrunken drift (``random walk with drift
(short series)``); a series whose values are all equal is forecast as that constant; fewer than
:data:`MIN_SHORT_OBS` values give NaN. :data:`N_PATHS` paths per series, seeded per key result.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Sequence

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

from .formatting import chart_value
from .io.dataset import Dataset, check_dataset
from .io.quarters import Quarter
from .leadlag import lead_lag
from .resample import infer_freq, resample_kpis
from .scoring import EXPECTATION, score_key_results

__all__ = [
    "forecast_key_results",
    "forecast_key_result",
    "forecast_kpis",
    "forecast_series",
    "backtest",
    "select_model",
    "aic_weights",
    "is_integrated",
    "KRForecast",
    "SeriesForecast",
    "BacktestResult",
    "BrierDecomposition",
    "Calibration",
    "CheckinMapping",
    "fit_calibration",
    "fit_checkin_mapping",
    "fit_push_model",
    "PushFit",
    "PUSH_MIN_WEEKS",
    "brier_decomposition",
    "expected_calibration_error",
    "auc",
    "FORECASTERS",
    "SCORE_COLUMNS",
    "MIN_CALIBRATION_KRS",
    "ModelFit",
    "ForecastWarning",
    "KR_FORECAST_COLUMNS",
    "KPI_FORECAST_COLUMNS",
    "PREDICTION_COLUMNS",
    "SUMMARY_COLUMNS",
    "CALIBRATION_COLUMNS",
    "N_PATHS",
    "MAX_P",
    "MIN_MODEL_OBS",
    "MIN_SHORT_OBS",
    "UNIT_ROOT_LEVEL",
    "BACKTEST_AT",
]

#: Simulated future paths per series.
N_PATHS = 2000
#: Largest autoregressive order tried (weekly data: a month).
MAX_P = 4
#: Weekly values a series needs for the AIC-selected ARIMA models; shorter series fall back.
MIN_MODEL_OBS = 16
#: Values a series needs for the short-series fallback (two differences give a spread).
MIN_SHORT_OBS = 3
#: Level of the ADF and KPSS tests that decide d for KPI forecasts (:func:`is_integrated`).
UNIT_ROOT_LEVEL = 0.05
#: Default as-of points of the backtest, as fractions of the quarter.
BACKTEST_AT = (1 / 3, 1 / 2, 2 / 3)
#: Weekly values a KPI history needs before yearly seasonal terms are tried (two years).
SEASONAL_MIN_WEEKS = 104
#: Weekly values a KPI history needs before the planned-push model is tried as a candidate (two years).
PUSH_MIN_WEEKS = 104
#: Weeks of the quarter a KPI history needs before the in-quarter drift is tried as a regressor.
QUARTER_TREND_MIN_WEEKS = 3
#: R² of check-ins on their week's KPI below which the KPI is not used for a key result (4+ check-ins).
MIN_MAPPING_R2 = 0.5
#: Key results with a probability and an outcome in earlier quarters needed to recalibrate p_hit.
MIN_CALIBRATION_KRS = 40
#: ... and at least this many hits and this many misses among them.
MIN_CALIBRATION_EACH = 5
#: Earlier quarters used for the calibration (the most recent that ended before the quarter starts).
CALIBRATION_QUARTERS = 4
#: At most this many earlier key results are forecast for the calibration (a seeded sample beyond it).
CALIBRATION_MAX_KRS = 500
#: Ridge penalty of the calibration's logistic regression (statsmodels ``fit_regularized`` alpha).
CALIBRATION_ALPHA = 0.04
#: Weights of the recalibrated probability (against p_model) chosen among by leave one earlier quarter out.
CALIBRATION_WEIGHTS = (0.0, 0.5, 1.0)
#: Pseudo key results at the organisation's rate that shrink a team's earlier hit rate (calibration feature).
TEAM_RECORD_PRIOR = 4.0
#: The model's probability is clipped to [c, 1 - c] before its logit enters the calibration.
CALIBRATION_CLIP = 0.01
#: Interval levels reported.
LEVELS = (0.80, 0.95)
#: Observed-rate bins of the calibration table (edges on p_hit).
CALIBRATION_BINS = 10

_MOVING = ("increase", "decrease")
_MAINTAIN = ("maintain_at_least", "maintain_at_most")
_EPS = 1e-9
_DAY = 86_400_000_000_000  # nanoseconds
_Q = (0.025, 0.10, 0.50, 0.90, 0.975)

KR_FORECAST_COLUMNS = [
    "quarter", "team_id", "objective_id", "kr_id", "title", "direction", "metric", "unit",
    "baseline", "target", "expectation", "as_of", "current", "forecast_date", "horizon",
    "forecast", "lower_80", "upper_80", "lower_95", "upper_95", "p_hit", "p_model", "expected_score",
    "final", "outcome", "calibration", "pace_status", "checkin_cadence", "n_future_checkins", "checkin_mapping",
    "method", "model_weight", "history", "n_obs", "drivers", "note",
]
KPI_FORECAST_COLUMNS = [
    "team_id", "metric", "period_start", "step", "forecast", "lower_80", "upper_80", "lower_95",
    "upper_95", "method", "model_weight", "n_obs", "note",
]
PREDICTION_COLUMNS = [
    "quarter", "at", "as_of", "team_id", "kr_id", "direction", "metric", "history", "method",
    "p_hit", "p_model", "calibration", "pace_status", "pace_rule", "pace_calibrated", "base_rate", "hit",
    "final_value", "forecast", "lower_80", "upper_80", "lower_95", "upper_95", "in_80", "in_95",
]
SUMMARY_COLUMNS = [
    "at", "n", "hit_rate", "brier_p_hit", "brier_p_model", "brier_pace_calibrated", "brier_pace_rule",
    "brier_base_rate", "ratio_vs_pace_calibrated", "diff_low", "diff_high", "ece_p_hit", "auc_p_hit",
    "auc_pace_calibrated", "n_calibrated", "coverage_80", "coverage_95",
]
SCORE_COLUMNS = [
    "at", "forecaster", "n", "brier", "reliability", "resolution", "uncertainty", "residual", "auc", "ece",
    "brier_low", "brier_high", "diff_vs_pace_calibrated", "diff_low", "diff_high", "diff_vs_base_rate",
    "diff_base_low", "diff_base_high",
]
CALIBRATION_COLUMNS = ["at", "forecaster", "bin", "p_low", "p_high", "n", "mean_p", "observed_rate"]


class ForecastWarning(UserWarning):
    """A forecast could not be made for some series or key results (too little data)."""


# =============================================================================================
# The engine: candidate ARIMA(p,d,0) models by OLS, selection by AIC, simulation
# =============================================================================================
@dataclass(frozen=True, eq=False)
class ModelFit:
    """One fitted candidate (OLS, as statsmodels ``AutoReg`` with ``hold_back``).

    Attributes
    ----------
    d : int
        0: the model is for the levels; 1: for the weekly differences.
    p : int
        Autoregressive order.
    const : bool
        With a constant (a drift when ``d = 1``).
    exog_names : tuple of str
        Extra regressors (driver metrics), after the constant and the lags.
    params : ndarray
        Coefficients in the order constant, lags 1..p, exog (statsmodels' order).
    xtx_inv : ndarray
        ``(X'X)^-1`` of the regression.
    ssr : float
        Sum of squared residuals.
    nobs : int
        Observations used (after the held-back start).
    weight : float
        Its Akaike weight among the candidates, when known (the share of the simulated paths it gives).
    """

    d: int
    p: int
    const: bool
    params: np.ndarray
    xtx_inv: np.ndarray
    ssr: float
    nobs: int
    exog_names: tuple[str, ...] = ()
    weight: float = float("nan")

    @property
    def k(self) -> int:
        return len(self.params)

    @property
    def sigma2(self) -> float:
        """Innovation variance as statsmodels reports it (``ssr / nobs``)."""
        return self.ssr / self.nobs

    @property
    def llf(self) -> float:
        """Conditional Gaussian log-likelihood (statsmodels ``AutoReg``'s)."""
        n = self.nobs
        return -(n / 2) * (math.log(2 * math.pi) + math.log(max(self.ssr, 1e-300) / n) + 1)

    @property
    def aic(self) -> float:
        """``-2 llf + 2 (k + 1)``: coefficients plus the variance (statsmodels ``AutoReg.aic``)."""
        return -2 * self.llf + 2 * (self.k + 1)

    def cov_params(self) -> np.ndarray:
        """``sigma2 (X'X)^-1``, as statsmodels ``AutoRegResults.cov_params()``."""
        return self.sigma2 * self.xtx_inv

    @property
    def name(self) -> str:
        core = f"ARIMA({self.p},{self.d},0)"
        if self.const:
            core += " with drift" if self.d == 1 else " with constant"
        return core


def _lagmat(z: np.ndarray, P: int) -> np.ndarray:
    """Rows t = P..len(z)-1, columns z[t-1], ..., z[t-P]."""
    n = len(z)
    return np.column_stack([z[P - i: n - i] for i in range(1, P + 1)]) if P else np.empty((n - P, 0))


def _ols(y: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    if X.shape[1] == 0:
        return np.empty(0), np.empty((0, 0)), float(y @ y)
    xtx = X.T @ X
    try:
        xtx_inv = np.linalg.inv(xtx)
    except np.linalg.LinAlgError:
        xtx_inv = np.linalg.pinv(xtx)
    beta = xtx_inv @ (X.T @ y)
    r = y - X @ beta
    return beta, xtx_inv, float(r @ r)


def _max_p(n: int, max_p: int) -> int:
    """Largest order tried for a series of n values: about one per 10 differences, at most max_p."""
    return int(max(0, min(max_p, (n - 1) // 10)))


def _candidates_fast(y: np.ndarray, P: int, levels: bool, exog: np.ndarray | None,
                     exog_names: tuple[str, ...]) -> list[ModelFit]:
    z = np.diff(y)
    m = len(z)
    target = z[P:]
    lags = _lagmat(z, P)
    ones = np.ones((m - P, 1))
    ex = None if exog is None else np.diff(exog, axis=0)[P:]
    out = []
    ex_sets = [((), None)] if ex is None else [((), None), (exog_names, ex)]
    for names, e in ex_sets:
        for p in range(P + 1):
            for const in (True, False):
                parts = ([ones] if const else []) + [lags[:, :p]] + ([e] if e is not None else [])
                X = np.hstack(parts) if parts else np.empty((m - P, 0))
                beta, xi, ssr = _ols(target, X)
                out.append(ModelFit(1, p, const, beta, xi, ssr, m - P, names))
    if levels:
        # levels AR(p+1) on the same observations: y_t for t = P+1..n-1
        ylag = _lagmat(y, P + 1)
        ty = y[P + 1:]
        ones = np.ones((len(ty), 1))
        exl = None if exog is None else exog[P + 1:]
        for names, e in ([((), None)] if exl is None else [((), None), (exog_names, exl)]):
            for p in range(1, P + 2):
                parts = [ones, ylag[:, :p]] + ([e] if e is not None else [])
                beta, xi, ssr = _ols(ty, np.hstack(parts))
                out.append(ModelFit(0, p, True, beta, xi, ssr, len(ty), names))
    return out


def _candidates_statsmodels(y: np.ndarray, P: int, levels: bool, exog: np.ndarray | None,
                            exog_names: tuple[str, ...]) -> list[ModelFit]:
    """The same candidates fitted one by one by statsmodels ``AutoReg`` (the reference; slower)."""
    # lazy import: statsmodels adds ~1 s to every command that does not fit a model
    from statsmodels.tsa.ar_model import AutoReg

    z = np.diff(y)
    dex = None if exog is None else np.diff(exog, axis=0)
    out = []
    ex_sets = [((), None)] if exog is None else [((), None), (exog_names, dex)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for names, e in ex_sets:
            for p in range(P + 1):
                for const in (True, False):
                    if p == 0 and not const and e is None:
                        target = z[P:]  # AutoReg needs a regressor; the no-parameter model by hand
                        out.append(ModelFit(1, 0, False, np.empty(0), np.empty((0, 0)), float(target @ target),
                                            len(target), names))
                        continue
                    mod = AutoReg(z, lags=p, trend="c" if const else "n", hold_back=P, exog=e)
                    r = mod.fit()
                    xi = np.asarray(r.cov_params()) / r.sigma2
                    out.append(ModelFit(1, p, const, np.asarray(r.params), xi, float(r.ssr), int(r.nobs), names))
        if levels:
            el = None if exog is None else exog
            for names, e in ([((), None)] if exog is None else [((), None), (exog_names, el)]):
                for p in range(1, P + 2):
                    mod = AutoReg(y, lags=p, trend="c", hold_back=P + 1, exog=e)
                    r = mod.fit()
                    xi = np.asarray(r.cov_params()) / r.sigma2
                    out.append(ModelFit(0, p, True, np.asarray(r.params), xi, float(r.ssr), int(r.nobs), names))
    return out


def is_integrated(y: Any, *, level: float = UNIT_ROOT_LEVEL) -> bool:
    """Whether a series is treated as integrated (d = 1) by the KPI forecasts.

    d = 0 only when two tests agree that the series is stationary: the ADF test (statsmodels
    ``adfuller``, constant, ``P`` lags) rejects a unit root at ``level`` *and* the KPSS test
    (``kpss``, level stationarity, automatic lags) does not reject stationarity at ``level``.
    Otherwise d = 1. The asymmetry is deliberate: a wrong d = 0 pulls the forecast back to the
    mean and makes the intervals too narrow, a wrong d = 1 only makes them somewhat wider.
    (KPSS alone, as in ``auto.arima``, takes about one 2-year random walk in seven for stationary,
    and the 8-week 80% intervals of random walks then cover about 76% instead of 80%.)
    KPSS p-values come from a table that stops at 0.01 and 0.10; beyond them the bound is used.
    """
    # lazy import: statsmodels adds ~1 s to every command that does not fit a model
    from statsmodels.tsa.stattools import adfuller, kpss

    y = np.asarray(y, dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p_kpss = kpss(y, regression="c", nlags="auto")[1]
        p_adf = adfuller(y, maxlag=max(1, _max_p(len(y), MAX_P)), autolag=None, regression="c")[1]
    return bool(p_kpss < level or p_adf > level)


def select_model(y: Any, *, levels: bool = False, max_p: int = MAX_P, exog: Any = None,
                 exog_names: Sequence[str] = (), engine: str = "fast") -> tuple[ModelFit, list[ModelFit]]:
    """Fit the candidate ARIMA(p,d,0) models to a series and pick the one with the lowest AIC.

    Parameters
    ----------
    y : array-like of float
        An equally spaced series without missing values (at least :data:`MIN_MODEL_OBS` values
        is sensible; any length of at least ``max_p + 3`` works).
    levels : bool, default False
        False: only the integrated models, ARIMA(p,1,0) with and without drift (d = 1 is imposed).
        True: d is chosen first by unit-root tests (:func:`is_integrated`: ADF and KPSS must both
        find the series stationary for d = 0); d = 1 as above, else the levels models ARIMA(p,0,0)
        with a constant, p = 1..P+1.
    max_p : int, default :data:`MAX_P`
        Largest autoregressive order of the differenced models (levels models go to ``max_p + 1``).
        Reduced to about one per 10 differences for short series.
    exog : array-like, optional
        Extra regressors aligned with ``y`` (one column each); every candidate is also tried with them
        (in differences for the integrated models, in levels for the levels models).
    exog_names : sequence of str
        Names of the ``exog`` columns.
    engine : {'fast', 'statsmodels'}
        ``'fast'``: the OLS fits in NumPy; ``'statsmodels'``: the same models by ``AutoReg``, one
        by one (the reference the fast engine is tested against; about 20 times slower).

    Returns
    -------
    (ModelFit, list of ModelFit)
        The selected model and every candidate. All candidates use the same observations (the
        first ``P + 1`` values are held back), so their AICs compare.
    """
    y = np.asarray(y, dtype="float64")
    if engine not in ("fast", "statsmodels"):
        raise ValueError(f"engine must be 'fast' or 'statsmodels', got {engine!r}.")
    P = _max_p(len(y), max_p)
    ex = None if exog is None else np.asarray(exog, dtype="float64").reshape(len(y), -1)
    names = tuple(exog_names) if ex is not None else ()
    if ex is not None and len(names) != ex.shape[1]:
        names = tuple(f"x{i + 1}" for i in range(ex.shape[1]))
    stationary = levels and not is_integrated(y)
    fitter = _candidates_fast if engine == "fast" else _candidates_statsmodels
    cands = fitter(y, P, stationary, ex, names)
    if stationary:
        cands = [c for c in cands if c.d == 0]
    best = min(cands, key=lambda f: (round(f.aic, 9), f.k))
    return best, cands


def aic_weights(candidates: Sequence[ModelFit]) -> np.ndarray:
    """Akaike weights ``exp(-ΔAIC/2)``, normalised: each candidate's share of the simulated paths.

    Forecasting from the weighted mixture rather than from the AIC-best model alone carries the
    uncertainty of the choice itself (Burnham and Anderson 2002, multimodel inference): after
    selecting a drift because the sample's mean change happened to be large, the intervals of the
    selected model alone are too narrow (8-week 80% intervals of random walks covered 78%; with the
    mixture 80%).
    """
    a = np.array([c.aic for c in candidates], dtype="float64")
    w = np.exp(-(a - a.min()) / 2)
    return w / w.sum()


def _draw_params(fit: ModelFit, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Posterior draws (flat prior): sigma2 ~ ssr / chi2(df), beta | sigma2 ~ N(beta_hat, sigma2 (X'X)^-1)."""
    df = fit.nobs - fit.k
    ssr = max(fit.ssr, 0.0)
    if df >= 1:
        sig2 = ssr / rng.chisquare(df, n)
    else:
        sig2 = np.full(n, ssr / max(fit.nobs, 1))
    if fit.k == 0:
        return np.empty((n, 0)), sig2
    try:
        L = np.linalg.cholesky(fit.xtx_inv)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(fit.xtx_inv)
        L = v * np.sqrt(np.clip(w, 0, None))
    z = rng.standard_normal((n, fit.k))
    beta = fit.params[None, :] + np.sqrt(sig2)[:, None] * (z @ L.T)
    return beta, sig2


def _simulate(fits: Sequence[ModelFit], counts: Sequence[int], y: np.ndarray, H: int, rng: np.random.Generator,
              exog: np.ndarray | None = None, exog_future: np.ndarray | None = None) -> np.ndarray:
    """Future paths of the levels, ``H`` steps ahead: ``counts[i]`` paths from ``fits[i]`` (sum × H).

    The fits must share d. Each path draws its model's parameters (:func:`_draw_params`); the
    recursion runs once for all paths (coefficients zero-padded to the largest order).
    ``exog`` is the regressors' history (aligned with y), ``exog_future`` their future values in
    levels, shape (n, H, k), one row per path (rows taken in order by the fits that use them).
    """
    d = fits[0].d
    P = max(f.p for f in fits)
    k_ex = 0 if exog is None else exog.shape[1]
    C, PHI, B, S2 = [], [], [], []
    for f, k in zip(fits, counts):
        if not k:
            continue
        beta, sig2 = _draw_params(f, int(k), rng)
        j = int(f.const)
        C.append(beta[:, 0] if f.const else np.zeros(k))
        phi = np.zeros((k, P))
        phi[:, : f.p] = beta[:, j: j + f.p]
        PHI.append(phi)
        b = np.zeros((k, k_ex))
        if f.exog_names:
            b[:] = beta[:, j + f.p:]
        B.append(b)
        S2.append(sig2)
    c, phi, b, sig2 = np.concatenate(C), np.vstack(PHI), np.vstack(B), np.concatenate(S2)
    n = len(c)
    x_f = None
    if k_ex:
        if d == 1:
            full = np.concatenate([np.broadcast_to(exog[-1][None, None, :], (n, 1, k_ex)), exog_future], axis=1)
            x_f = np.diff(full, axis=1)
        else:
            x_f = exog_future
    z_hist = np.diff(y) if d == 1 else y
    buf = np.zeros((n, P + H))
    if P:
        buf[:, :P] = z_hist[len(z_hist) - P:][None, :]
    eps = rng.standard_normal((n, H)) * np.sqrt(sig2)[:, None]
    for h in range(H):
        v = c + eps[:, h]
        if P:
            v = v + np.einsum("np,np->n", phi, buf[:, h: P + h][:, ::-1])
        if x_f is not None:
            v = v + np.einsum("nk,nk->n", b, x_f[:, h, :])
        buf[:, P + h] = v
    out = buf[:, P:]
    if d == 1:
        out = y[-1] + np.cumsum(out, axis=1)
    return out


def _random_walk_drift(y: np.ndarray, H: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Short-series fallback: random walk with a shrunken drift and Student-t steps.

    The drift is the mean difference shrunk towards 0 by the positive-part James–Stein factor
    ``w = max(0, 1 - se^2 / mean^2)`` (kept only in proportion to the evidence for it); each path
    draws its drift from N(w·mean, w·se^2). Steps are ``s · t(m - 1)`` with ``s`` the standard
    deviation of the m differences, so the spread's own uncertainty widens the intervals.
    """
    d = np.diff(y)
    m = len(d)
    mean = float(d.mean())
    s = float(d.std(ddof=1)) if m >= 2 else 0.0
    se2 = s * s / m if m else 0.0
    w = 0.0 if mean == 0 else max(0.0, 1.0 - se2 / (mean * mean))
    drift = w * mean + math.sqrt(w * se2) * rng.standard_normal(n)
    df = max(m - 1, 1)
    steps = s * rng.standard_t(df, (n, H)) if s > 0 else np.zeros((n, H))
    return y[-1] + np.cumsum(drift[:, None] + steps, axis=1), w


class SeriesForecast(NamedTuple):
    """A forecast of one series (:func:`forecast_series`).

    ``paths`` is (n_paths × horizon); ``quantiles`` a DataFrame by step (1..horizon) with
    forecast (the median path value), lower_80, upper_80, lower_95, upper_95.
    """

    method: str
    note: str
    n_obs: int
    paths: np.ndarray
    quantiles: pd.DataFrame
    fit: ModelFit | None


def _quantile_frame(paths: np.ndarray) -> pd.DataFrame:
    H = paths.shape[1]
    cols = ["lower_95", "lower_80", "forecast", "upper_80", "upper_95"]
    if paths.shape[0] == 0 or H == 0:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in ["step", *cols]})
    qs = np.quantile(paths, _Q, axis=0)
    out = pd.DataFrame(dict(zip(cols, qs)))
    out.insert(0, "step", np.arange(1, H + 1))
    return out[["step", "forecast", "lower_80", "upper_80", "lower_95", "upper_95"]]


def _forecast_array(y: np.ndarray, H: int, *, levels: bool, n_paths: int, rng: np.random.Generator,
                    exog: np.ndarray | None = None, exog_names: Sequence[str] = (),
                    exog_future: np.ndarray | None = None, engine: str = "fast",
                    push: PushFit | None = None) -> tuple[np.ndarray, str, str, ModelFit | None, float]:
    """(paths, method, note, fit, share of the AIC weight on models with exog) for a clean series y.

    ``push``: a fitted planned-push model (:func:`fit_push_model`) taking part in the Akaike weights as
    one more candidate (its AIC is computed on the same observations)."""
    n = len(y)
    if n == 0:
        return np.full((n_paths, H), np.nan), "no data", "no values to forecast from", None, 0.0
    scale = max(float(np.max(np.abs(y))), 1.0)
    if np.ptp(y) <= 1e-12 * scale:
        note = f"all {n} values equal {y[-1]:g}; forecast as that constant, without uncertainty"
        return np.full((n_paths, H), float(y[-1])), "constant (no variation)", note, None, 0.0
    if n < MIN_SHORT_OBS:
        return (np.full((n_paths, H), np.nan), "insufficient data",
                f"{n} value(s): at least {MIN_SHORT_OBS} are needed", None, 0.0)
    if n < MIN_MODEL_OBS:
        paths, w = _random_walk_drift(y, H, n_paths, rng)
        note = (f"short series ({n} values < {MIN_MODEL_OBS}): random walk with the mean weekly change "
                f"shrunk by {w:.2f} (1 = kept, 0 = dropped) instead of the AIC-selected ARIMA models")
        return paths, "random walk with drift (short series)", note, None, 0.0
    fit, cands = select_model(y, levels=levels, exog=exog, exog_names=exog_names, engine=engine)
    if push is not None:
        a = np.array([c.aic for c in cands] + [push.aic], dtype="float64")
        w_all = np.exp(-(a - a.min()) / 2)
        w_all /= w_all.sum()
        weights, w_push = w_all[:-1] / max(w_all[:-1].sum(), 1e-300), float(w_all[-1])
        k_push = int(rng.binomial(n_paths, w_push))
    else:
        weights, w_push, k_push = aic_weights(cands), 0.0, 0
    counts = rng.multinomial(n_paths - k_push, weights)
    has_exog = any(c.exog_names for c, k in zip(cands, counts) if k)
    n_arima = n_paths - k_push
    if n_arima:
        paths = _simulate(cands, counts, y, H, rng, exog if has_exog else None,
                          exog_future[:n_arima] if has_exog else None)
    else:
        paths = np.empty((0, H))
    fit = dataclasses.replace(fit, weight=float(weights[next(i for i, c in enumerate(cands) if c is fit)]
                                                * (1 - w_push)))
    exog_weight = float(sum(w for c, w in zip(cands, weights) if c.exog_names)) * (1 - w_push)
    if push is not None:
        paths = np.concatenate([paths, push.simulate(k_push, rng)])[rng.permutation(n_paths)]
        if w_push > fit.weight:
            return paths, push.name, "", dataclasses.replace(fit, weight=w_push), exog_weight
    note = ""
    if fit.ssr <= 1e-20 * scale * scale * fit.nobs:
        note = "the model fits the history exactly: no variation around it, so no uncertainty"
    return paths, fit.name, note, fit, exog_weight


@dataclass(frozen=True, eq=False)
class PushFit:
    """The planned-push model of a key result's weekly KPI, fitted by least squares.

    ``y_t = x_t'β + push_t + r_t``, ``r_t = φ r_{t-1} + e_t``: ``x_t`` holds a constant, a linear
    trend (per year), the sine and cosine of the day of the year, and one *earlier push* per earlier
    quarter in which the team had an increase or decrease key result on the metric (0 before that
    quarter, rising linearly to 1 at its end, 1 afterwards: what a team achieved, it keeps; its size
    estimated); ``push_t`` is this quarter's planned move (target − baseline, in KPI units), rising
    linearly from 0 at the quarter's start to the whole move at its end (the plan; 0 for maintain key
    results). The noise is a stationary AR(1). β by ordinary least squares on ``y − push``, φ by least
    squares on the residuals.

    Attributes
    ----------
    beta : ndarray
        Coefficients of ``x`` (constant, trend per year, sine, cosine, earlier pushes).
    xtx_inv : ndarray
        ``(X'X)^-1`` (pseudo-inverse).
    phi : float
        AR(1) coefficient of the residuals, clipped to [-0.98, 0.98].
    ssr : float
        Sum of squared innovations over the whole history.
    n : int
        Weekly values fitted.
    aic : float
        AIC on the ARIMA candidates' observations (the first ``P + 1`` values held back), so that it
        compares with theirs; parameters: ``β``, ``φ`` and the variance.
    x_future : ndarray
        Regressors of the weeks to come (H × k).
    push_future : ndarray
        The planned push of the weeks to come.
    last_resid : float
        ``r`` at the last observed week.
    x_last : ndarray
        Regressors of the last observed week.
    name : str
        The ``method`` label.
    """

    beta: np.ndarray
    xtx_inv: np.ndarray
    phi: float
    ssr: float
    n: int
    aic: float
    x_future: np.ndarray
    push_future: np.ndarray
    last_resid: float
    x_last: np.ndarray
    name: str = "level + planned push, AR(1)"

    def simulate(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` future paths (n × H) with parameter uncertainty: the innovation variance from its scaled
        inverse chi-square posterior, β given it (its covariance widened by the AR(1) long-run factor
        (1 + φ) / (1 − φ)), φ from its normal approximation."""
        H = len(self.push_future)
        k = len(self.beta)
        df = max(self.n - 1 - k - 1, 1)
        sig2 = self.ssr / rng.chisquare(df, n)
        phi = np.clip(self.phi + math.sqrt(max(1 - self.phi ** 2, 1e-6) / max(self.n - 1, 1))
                      * rng.standard_normal(n), -0.98, 0.98)
        w, v = np.linalg.eigh(self.xtx_inv * (1 + self.phi) / max(1 - self.phi, 0.02))
        L = v * np.sqrt(np.clip(w, 0, None))
        beta = self.beta[None, :] + np.sqrt(sig2 / max(1 - self.phi ** 2, 0.04))[:, None] * (
            rng.standard_normal((n, k)) @ L.T)
        r = self.last_resid - (beta - self.beta[None, :]) @ self.x_last
        out = np.empty((n, H))
        eps = rng.standard_normal((n, H)) * np.sqrt(sig2)[:, None]
        for h in range(H):
            r = phi * r + eps[:, h]
            out[:, h] = r
        return out + beta @ self.x_future.T + self.push_future[None, :]


def _yearly_terms(days: np.ndarray) -> np.ndarray:
    t = 2 * np.pi * days / 365.25
    return np.column_stack([np.sin(t), np.cos(t)])


def fit_push_model(y: Any, dates: Any, *, horizon: int, quarter_start: Any, quarter_end: Any, move: float = 0.0,
                   earlier: Sequence[tuple[Any, Any]] = (), max_p: int = MAX_P) -> PushFit | None:
    """Fit the planned-push model (:class:`PushFit`) to a weekly KPI history.

    Parameters
    ----------
    y : array-like of float
        The weekly KPI, oldest first, without missing values.
    dates : array-like of datetime
        Their dates (a regular 7-day grid).
    horizon : int
        Weeks to forecast after the last date.
    quarter_start, quarter_end : datetime
        The key result's quarter: its planned push rises linearly between them.
    move : float, default 0
        The planned move in the KPI's units, signed (target − baseline; 0 for none).
    earlier : sequence of (start, end)
        Earlier quarters in which the team pushed the metric (each becomes an estimated, kept step).
    max_p : int, default :data:`MAX_P`
        As the ARIMA candidates' (the AIC is computed on their observations).

    Returns
    -------
    PushFit or None
        None when the history is shorter than :data:`PUSH_MIN_WEEKS` or the fit is degenerate.
    """
    y = np.asarray(y, dtype="float64")
    n = len(y)
    if n < PUSH_MIN_WEEKS or horizon < 1:
        return None
    days = pd.DatetimeIndex(dates).as_unit("ns").asi8 // _DAY
    fdays = days[-1] + 7 * np.arange(1, horizon + 1)
    alld = np.concatenate([days, fdays]).astype("float64")

    def ramp(a: Any, b: Any) -> np.ndarray:
        a, b = pd.Timestamp(a).as_unit("ns").value // _DAY, pd.Timestamp(b).as_unit("ns").value // _DAY
        return np.clip((alld - a) / max(b - a, 1), 0.0, 1.0)

    cols = [np.ones(len(alld)), (alld - days[0]) / 365.25, *_yearly_terms(alld).T]
    for a, b in earlier:
        r = ramp(a, b)
        if r[:n].max() > 0 and r[:n].min() < 1:  # the push happened inside the history
            cols.append(r)
    X = np.column_stack(cols)
    push = float(move) * ramp(quarter_start, quarter_end)
    Xh, z = X[:n], y - push[:n]
    xtx_inv = np.linalg.pinv(Xh.T @ Xh)
    beta = xtx_inv @ (Xh.T @ z)
    r = z - Xh @ beta
    den = float(r[:-1] @ r[:-1])
    if den <= 1e-300:
        return None
    phi = float(np.clip(r[1:] @ r[:-1] / den, -0.98, 0.98))
    e = r[1:] - phi * r[:-1]
    P = _max_p(n, max_p)
    ew = e[P:]  # innovations of y_t, t = P+1..n-1: the ARIMA candidates' observations
    nw = len(ew)
    ssr_w = max(float(ew @ ew), 1e-300)
    k = int(np.linalg.matrix_rank(Xh)) + 1
    llf = -(nw / 2) * (math.log(2 * math.pi) + math.log(ssr_w / nw) + 1)
    return PushFit(beta, xtx_inv, phi, float(e @ e), n, -2 * llf + 2 * (k + 1), X[n:], push[n:], float(r[-1]),
                   X[n - 1])


def _rng(seed: int, *keys: Any) -> np.random.Generator:
    """A generator seeded by the user's seed and a stable key (so results don't depend on batch order)."""
    words = [int(seed)] + [zlib.crc32(str(k).encode("utf-8")) for k in keys]
    return np.random.default_rng(words)


def _check_paths(n_paths: Any) -> int:
    if isinstance(n_paths, bool) or not isinstance(n_paths, (int, np.integer)) or n_paths < 100:
        raise ValueError(f"n_paths must be an integer of at least 100 (1000 or more for stable p_hit), "
                         f"got {n_paths!r}.")
    return int(n_paths)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    return int(seed)


def forecast_series(values: Any, *, horizon: int, levels: bool = True, n_paths: int = N_PATHS,
                    seed: int = 0, engine: str = "fast") -> SeriesForecast:
    """Forecast one equally spaced series ``horizon`` steps ahead with the module's engine.

    Parameters
    ----------
    values : array-like of float
        The history, oldest first; interior missing values are interpolated linearly, leading and
        trailing ones dropped.
    horizon : int
        Steps ahead (at least 1).
    levels : bool, default True
        Allow mean-reverting ARIMA(p,0,0) models (as :func:`forecast_kpis`); False: integrated
        models only (as :func:`forecast_key_results`).
    n_paths : int, default :data:`N_PATHS`
    seed : int, default 0
    engine : {'fast', 'statsmodels'}
        As in :func:`select_model`.

    Returns
    -------
    SeriesForecast
        method (e.g. ``'ARIMA(1,1,0) with drift'``), note (why a fallback was used), n_obs,
        paths, quantiles (step, forecast, lower_80, upper_80, lower_95, upper_95), fit.
    """
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"horizon must be a positive integer (steps ahead), got {horizon!r}.")
    n_paths, seed = _check_paths(n_paths), _check_seed(seed)
    y = _clean(np.asarray(values, dtype="float64"))
    paths, method, note, fit, _ = _forecast_array(y, int(horizon), levels=levels, n_paths=n_paths,
                                                  rng=_rng(seed, "series"), engine=engine)
    return SeriesForecast(method, note, len(y), paths, _quantile_frame(paths), fit)


def _clean(y: np.ndarray) -> np.ndarray:
    """Drop leading/trailing NaN, interpolate interior ones linearly."""
    ok = np.flatnonzero(~np.isnan(y))
    if len(ok) == 0:
        return np.empty(0)
    y = y[ok[0]: ok[-1] + 1]
    bad = np.isnan(y)
    if bad.any():
        idx = np.arange(len(y))
        y = y.copy()
        y[bad] = np.interp(idx[bad], idx[~bad], y[~bad])
    return y


# =============================================================================================
# Key results
# =============================================================================================
def _resolve(ds: Any, quarter: Any, as_of: Any) -> tuple[Quarter, pd.Timestamp]:
    """Check the arguments (:meth:`Dataset.resolve`); return the quarter and the effective as-of date."""
    check_dataset(ds)
    return ds.resolve(quarter, as_of, as_of_required=True)


def _weekly_kpis(ds: Dataset, pairs: set[tuple[str, str]], as_of: pd.Timestamp) -> dict[tuple[str, str], pd.Series]:
    """Weekly KPI series (period_start → value) from the values dated up to as_of, for the pairs asked.

    A last week that is not over at ``as_of`` (its Sunday is later) and holds fewer values than the
    series' usual week (daily data: fewer than the median count) is dropped: a partial week of a
    ``sum`` KPI would look like a drop, of a ``mean`` one like noise.
    """
    if not pairs:
        return {}
    teams = {t for t, _ in pairs}
    metrics = {m for _, m in pairs}
    w = resample_kpis(ds, "W", teams=teams, metrics=metrics, end=as_of)
    out = {}
    for (t, m), g in w.groupby(["team_id", "metric"], sort=False):
        if (t, m) not in pairs:
            continue
        n = g["n_obs"].to_numpy()
        starts = pd.DatetimeIndex(g["period_start"])
        if len(g) and starts[-1] + pd.Timedelta(days=6) > as_of and n[-1] < np.median(n):
            g, starts = g.iloc[:-1], starts[:-1]
        out[(t, m)] = pd.Series(g["value"].to_numpy(), index=starts)
    return out


def _to_grid(s: pd.Series, step: int = 7) -> tuple[np.ndarray, pd.DatetimeIndex, int]:
    """A series on a regular ``step``-day grid ending at its last date; (values, dates, n_filled).

    Each value goes to the grid step it falls in (check-ins need not be on the grid's weekday; of two
    in one step the later counts); missing steps inside are interpolated linearly.
    """
    y, last, filled = _grid(s.index.to_numpy(dtype="datetime64[D]").astype("int64"), s.to_numpy(dtype="float64"),
                            step)
    if last is None:
        return np.empty(0), pd.DatetimeIndex([]), 0
    n = len(y)
    dates = pd.DatetimeIndex((last - step * np.arange(n - 1, -1, -1)).astype("datetime64[D]")).astype("datetime64[ns]")
    return y, dates, filled


def _grid(days: np.ndarray, v: np.ndarray, step: int) -> tuple[np.ndarray, int | None, int]:
    """:func:`_to_grid` on day numbers: (values, last day, n_filled); last day None when no value."""
    ok = ~np.isnan(v)
    if not ok.any():
        return np.empty(0), None, 0
    days = days[ok]
    v = v[ok]
    order = np.argsort(days, kind="stable")
    days, v = days[order], v[order]
    last = days[-1]
    pos = (days - last) // step  # 0 for the last step, negative before (floor division keeps steps whole)
    pos = pos - pos[0]
    n = int(pos[-1]) + 1
    y = np.full(n, np.nan)
    y[pos] = v  # later values of the same step overwrite earlier ones
    filled = int(np.isnan(y).sum())
    return _clean(y), int(last), filled


@dataclass(frozen=True)
class _Drivers:
    """Leading metrics (and their lags in weeks) to use for each lagging metric."""

    by_metric: dict[str, list[tuple[str, int]]]
    source: str = ""


def _drivers_from_table(table: pd.DataFrame | None) -> _Drivers:
    if table is None or table.empty:
        return _Drivers({})
    t = table.loc[(table["verdict"] == "leads") & (table["team_id"] == "*")]
    out: dict[str, list[tuple[str, int]]] = {}
    for r in t.itertuples(index=False):
        if pd.notna(r.lag) and int(r.lag) >= 1:
            out.setdefault(str(r.lagging), []).append((str(r.leading), int(r.lag)))
    return _Drivers(out)


def _find_drivers(ds_cut: Dataset) -> _Drivers:
    """The lead-lag analysis on the data up to as_of (pooled over teams): pairs with verdict ``leads``."""

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = lead_lag(ds_cut, freq="W")
    except ValueError:
        return _Drivers({})
    return _drivers_from_table(res.table)


@dataclass(frozen=True)
class CheckinMapping:
    """How a key result's check-ins relate to its KPI: ``check-in = a + b · KPI + e``, ``e ~ N(0, s²)``.

    The KPI value a check-in is compared with is the weekly KPI of the week (Monday to Sunday) that
    contains the check-in's date. Fitted on the key result's own check-ins in the quarter up to
    ``as_of`` that fall in a week with a KPI value (``n`` pairs):

    * ``identity``: every check-in equals its week's KPI (to 1e-9 relative), or no pair yet; when
      at least half of them do, also identity, with ``s`` the root mean square of the differences;
    * ``offset``: 1–3 pairs, or a slope that is not positive: ``b = 1``, ``a`` the mean difference,
      ``s`` the differences' standard deviation (0 with one pair);
    * ``linear``: 4 or more pairs: ordinary least squares of the check-ins on the KPI, ``s`` the
      residual standard deviation (n − 2 degrees of freedom);
    * ``unrelated``: 4 or more pairs but the KPI does not explain the check-ins (slope not positive,
      or R² below :data:`MIN_MAPPING_R2`): the key result is then forecast from its check-ins alone.

    ``lag`` (weeks): when the check-ins do not quote their own week's KPI but every one (or at least
    half, and more than quote their own week) quotes the *previous* week's, the team reports one week
    late: ``identity`` with ``lag = 1``, and each check-in to come is the KPI of the week before its date.
    """

    kind: str = "identity"
    a: float = 0.0
    b: float = 1.0
    s: float = 0.0
    n: int = 0
    lag: int = 0

    @property
    def label(self) -> str:
        if self.kind == "identity" and self.lag:
            late = "each check-in quotes the previous week's KPI"
            return f"identity, one week late ({late}" + (f"; sd {self.s:.3g})" if self.s > 0 else ")")
        if self.kind == "identity":
            if self.s > 0:
                return f"identity (sd {self.s:.3g}: some of the {self.n} check-ins differ from the KPI)"
            return "identity" if self.n else "identity (no check-in to compare yet)"
        if self.kind == "unrelated":
            return f"unrelated (the KPI does not explain the check-ins; {self.n} check-ins)"
        if self.kind == "offset":
            return f"offset {self.a:+.4g} (sd {self.s:.3g}, {self.n} check-ins)"
        return f"linear {self.a:.4g} + {self.b:.4g}·KPI (sd {self.s:.3g}, {self.n} check-ins)"

    def apply(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = self.a + self.b * x
        if self.s > 0:
            out = out + self.s * rng.standard_normal(np.shape(x))
        return out


def _week_values(grid_dates: pd.DatetimeIndex, grid_values: np.ndarray, dates: pd.DatetimeIndex) -> np.ndarray:
    """The weekly grid value of the 7-day step that contains each date (NaN outside the grid)."""
    if len(grid_dates) == 0 or len(dates) == 0:
        return np.full(len(dates), np.nan)
    g = grid_dates.asi8
    d = pd.DatetimeIndex(dates).asi8
    idx = np.searchsorted(g, d, side="right") - 1
    ok = (idx >= 0) & (d - g[np.clip(idx, 0, None)] < 7 * 86_400_000_000_000)
    out = np.full(len(d), np.nan)
    out[ok] = grid_values[idx[ok]]
    return out


def fit_checkin_mapping(kpi_dates: Any, kpi_values: Any, checkin_dates: Any, checkin_values: Any) -> CheckinMapping:
    """Fit the map from a weekly KPI to a key result's check-ins (see :class:`CheckinMapping`).

    Parameters
    ----------
    kpi_dates, kpi_values : array-like
        The weekly KPI on a regular 7-day grid (dates are the first day of each week).
    checkin_dates, checkin_values : array-like
        The key result's check-ins.

    Returns
    -------
    CheckinMapping
    """
    kd = pd.DatetimeIndex(kpi_dates)
    x = _week_values(kd, np.asarray(kpi_values, dtype="float64"), pd.DatetimeIndex(checkin_dates))
    y = np.asarray(checkin_values, dtype="float64")
    ok = ~np.isnan(x) & ~np.isnan(y)
    x, y = x[ok], y[ok]
    n = int(len(x))
    if n == 0:
        return CheckinMapping()
    diff = y - x
    scale = max(float(np.max(np.abs(y))), 1.0)
    same = np.abs(diff) <= 1e-9 * scale
    if same.all():
        return CheckinMapping("identity", n=n)
    if same.mean() >= 0.5:  # the check-ins quote the KPI, now and then with another value
        return CheckinMapping("identity", s=float(np.sqrt(np.mean(diff ** 2))), n=n)
    # one week late: the check-ins quote the previous week's KPI
    xl = _week_values(kd, np.asarray(kpi_values, dtype="float64"),
                      pd.DatetimeIndex(checkin_dates) - pd.Timedelta(days=7))
    yl = np.asarray(checkin_values, dtype="float64")
    okl = ~np.isnan(xl) & ~np.isnan(yl)
    dl = yl[okl] - xl[okl]
    same_l = np.abs(dl) <= 1e-9 * max(float(np.max(np.abs(yl[okl]))) if okl.any() else 1.0, 1.0)
    if okl.any() and same_l.mean() >= 0.5 and same_l.sum() > same.sum():
        s_l = 0.0 if same_l.all() else float(np.sqrt(np.mean(dl ** 2)))
        return CheckinMapping("identity", s=s_l, n=int(okl.sum()), lag=1)
    if n >= 4:
        b, a = np.polyfit(x, y, 1) if np.ptp(x) > 1e-12 * scale else (0.0, float(y.mean()))
        r = y - (a + b * x)
        yc = y - y.mean()
        r2 = 1 - float(r @ r) / float(yc @ yc) if yc @ yc > 0 else 0.0
        if b <= 0 or r2 < MIN_MAPPING_R2:
            return CheckinMapping("unrelated", float(a), float(b), float(np.sqrt(r @ r / (n - 2))), n)
        return CheckinMapping("linear", float(a), float(b), float(np.sqrt(r @ r / (n - 2))), n)
    s = float(diff.std(ddof=1)) if n >= 2 else 0.0
    return CheckinMapping("offset", float(diff.mean()), 1.0, s, n)


def _cadence(dates: pd.DatetimeIndex) -> int | None:
    """The key result's check-in cadence in days: the median gap between its distinct check-in days."""
    days = np.unique(pd.DatetimeIndex(dates).asi8 // 86_400_000_000_000)
    if len(days) < 2:
        return None
    return max(1, int(round(float(np.median(np.diff(days))))))


def _future_checkins(last: pd.Timestamp | None, as_of: pd.Timestamp, end: pd.Timestamp,
                     cadence: int) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Check-in dates still to come in the quarter on the cadence (after as_of, up to the quarter's end),
    and their step numbers counted from ``last`` (from as_of when there is no check-in yet)."""
    start = (as_of if last is None else last).value // _DAY
    steps = np.arange(1, (end.value // _DAY - start) // cadence + 1)
    days = start + steps * cadence
    keep = days > as_of.value // _DAY
    return pd.DatetimeIndex((days[keep] * _DAY).astype("datetime64[ns]")), steps[keep]


@dataclass
class _KRCase:
    """Everything one KR's forecast needs (built from data up to as_of only)."""

    row: dict
    y: np.ndarray
    dates: pd.DatetimeIndex
    history: str
    filled: int
    past_checkins: np.ndarray
    checkin_dates: pd.DatetimeIndex
    last_checkin: pd.Timestamp | None
    cadence: int = 7
    cadence_note: str = ""
    mapping: CheckinMapping | None = None
    exog: np.ndarray | None = None
    exog_names: tuple[str, ...] = ()
    exog_future: np.ndarray | None = None
    driver_label: str = ""
    q_end: pd.Timestamp | None = None
    earlier_pushes: tuple = ()


def _future_dates(last: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    if last is None or pd.isna(last) or last >= end:
        return pd.DatetimeIndex([])
    return pd.date_range(last + pd.Timedelta(days=7), end, freq="7D")


def _meets(direction: str, values: np.ndarray, target: float) -> np.ndarray:
    """Whether values reach the target as the score reads it (increase/maintain_at_least: at least)."""
    tol = _EPS * max(1.0, abs(target))
    if direction in ("increase", "maintain_at_least"):
        return values >= target - tol
    return values <= target + tol


def _kr_frame(ds: Dataset, q: Quarter, as_of: pd.Timestamp) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc = score_key_results(ds, q, as_of=as_of)
    sc["expectation"] = np.where(sc["direction"].isin(_MAINTAIN),
                                 sc["objective_kind"].map(EXPECTATION).astype("float64"), 1.0)
    sc.loc[sc["direction"] == "milestone", "expectation"] = np.nan
    return sc


def _hit(sc: pd.DataFrame) -> pd.Series:
    """The outcome the score reports, from a score table at the quarter's end: 1 hit, 0 missed, NaN unscored.

    Increase, decrease and milestone: the final score is 1 (the last check-in reaches the target);
    maintain: the last check-in meets the line (the status is ``on track``).
    """
    maintain = sc["direction"].isin(_MAINTAIN)
    hit = np.where(maintain, sc["status"] == "on track", sc["score"] >= 1 - _EPS).astype("float64")
    return pd.Series(hit, index=sc.index).where(sc["score"].notna())


def _attach_quarter_trend(case: _KRCase, q: Quarter, n_paths: int) -> None:
    """The weeks of the quarter so far as a regressor (0 before the quarter's start, then 1, 2, …).

    In the integrated models its difference is 1 inside the quarter and 0 before: a change of the
    KPI's weekly drift since the quarter started (the team's push on its key result). AIC decides
    whether it stays, as for drivers; the future continues the count to the quarter's end. Not
    added when drivers are (the candidates take the regressors all together or not at all).
    """
    inq = np.asarray(case.dates >= q.start)
    if inq.sum() < QUARTER_TREND_MIN_WEEKS:
        return
    x = np.cumsum(inq).astype("float64")
    H = len(_future_dates(case.dates[-1], q.end))
    xf = np.broadcast_to((x[-1] + np.arange(1, H + 1))[None, :, None], (n_paths, H, 1))
    if case.exog is None:
        case.exog, case.exog_future, case.exog_names = x[:, None], np.array(xf), ("quarter trend",)
        case.driver_label = "quarter trend"
    else:
        case.exog = np.column_stack([case.exog, x])
        case.exog_future = np.concatenate([case.exog_future, xf], axis=2)
        case.exog_names = case.exog_names + ("quarter trend",)
        case.driver_label = case.driver_label + ", quarter trend"


def _attach_season(case: _KRCase, q: Quarter, n_paths: int) -> None:
    """Yearly Fourier terms (sine and cosine of the week's angle in the year) as regressors, for
    histories of at least :data:`SEASONAL_MIN_WEEKS` weeks; AIC decides whether they stay."""
    def terms(dates: pd.DatetimeIndex) -> np.ndarray:
        t = 2 * np.pi * (dates.asi8 / 86_400_000_000_000) / 365.25
        return np.column_stack([np.sin(t), np.cos(t)])

    x = terms(case.dates)
    fut = _future_dates(case.dates[-1], q.end)
    xf = np.broadcast_to(terms(fut)[None, :, :], (n_paths, len(fut), 2))
    names = ("season (sin)", "season (cos)")
    if case.exog is None:
        case.exog, case.exog_future, case.exog_names = x, np.array(xf), names
        case.driver_label = "season"
    else:
        case.exog = np.column_stack([case.exog, x])
        case.exog_future = np.concatenate([case.exog_future, xf], axis=2)
        case.exog_names = case.exog_names + names
        case.driver_label = case.driver_label + ", season"


def _build_cases(ds: Dataset, q: Quarter, as_of: pd.Timestamp, sc: pd.DataFrame,
                 drivers: _Drivers | None, n_paths: int, seed: int, engine: str = "fast",
                 quarter_trend: bool = True, seasonal: bool = False) -> list[_KRCase]:
    """History of every forecastable KR: the team's weekly KPI when the KR names a metric, else its check-ins."""
    weekly = infer_freq(ds) == "W" if len(ds.kpis) else False
    need = sc["direction"].isin(_MOVING + _MAINTAIN) & (sc["status"] != "unmeasurable")
    pairs = set()
    if weekly:
        for t, m in zip(sc.loc[need, "team_id"], sc.loc[need, "metric"]):
            if isinstance(m, str):
                pairs.add((t, m))
                if drivers is not None:
                    for lead, _ in drivers.by_metric.get(m, []):
                        pairs.add((t, lead))
    kpi = _weekly_kpis(ds, pairs, as_of)
    pushes = _earlier_pushes(ds, q) if pairs else {}
    ci = ds.checkins
    ci = ci.loc[ci["kr_id"].isin(set(sc["kr_id"])) & (ci["date"] >= q.start) & (ci["date"] <= as_of)]
    ci = ci.assign(_r=np.arange(len(ci))).sort_values(["kr_id", "date", "_r"])
    ci_by = {k: g for k, g in ci.groupby("kr_id", sort=False)}
    cases = []
    for row in sc.to_dict("records"):
        g = ci_by.get(row["kr_id"])
        past = g["value"].to_numpy(dtype="float64") if g is not None else np.empty(0)
        ci_dates = pd.DatetimeIndex(g["date"]) if g is not None else pd.DatetimeIndex([])
        last_ci = ci_dates[-1] if len(ci_dates) else None
        cad = _cadence(ci_dates)
        cad_note = "" if cad is not None else "check-in cadence assumed weekly (fewer than 2 check-ins)"
        cad = cad or 7
        m = row["metric"]
        series, history, step = None, "", 7
        mapping = None
        if isinstance(m, str) and (row["team_id"], m) in kpi and len(kpi[(row["team_id"], m)]) >= MIN_SHORT_OBS:
            series, history = kpi[(row["team_id"], m)], f"kpi:{m}"
            mapping = fit_checkin_mapping(series.index, series.to_numpy(dtype="float64"), ci_dates, past)
            if mapping.kind == "unrelated":
                series, history = None, ""
        if series is None and len(past):
            series, history, step = pd.Series(past, index=ci_dates), "checkins", cad
        if series is None:
            y, dates, filled = np.empty(0), pd.DatetimeIndex([]), 0
        else:
            y, dates, filled = _to_grid(series, step)
        case = _KRCase(row, y, dates, history, filled, past, ci_dates, last_ci, cad, cad_note, q_end=q.end)
        if mapping is not None and mapping.kind == "unrelated":
            case.cadence_note = "; ".join(x for x in (cad_note, mapping.label) if x)
        if history.startswith("kpi:"):
            case.mapping = mapping
            case.earlier_pushes = pushes.get((row["team_id"], m), ())
            if drivers is not None and len(y) >= MIN_MODEL_OBS:
                _attach_drivers(case, drivers.by_metric.get(m, []), kpi, q, n_paths, seed, engine)
            if quarter_trend and case.exog is None and len(case.y) >= MIN_MODEL_OBS:
                _attach_quarter_trend(case, q, n_paths)
            if seasonal and len(case.y) >= SEASONAL_MIN_WEEKS:
                _attach_season(case, q, n_paths)
        cases.append(case)
    return cases


def _earlier_pushes(ds: Dataset, q: Quarter) -> dict[tuple[str, str], tuple]:
    """(team, metric) → the (start, end) of each quarter before ``q`` in which the team had an increase or
    decrease key result on the metric (the planned-push model's earlier pushes)."""
    kr = ds.key_results_in()
    kr = kr.loc[kr["direction"].isin(_MOVING) & kr["metric"].notna(), ["team_id", "metric", "quarter"]]
    kr = kr.drop_duplicates()
    spans = {lab: ds.quarter(lab) for lab in kr["quarter"].unique()}
    out: dict[tuple[str, str], list] = {}
    for t, m, lab in kr.itertuples(index=False):
        x = spans[lab]
        if x.end < q.start:
            out.setdefault((t, m), []).append((x.start, x.end))
    return {k: tuple(sorted(v)) for k, v in out.items()}


def _push_model(case: _KRCase, q: Quarter, H: int) -> PushFit | None:
    """The planned-push candidate of a key result on a weekly KPI history (:func:`fit_push_model`), or None."""
    row = case.row
    if len(case.y) < PUSH_MIN_WEEKS or case.mapping is None or case.mapping.kind == "unrelated":
        return None
    move = 0.0
    if row["direction"] in _MOVING:
        b, t = row.get("baseline"), row.get("target")
        if b is None or t is None or pd.isna(b) or pd.isna(t):
            return None
        slope = case.mapping.b if case.mapping.kind == "linear" else 1.0
        move = (float(t) - float(b)) / slope
    return fit_push_model(case.y, case.dates, horizon=H, quarter_start=q.start, quarter_end=q.end, move=move,
                          earlier=case.earlier_pushes)


def _attach_drivers(case: _KRCase, leads: list[tuple[str, int]], kpi: dict, q: Quarter, n_paths: int,
                    seed: int, engine: str = "fast") -> None:
    """Lagged leading KPIs as regressors: x_t = lead_{t - lag}; beyond the data, simulated from lead's own model."""
    if not leads:
        return
    team = case.row["team_id"]
    fut = _future_dates(case.dates[-1], q.end)
    H = len(fut)
    cols, fcols, names = [], [], []
    start = 0
    for lead, lag in leads[:2]:
        s = kpi.get((team, lead))
        if s is None or len(s) < MIN_MODEL_OBS:
            continue
        ly, ldates, _ = _to_grid(s)
        lser = pd.Series(ly, index=ldates)
        # x at date t is lead at t - lag weeks
        need_dates = case.dates - pd.Timedelta(weeks=lag)
        x_hist = lser.reindex(need_dates).to_numpy()
        ok = np.flatnonzero(~np.isnan(x_hist))
        if len(ok) < MIN_MODEL_OBS:
            continue
        # dates needed in the future: fut - lag; known up to the lead's last date, simulated after
        need_f = fut - pd.Timedelta(weeks=lag)
        lf_dates = _future_dates(ldates[-1], need_f.max()) if H else pd.DatetimeIndex([])
        lpaths = np.empty((n_paths, 0))
        if len(lf_dates):
            lpaths = _forecast_array(ly, len(lf_dates), levels=True, n_paths=n_paths,
                                     rng=_rng(seed, team, lead, "driver"), engine=engine)[0]
        xf = np.empty((n_paths, H))
        for h, dt in enumerate(need_f):
            if dt <= ldates[-1]:
                v = lser.get(dt, np.nan)
                if np.isnan(v):
                    v = float(np.interp(dt.value, ldates.asi8, ly))
                xf[:, h] = v
            else:
                k = int(round((dt - ldates[-1]).days / 7)) - 1
                xf[:, h] = lpaths[:, min(max(k, 0), lpaths.shape[1] - 1)]
        start = max(start, int(ok[0]))
        x_hist = pd.Series(x_hist).interpolate(limit_direction="both").to_numpy()
        cols.append(x_hist)
        fcols.append(xf)
        names.append(f"{lead} (lag {lag})")
    if not cols:
        return
    # keep only the part of the history where every driver is observed
    case.y = case.y[start:]
    case.dates = case.dates[start:]
    case.exog = np.column_stack(cols)[start:]
    case.exog_future = np.stack(fcols, axis=2)
    case.exog_names = tuple(names)
    case.driver_label = ", ".join(names)


def _final_row(row: dict, out: dict, hit: float) -> dict:
    """The row of a key result once its quarter is over: the observed outcome, no forecast."""
    cur = row.get("current")
    out.update(final=True, p_model=hit, p_hit=hit, calibration="final (quarter over)",
               outcome=None if np.isnan(hit) else ("hit" if hit == 1 else "missed"),
               method="final (quarter over)", forecast=cur, forecast_date=row.get("last_checkin_date"),
               lower_80=cur, upper_80=cur, lower_95=cur, upper_95=cur, horizon=0.0, n_future_checkins=0)
    if row["direction"] in _MAINTAIN:
        out["expected_score"] = row.get("score")
    if np.isnan(hit):
        out["note"] = "no score at the quarter's end (no check-in in the quarter, or unmeasurable)"
    return out


def _forecast_case(case: _KRCase, q: Quarter, as_of: pd.Timestamp, n_paths: int,
                   seed: int, engine: str = "fast") -> tuple[dict, np.ndarray, pd.DatetimeIndex, np.ndarray,
                                                              pd.DatetimeIndex]:
    """One KR's output row, its simulated check-in paths (n_paths × check-ins to come) and their dates,
    and the simulated paths of its history series (KPI weeks or check-in steps) with their dates."""
    row = case.row
    out = {c: row.get(c) for c in ("quarter", "team_id", "objective_id", "kr_id", "title", "direction", "metric",
                                    "unit", "baseline", "target", "expectation", "current")}
    out.update(as_of=as_of, forecast_date=pd.NaT, horizon=np.nan, forecast=np.nan, lower_80=np.nan,
               upper_80=np.nan, lower_95=np.nan, upper_95=np.nan, p_hit=np.nan, p_model=np.nan,
               expected_score=np.nan, final=False, outcome=None, calibration=None, pace_status=row.get("status"),
               checkin_cadence=float(case.cadence), n_future_checkins=0, checkin_mapping=None,
               history=case.history or None, n_obs=len(case.y), drivers=None, note=None, method=None,
               model_weight=np.nan)
    none = (np.empty((n_paths, 0)), pd.DatetimeIndex([]), np.empty((n_paths, 0)), pd.DatetimeIndex([]))
    d = row["direction"]
    q_end = case.q_end if case.q_end is not None else q.end
    if as_of >= q_end:
        return (_final_row(row, out, float(row["_hit"])), *none)
    if d == "milestone":
        done = pd.notna(row["current"]) and row["current"] >= 1 - _EPS
        out.update(method="done (milestone)" if done else "milestone (not forecast)", p_hit=1.0 if done else np.nan,
                   p_model=1.0 if done else np.nan,
                   note=None if done else "milestones are not forecast: progress on them is not a time series")
        return (out, *none)
    if row["status"] == "unmeasurable":
        out.update(method="unmeasurable", note="no target, no baseline, or target equal to baseline")
        return (out, *none)
    y = case.y
    if len(y) == 0:
        out.update(method="no data", note="no KPI history and no check-in up to as_of")
        return (out, *none)
    kpi = case.history.startswith("kpi:")
    step = 7 if kpi else case.cadence
    last = case.dates[-1]
    # no check-in yet: future check-ins on the KPI's weekly dates (the phase of the cadence is unknown)
    anchor = case.last_checkin if case.last_checkin is not None else (last if kpi else None)
    fut_ci, ci_steps = _future_checkins(anchor, as_of, q_end, case.cadence)
    notes = [case.cadence_note] if case.cadence_note else []
    if case.filled:
        notes.append(f"{case.filled} missing {'week' if kpi else 'check-in'}(s) interpolated")
    rng = _rng(seed, row["kr_id"])
    # steps of the history's grid to simulate: up to the step holding the last check-in to come
    if kpi:
        H = int((fut_ci.asi8[-1] - last.value) // (7 * _DAY)) if len(fut_ci) else 0
    else:
        H = int(ci_steps[-1]) if len(fut_ci) else 0
    H = max(H, 0)
    method, note, fit = "observed (no check-in to come)", "", None
    if H == 0:
        paths = np.empty((n_paths, 0))
        if len(fut_ci):
            method = "observed (the KPI of the last check-in's week is known)"
    else:
        push = _push_model(case, q, H) if kpi else None
        paths, method, note, fit, exog_weight = _forecast_array(
            y, H, levels=False, n_paths=n_paths, rng=rng, exog=_cut_exog(case.exog, None),
            exog_names=case.exog_names, exog_future=_cut_exog(case.exog_future, H), engine=engine, push=push)
        if fit is not None:
            out["model_weight"] = fit.weight
        if fit is not None and case.exog_names and not (push is not None and method == push.name):
            real = [x for x in case.exog_names if x != "quarter trend" and not x.startswith("season")]
            if fit.exog_names:
                if real:
                    out["drivers"] = ", ".join(real)
                method = f"{method} + {case.driver_label}"
            notes.append(f"{'drivers' if real else 'regressors'} {case.driver_label}: {exog_weight:.0%} of the "
                         "AIC weight")
    grid_dates = pd.DatetimeIndex(((last.value // _DAY + np.arange(1, H + 1) * step) * _DAY).astype("datetime64[ns]"))
    if note:
        notes.insert(0, note)
    out["method"] = method
    out["note"] = "; ".join(notes) or None
    if method in ("insufficient data", "no data"):
        return (out, *none)
    # the check-ins to come: KPI of their week through the mapping, or the check-in series itself
    if len(fut_ci) == 0:
        ci_paths = np.empty((n_paths, 0))
    elif kpi:
        mp = case.mapping or CheckinMapping()
        quoted = fut_ci - pd.Timedelta(weeks=mp.lag)  # the week whose KPI each check-in quotes
        j = (quoted.asi8 - last.value) // (7 * _DAY)
        x = np.empty((n_paths, len(fut_ci)))
        for i, k in enumerate(j):
            if k >= 1:
                x[:, i] = paths[:, k - 1]
            else:  # the check-in's week is already observed
                v = _week_values(case.dates, y, quoted[i: i + 1])[0]
                x[:, i] = y[-1] if np.isnan(v) else v
        ci_paths = mp.apply(x, _rng(seed, row["kr_id"], "mapping"))
        out["checkin_mapping"] = mp.label
        if len(case.past_checkins) >= MIN_SHORT_OBS and case.last_checkin is not None:
            # half of the paths from the check-ins' own trend in the quarter (model averaging)
            yc = _grid(case.checkin_dates.asi8 // _DAY, case.past_checkins, case.cadence)[0]
            cpaths, cmethod = _forecast_array(yc, int(ci_steps[-1]), levels=False, n_paths=n_paths,
                                              rng=_rng(seed, row["kr_id"], "checkins"), engine=engine)[:2]
            if cmethod not in ("insufficient data", "no data"):
                half = n_paths // 2
                ci_paths = np.concatenate([ci_paths[:n_paths - half], cpaths[:half, ci_steps - 1]])
                notes.append(f"half of the paths from the check-ins' own trend ({cmethod})")
                out["note"] = "; ".join(notes)
    else:
        ci_paths = paths[:, ci_steps - 1]
        out["checkin_mapping"] = "none (the history is the check-ins)"
    out["n_future_checkins"] = len(fut_ci)
    tgt = row["target"]
    past = case.past_checkins
    if len(fut_ci):
        final = ci_paths[:, -1]
        qs = np.quantile(final, _Q)
        out.update(forecast_date=fut_ci[-1], forecast=qs[2], lower_80=qs[1], upper_80=qs[3], lower_95=qs[0],
                   upper_95=qs[4], horizon=(fut_ci[-1] - last).days / 7)
        p = float(np.mean(_meets(d, final, tgt)))
        if d in _MAINTAIN:
            n_met = np.sum(_meets(d, past, tgt)) + np.sum(_meets(d, ci_paths, tgt), axis=1)
            out["expected_score"] = float(np.mean(n_met / (len(past) + ci_paths.shape[1])))
    else:
        cur = row["current"]
        out.update(forecast_date=case.last_checkin, forecast=cur, lower_80=cur, upper_80=cur, lower_95=cur,
                   upper_95=cur, horizon=0.0)
        p = np.nan if pd.isna(cur) else float(_meets(d, np.array([cur]), tgt)[0])
        if d in _MAINTAIN and len(past):
            out["expected_score"] = float(np.mean(_meets(d, past, tgt)))
        notes.append("no check-in left in the quarter on the key result's cadence: the outcome is the last one's")
        out["note"] = "; ".join(notes)
    out["p_model"] = p
    out["p_hit"] = p
    out["calibration"] = "none"
    return out, ci_paths, fut_ci, paths, grid_dates


def _cut_exog(a: np.ndarray | None, H: int | None) -> np.ndarray | None:
    """Future regressors cut to the H steps simulated (they were built to the quarter's end)."""
    if a is None or H is None:
        return a
    if a.shape[1] >= H:
        return a[:, :H]
    pad = np.repeat(a[:, -1:], H - a.shape[1], axis=1)
    return np.concatenate([a, pad], axis=1)


def _finish(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=KR_FORECAST_COLUMNS)
    for c in ("baseline", "target", "expectation", "current", "horizon", "forecast", "lower_80", "upper_80",
              "lower_95", "upper_95", "p_hit", "p_model", "expected_score", "model_weight", "checkin_cadence"):
        df[c] = df[c].astype("float64")
    for c in ("as_of", "forecast_date"):
        df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")
    df["n_obs"] = df["n_obs"].astype("int64")
    df["n_future_checkins"] = df["n_future_checkins"].astype("int64")
    df["final"] = df["final"].astype("bool")
    for c in ("quarter", "team_id", "objective_id", "kr_id", "title", "direction", "metric", "unit", "method",
              "history", "drivers", "note", "outcome", "calibration", "pace_status", "checkin_mapping"):
        df[c] = df[c].astype("str")
    return df.sort_values(["team_id", "objective_id", "kr_id"], kind="stable").reset_index(drop=True)


def _warn_unforecast(df: pd.DataFrame, q: Quarter) -> None:
    bad = df.loc[df["method"].isin(["no data", "insufficient data"])]
    if len(bad):
        ids = bad["kr_id"].tolist()
        shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
        warnings.warn(f"{len(ids)} key result(s) of {q.label} could not be forecast (no KPI history and fewer than "
                      f"{MIN_SHORT_OBS} check-ins up to as_of): {shown}; their p_hit is NaN.",
                      ForecastWarning, stacklevel=3)


# ---------------------------------------------------------------------------------------------
# Calibration from the organisation's own history
# ---------------------------------------------------------------------------------------------
def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype="float64"), CALIBRATION_CLIP, 1 - CALIBRATION_CLIP)
    return np.log(p / (1 - p))


def _cal_features(p_model: Any, pace_status: Any, direction: Any, confidence: Any = None, team_record: Any = None,
                  history: Any = None) -> np.ndarray:
    """The calibration's design matrix (see :class:`Calibration`); None for an input: unknown for every row."""
    st = np.asarray(pace_status, dtype=object)
    n = len(st)
    conf = np.full(n, np.nan) if confidence is None else np.asarray(confidence, dtype="float64")
    team = np.zeros(n) if team_record is None else np.nan_to_num(np.asarray(team_record, dtype="float64"))
    kpi = (np.zeros(n, dtype=bool) if history is None
           else pd.Series(np.asarray(history, dtype=object)).astype("str").str.startswith("kpi:").to_numpy())
    known = np.isfinite(conf)
    return np.column_stack([
        np.ones(n), _logit(p_model), (st == "on track").astype("float64"), (st == "at risk").astype("float64"),
        np.isin(np.asarray(direction, dtype=object), _MAINTAIN).astype("float64"),
        np.where(known, (conf - 5.0) / 5.0, 0.0), (~known).astype("float64"), team, kpi.astype("float64"),
    ])


def _team_record(outcomes: Sequence[pd.DataFrame], teams: Any) -> np.ndarray:
    """Each team's hit rate in earlier quarters as a logit difference from the organisation's rate.

    ``outcomes`` holds, per earlier quarter, the increase, decrease and maintain key results' ``team_id``
    and ``hit``. The team's rate is shrunk towards the organisation's rate ``r`` by
    :data:`TEAM_RECORD_PRIOR` pseudo key results, ``(hits + m r) / (n + m)``; the feature is its logit
    minus ``logit(r)`` (0 for a team without earlier key results, or with no earlier quarter).
    """
    dev = _team_record_map(outcomes)
    return pd.Series(np.asarray(teams, dtype=object)).map(dev).fillna(0.0).to_numpy(dtype="float64")


def _team_record_map(outcomes: Sequence[pd.DataFrame]) -> pd.Series:
    """:func:`_team_record` of every team with earlier key results, by team_id."""
    h = pd.concat(list(outcomes), ignore_index=True) if len(outcomes) else pd.DataFrame(columns=["team_id", "hit"])
    h = h.loc[h["hit"].notna()]
    if h.empty:
        return pd.Series(dtype="float64")
    rate = float(h["hit"].astype("float64").mean())
    g = h.assign(hit=h["hit"].astype("float64")).groupby("team_id")["hit"].agg(["sum", "count"])
    shrunk = (g["sum"] + TEAM_RECORD_PRIOR * rate) / (g["count"] + TEAM_RECORD_PRIOR)
    return pd.Series(_logit(shrunk.to_numpy()) - _logit(np.array([rate]))[0], index=g.index, dtype="float64")


def _quarter_outcomes(cut: Dataset, x: Quarter, memo: dict | None = None) -> pd.DataFrame:
    """team_id, kr_id and hit of a finished quarter's increase, decrease and maintain key results."""
    if memo is not None and x.label in memo:
        return memo[x.label]
    sc = _kr_frame(cut, x, x.end)
    out = pd.DataFrame({"team_id": sc["team_id"].to_numpy(dtype=object), "kr_id": sc["kr_id"].to_numpy(dtype=object),
                        "hit": _hit(sc).to_numpy(dtype="float64"), "final_value": sc["current"].to_numpy(dtype="float64")})
    out = out.loc[sc["direction"].isin(_MOVING + _MAINTAIN).to_numpy()].reset_index(drop=True)
    if memo is not None:
        memo[x.label] = out
    return out


def _team_record_for(cut: Dataset, q: Quarter, teams: Any, memo: dict | None = None) -> np.ndarray:
    """:func:`_team_record` from the :data:`CALIBRATION_QUARTERS` quarters that ended before q starts."""
    return _team_record([_quarter_outcomes(cut, x, memo) for x in _earlier_quarters(cut, q)], teams)


@dataclass(frozen=True, eq=False)
class Calibration:
    """A recalibration of the model's probability fitted on earlier quarters (:func:`fit_calibration`).

    ``p_hit = w / (1 + exp(-x'β)) + (1 - w) p_model`` with ``x`` = (1, logit of the model's probability clipped to
    [0.01, 0.99], on track, at risk, maintain key result, ``(confidence - 5) / 5`` of the latest
    check-in up to the as-of date (0 when none), no confidence given, the team's record (its hit
    rate in the quarters before, :func:`_team_record`), forecast from a KPI history) and ``β`` a
    logistic regression (statsmodels ``GLM`` binomial, ridge penalty :data:`CALIBRATION_ALPHA`) of
    the outcomes of earlier quarters' key results on their forecasts made at the same point of their
    quarter (each earlier key result's team record from the quarters before *its* quarter). The
    weight ``w`` of the recalibration against the model's own probability is the one of
    :data:`CALIBRATION_WEIGHTS` (0, 0.5, 1) with the lowest Brier score when each earlier quarter
    in turn is predicted by the regression fitted on the others (ties: the largest; 1 with a
    single earlier quarter): the recalibration is kept only as far as it did better than
    ``p_model`` out of sample on the organisation's own history.

    Attributes
    ----------
    params : ndarray or None
        β; None when there was not enough history (then ``apply`` returns the model's probability).
    n : int
        Key results (with a model probability and an outcome) it was fitted on.
    quarters : tuple of str
        The earlier quarters used.
    at : float
        Fraction of the quarter at which the history was forecast.
    label : str
        What the ``calibration`` column says.
    interval_scale : tuple of float or None
        ``(c80, c95)``: the factors by which the 80% and 95% intervals' distances from the median are
        multiplied (split-conformal, :func:`_interval_scale`); None when not fitted.
    interval_n : int
        Key results (with an interval and a final value) the factors were fitted on.
    weight : float
        ``w``: the recalibration's share against the model's probability (leave one quarter out).
    team_records : pandas.Series or None
        The team record (:func:`_team_record`) of every team with key results in the earlier
        quarters, by team_id, for the quarter being forecast (:meth:`team_record_of`); kept so that
        a forecast on one team's slice of the data gets the organisation's figure.
    """

    params: np.ndarray | None
    n: int
    quarters: tuple[str, ...]
    at: float
    label: str
    interval_scale: tuple[float, float] | None = None
    interval_n: int = 0
    weight: float = 1.0
    team_records: pd.Series | None = None

    @property
    def fitted(self) -> bool:
        return self.params is not None

    def apply(self, p_model: Any, pace_status: Any, direction: Any, confidence: Any = None,
              team_record: Any = None, history: Any = None) -> np.ndarray:
        """Calibrated probabilities (the model's probability unchanged when not fitted; NaN stays NaN).

        ``confidence`` (latest check-in's, 0–10; NaN: none), ``team_record`` (:func:`_team_record`) and
        ``history`` (the forecast table's column) default to unknown: no confidence, the organisation's
        rate, not a KPI history.
        """
        p = np.asarray(p_model, dtype="float64")
        if self.params is None or len(p) == 0:
            return p.copy()
        z = _cal_features(p, pace_status, direction, confidence, team_record, history) @ self.params
        pc = self.weight / (1 + np.exp(-z)) + (1 - self.weight) * np.clip(p, 0, 1)
        return np.where(np.isnan(p), np.nan, pc)

    def team_record_of(self, team_ids: Any) -> np.ndarray:
        """The team record of each team (0 for a team without earlier key results, or when not kept)."""
        ids = pd.Series(np.asarray(team_ids, dtype=object))
        if self.team_records is None:
            return np.zeros(len(ids))
        return ids.map(self.team_records).fillna(0.0).to_numpy(dtype="float64")

    def apply_intervals(self, forecast: Any, lower_80: Any, upper_80: Any, lower_95: Any, upper_95: Any
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The intervals with each bound's distance from the median multiplied by its level's factor
        (unchanged when not fitted): (lower_80, upper_80, lower_95, upper_95)."""
        f = np.asarray(forecast, dtype="float64")
        bounds = [np.asarray(b, dtype="float64") for b in (lower_80, upper_80, lower_95, upper_95)]
        if self.interval_scale is None:
            return tuple(b.copy() for b in bounds)
        c80, c95 = self.interval_scale
        return (f - c80 * (f - bounds[0]), f + c80 * (bounds[1] - f),
                f - c95 * (f - bounds[2]), f + c95 * (bounds[3] - f))


def _conformity(final: np.ndarray, forecast: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """How far a final value lies from the median in units of the interval's half on its side (1: on the bound)."""
    above = final >= forecast
    half = np.where(above, upper - forecast, forecast - lower)
    dist = np.abs(final - forecast)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(half > 0, dist / np.where(half > 0, half, 1.0), np.where(dist > 0, np.inf, 0.0))


def _interval_scale(train: pd.DataFrame) -> tuple[tuple[float, float] | None, int]:
    """Split-conformal factors for the 80% and 95% intervals from earlier quarters' forecasts.

    For each earlier key result forecast at the same point of its quarter (with a check-in still to
    come then, and a final value), the score is the final value's distance from the forecast median
    divided by the interval's distance on the same side; the factor of level ``L`` is the
    ``ceil((n + 1) L) / n`` empirical quantile of the scores (Vovk et al. 2005; Lei et al. 2018), so
    that about ``L`` of the final values fall within the rescaled intervals. Fitted with at least
    :data:`MIN_CALIBRATION_KRS` key results; a factor that would be infinite (too many zero-width
    intervals missed) leaves the intervals unchanged.
    """
    need = ["forecast", "lower_80", "upper_80", "lower_95", "upper_95", "final_value"]
    if any(c not in train.columns for c in need):
        return None, 0
    t = train.loc[train[need].notna().all(axis=1) & (train["n_future_checkins"] > 0)]
    n = len(t)
    if n < MIN_CALIBRATION_KRS:
        return None, n
    fv, f = t["final_value"].to_numpy(dtype="float64"), t["forecast"].to_numpy(dtype="float64")
    out = []
    for level, lo, hi in ((0.80, "lower_80", "upper_80"), (0.95, "lower_95", "upper_95")):
        sc = np.sort(_conformity(fv, f, t[lo].to_numpy(dtype="float64"), t[hi].to_numpy(dtype="float64")))
        k = min(int(math.ceil((n + 1) * level)), n) - 1
        out.append(float(sc[k]))
    if not all(np.isfinite(out)) or min(out) <= 0:
        return None, n
    return (out[0], out[1]), n


def _fit_calibration(train: pd.DataFrame, quarters: tuple[str, ...], at: float,
                     team_records: pd.Series | None = None) -> Calibration:
    """Logistic recalibration on rows with p_model, pace_status, direction and hit (see :class:`Calibration`)."""
    t = train.loc[train["p_model"].notna() & train["hit"].notna()]
    n, hits = len(t), int(t["hit"].sum()) if len(t) else 0
    span = f"{quarters[0]}–{quarters[-1]}" if len(quarters) > 1 else (quarters[0] if quarters else "")
    if n < MIN_CALIBRATION_KRS or min(hits, n - hits) < MIN_CALIBRATION_EACH:
        why = (f"none: {n} key results with an outcome in earlier quarters"
               + (f" ({span})" if span else "") + f", {MIN_CALIBRATION_KRS} needed"
               + (f" with at least {MIN_CALIBRATION_EACH} hits and misses" if n >= MIN_CALIBRATION_KRS else ""))
        return Calibration(None, n, quarters, at, why, team_records=team_records)
    params = _fit_logistic(t)
    weight, loqo = 1.0, ""
    qcol = t["quarter"].astype("str") if "quarter" in t.columns else pd.Series("", index=t.index)
    if qcol.nunique() >= 2:
        # leave one earlier quarter out: how much of the recalibration to trust (p_model for the rest)
        sse = np.zeros(len(CALIBRATION_WEIGHTS))
        for lab in qcol.unique():
            fit, held = t.loc[qcol != lab], t.loc[qcol == lab]
            h = int(fit["hit"].sum())
            if len(fit) < MIN_CALIBRATION_KRS or min(h, len(fit) - h) < MIN_CALIBRATION_EACH:
                continue
            pc = _logistic_p(_fit_logistic(fit), held)
            pm, y = held["p_model"].to_numpy(dtype="float64"), held["hit"].to_numpy(dtype="float64")
            sse += [float(np.sum((w * pc + (1 - w) * pm - y) ** 2)) for w in CALIBRATION_WEIGHTS]
        if sse.any():
            # the largest weight among the best (ties: trust the recalibration)
            best = sse.min()
            weight = max(w for w, e in zip(CALIBRATION_WEIGHTS, sse) if e <= best + 1e-12)
            loqo = f"; weight {weight:g} (leave one quarter out)"
    scale, n_int = _interval_scale(train)
    label = f"logistic on {n} key results of {span}{loqo}"
    if scale is not None:
        label += f"; intervals ×{scale[0]:.2f} (80%), ×{scale[1]:.2f} (95%)"
    return Calibration(params, n, quarters, at, label, scale, n_int, weight, team_records)


def _fit_logistic(t: pd.DataFrame) -> np.ndarray:
    """β of the calibration's ridge logistic regression on training rows (see :class:`Calibration`)."""
    # lazy import: statsmodels adds ~1 s to every command that does not fit a model
    from statsmodels.genmod import families
    from statsmodels.genmod.generalized_linear_model import GLM

    X = _cal_features(t["p_model"], t["pace_status"], t["direction"], t["_confidence"], t["_team_record"],
                      t["history"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = GLM(t["hit"].to_numpy(dtype="float64"), X, family=families.Binomial()).fit_regularized(
            alpha=CALIBRATION_ALPHA, L1_wt=0.0)
    return np.asarray(res.params, dtype="float64")


def _logistic_p(params: np.ndarray, t: pd.DataFrame) -> np.ndarray:
    z = _cal_features(t["p_model"], t["pace_status"], t["direction"], t["_confidence"], t["_team_record"],
                      t["history"]) @ params
    return 1 / (1 + np.exp(-z))


def _earlier_quarters(ds: Dataset, q: Quarter) -> list[Quarter]:
    """The most recent :data:`CALIBRATION_QUARTERS` quarters with objectives that ended before q starts."""
    out = [ds.quarter(lab) for lab in ds.quarters]
    out = sorted((x for x in out if x.end < q.start), key=lambda x: x.start)
    return out[-CALIBRATION_QUARTERS:]


def _raw_table(cut: Dataset, q: Quarter, ts: pd.Timestamp, drv: _Drivers | None, n_paths: int, seed: int,
               engine: str, kr_ids: set[str] | None = None, seasonal: bool = False) -> pd.DataFrame:
    """Model forecasts (before calibration) of a quarter's KRs from data up to ts (``cut`` known on ts)."""
    sc = _kr_frame(cut, q, ts)
    if kr_ids is not None:
        sc = sc.loc[sc["kr_id"].isin(kr_ids)]
    sc["_hit"] = _hit(sc)
    cases = _build_cases(cut, q, ts, sc, drv, n_paths, seed, engine, seasonal=seasonal)
    out = _finish([_forecast_case(c, q, ts, n_paths, seed, engine)[0] for c in cases])
    conf = pd.Series(sc["confidence"].to_numpy(dtype="float64"), index=sc["kr_id"].to_numpy())
    # private: the calibration's input, dropped from every published table (_PRIVATE_COLUMNS)
    out["_confidence"] = out["kr_id"].map(conf).astype("float64")
    return out


#: Columns of the raw tables that only the calibration reads (never published).
_PRIVATE_COLUMNS = ["_confidence", "_team_record"]

_HISTORY_COLUMNS = ["quarter", "kr_id", "team_id", "direction", "history", "p_model", "pace_status", "_confidence",
                    "_team_record", "hit", "forecast", "lower_80", "upper_80", "lower_95", "upper_95",
                    "n_future_checkins", "final_value"]


def _history(cut: Dataset, q: Quarter, ts: pd.Timestamp, *, with_drivers: bool, drivers: pd.DataFrame | None,
             n_paths: int, seed: int, engine: str, cache: dict | None = None,
             seasonal: bool = False, memo: dict | None = None) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Earlier quarters' KRs forecast at the same point of their quarter as ts, with their outcomes and
    their teams' records from the quarters before their own (``memo``: finished quarters' outcomes)."""
    memo = {} if memo is None else memo
    frac = q.elapsed(ts)
    parts, labels = [], []
    earlier = _earlier_quarters(cut, q)
    ids_by_q = {x.label: cut.key_results_in(x)[["kr_id", "direction"]] for x in earlier}
    ids_by_q = {k: v.loc[v["direction"].isin(_MOVING + _MAINTAIN), "kr_id"] for k, v in ids_by_q.items()}
    total = sum(len(v) for v in ids_by_q.values())
    sample = None
    if total > CALIBRATION_MAX_KRS:
        allids = np.sort(np.concatenate([v.to_numpy(dtype=object) for v in ids_by_q.values()]).astype(str))
        pick = _rng(seed, "calibration", q.label).choice(len(allids), CALIBRATION_MAX_KRS, replace=False)
        sample = set(allids[pick])
    for qh in earlier:
        tsh = _as_of_at(qh, frac)
        key = (qh.label, tsh, with_drivers, n_paths, seed, engine, seasonal)
        raw = None if cache is None else cache.get(key)
        if raw is None:
            ch = cut.known_on(tsh)
            drv = None
            if with_drivers:
                drv = _drivers_from_table(drivers) if drivers is not None else _find_drivers(ch)
            raw = _raw_table(ch, qh, tsh, drv, n_paths, seed, engine, sample, seasonal)
            if cache is not None and sample is None:
                cache[key] = raw
        elif sample is not None:
            raw = raw.loc[raw["kr_id"].isin(sample)]
        end = _quarter_outcomes(cut, qh, memo).set_index("kr_id")
        raw = raw.loc[raw["direction"].isin(_MOVING + _MAINTAIN)]
        raw = raw.assign(hit=raw["kr_id"].map(end["hit"]), final_value=raw["kr_id"].map(end["final_value"]),
                         _team_record=_team_record_for(cut, qh, raw["team_id"], memo))
        parts.append(raw[_HISTORY_COLUMNS])
        labels.append(qh.label)
    if not parts:
        return pd.DataFrame(columns=_HISTORY_COLUMNS), ()
    return pd.concat(parts, ignore_index=True), tuple(labels)


def fit_calibration(ds: Dataset, quarter: "str | Quarter", *, as_of: Any, with_drivers: bool = False,
                    n_paths: int = N_PATHS, seed: int = 0, drivers: pd.DataFrame | None = None,
                    engine: str = "fast", seasonal: bool = False) -> Calibration:
    """The recalibration :func:`forecast_key_results` applies to ``p_hit`` for a quarter at ``as_of``.

    The rule: the earlier quarters (the most recent :data:`CALIBRATION_QUARTERS` with objectives that
    ended before the quarter starts) are forecast at the same point of their own quarter (the same
    elapsed fraction as ``as_of``), each from the data up to that day only, and their increase,
    decrease and maintain key results' outcomes (known by ``as_of``) are regressed on the model's
    probability, the pace status, the latest check-in's confidence and the team's record in the
    quarters before (:class:`Calibration`), and the regression's weight against the model's own
    probability is chosen by leaving one earlier quarter out; the same forecasts' intervals and final
    values give the factors that rescale the intervals (split conformal, ``interval_scale``). At least
    :data:`MIN_CALIBRATION_KRS` key results with a probability and an outcome, and
    :data:`MIN_CALIBRATION_EACH` of each outcome, are needed; otherwise the returned calibration is not
    fitted and says why. Beyond
    :data:`CALIBRATION_MAX_KRS` earlier key results, a seeded random sample of that many is used.
    The quarter being forecast never enters its own calibration.

    Parameters
    ----------
    ds, quarter, as_of, with_drivers, n_paths, seed, drivers, engine, seasonal
        As in :func:`forecast_key_results`.

    Returns
    -------
    Calibration
    """
    q, ts = _resolve(ds, quarter, as_of)
    n_paths, seed = _check_paths(n_paths), _check_seed(seed)
    return _calibration_for(ds.known_on(ts), q, ts, with_drivers=with_drivers, drivers=drivers, n_paths=n_paths,
                            seed=seed, engine=engine, seasonal=bool(seasonal))


def _calibration_for(cut: Dataset, q: Quarter, ts: pd.Timestamp, *, with_drivers: bool, drivers, n_paths: int,
                     seed: int, engine: str, cache: dict | None = None, seasonal: bool = False,
                     memo: dict | None = None) -> Calibration:
    hist, labels = _history(cut, q, ts, with_drivers=with_drivers, drivers=drivers, n_paths=n_paths, seed=seed,
                            engine=engine, cache=cache, seasonal=seasonal, memo=memo)
    records = _team_record_map([_quarter_outcomes(cut, x, memo) for x in _earlier_quarters(cut, q)])
    return _fit_calibration(hist, labels, q.elapsed(ts), records)


def _calibrate(df: pd.DataFrame, cal: Calibration) -> pd.DataFrame:
    """Apply a calibration to a raw table: p_hit recalibrated where the outcome is still open.

    The table's private columns ``_confidence`` and ``_team_record`` feed the calibration (unknown
    when absent); they are dropped from the result."""
    open_ = (~df["final"]) & df["direction"].isin(_MOVING + _MAINTAIN) & (df["n_future_checkins"] > 0) \
        & df["p_model"].notna()
    df = df.copy()
    if open_.any():
        g = df.loc[open_]
        df.loc[open_, "p_hit"] = cal.apply(g["p_model"], g["pace_status"], g["direction"],
                                           g["_confidence"] if "_confidence" in g else None,
                                           g["_team_record"] if "_team_record" in g else None, g["history"])
        df.loc[open_, "calibration"] = cal.label
        bounds = cal.apply_intervals(g["forecast"], g["lower_80"], g["upper_80"], g["lower_95"], g["upper_95"])
        for c, b in zip(("lower_80", "upper_80", "lower_95", "upper_95"), bounds):
            df.loc[open_, c] = b
    return df.drop(columns=_PRIVATE_COLUMNS, errors="ignore")


def _forecast_table(ds: Dataset, q: Quarter, ts: pd.Timestamp, *, with_drivers: bool, drivers, n_paths: int,
                    seed: int, engine: str, calibrate: bool, cache: dict | None = None,
                    seasonal: bool = False) -> pd.DataFrame:
    cut = ds.known_on(ts)
    key = (q.label, ts, with_drivers, n_paths, seed, engine, seasonal)
    raw = None if cache is None else cache.get(key)
    if raw is None:
        drv = None
        if with_drivers:
            drv = _drivers_from_table(drivers) if drivers is not None else _find_drivers(cut)
        raw = _raw_table(cut, q, ts, drv, n_paths, seed, engine, seasonal=seasonal)
        if cache is not None:
            cache[key] = raw
    if ts >= q.end:
        return raw.drop(columns=_PRIVATE_COLUMNS, errors="ignore")
    if not calibrate:
        return raw.assign(calibration=raw["calibration"].where(raw["calibration"] != "none", "off")).drop(
            columns=_PRIVATE_COLUMNS, errors="ignore")
    cal = _calibration_for(cut, q, ts, with_drivers=with_drivers, drivers=drivers, n_paths=n_paths, seed=seed,
                           engine=engine, cache=cache, seasonal=seasonal)
    return _calibrate(raw.assign(_team_record=cal.team_record_of(raw["team_id"])), cal)


def forecast_key_results(
    ds: Dataset,
    quarter: "str | Quarter",
    *,
    as_of: Any,
    with_drivers: bool = False,
    n_paths: int = N_PATHS,
    seed: int = 0,
    drivers: pd.DataFrame | None = None,
    engine: str = "fast",
    calibrate: bool = True,
    seasonal: bool = False,
) -> pd.DataFrame:
    """Forecast every key result of a quarter to its last check-in, with ``p_hit``.

    Only data dated on or before ``as_of`` are used (KPIs, check-ins, the outcomes of earlier
    quarters and, with drivers, the lead-lag analysis), so the forecast is what could have been said
    on that day.

    **The outcome** is the one the score reports at the quarter's end. Increase, decrease and
    milestone key results: the quarter's last check-in reaches the target (final score 1). Maintain
    key results: the quarter's last check-in meets the line (status ``on track``); ``expected_score``
    is the expected final score (share of the quarter's check-ins meeting the line).

    **The check-in path.** Future check-ins are dated on the key result's own cadence (the median gap
    between its check-ins in the quarter; weekly with fewer than two) from its last check-in to the
    quarter's end. When the key result names a metric the team measures weekly, the history is the
    team's weekly KPI (complete weeks only), forecast week by week (integrated ARIMA models,
    :func:`forecast_series`), and each future check-in is its week's KPI value mapped to the
    check-in scale (:class:`CheckinMapping`, fitted on the key result's past check-ins); with three
    or more check-ins in the quarter, half of the paths come instead from the check-ins' own trend
    (model averaging: the KPI's long history and the quarter's check-ins each miss what the other
    sees). Otherwise the history is the key result's check-ins, forecast one cadence step at a time.

    **p_hit** is the share of simulated check-in paths reaching the outcome (``p_model``), then
    recalibrated on the organisation's earlier quarters when they hold enough key results
    (:func:`fit_calibration`; ``calibration`` says which): a logistic regression on ``p_model``, the
    pace status, the latest check-in's confidence and the team's earlier hit rate, weighted against
    ``p_model`` by how it did on the earlier quarters out of sample; the intervals are rescaled on the same
    history (split-conformal factors). Milestones are not forecast (``p_hit`` NaN)
    unless already done (1). **Once the quarter is over** (``as_of`` on or after its last day),
    ``p_hit`` is the observed outcome, 1 or 0, ``final`` is True and ``outcome`` says ``hit`` or
    ``missed``.

    Parameters
    ----------
    ds : Dataset
    quarter : str or Quarter
        A quarter with objectives.
    as_of : date-like
        The day of the forecast (a date after the quarter's end is treated as the end).
    with_drivers : bool, default False
        Add the lagged values of the leading KPIs that the lead-lag analysis (pooled over teams,
        verdict ``leads``, run on the data up to ``as_of``) found for the KR's metric as regressors;
        AIC decides whether they stay. Beyond the lag, the leading KPI is itself forecast.
    n_paths : int, default :data:`N_PATHS`
        Simulated paths per key result.
    seed : int, default 0
        The same seed gives the same output; each KR has its own stream (seed, kr_id).
    drivers : DataFrame, optional
        A lead-lag table (:attr:`okr_analysis.leadlag.LeadLagResult.table`) to use instead of running
        the analysis; it must not have seen data after ``as_of`` if the forecast is to be honest.
    engine : {'fast', 'statsmodels'}, default 'fast'
        How the candidate models are fitted (:func:`select_model`).
    calibrate : bool, default True
        Recalibrate ``p_hit`` on earlier quarters when they hold enough key results. False: ``p_hit``
        is the model's probability (``calibration`` reads ``off``).
    seasonal : bool, default False
        Also try yearly seasonal terms (a sine and a cosine of the day of the year, as regressors of
        the KPI models; AIC decides per key result) on KPI histories of two years or more. Off by
        default: the backtests in ``benchmarks/results/forecast-calibration.md`` found them no better.

    Returns
    -------
    pandas.DataFrame
        One row per key result, sorted by team_id, objective_id, kr_id, with columns:

        quarter, team_id, objective_id, kr_id, title, direction, metric, unit : str
            The KR (metric and unit may be missing).
        baseline, target : float
        expectation : float
            1.0, or for maintain KRs the objective's expectation (1.0 committed, 0.7 aspirational):
            what ``expected_score`` is read against; NaN for milestones.
        as_of : datetime64
            The effective as-of date.
        current : float
            The latest check-in up to ``as_of`` (as in scoring); NaN when none.
        forecast_date : datetime64
            Date of the quarter's last check-in on the cadence: the date forecast (the last check-in's
            date when none is to come or the quarter is over).
        horizon : float
            Weeks from the history's last value to ``forecast_date``.
        forecast : float
            Median of the simulated values of the last check-in.
        lower_80, upper_80, lower_95, upper_95 : float
            80% and 95% intervals of it: the path quantiles 10/90 and 2.5/97.5%, with each bound's
            distance from the median multiplied by the split-conformal factor fitted on earlier
            quarters when they hold enough key results (:func:`fit_calibration`; the ``calibration``
            column gives the factors), so that they cover about what they claim.
        p_hit : float
            Probability of the outcome (see above): calibrated, or the model's when not; after the
            quarter, the outcome (1 hit, 0 missed; NaN when unscored).
        p_model : float
            The model's probability before calibration.
        expected_score : float
            Maintain KRs: the expected final score (share of check-ins meeting the line); NaN otherwise.
        final : bool
            True once the quarter is over (``p_hit`` is then the observed outcome).
        outcome : str
            ``hit`` or ``missed`` when ``final``; missing otherwise (and for unscored KRs).
        calibration : str
            ``logistic on N key results of Q1–Q2; weight 0.5 (leave one quarter out); intervals ×0.71
            (80%), ×0.80 (95%)`` (the weight part with two or more earlier quarters), ``none: …``
            (why not), ``off``, or ``final (quarter over)``; missing where there is no probability to
            calibrate.
        pace_status : str
            The scoring module's status at ``as_of`` (on track, at risk, off track, no data, unmeasurable).
        checkin_cadence : float
            Days between the KR's check-ins (median gap; 7 when fewer than two).
        n_future_checkins : int
            Check-ins still to come in the quarter on that cadence.
        checkin_mapping : str
            How the KPI is mapped to check-ins (:class:`CheckinMapping`), or ``none`` for check-in histories.
        method : str
            The model: ``ARIMA(p,1,0)`` / ``ARIMA(p,1,0) with drift`` (AIC-selected; ``+ driver (lag k)``
            with drivers), ``random walk with drift (short series)``, ``constant (no variation)``,
            ``observed (…)``, ``done (milestone)``, ``milestone (not forecast)``, ``unmeasurable``,
            ``insufficient data``, ``no data`` or ``final (quarter over)``.
        model_weight : float
            Akaike weight of the named model among the candidates; NaN for fallbacks.
        history : str
            ``kpi:<metric>`` (the team's weekly KPI) or ``checkins``; missing when none.
        n_obs : int
            Values in the history (weeks, or check-in steps).
        drivers : str
            Leading KPIs used as regressors (with their lags); missing when none.
        note : str
            Why a fallback was used, interpolated weeks, drivers dropped by AIC; missing when nothing to say.

    Warns
    -----
    ForecastWarning
        When some KRs cannot be forecast (no history); their rows have NaN.
    """
    q, ts = _resolve(ds, quarter, as_of)
    n_paths, seed = _check_paths(n_paths), _check_seed(seed)
    if engine not in ("fast", "statsmodels"):
        raise ValueError(f"engine must be 'fast' or 'statsmodels', got {engine!r}.")
    df = _forecast_table(ds, q, ts, with_drivers=with_drivers, drivers=drivers, n_paths=n_paths, seed=seed,
                         engine=engine, calibrate=bool(calibrate), seasonal=bool(seasonal))
    _warn_unforecast(df, q)
    return df


# =============================================================================================
# One key result, with a plot
# =============================================================================================
@dataclass(frozen=True, eq=False)
class KRForecast:
    """The forecast of one key result (:func:`forecast_key_result`).

    Attributes
    ----------
    kr_id, title, team_id, direction, unit, metric : str
    quarter : Quarter
    as_of : Timestamp
    baseline, target, expectation, current : float
    history : pandas.Series
        The history used (dates → values), up to ``as_of``: weekly KPI or the check-ins on their cadence.
    checkins : pandas.Series
        The KR's check-ins in the quarter up to ``as_of``.
    table : pandas.DataFrame
        The check-in path: by check-in still to come, date, forecast (median), lower_80, upper_80,
        lower_95, upper_95 (its last row is the forecast of the quarter's last check-in; the
        intervals rescaled by the calibration's factors, as in :func:`forecast_key_results`).
    history_table : pandas.DataFrame
        The same for the history series by future step (KPI weeks, or check-in steps).
    p_hit, p_model, expected_score : float
    final : bool
        The quarter is over: ``p_hit`` is the outcome.
    outcome : str or None
        ``hit`` / ``missed`` when final.
    method, note : str
    row : pandas.Series
        The KR's row of :func:`forecast_key_results`.
    paths : ndarray
        The simulated check-in paths (n_paths × check-ins to come).
    """

    kr_id: str
    title: str
    team_id: str
    direction: str
    unit: Any
    metric: Any
    quarter: Quarter
    as_of: pd.Timestamp
    baseline: float
    target: float
    expectation: float
    current: float
    history: pd.Series
    checkins: pd.Series
    table: pd.DataFrame
    p_hit: float
    method: str
    note: Any
    row: pd.Series = field(repr=False)
    paths: np.ndarray = field(repr=False)
    history_table: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    p_model: float = float("nan")
    expected_score: float = float("nan")
    final: bool = False
    outcome: Any = None

    def summary(self) -> pd.DataFrame:
        """The one-row table of :func:`forecast_key_results` for this KR."""
        return self.row.to_frame().T.reset_index(drop=True)

    def __repr__(self) -> str:
        if self.final:
            p = f"final: {self.outcome}" if isinstance(self.outcome, str) else "final: not scored"
        else:
            p = "p_hit " + ("n/a" if pd.isna(self.p_hit) else f"{self.p_hit:.0%}")
        return f"<KRForecast {self.kr_id} ({self.quarter.label}, as of {self.as_of.date()}): {p}, {self.method}>"

    def plot(self, ax=None, *, p_hit: float | None = None, outcome: str | None = None, label: str | None = None,
             unit: str | None = None):
        """Check-ins against the target; while the quarter is open, the forecast check-in path (80% and 95%).

        The title (also the chart's alt text, :func:`okr_analysis.style.alt_text`) states the message in words:
        "Keep engagement at 64% or above: 76.5% against a target of 64% — 97% likely by 30 Sep 2026", or
        after the quarter "… — final: hit"; no model names. While the quarter is open the fan (80% and 95%
        intervals) and the median path run from the last check-in to the quarter's last check-in; after it
        only the check-in path and the target are drawn. The KPI history (when the forecast is made from it)
        is drawn thin and grey; the expected-pace line runs from the baseline at the quarter's start to the
        target at its end (increase/decrease KRs). A milestone is drawn as a progress bar
        (:func:`okr_analysis.style.draw_milestone`). The legend sits below the axes. Returns the axes; never
        shows or saves the figure.

        Parameters
        ----------
        ax : matplotlib Axes, optional
        p_hit : float, optional
            The probability to state (e.g. the calibrated one of the organisation's forecast table);
            default: this forecast's ``p_hit``.
        outcome : {'hit', 'missed'}, optional
            The outcome to state after the quarter; default: this forecast's ``outcome``.
        label : str, optional
            What the values measure, in words, for the value axis (default: the unit alone).
        unit : str, optional
            The unit for the value axis and the title (default: the key result's unit).
        """
        # lazy import: pyplot adds ~0.5 s to every command that draws nothing (the style module with it)
        import matplotlib.dates as mdates
        import matplotlib.pyplot as plt

        from .style import (BAND_COLOURS, FAN, NEUTRAL, REFERENCE, TEAM, draw_milestone, fit_title, legend_outside,
                            set_alt_text)

        ax = plt.gca() if ax is None else ax
        q = self.quarter
        unit = unit if isinstance(unit, str) else (self.unit if isinstance(self.unit, str) else "")
        title = str(self.title)
        if self.direction == "milestone":
            draw_milestone(ax, self.checkins.index, self.checkins.to_numpy(), as_of=self.as_of, title=title,
                           final=self.final)
            return ax

        def num(v: float) -> str:
            return chart_value(v, unit)

        def day(d) -> str:
            d = pd.Timestamp(d)
            return f"{d.day} {d:%b %Y}"

        hist = self.history
        if len(hist):
            lo = q.start - pd.Timedelta(weeks=26)
            h = hist[hist.index >= lo]
            ax.plot(h.index, h.to_numpy(), color=NEUTRAL, lw=1.0, label="history")
        if len(self.checkins):
            ax.plot(self.checkins.index, self.checkins.to_numpy(), "o-", color=TEAM, ms=3.5, lw=1.4,
                    label="check-ins")
        t = self.table
        if len(t) and not self.final:
            if len(self.checkins):
                anchor_x, anchor_y = [self.checkins.index[-1]], [self.checkins.iloc[-1]]
            else:
                anchor_x, anchor_y = [], []
            x = list(anchor_x) + list(t["date"])

            def ext(col):
                return np.r_[anchor_y, t[col].to_numpy()]

            ax.fill_between(x, ext("lower_95"), ext("upper_95"), color=FAN, alpha=0.12, lw=0, label="95% interval")
            ax.fill_between(x, ext("lower_80"), ext("upper_80"), color=FAN, alpha=0.25, lw=0, label="80% interval")
            ax.plot(x, ext("forecast"), color=FAN, lw=1.4, ls="--", label="forecast check-ins (median)")
        if pd.notna(self.target):
            ax.axhline(self.target, color=BAND_COLOURS["green"], lw=1.2, label="target")
        if self.direction in _MOVING and pd.notna(self.baseline) and pd.notna(self.target):
            ax.plot([q.start, q.end], [self.baseline, self.target], color=NEUTRAL, lw=1.0, ls=":",
                    label="expected pace")
        if not self.final:
            ax.axvline(self.as_of, color=REFERENCE, lw=1, ls="-.", label="as of")
        ax.axvspan(q.start, q.end, color="#F2F2F2", zorder=0)
        current = float(self.checkins.iloc[-1]) if len(self.checkins) else self.current
        rest = f"{num(current)} against a target of {num(self.target)}"
        if self.final:
            result = outcome if outcome in ("hit", "missed") else self.outcome
            rest += f" — final: {result}" if isinstance(result, str) else " — final: not scored"
            alt = f"{title}: {rest}"
        else:
            p = self.p_hit if p_hit is None else p_hit
            status = self.row.get("pace_status") if isinstance(self.row, pd.Series) else None
            when = day(q.end)
            alt = f"{title}: {rest}" + (f", {status}" if isinstance(status, str) else "")
            alt += "; no forecast" if pd.isna(p) else f"; {p:.0%} likely to reach it by {when}"
            rest += " — no forecast" if pd.isna(p) else f" — {p:.0%} likely by {when}"
        fit_title(ax, title, rest)
        ax.set_xlabel("")
        ax.set_ylabel((f"{label} ({unit})" if unit else label) if label else (unit or "value"))
        locator = mdates.AutoDateLocator(minticks=3, maxticks=5)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        legend_outside(ax)
        set_alt_text(ax, alt)
        return ax


def forecast_key_result(ds: Dataset, kr_id: str, *, as_of: Any, with_drivers: bool = False,
                        n_paths: int = N_PATHS, seed: int = 0, drivers: pd.DataFrame | None = None,
                        engine: str = "fast", calibration: "Calibration | bool" = True,
                        seasonal: bool = False) -> KRForecast:
    """Forecast one key result (as :func:`forecast_key_results`) and keep its paths for a plot.

    Parameters
    ----------
    ds : Dataset
    kr_id : str
        A key result id; its quarter is its objective's.
    as_of, with_drivers, n_paths, seed, drivers, engine, seasonal
        As in :func:`forecast_key_results`.
    calibration : Calibration or bool, default True
        True: fitted on ``ds``'s earlier quarters as :func:`forecast_key_results` does (the same
        ``p_hit`` as its table; it forecasts the history, so it costs more than the key result itself);
        a :class:`Calibration` (:func:`fit_calibration`) to reuse one; False: the model's probability.
        A report working on one team's slice of the data must pass the organisation's calibration
        (or read ``p_hit`` from the organisation's forecast table).

    Returns
    -------
    KRForecast
        With ``.plot(ax=None)``, ``.table`` (the check-in path) and ``.summary()``.
    """
    check_dataset(ds)
    if not isinstance(calibration, (bool, Calibration)):
        raise TypeError(f"calibration must be True, False or a Calibration (from fit_calibration), "
                        f"got {type(calibration).__name__}.")
    krs = ds.key_results_in()
    hit = krs.loc[krs["kr_id"] == kr_id]
    if hit.empty:
        some = ", ".join(sorted(krs["kr_id"].astype(str))[:5])
        raise ValueError(f"kr_id {kr_id!r} is not in the key_results table (with an objective); ids include: {some}.")
    q, ts = _resolve(ds, hit["quarter"].iloc[0], as_of)
    n_paths, seed = _check_paths(n_paths), _check_seed(seed)
    drv = None
    if with_drivers:
        drv = _drivers_from_table(drivers) if drivers is not None else _find_drivers(ds.known_on(ts))
    # only the KR's team is needed from here on (same numbers, much less to score and resample)
    cut = ds.filter_teams([hit["team_id"].iloc[0]]).known_on(ts)
    sc = _kr_frame(cut, q, ts)
    sc = sc.loc[sc["kr_id"] == kr_id].copy()
    sc["_hit"] = _hit(sc)
    case = _build_cases(cut, q, ts, sc, drv, n_paths, seed, engine, seasonal=bool(seasonal))[0]
    row, paths, fut, hpaths, hdates = _forecast_case(case, q, ts, n_paths, seed, engine)
    r = _finish([row])
    if ts < q.end:
        if calibration is True:
            calibration = _calibration_for(ds.known_on(ts), q, ts, with_drivers=with_drivers, drivers=drivers,
                                           n_paths=n_paths, seed=seed, engine=engine, seasonal=bool(seasonal))
        if isinstance(calibration, Calibration):
            r = r.assign(_confidence=sc["confidence"].to_numpy(dtype="float64"),
                         _team_record=calibration.team_record_of(r["team_id"]))
            r = _calibrate(r, calibration)
        else:
            r = r.assign(calibration=r["calibration"].where(r["calibration"] != "none", "off"))
    r = r.iloc[0]
    qf = _quantile_frame(paths)
    if isinstance(calibration, Calibration) and ts < q.end and len(qf):
        bounds = calibration.apply_intervals(qf["forecast"], qf["lower_80"], qf["upper_80"], qf["lower_95"],
                                             qf["upper_95"])
        for c, b in zip(("lower_80", "upper_80", "lower_95", "upper_95"), bounds):
            qf[c] = b
    qf.insert(0, "date", fut[: len(qf)])
    qf = qf.drop(columns="step")
    hq = _quantile_frame(hpaths)
    hq.insert(0, "date", hdates[: len(hq)])
    hq = hq.drop(columns="step")
    ci = cut.checkins
    ci = ci.loc[(ci["kr_id"] == kr_id) & (ci["date"] >= q.start)].sort_values("date")
    return KRForecast(
        kr_id=kr_id, title=str(r["title"]), team_id=str(r["team_id"]), direction=str(r["direction"]),
        unit=r["unit"], metric=r["metric"], quarter=q, as_of=ts, baseline=float(r["baseline"]),
        target=float(r["target"]), expectation=float(r["expectation"]), current=float(r["current"]),
        history=pd.Series(case.y, index=case.dates, name="value"),
        checkins=pd.Series(ci["value"].to_numpy(), index=pd.DatetimeIndex(ci["date"]), name="checkin"),
        table=qf, p_hit=float(r["p_hit"]), method=str(r["method"]), note=r["note"], row=r, paths=paths,
        history_table=hq, p_model=float(r["p_model"]), expected_score=float(r["expected_score"]),
        final=bool(r["final"]), outcome=r["outcome"] if isinstance(r["outcome"], str) else None,
    )


# =============================================================================================
# KPI forecasts for the monitoring views
# =============================================================================================
def _step_offset(freq: str) -> pd.DateOffset:
    return {"W": pd.DateOffset(weeks=1), "M": pd.DateOffset(months=1), "Q": pd.DateOffset(months=3)}[freq]


def forecast_kpis(
    ds: Dataset,
    *,
    as_of: Any = None,
    horizon: int | None = None,
    metrics: Iterable[str] | None = None,
    teams: Iterable[str] | None = None,
    n_paths: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Forecast each team's KPIs period by period to the end of the next quarter, with intervals.

    The KPIs are resampled to the data's own frequency (weekly, monthly or quarterly; each metric's
    aggregation) and each (team, metric) series up to ``as_of`` is forecast by the AIC-selected
    model among ARIMA(p,1,0) with or without drift and ARIMA(p,0,0) with a constant
    (:func:`select_model` with ``levels=True``; no key result is assumed to push the metric, so
    mean reversion is allowed). Series shorter than :data:`MIN_MODEL_OBS` use the short-series
    random walk, constant series their constant (see ``method`` and ``note``).

    Parameters
    ----------
    ds : Dataset
    as_of : date-like, optional
        Use the data up to this day; default: the latest KPI date.
    horizon : int, optional
        Periods ahead; default: up to the end of the fiscal quarter after the one containing ``as_of``.
    metrics, teams : iterable of str, optional
        Restrict to these metrics / teams.
    n_paths : int, default 1000
    seed : int, default 0

    Returns
    -------
    pandas.DataFrame
        One row per team, metric and future period, sorted by them, with columns:

        team_id, metric : str
        period_start : datetime64
            First day of the forecast period.
        step : int
            Periods ahead of the last observed one (1, 2, …).
        forecast : float
            Median of the simulated values.
        lower_80, upper_80, lower_95, upper_95 : float
            Central 80% and 95% intervals.
        method : str
            The AIC-best model (e.g. ``ARIMA(2,0,0) with constant``) or the fallback.
        model_weight : float
            Its Akaike weight (share of the simulated paths); NaN for fallbacks.
        n_obs : int
            Periods of history used.
        note : str
            Why a fallback was used; missing otherwise.

    Warns
    -----
    ForecastWarning
        For series with too little history (they get NaN rows).
    """
    check_dataset(ds)
    n_paths, seed = _check_paths(n_paths), _check_seed(seed)
    if ds.kpis.empty:
        raise ValueError("the dataset has no KPI values to forecast.")
    freq = infer_freq(ds)
    if as_of is None:
        ts = ds.kpis["date"].max()
    else:
        try:
            ts = pd.Timestamp(as_of).normalize()
        except (TypeError, ValueError):
            raise ValueError(f"as_of must be a date such as '2026-08-15', got {as_of!r}.") from None
    if horizon is not None and (isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer))
                                or horizon < 1):
        raise ValueError(f"horizon must be a positive number of periods, got {horizon!r}.")
    if metrics is not None:
        metrics = list(metrics)
        unknown = sorted(set(metrics) - set(ds.kpis["metric"]))
        if unknown:
            raise ValueError(f"metrics: {unknown} have no KPI values; available: {sorted(set(ds.kpis['metric']))}.")
    if teams is not None:
        teams = list(teams)
    long = resample_kpis(ds, freq, teams=teams, metrics=metrics, end=ts)
    step = _step_offset(freq)
    next_q = Quarter.containing(ts, fiscal_year_start=ds.fiscal_year_start).next()
    rows = []
    bad = []
    for (team, metric), g in long.groupby(["team_id", "metric"], sort=True):
        s = pd.Series(g["value"].to_numpy(), index=pd.DatetimeIndex(g["period_start"]))
        last = s.index.max()
        full = pd.date_range(s.index.min(), last, freq=step)
        y = _clean(s.reindex(full).to_numpy(dtype="float64"))
        if horizon is None:
            H = 0
            d = last + step
            while d <= next_q.end:
                H += 1
                d = d + step
            H = max(H, 1)
        else:
            H = int(horizon)
        paths, method, note, fit, _ = _forecast_array(y, H, levels=True, n_paths=n_paths,
                                                      rng=_rng(seed, team, metric))
        if method in ("insufficient data", "no data"):
            bad.append(f"{team}/{metric}")
        qf = _quantile_frame(paths) if not np.isnan(paths).all() else pd.DataFrame(
            {"step": np.arange(1, H + 1), **{c: np.nan for c in
                                             ["forecast", "lower_80", "upper_80", "lower_95", "upper_95"]}})
        dates = [last + step * k for k in range(1, H + 1)]
        qf.insert(0, "period_start", pd.DatetimeIndex(dates))
        qf.insert(0, "metric", metric)
        qf.insert(0, "team_id", team)
        qf["method"] = method
        qf["model_weight"] = fit.weight if fit is not None else np.nan
        qf["n_obs"] = len(y)
        qf["note"] = note or None
        rows.append(qf)
    if bad:
        warnings.warn(f"{len(bad)} KPI series have too little history to forecast: {', '.join(bad[:10])}"
                      + (f" and {len(bad) - 10} more" if len(bad) > 10 else "") + "; their rows are NaN.",
                      ForecastWarning, stacklevel=2)
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in KPI_FORECAST_COLUMNS})
    out = pd.concat(rows, ignore_index=True)
    out["step"] = out["step"].astype("int64")
    out["n_obs"] = out["n_obs"].astype("int64")
    out["period_start"] = out["period_start"].astype("datetime64[ns]")
    for c in ("team_id", "metric", "method", "note"):
        out[c] = out[c].astype("str")
    return out[KPI_FORECAST_COLUMNS]



# =============================================================================================
# Backtest
# =============================================================================================
def _as_of_at(q: Quarter, frac: float) -> pd.Timestamp:
    """The first day by whose end at least ``frac`` of the quarter has elapsed."""
    return q.start + pd.Timedelta(days=int(math.ceil(frac * q.days - 1e-9)) - 1)


def _past_quarters(ds: Dataset) -> list[str]:
    """Quarters with objectives whose last full week (Monday to Sunday) the data reach."""
    dates = pd.concat([ds.kpis["date"], ds.checkins["date"]]).dropna()
    if dates.empty:
        return []
    latest = dates.max()
    out = []
    for label in ds.quarters:
        q = ds.quarter(label)
        last_sunday = q.end - pd.Timedelta(days=(q.end.weekday() + 1) % 7)
        if latest >= last_sunday - pd.Timedelta(days=6):
            out.append(label)
    return out


def _brier(p: Any, y: Any) -> float:
    p, y = np.asarray(p, dtype="float64"), np.asarray(y, dtype="float64")
    return float(np.mean((p - y) ** 2)) if len(p) else np.nan


class BrierDecomposition(NamedTuple):
    """Murphy's (1973) decomposition of the Brier score over forecast bins.

    ``brier ≈ reliability - resolution + uncertainty``; the identity is exact when every forecast in
    a bin is the same (a forecaster with a few distinct values, binned by value), otherwise it is off
    by the within-bin variance terms (Stephenson, Coelho and Jolliffe 2008), reported as ``residual``.
    """

    brier: float
    reliability: float
    resolution: float
    uncertainty: float
    residual: float


def _bins(p: np.ndarray, bins: int) -> np.ndarray:
    edges = np.linspace(0, 1, bins + 1)
    return np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)


def brier_decomposition(p: Any, y: Any, *, bins: int = CALIBRATION_BINS) -> BrierDecomposition:
    """Brier score of probabilities ``p`` for 0/1 outcomes ``y`` and its Murphy decomposition.

    Forecasts are grouped into ``bins`` equal-width bins of [0, 1] (a forecaster with at most
    ``bins`` distinct values is grouped by value instead, which makes the identity exact):
    reliability ``Σ n_k (p̄_k - ȳ_k)² / N``, resolution ``Σ n_k (ȳ_k - ȳ)² / N``, uncertainty
    ``ȳ (1 - ȳ)``.
    """
    p, y = np.asarray(p, dtype="float64"), np.asarray(y, dtype="float64")
    if len(p) == 0:
        return BrierDecomposition(*(np.nan,) * 5)
    uniq = np.unique(p)
    idx = np.searchsorted(uniq, p) if len(uniq) <= bins else _bins(p, bins)
    n = np.bincount(idx).astype("float64")
    used = n > 0
    pk = np.bincount(idx, weights=p)[used] / n[used]
    yk = np.bincount(idx, weights=y)[used] / n[used]
    ybar = float(y.mean())
    N = len(p)
    rel = float(np.sum(n[used] * (pk - yk) ** 2) / N)
    res = float(np.sum(n[used] * (yk - ybar) ** 2) / N)
    unc = ybar * (1 - ybar)
    bs = _brier(p, y)
    return BrierDecomposition(bs, rel, res, unc, bs - (rel - res + unc))


def expected_calibration_error(p: Any, y: Any, *, bins: int = CALIBRATION_BINS) -> float:
    """ECE: ``Σ_k (n_k / N) |p̄_k - ȳ_k|`` over ``bins`` equal-width bins of the forecast."""
    p, y = np.asarray(p, dtype="float64"), np.asarray(y, dtype="float64")
    if len(p) == 0:
        return np.nan
    idx = _bins(p, bins)
    n = np.bincount(idx, minlength=bins).astype("float64")
    used = n > 0
    pk = np.bincount(idx, weights=p, minlength=bins)[used] / n[used]
    yk = np.bincount(idx, weights=y, minlength=bins)[used] / n[used]
    return float(np.sum(n[used] * np.abs(pk - yk)) / len(p))


def auc(p: Any, y: Any) -> float:
    """Area under the ROC curve: the Mann–Whitney U of the hits' forecasts against the misses' over
    ``n_hit · n_miss`` (scipy ``mannwhitneyu``; ties count one half). NaN without both outcomes."""
    p, y = np.asarray(p, dtype="float64"), np.asarray(y, dtype="float64")
    pos, neg = p[y == 1], p[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return np.nan
    return float(mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg)))


#: The forecasters the backtest compares (columns of ``predictions``).
FORECASTERS = ("p_hit", "p_model", "pace_calibrated", "pace_rule", "base_rate")


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """Result of :func:`backtest`.

    Attributes
    ----------
    predictions : pandas.DataFrame
        One row per quarter, as-of point and key result (increase, decrease and maintain KRs), with
        :data:`PREDICTION_COLUMNS`:

        - ``quarter`` (str), ``at`` (float: fraction of the quarter), ``as_of`` (datetime64)
        - ``team_id``, ``kr_id``, ``direction``, ``metric``, ``history``, ``method`` (str)
        - ``p_hit`` (float): the forecast as :func:`forecast_key_results` gives it on ``as_of``
          (calibrated on earlier quarters only when they hold enough key results)
        - ``p_model`` (float): the model's probability before calibration
        - ``calibration`` (str): what was applied (as in :func:`forecast_key_results`)
        - ``pace_status`` (str): the scoring module's status at ``as_of``
        - ``pace_rule`` (float): 1 when ``pace_status`` is ``on track``, else 0
        - ``pace_calibrated`` (float): the hit rate of KRs with the same pace status at the same point
          in the *other* backtest quarters (leave one quarter out; the base rate when the status
          does not occur there)
        - ``base_rate`` (float): share of KRs that hit in the other quarters
        - ``hit`` (float): the outcome the score reports at the quarter's end (1 / 0; NaN unscored)
        - ``final_value`` (float): the KR's last check-in of the quarter
        - ``forecast``, ``lower_80``, ``upper_80``, ``lower_95``, ``upper_95`` (float): its forecast
        - ``in_80``, ``in_95`` (boolean): whether the final value fell in the intervals
        - with ``with_drivers=True`` also ``p_hit_drivers``, ``method_drivers``, ``drivers``
    summary : pandas.DataFrame
        One row per ``at`` and one for all points (``at`` = ``'all'``), over the KRs with a ``p_hit``
        and an outcome (:data:`SUMMARY_COLUMNS`): n, hit_rate, the Brier score of each forecaster
        (brier_p_hit, brier_p_model, brier_pace_calibrated, brier_pace_rule, brier_base_rate),
        ratio_vs_pace_calibrated (brier_p_hit / brier_pace_calibrated; the target is ≤ 0.90),
        diff_low / diff_high (95% bootstrap interval by team of brier_p_hit − brier_pace_calibrated),
        ece_p_hit (target ≤ 0.05), auc_p_hit, auc_pace_calibrated, n_calibrated (rows whose p_hit
        was recalibrated), coverage_80, coverage_95 (share of final values inside the published
        intervals, recalibrated on earlier quarters where they hold enough key results).
    scores : pandas.DataFrame
        Long form, one row per ``at`` (and ``'all'``) and forecaster (:data:`SCORE_COLUMNS`): at,
        forecaster, n, brier, reliability, resolution, uncertainty, residual (Murphy's decomposition,
        :func:`brier_decomposition`), auc, ece, brier_low, brier_high (bootstrap by team),
        diff_vs_pace_calibrated, diff_low, diff_high, diff_vs_base_rate, diff_base_low, diff_base_high
        (differences of Brier scores, negative = better than the baseline, with 95% intervals from
        resampling teams with replacement).
    calibration : pandas.DataFrame
        Reliability table per ``at`` (and ``'all'``), forecaster (p_hit, p_model, pace_calibrated) and
        bin of 10 equal-width bins (:data:`CALIBRATION_COLUMNS`): at, forecaster, bin, p_low, p_high,
        n, mean_p, observed_rate.
    options : dict
        quarters, at, n_paths, seed, with_drivers, n_boot, base_rate rule.
    """

    predictions: pd.DataFrame
    summary: pd.DataFrame
    calibration: pd.DataFrame
    scores: pd.DataFrame = field(default_factory=pd.DataFrame)
    options: dict = field(default_factory=dict)

    def write(self, directory: "str | os.PathLike[str]") -> list[Path]:
        """Write predictions.csv, summary.csv, calibration.csv and scores.csv into ``directory`` (created if
        missing)."""
        d = Path(directory)
        if d.exists() and not d.is_dir():
            raise NotADirectoryError(f"{d} exists and is not a folder; give a folder for the backtest tables.")
        d.mkdir(parents=True, exist_ok=True)
        out = []
        for name in ("predictions", "summary", "calibration", "scores"):
            path = d / f"{name}.csv"
            getattr(self, name).to_csv(path, index=False)
            out.append(path)
        return out

    def __repr__(self) -> str:
        s = self.summary
        if s.empty:
            return "<BacktestResult: no key results to score>"
        a = s.loc[s["at"] == "all"].iloc[0]
        return (f"<BacktestResult {len(self.predictions)} predictions, n={int(a['n'])}: Brier p_hit "
                f"{a['brier_p_hit']:.3f}, calibrated pace status {a['brier_pace_calibrated']:.3f}, "
                f"base rate {a['brier_base_rate']:.3f}; ECE {a['ece_p_hit']:.3f}>")

    def plot_reliability(self, ax=None, *, at: str = "all"):
        """Reliability diagram: observed hit rate against the mean forecast per bin, for p_hit and the
        calibrated pace status, at one point (``'all'``: all points pooled). Returns the axes."""
        # lazy import: pyplot adds ~0.5 s to every command that draws nothing
        import matplotlib.pyplot as plt

        ax = plt.gca() if ax is None else ax
        c = self.calibration.loc[(self.calibration["at"] == at) & (self.calibration["n"] > 0)]
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect calibration")
        styles = {"p_hit": ("tab:blue", "o", "P(hit)"),
                  "pace_calibrated": ("tab:orange", "s", "calibrated pace status")}
        for name, (color, marker, label) in styles.items():
            g = c.loc[c["forecaster"] == name]
            if g.empty:
                continue
            ax.scatter(g["mean_p"], g["observed_rate"], s=np.clip(g["n"].to_numpy() * 2, 10, 300), color=color,
                       marker=marker, alpha=0.8, label=f"{label} (size: key results)")
            ax.plot(g["mean_p"], g["observed_rate"], color=color, lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("forecast probability (bin mean)")
        ax.set_ylabel("share of key results that hit")
        a = self.summary.loc[self.summary["at"] == at]
        if len(a):
            a = a.iloc[0]
            ax.set_title(f"P(hit) Brier {a['brier_p_hit']:.3f} vs calibrated pace status "
                         f"{a['brier_pace_calibrated']:.3f}; ECE {a['ece_p_hit']:.3f}", fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
        return ax

    def plot(self, ax=None):
        """The reliability diagram over all points (:meth:`plot_reliability`)."""
        return self.plot_reliability(ax=ax)


def _outcomes(ds: Dataset, q: Quarter) -> pd.DataFrame:
    """The outcome each KR's score reports at the quarter's end (:func:`_hit`) and its last check-in."""
    sc = _kr_frame(ds, q, q.end)
    return pd.DataFrame({"kr_id": sc["kr_id"], "hit": _hit(sc), "final_value": sc["current"]})


def _groups(pred: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    return [(f"{a:.4g}", g) for a, g in pred.groupby("at", sort=True)] + [("all", pred)]


def _boot_by_team(g: pd.DataFrame, cols: Sequence[str], n_boot: int, seed: int) -> dict[str, np.ndarray]:
    """Brier scores of each column over ``n_boot`` resamples of teams (with replacement)."""
    teams, inv = np.unique(g["team_id"].to_numpy(dtype=object).astype(str), return_inverse=True)
    y = g["hit"].to_numpy(dtype="float64")
    T = len(teams)
    rng = np.random.default_rng([seed, 20])
    draws = rng.integers(0, T, size=(n_boot, T))
    counts = np.zeros((n_boot, T))
    np.add.at(counts, (np.repeat(np.arange(n_boot), T), draws.ravel()), 1.0)
    n_by = np.bincount(inv, minlength=T).astype("float64")
    out = {}
    for c in cols:
        se = (g[c].to_numpy(dtype="float64") - y) ** 2
        s_by = np.bincount(inv, weights=se, minlength=T)
        out[c] = (counts @ s_by) / np.maximum(counts @ n_by, 1)
    return out


def _score_tables(pred: pd.DataFrame, n_boot: int, seed: int, with_drivers: bool
                  ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rows, summ, cal = [], [], []
    edges = np.linspace(0, 1, CALIBRATION_BINS + 1)
    for label, g in _groups(pred):
        g = g.loc[g["p_hit"].notna() & g["hit"].notna()]
        y = g["hit"].to_numpy(dtype="float64")
        boot = _boot_by_team(g, FORECASTERS, n_boot, seed) if len(g) and n_boot else {}
        metrics = {}
        for f in FORECASTERS:
            p = g[f].to_numpy(dtype="float64")
            dec = brier_decomposition(p, y)
            r = {"at": label, "forecaster": f, "n": len(g), "brier": dec.brier, "reliability": dec.reliability,
                 "resolution": dec.resolution, "uncertainty": dec.uncertainty, "residual": dec.residual,
                 "auc": auc(p, y), "ece": expected_calibration_error(p, y)}
            for base, tag in (("pace_calibrated", "diff"), ("base_rate", "diff_base")):
                d = dec.brier - _brier(g[base], y)
                r["diff_vs_" + base] = d
                if boot:
                    bd = boot[f] - boot[base]
                    r[tag + "_low"], r[tag + "_high"] = (float(x) for x in np.quantile(bd, [0.025, 0.975]))
                else:
                    r[tag + "_low"] = r[tag + "_high"] = np.nan
            if boot:
                r["brier_low"], r["brier_high"] = (float(x) for x in np.quantile(boot[f], [0.025, 0.975]))
            else:
                r["brier_low"] = r["brier_high"] = np.nan
            rows.append(r)
            metrics[f] = r
            if f in ("p_hit", "p_model", "pace_calibrated"):
                idx = _bins(p, CALIBRATION_BINS)
                for b in range(CALIBRATION_BINS):
                    sel = idx == b
                    cal.append({"at": label, "forecaster": f, "bin": b + 1, "p_low": edges[b], "p_high": edges[b + 1],
                                "n": int(sel.sum()), "mean_p": float(p[sel].mean()) if sel.any() else np.nan,
                                "observed_rate": float(y[sel].mean()) if sel.any() else np.nan})
        m = metrics
        fv = g["final_value"]
        s = {"at": label, "n": len(g), "hit_rate": float(y.mean()) if len(g) else np.nan,
             **{f"brier_{f}": m[f]["brier"] for f in FORECASTERS},
             "ratio_vs_pace_calibrated": (m["p_hit"]["brier"] / m["pace_calibrated"]["brier"]
                                          if m["pace_calibrated"]["brier"] else np.nan),
             "diff_low": m["p_hit"]["diff_low"], "diff_high": m["p_hit"]["diff_high"],
             "ece_p_hit": m["p_hit"]["ece"], "auc_p_hit": m["p_hit"]["auc"],
             "auc_pace_calibrated": m["pace_calibrated"]["auc"],
             "n_calibrated": int(g["calibration"].str.startswith("logistic").sum()),
             "coverage_80": float(g["in_80"].dropna().astype("float64").mean()) if fv.notna().any() else np.nan,
             "coverage_95": float(g["in_95"].dropna().astype("float64").mean()) if fv.notna().any() else np.nan}
        if with_drivers:
            gd = g.loc[g["p_hit_drivers"].notna()]
            s["brier_p_hit_drivers"] = _brier(gd["p_hit_drivers"], gd["hit"])
            s["brier_p_hit_same_krs"] = _brier(gd["p_hit"], gd["hit"])
            s["n_with_drivers"] = int(gd["drivers"].notna().sum())
            s["drivers_improved"] = bool(s["brier_p_hit_drivers"] < s["brier_p_hit_same_krs"])
        summ.append(s)
    scols = SUMMARY_COLUMNS + (["brier_p_hit_drivers", "brier_p_hit_same_krs", "n_with_drivers", "drivers_improved"]
                               if with_drivers else [])
    summary = pd.DataFrame(summ, columns=scols)
    scores = pd.DataFrame(rows, columns=SCORE_COLUMNS)
    calib = pd.DataFrame(cal, columns=CALIBRATION_COLUMNS)
    for t in (summary, scores, calib):
        t["at"] = t["at"].astype("str")
        t["n"] = t["n"].astype("int64")
    summary["n_calibrated"] = summary["n_calibrated"].astype("int64")
    calib["bin"] = calib["bin"].astype("int64")
    for t, c in ((scores, "forecaster"), (calib, "forecaster")):
        t[c] = t[c].astype("str")
    return summary, scores, calib


def backtest(
    ds: Dataset,
    *,
    quarters: Iterable[str] | None = None,
    at: Sequence[float] = BACKTEST_AT,
    with_drivers: bool = False,
    n_paths: int = N_PATHS,
    seed: int = 0,
    engine: str = "fast",
    n_boot: int = 1000,
    seasonal: bool = False,
) -> BacktestResult:
    """Forecast every past quarter's key results part-way through and compare with what happened.

    For each quarter and each fraction in ``at``, the as-of date is the first day by whose end that
    fraction of the quarter has elapsed (1/3 of a 92-day quarter: day 31). Every increase, decrease
    and maintain KR is forecast as :func:`forecast_key_results` would have on that day (data dated up
    to it only; calibrated on the quarters that ended before it when they hold enough key results),
    and compared with the outcome its score reports at the quarter's end. The forecasters, on the
    same KRs (those with a ``p_hit`` and an outcome):

    * ``p_hit`` and ``p_model`` (the model's probability before calibration);
    * ``pace_calibrated``, the fair baseline: the pace status turned into a probability, the hit
      rate of KRs with that status at the same point in the *other* backtest quarters (leave one
      quarter out — it sees later quarters, which ``p_hit``'s calibration never does);
    * ``pace_rule``: 1 for ``on track``, 0 otherwise (its Brier score is its error rate);
    * ``base_rate``: the share of KRs that hit in the other quarters (leave one quarter out; with a
      single quarter, that quarter's own share).

    Scores: Brier with Murphy's decomposition, AUC, ECE, a reliability table, and 95% intervals by
    bootstrapping teams (``n_boot`` resamples).

    Parameters
    ----------
    ds : Dataset
    quarters : iterable of str, optional
        Default: every quarter with objectives whose last full week the data reach.
    at : sequence of float, default (1/3, 1/2, 2/3)
        As-of points, fractions of the quarter in (0, 1).
    with_drivers : bool, default False
        Also forecast with the drivers found by the lead-lag analysis on the data up to each as-of
        date, and report both (``p_hit_drivers``; summary ``brier_p_hit_drivers``, ``drivers_improved``).
    n_paths, seed, engine
        As in :func:`forecast_key_results`.
    n_boot : int, default 1000
        Bootstrap resamples of teams for the intervals (0: none).
    seasonal : bool, default False
        Forecast with the yearly seasonal candidates (as :func:`forecast_key_results`): run the
        backtest both ways to choose.

    Returns
    -------
    BacktestResult
        ``.predictions``, ``.summary``, ``.scores``, ``.calibration`` (DataFrames), ``.write(directory)``,
        ``.plot_reliability(ax=None)``.
    """
    check_dataset(ds)
    n_paths, seed = _check_paths(n_paths), _check_seed(seed)
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise ValueError(f"n_boot must be a non-negative integer (bootstrap resamples; 0 for none), got {n_boot!r}.")
    try:
        fracs = [float(a) for a in at]
    except (TypeError, ValueError):
        raise ValueError(f"at must be a sequence of fractions of the quarter such as (1/3, 1/2), got {at!r}.") from None
    if not fracs or any(not 0 < a < 1 for a in fracs):
        raise ValueError(f"at must hold fractions of the quarter in (0, 1) (at 1 the outcome is known), got {at!r}.")
    labels = _past_quarters(ds) if quarters is None else [ds.quarter(x).label for x in quarters]
    for lab in labels:
        if lab not in ds.quarters:
            raise ValueError(f"quarters: {lab!r} has no objectives; quarters with objectives: "
                             f"{', '.join(ds.quarters)}.")
    if not labels:
        raise ValueError("no past quarter to backtest: the data do not reach the end of any quarter with objectives.")
    labels = sorted(set(labels), key=lambda lab: ds.quarter(lab).start)
    parts = []
    cache: dict = {}
    for lab in labels:
        q = ds.quarter(lab)
        outcome = _outcomes(ds, q).set_index("kr_id")
        for a in fracs:
            ts = _as_of_at(q, a)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ForecastWarning)
                f = _forecast_table(ds, q, ts, with_drivers=False, drivers=None, n_paths=n_paths, seed=seed,
                                    engine=engine, calibrate=True, cache=cache, seasonal=bool(seasonal))
                if with_drivers:
                    fd = forecast_key_results(ds, q, as_of=ts, n_paths=n_paths, seed=seed, with_drivers=True,
                                              engine=engine)
            f = f.loc[f["direction"].isin(_MOVING + _MAINTAIN)].copy()
            f["at"] = a
            f["pace_rule"] = (f["pace_status"] == "on track").astype("float64")
            f["hit"] = f["kr_id"].map(outcome["hit"]).astype("float64")
            f["final_value"] = f["kr_id"].map(outcome["final_value"]).astype("float64")
            if with_drivers:
                fdi = fd.set_index("kr_id")
                f["p_hit_drivers"] = f["kr_id"].map(fdi["p_hit"]).astype("float64")
                f["method_drivers"] = f["kr_id"].map(fdi["method"]).astype("str")
                f["drivers"] = f["kr_id"].map(fdi["drivers"]).astype("str")
            parts.append(f)
    pred = pd.concat(parts, ignore_index=True)
    fv = pred["final_value"]
    pred["in_80"] = ((fv >= pred["lower_80"]) & (fv <= pred["upper_80"])).astype("boolean").mask(
        fv.isna() | pred["lower_80"].isna())
    pred["in_95"] = ((fv >= pred["lower_95"]) & (fv <= pred["upper_95"])).astype("boolean").mask(
        fv.isna() | pred["lower_95"].isna())
    # base rate: leave one quarter out (one outcome per KR, not one per as-of point)
    per_kr = pred.drop_duplicates("kr_id")[["quarter", "kr_id", "hit"]].dropna(subset=["hit"])
    rule = "leave one quarter out"
    rate = {}
    for lab in labels:
        other = per_kr.loc[per_kr["quarter"] != lab, "hit"]
        if other.empty:
            other, rule = per_kr["hit"], "all quarters (only one quarter)"
        rate[lab] = float(other.mean()) if len(other) else np.nan
    pred["base_rate"] = pred["quarter"].map(rate).astype("float64")
    # calibrated pace status: each status's hit rate at the same point in the other quarters
    known = pred.loc[pred["hit"].notna()]
    pc = np.full(len(pred), np.nan)
    for (lab, a), idx in pred.groupby(["quarter", "at"]).groups.items():
        other = known.loc[(known["quarter"] != lab) & (known["at"] == a)]
        if other.empty:
            other = known.loc[known["at"] == a]
        rates = other.groupby("pace_status")["hit"].mean()
        st = pred.loc[idx, "pace_status"]
        pc[pred.index.get_indexer(idx)] = st.map(rates).fillna(rate[lab]).to_numpy(dtype="float64")
    pred["pace_calibrated"] = pc
    cols = PREDICTION_COLUMNS + (["p_hit_drivers", "method_drivers", "drivers"] if with_drivers else [])
    pred = pred[cols].sort_values(["quarter", "at", "team_id", "kr_id"], kind="stable").reset_index(drop=True)
    summary, scores, calib = _score_tables(pred, int(n_boot), seed, with_drivers)
    return BacktestResult(
        predictions=pred, summary=summary, calibration=calib, scores=scores,
        options={"quarters": labels, "at": fracs, "n_paths": n_paths, "seed": seed, "with_drivers": with_drivers,
                 "n_boot": int(n_boot), "seasonal": bool(seasonal), "base_rate": rule},
    )
