"""Key-result forecasts: where each KR's metric will be at the quarter's end, and ``p_hit``.

Mid-quarter, a team wants to know how likely it is to reach each key result. The usual
answer is the straight-line pace rule (progress compared with the elapsed share of the
quarter, :func:`okr_analysis.scoring.score_key_results`). This module forecasts instead:

* :func:`forecast_key_results` — every KR of a quarter at an as-of date: the quarter-end value
  (point forecast, 80% and 95% intervals) and ``p_hit``, the probability that the KR's final
  score is 1 under the scoring rules, from simulated future paths;
* :func:`forecast_key_result` — one KR, as a :class:`KRForecast` with ``.plot()``;
* :func:`forecast_kpis` — KPI forecasts to the end of the next quarter, for the monitoring views;
* :func:`backtest` — forecasts every past quarter at 1/3 and 1/2 of the way through from the data
  up to that date only, and compares ``p_hit`` with what happened and with the pace rule
  (Brier scores, calibration table);
* :func:`forecast_series` — the forecasting engine on one plain series.

The models (each choice and its reason is in README.md, "Forecasts")
------------------------------------------------------------------------
A series with at least :data:`MIN_MODEL_OBS` weekly values is forecast from a small set of
autoregressive candidates, all fitted by ordinary least squares (the conditional maximum
likelihood of statsmodels' ``AutoReg``) on a common estimation sample so their AICs compare:

* key results: ``ARIMA(p,1,0)`` with and without drift, ``p = 0..P`` — the metric is treated as
  integrated (what a team achieves stays; a mean-reverting model would pull every forecast back
  to the metric's past while the team is working to move it);
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

from .io.dataset import Dataset
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
BACKTEST_AT = (1 / 3, 1 / 2)
#: Interval levels reported.
LEVELS = (0.80, 0.95)
#: Observed-rate bins of the calibration table (edges on p_hit).
CALIBRATION_BINS = 10

_MOVING = ("increase", "decrease")
_MAINTAIN = ("maintain_at_least", "maintain_at_most")
_EPS = 1e-9
_Q = (0.025, 0.10, 0.50, 0.90, 0.975)

KR_FORECAST_COLUMNS = [
    "quarter", "team_id", "objective_id", "kr_id", "title", "direction", "metric", "unit",
    "baseline", "target", "expectation", "as_of", "current", "forecast_date", "horizon",
    "forecast", "lower_80", "upper_80", "lower_95", "upper_95", "p_hit",
    "method", "model_weight", "history", "n_obs", "drivers", "note",
]
KPI_FORECAST_COLUMNS = [
    "team_id", "metric", "period_start", "step", "forecast", "lower_80", "upper_80", "lower_95",
    "upper_95", "method", "model_weight", "n_obs", "note",
]
PREDICTION_COLUMNS = [
    "quarter", "at", "as_of", "team_id", "kr_id", "direction", "metric", "history", "method",
    "p_hit", "pace_status", "pace_rule", "base_rate", "hit", "final_value",
    "forecast", "lower_80", "upper_80", "lower_95", "upper_95", "in_80", "in_95",
]
SUMMARY_COLUMNS = [
    "at", "n", "hit_rate", "brier_p_hit", "brier_pace_rule", "brier_base_rate",
    "reduction_vs_pace_rule", "reduction_vs_base_rate", "pace_rule_accuracy", "coverage_80", "coverage_95",
]
CALIBRATION_COLUMNS = ["at", "bin", "p_low", "p_high", "n", "mean_p_hit", "observed_rate"]


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
                    ) -> tuple[np.ndarray, str, str, ModelFit | None, float]:
    """(paths, method, note, fit, share of the AIC weight on models with exog) for a clean series y."""
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
    weights = aic_weights(cands)
    counts = rng.multinomial(n_paths, weights)
    has_exog = any(c.exog_names for c, k in zip(cands, counts) if k)
    paths = _simulate(cands, counts, y, H, rng, exog if has_exog else None, exog_future if has_exog else None)
    fit = dataclasses.replace(fit, weight=float(weights[next(i for i, c in enumerate(cands) if c is fit)]))
    exog_weight = float(sum(w for c, w in zip(cands, weights) if c.exog_names))
    note = ""
    if fit.ssr <= 1e-20 * scale * scale * fit.nobs:
        note = "the model fits the history exactly: no variation around it, so no uncertainty"
    return paths, fit.name, note, fit, exog_weight


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
    if not isinstance(ds, Dataset):
        raise TypeError(f"ds must be a Dataset (from okr_analysis.load), got {type(ds).__name__}; "
                        "load the data first: ds = okr_analysis.load(source).")
    return ds.resolve(quarter, as_of, as_of_required=True)


def _weekly_kpis(ds: Dataset, pairs: set[tuple[str, str]], as_of: pd.Timestamp) -> dict[tuple[str, str], pd.Series]:
    """Weekly KPI series (period_start → value) up to as_of, for the (team, metric) pairs asked."""
    if not pairs:
        return {}
    teams = {t for t, _ in pairs}
    metrics = {m for _, m in pairs}
    w = resample_kpis(ds, "W", teams=teams, metrics=metrics, end=as_of)
    out = {}
    for (t, m), g in w.groupby(["team_id", "metric"], sort=False):
        if (t, m) in pairs:
            out[(t, m)] = pd.Series(g["value"].to_numpy(), index=pd.DatetimeIndex(g["period_start"]))
    return out


def _to_grid(s: pd.Series) -> tuple[np.ndarray, pd.DatetimeIndex, int]:
    """A weekly series on a regular 7-day grid ending at its last date; (values, dates, n_filled).

    Each value goes to the grid week it falls in (check-ins need not be on the grid's weekday; of two
    in one week the later counts); missing weeks inside are interpolated linearly.
    """
    v = s.to_numpy(dtype="float64")
    ok = ~np.isnan(v)
    if not ok.any():
        return np.empty(0), pd.DatetimeIndex([]), 0
    days = s.index.to_numpy(dtype="datetime64[D]").astype("int64")[ok]
    v = v[ok]
    order = np.argsort(days, kind="stable")
    days, v = days[order], v[order]
    last = days[-1]
    pos = (days - last) // 7  # 0 for the last week, negative before (floor division keeps weeks whole)
    pos = pos - pos[0]
    n = int(pos[-1]) + 1
    y = np.full(n, np.nan)
    y[pos] = v  # later values of the same week overwrite earlier ones
    dates = pd.DatetimeIndex((last - 7 * np.arange(n - 1, -1, -1)).astype("datetime64[D]")).astype("datetime64[ns]")
    filled = int(np.isnan(y).sum())
    return _clean(y), dates, filled


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


@dataclass
class _KRCase:
    """Everything one KR's forecast needs (built from data up to as_of only)."""

    row: dict
    y: np.ndarray
    dates: pd.DatetimeIndex
    history: str
    filled: int
    past_checkins: np.ndarray
    last_checkin: pd.Timestamp | None
    exog: np.ndarray | None = None
    exog_names: tuple[str, ...] = ()
    exog_future: np.ndarray | None = None
    driver_label: str = ""
    q_end: pd.Timestamp | None = None


def _future_dates(last: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    if last is None or pd.isna(last) or last >= end:
        return pd.DatetimeIndex([])
    return pd.date_range(last + pd.Timedelta(days=7), end, freq="7D")


def _p_hit(row: dict, paths: np.ndarray, fut: pd.DatetimeIndex, past: np.ndarray,
           last_checkin: pd.Timestamp | None, y_last: float) -> float:
    """Share of paths whose final score is 1 (increase/decrease) or reaches the expectation (maintain)."""
    d, tgt = row["direction"], row["target"]
    tol = _EPS * max(1.0, abs(tgt))
    if d in _MOVING:
        final = paths[:, -1] if paths.shape[1] else np.full(paths.shape[0], y_last)
        ok = final >= tgt - tol if d == "increase" else final <= tgt + tol
        return float(np.mean(ok))
    meets = (lambda v: v >= tgt - tol) if d == "maintain_at_least" else (lambda v: v <= tgt + tol)
    keep = np.ones(len(fut), dtype=bool) if last_checkin is None else np.asarray(fut > last_checkin)
    future = paths[:, keep] if paths.shape[1] else paths[:, :0]
    n_total = len(past) + future.shape[1]
    if n_total == 0:
        return np.nan
    share = (np.sum(meets(past)) + np.sum(meets(future), axis=1)) / n_total
    return float(np.mean(share >= row["expectation"] - _EPS))


def _kr_frame(ds: Dataset, q: Quarter, as_of: pd.Timestamp) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc = score_key_results(ds, q, as_of=as_of)
    sc["expectation"] = np.where(sc["direction"].isin(_MAINTAIN),
                                 sc["objective_kind"].map(EXPECTATION).astype("float64"), 1.0)
    sc.loc[sc["direction"] == "milestone", "expectation"] = np.nan
    return sc


def _build_cases(ds: Dataset, q: Quarter, as_of: pd.Timestamp, sc: pd.DataFrame,
                 drivers: _Drivers | None, n_paths: int, seed: int, engine: str = "fast") -> list[_KRCase]:
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
    ci = ds.checkins
    ci = ci.loc[ci["kr_id"].isin(set(sc["kr_id"])) & (ci["date"] >= q.start) & (ci["date"] <= as_of)]
    ci = ci.assign(_r=np.arange(len(ci))).sort_values(["kr_id", "date", "_r"])
    ci_by = {k: g for k, g in ci.groupby("kr_id", sort=False)}
    q_end = q.end
    cases = []
    for row in sc.to_dict("records"):
        g = ci_by.get(row["kr_id"])
        past = g["value"].to_numpy(dtype="float64") if g is not None else np.empty(0)
        last_ci = g["date"].iloc[-1] if g is not None and len(g) else None
        m = row["metric"]
        series, history = None, ""
        if isinstance(m, str) and (row["team_id"], m) in kpi and len(kpi[(row["team_id"], m)]) >= MIN_SHORT_OBS:
            series, history = kpi[(row["team_id"], m)], f"kpi:{m}"
        elif g is not None and len(g):
            series, history = pd.Series(past, index=pd.DatetimeIndex(g["date"])), "checkins"
        if series is None:
            y, dates, filled = np.empty(0), pd.DatetimeIndex([]), 0
        else:
            y, dates, filled = _to_grid(series)
        case = _KRCase(row, y, dates, history, filled, past, last_ci, q_end=q_end)
        if drivers is not None and history.startswith("kpi:") and len(y) >= MIN_MODEL_OBS:
            _attach_drivers(case, drivers.by_metric.get(m, []), kpi, q, n_paths, seed, engine)
        cases.append(case)
    return cases


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


def _forecast_case(case: _KRCase, q: Quarter, as_of: pd.Timestamp, n_paths: int,
                   seed: int, engine: str = "fast") -> tuple[dict, np.ndarray, pd.DatetimeIndex]:
    """One KR's output row, its simulated paths (n_paths × weeks left) and the future weekly dates."""
    row = case.row
    out = {c: row.get(c) for c in ("quarter", "team_id", "objective_id", "kr_id", "title", "direction", "metric",
                                    "unit", "baseline", "target", "expectation", "current")}
    out.update(as_of=as_of, forecast_date=pd.NaT, horizon=np.nan, forecast=np.nan, lower_80=np.nan,
               upper_80=np.nan, lower_95=np.nan, upper_95=np.nan, p_hit=np.nan, history=case.history or None,
               n_obs=len(case.y), drivers=None, note=None, method=None, model_weight=np.nan)
    none = (np.empty((n_paths, 0)), pd.DatetimeIndex([]))
    d = row["direction"]
    if d == "milestone":
        done = pd.notna(row["current"]) and row["current"] >= 1 - _EPS
        out.update(method="done (milestone)" if done else "milestone (not forecast)", p_hit=1.0 if done else np.nan,
                   note=None if done else "milestones are not forecast: progress on them is not a time series")
        return (out, *none)
    if row["status"] == "unmeasurable":
        out.update(method="unmeasurable", note="no target, no baseline, or target equal to baseline")
        return (out, *none)
    y = case.y
    if len(y) == 0:
        out.update(method="no data", note="no KPI history and no check-in up to as_of")
        return (out, *none)
    last = case.dates[-1]
    fut = _future_dates(last, case.q_end if case.q_end is not None else q.end)
    H = len(fut)
    notes = []
    if case.filled:
        notes.append(f"{case.filled} missing week(s) interpolated")
    if H == 0:
        paths = np.empty((n_paths, 0))
        method, note, fit = "observed (no weeks left)", "the quarter's last weekly value is already known", None
        final = np.full(n_paths, y[-1])
    else:
        paths, method, note, fit, exog_weight = _forecast_array(
            y, H, levels=False, n_paths=n_paths, rng=_rng(seed, row["kr_id"]), exog=case.exog,
            exog_names=case.exog_names, exog_future=case.exog_future, engine=engine)
        final = paths[:, -1]
        if fit is not None:
            out["model_weight"] = fit.weight
        if fit is not None and case.exog_names:
            if fit.exog_names:
                out["drivers"] = case.driver_label
                method = f"{method} + {case.driver_label}"
            notes.append(f"drivers {case.driver_label}: {exog_weight:.0%} of the AIC weight")
    if note:
        notes.insert(0, note)
    out["method"] = method
    out["note"] = "; ".join(notes) or None
    if method in ("insufficient data", "no data"):
        return (out, *none)
    qs = np.quantile(final, _Q)
    out.update(forecast_date=fut[-1] if H else last, horizon=H, forecast=qs[2], lower_80=qs[1], upper_80=qs[3],
               lower_95=qs[0], upper_95=qs[4])
    out["p_hit"] = _p_hit(row, paths, fut, case.past_checkins, case.last_checkin, y[-1])
    return out, paths, fut


def _finish(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=KR_FORECAST_COLUMNS)
    for c in ("baseline", "target", "expectation", "current", "horizon", "forecast", "lower_80", "upper_80",
              "lower_95", "upper_95", "p_hit", "model_weight"):
        df[c] = df[c].astype("float64")
    for c in ("as_of", "forecast_date"):
        df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")
    df["n_obs"] = df["n_obs"].astype("int64")
    for c in ("quarter", "team_id", "objective_id", "kr_id", "title", "direction", "metric", "unit", "method",
              "history", "drivers", "note"):
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
) -> pd.DataFrame:
    """Forecast every key result of a quarter to the quarter's end, with ``p_hit``.

    Only data dated on or before ``as_of`` are used (KPIs, check-ins and, with drivers, the
    lead-lag analysis), so the forecast is what could have been said on that day.

    For each increase, decrease or maintain KR the history is the team's weekly KPI series of
    the KR's metric (all of it up to ``as_of``) when the KR names a metric the team measures,
    else the KR's check-ins in the quarter. The history is forecast week by week to the last
    weekly date in the quarter (:func:`forecast_series` with integrated models only), and
    ``N`` future paths are simulated.

    ``p_hit`` is the share of paths in which the KR's final score is 1 under the scoring rules:
    increase — the last weekly value in the quarter is at least the target; decrease — at most
    the target; maintain — the share of the quarter's check-ins (the ones made up to ``as_of``
    plus one per remaining week, simulated) meeting the line is at least the objective's
    expectation (1.0 committed, 0.7 aspirational). Milestones are not forecast (``p_hit`` NaN)
    unless already done (``p_hit`` 1).

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
        How the candidate models are fitted (:func:`select_model`): the same OLS fits in NumPy, or by
        statsmodels ``AutoReg`` one by one (the reference; same output, slower).

    Returns
    -------
    pandas.DataFrame
        One row per key result, sorted by team_id, objective_id, kr_id, with columns:

        quarter, team_id, objective_id, kr_id, title, direction, metric, unit : str
            The KR (metric and unit may be missing).
        baseline, target : float
        expectation : float
            The score the KR must reach to count as hit: 1.0, or for maintain KRs the objective's
            expectation (1.0 committed, 0.7 aspirational); NaN for milestones.
        as_of : datetime64
            The effective as-of date.
        current : float
            The latest check-in up to ``as_of`` (as in scoring); NaN when none.
        forecast_date : datetime64
            The last weekly date in the quarter on the history's grid: the date forecast.
        horizon : float
            Weeks from the last observed value to ``forecast_date``.
        forecast : float
            Median of the simulated values at ``forecast_date``.
        lower_80, upper_80, lower_95, upper_95 : float
            Central 80% and 95% intervals (path quantiles 10/90 and 2.5/97.5%).
        p_hit : float
            Probability that the KR's final score reaches its expectation (see above).
        method : str
            The model: ``ARIMA(p,1,0)`` / ``ARIMA(p,1,0) with drift`` (AIC-selected; ``+ driver (lag k)``
            with drivers), ``random walk with drift (short series)``, ``constant (no variation)``,
            ``observed (no weeks left)``, ``done (milestone)``, ``milestone (not forecast)``,
            ``unmeasurable``, ``insufficient data`` or ``no data``.
        model_weight : float
            Akaike weight of the named model among the candidates: the share of the paths it
            simulated (the rest come from the other candidates by their weights); NaN for fallbacks.
        history : str
            ``kpi:<metric>`` (the team's weekly KPI) or ``checkins``; missing when none.
        n_obs : int
            Weekly values in the history.
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
    cut = ds.known_on(ts)
    drv = None
    if with_drivers:
        drv = _drivers_from_table(drivers) if drivers is not None else _find_drivers(cut)
    sc = _kr_frame(cut, q, ts)
    cases = _build_cases(cut, q, ts, sc, drv, n_paths, seed, engine)
    df = _finish([_forecast_case(c, q, ts, n_paths, seed, engine)[0] for c in cases])
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
        The weekly history used (dates → values), up to ``as_of``.
    checkins : pandas.Series
        The KR's check-ins in the quarter up to ``as_of``.
    table : pandas.DataFrame
        By future week: date, forecast (median), lower_80, upper_80, lower_95, upper_95.
    p_hit : float
    method, note : str
    row : pandas.Series
        The KR's row of :func:`forecast_key_results`.
    paths : ndarray
        The simulated paths (n_paths × weeks).
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

    def summary(self) -> pd.DataFrame:
        """The one-row table of :func:`forecast_key_results` for this KR."""
        return self.row.to_frame().T.reset_index(drop=True)

    def __repr__(self) -> str:
        p = "n/a" if pd.isna(self.p_hit) else f"{self.p_hit:.0%}"
        return (f"<KRForecast {self.kr_id} ({self.quarter.label}, as of {self.as_of.date()}): p_hit {p}, "
                f"{self.method}>")

    def plot(self, ax=None):
        """History, forecast cone (80% and 95%), target line, expected-pace line and the as-of date.

        The expected-pace line runs from the baseline at the quarter's start to the target at its
        end (increase/decrease KRs). Returns the axes; never shows or saves the figure.
        """
        # lazy import: pyplot adds ~0.5 s to every command that draws nothing
        import matplotlib.dates as mdates
        import matplotlib.pyplot as plt

        ax = plt.gca() if ax is None else ax
        q = self.quarter
        hist = self.history
        if len(hist):
            lo = q.start - pd.Timedelta(weeks=26)
            h = hist[hist.index >= lo]
            ax.plot(h.index, h.to_numpy(), color="0.25", lw=1.4, label="history")
        if len(self.checkins):
            ax.plot(self.checkins.index, self.checkins.to_numpy(), "o", color="0.1", ms=3.5, label="check-ins")
        t = self.table
        if len(t):
            anchor_x = [hist.index[-1]] if len(hist) else []
            anchor_y = [hist.iloc[-1]] if len(hist) else []
            x = list(anchor_x) + list(t["date"])

            def ext(col):
                return np.r_[anchor_y, t[col].to_numpy()]

            ax.fill_between(x, ext("lower_95"), ext("upper_95"), color="tab:blue", alpha=0.15, lw=0,
                            label="95% interval")
            ax.fill_between(x, ext("lower_80"), ext("upper_80"), color="tab:blue", alpha=0.30, lw=0,
                            label="80% interval")
            ax.plot(x, ext("forecast"), color="tab:blue", lw=1.6, ls="--", label="forecast (median)")
        if pd.notna(self.target):
            ax.axhline(self.target, color="tab:green", lw=1.2, label=f"target {self.target:g}")
        if self.direction in _MOVING and pd.notna(self.baseline) and pd.notna(self.target):
            ax.plot([q.start, q.end], [self.baseline, self.target], color="tab:orange", lw=1.2, ls=":",
                    label="expected pace")
        ax.axvline(self.as_of, color="0.5", lw=1, ls="-.", label=f"as of {self.as_of.date()}")
        ax.axvspan(q.start, q.end, color="0.92", zorder=0)
        p = "n/a" if pd.isna(self.p_hit) else f"{self.p_hit:.0%}"
        ax.set_title(f"{self.title} ({self.team_id}, {q.label})\np_hit {p} · {self.method}", fontsize=10)
        ax.set_xlabel("week")
        unit = self.unit if isinstance(self.unit, str) and self.unit else "value"
        ax.set_ylabel(unit)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b\n%Y"))
        ax.legend(fontsize=7, loc="best")
        return ax


def forecast_key_result(ds: Dataset, kr_id: str, *, as_of: Any, with_drivers: bool = False,
                        n_paths: int = N_PATHS, seed: int = 0, drivers: pd.DataFrame | None = None,
                        engine: str = "fast") -> KRForecast:
    """Forecast one key result (as :func:`forecast_key_results`) and keep its paths for a plot.

    Parameters
    ----------
    ds : Dataset
    kr_id : str
        A key result id; its quarter is its objective's.
    as_of, with_drivers, n_paths, seed, drivers, engine
        As in :func:`forecast_key_results`.

    Returns
    -------
    KRForecast
        With ``.plot(ax=None)``, ``.table`` (the cone by week) and ``.summary()``.
    """
    if not isinstance(ds, Dataset):
        raise TypeError(f"ds must be a Dataset (from okr_analysis.load), got {type(ds).__name__}.")
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
    sc = sc.loc[sc["kr_id"] == kr_id]
    case = _build_cases(cut, q, ts, sc, drv, n_paths, seed, engine)[0]
    row, paths, fut = _forecast_case(case, q, ts, n_paths, seed, engine)
    y, dates = case.y, case.dates
    qf = _quantile_frame(paths)
    qf.insert(0, "date", fut[: len(qf)])
    qf = qf.drop(columns="step")
    ci = cut.checkins
    ci = ci.loc[(ci["kr_id"] == kr_id) & (ci["date"] >= q.start)].sort_values("date")
    r = _finish([row]).iloc[0]
    return KRForecast(
        kr_id=kr_id, title=str(r["title"]), team_id=str(r["team_id"]), direction=str(r["direction"]),
        unit=r["unit"], metric=r["metric"], quarter=q, as_of=ts, baseline=float(r["baseline"]),
        target=float(r["target"]), expectation=float(r["expectation"]), current=float(r["current"]),
        history=pd.Series(y, index=dates, name="value"),
        checkins=pd.Series(ci["value"].to_numpy(), index=pd.DatetimeIndex(ci["date"]), name="checkin"),
        table=qf, p_hit=float(r["p_hit"]), method=str(r["method"]), note=r["note"], row=r, paths=paths,
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
    if not isinstance(ds, Dataset):
        raise TypeError(f"ds must be a Dataset (from okr_analysis.load), got {type(ds).__name__}.")
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


def _brier(p: pd.Series, y: pd.Series) -> float:
    return float(np.mean((p.to_numpy(dtype="float64") - y.to_numpy(dtype="float64")) ** 2)) if len(p) else np.nan


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """Result of :func:`backtest`.

    Attributes
    ----------
    predictions : pandas.DataFrame
        One row per quarter, as-of point and key result (increase, decrease and maintain KRs), with
        columns (in order):

        - ``quarter`` (str), ``at`` (float: fraction of the quarter), ``as_of`` (datetime64)
        - ``team_id``, ``kr_id``, ``direction``, ``metric``, ``history``, ``method`` (str)
        - ``p_hit`` (float): the forecast, from data up to ``as_of`` only
        - ``pace_status`` (str): the scoring module's status at ``as_of``
        - ``pace_rule`` (float): 1 when ``pace_status`` is ``on track``, else 0
        - ``base_rate`` (float): share of KRs that hit their target in the other quarters
        - ``hit`` (float): 1 when the KR's final score reached its expectation, 0 when not; NaN with
          no check-in in the quarter
        - ``final_value`` (float): the KR's last check-in of the quarter
        - ``forecast``, ``lower_80``, ``upper_80``, ``lower_95``, ``upper_95`` (float): the forecast of it
        - ``in_80``, ``in_95`` (boolean): whether the final value fell in the intervals
        - with ``with_drivers=True`` also ``p_hit_drivers``, ``method_drivers``, ``drivers``
    summary : pandas.DataFrame
        One row per ``at`` and one for all (``at`` = ``'all'``) over the KRs that have a ``p_hit`` and an
        outcome: n, hit_rate, brier_p_hit, brier_pace_rule, brier_base_rate, reduction_vs_pace_rule
        (1 - brier_p_hit / brier_pace_rule), reduction_vs_base_rate, pace_rule_accuracy, coverage_80,
        coverage_95 (share of final values inside the intervals); with drivers also brier_p_hit_drivers,
        n_with_drivers (KRs whose model kept a driver) and drivers_improved.
    calibration : pandas.DataFrame
        Reliability of ``p_hit``: per ``at`` (and ``'all'``) and bin of p_hit (10 equal bins): at, bin,
        p_low, p_high, n, mean_p_hit, observed_rate.
    options : dict
        quarters, at, n_paths, seed, with_drivers, base_rate rule.
    """

    predictions: pd.DataFrame
    summary: pd.DataFrame
    calibration: pd.DataFrame
    options: dict = field(default_factory=dict)

    def write(self, directory: "str | os.PathLike[str]") -> list[Path]:
        """Write predictions.csv, summary.csv and calibration.csv into ``directory`` (created if missing)."""
        d = Path(directory)
        if d.exists() and not d.is_dir():
            raise NotADirectoryError(f"{d} exists and is not a folder; give a folder for the backtest tables.")
        d.mkdir(parents=True, exist_ok=True)
        out = []
        for name in ("predictions", "summary", "calibration"):
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
                f"{a['brier_p_hit']:.3f}, pace rule {a['brier_pace_rule']:.3f}, base rate {a['brier_base_rate']:.3f}>")

    def plot(self, ax=None):
        """Calibration (reliability) diagram of ``p_hit`` over all as-of points; returns the axes."""
        # lazy import: pyplot adds ~0.5 s to every command that draws nothing
        import matplotlib.pyplot as plt

        ax = plt.gca() if ax is None else ax
        c = self.calibration.loc[self.calibration["at"] == "all"]
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect calibration")
        ax.scatter(c["mean_p_hit"], c["observed_rate"], s=np.clip(c["n"].to_numpy() * 3, 10, 300),
                   color="tab:blue", alpha=0.8, label="p_hit bins (size: n)")
        ax.plot(c["mean_p_hit"], c["observed_rate"], color="tab:blue", lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("mean p_hit in bin")
        ax.set_ylabel("share of key results that hit")
        a = self.summary.loc[self.summary["at"] == "all"]
        if len(a):
            a = a.iloc[0]
            ax.set_title(f"Calibration of p_hit (Brier {a['brier_p_hit']:.3f}; pace rule "
                         f"{a['brier_pace_rule']:.3f}; base rate {a['brier_base_rate']:.3f})", fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
        return ax


def _outcomes(ds: Dataset, q: Quarter) -> pd.DataFrame:
    """The final score of each KR at the quarter's end and whether it reached its expectation."""
    sc = _kr_frame(ds, q, q.end)
    hit = (sc["score"] >= sc["expectation"] - _EPS).astype("float64").where(sc["score"].notna())
    return pd.DataFrame({"kr_id": sc["kr_id"], "hit": hit, "final_value": sc["current"]})


def _summarise(pred: pd.DataFrame, with_drivers: bool) -> pd.DataFrame:
    rows = []
    groups = [(f"{a:.4g}", g) for a, g in pred.groupby("at", sort=True)] + [("all", pred)]
    for label, g in groups:
        g = g.loc[g["p_hit"].notna() & g["hit"].notna()]
        bp, bpace, bbase = _brier(g["p_hit"], g["hit"]), _brier(g["pace_rule"], g["hit"]), \
            _brier(g["base_rate"], g["hit"])
        r = {
            "at": label, "n": len(g), "hit_rate": float(g["hit"].mean()) if len(g) else np.nan,
            "brier_p_hit": bp, "brier_pace_rule": bpace, "brier_base_rate": bbase,
            "reduction_vs_pace_rule": 1 - bp / bpace if bpace else np.nan,
            "reduction_vs_base_rate": 1 - bp / bbase if bbase else np.nan,
            "pace_rule_accuracy": float((g["pace_rule"] == g["hit"]).mean()) if len(g) else np.nan,
            "coverage_80": float(g["in_80"].astype("float64").mean()) if len(g) else np.nan,
            "coverage_95": float(g["in_95"].astype("float64").mean()) if len(g) else np.nan,
        }
        if with_drivers:
            gd = g.loc[g["p_hit_drivers"].notna()]
            r["brier_p_hit_drivers"] = _brier(gd["p_hit_drivers"], gd["hit"])
            r["brier_p_hit_same_krs"] = _brier(gd["p_hit"], gd["hit"])
            r["n_with_drivers"] = int(gd["drivers"].notna().sum())
            r["drivers_improved"] = bool(r["brier_p_hit_drivers"] < r["brier_p_hit_same_krs"])
        rows.append(r)
    cols = SUMMARY_COLUMNS + (["brier_p_hit_drivers", "brier_p_hit_same_krs", "n_with_drivers", "drivers_improved"]
                              if with_drivers else [])
    out = pd.DataFrame(rows, columns=cols)
    out["n"] = out["n"].astype("int64")
    out["at"] = out["at"].astype("str")
    return out


def _calibration(pred: pd.DataFrame, bins: int = CALIBRATION_BINS) -> pd.DataFrame:
    edges = np.linspace(0, 1, bins + 1)
    rows = []
    groups = [(f"{a:.4g}", g) for a, g in pred.groupby("at", sort=True)] + [("all", pred)]
    for label, g in groups:
        g = g.loc[g["p_hit"].notna() & g["hit"].notna()]
        idx = np.clip(np.searchsorted(edges, g["p_hit"].to_numpy(), side="right") - 1, 0, bins - 1)
        for b in range(bins):
            sel = idx == b
            rows.append({"at": label, "bin": b + 1, "p_low": edges[b], "p_high": edges[b + 1], "n": int(sel.sum()),
                         "mean_p_hit": float(g["p_hit"].to_numpy()[sel].mean()) if sel.any() else np.nan,
                         "observed_rate": float(g["hit"].to_numpy()[sel].mean()) if sel.any() else np.nan})
    out = pd.DataFrame(rows, columns=CALIBRATION_COLUMNS)
    out["n"] = out["n"].astype("int64")
    out["bin"] = out["bin"].astype("int64")
    out["at"] = out["at"].astype("str")
    return out


def backtest(
    ds: Dataset,
    *,
    quarters: Iterable[str] | None = None,
    at: Sequence[float] = BACKTEST_AT,
    with_drivers: bool = False,
    n_paths: int = N_PATHS,
    seed: int = 0,
    engine: str = "fast",
) -> BacktestResult:
    """Forecast every past quarter's key results part-way through and compare with what happened.

    For each quarter and each fraction in ``at``, the as-of date is the first day by whose end that
    fraction of the quarter has elapsed (1/3 of a 92-day quarter: day 31). Every increase, decrease
    and maintain KR is forecast from the data up to that date only (:func:`forecast_key_results`
    on the dataset cut at ``as_of``), and ``p_hit`` is compared with the outcome: whether the KR's
    final score (scoring at the quarter's end) reached its expectation.

    The comparison is on the same KRs — those with a ``p_hit`` and an outcome:

    * ``p_hit``: Brier score ``mean((p_hit - hit)^2)`` and a calibration table;
    * the pace rule: the scoring module's status at the same as-of date, read as 1 for ``on track``
      and 0 otherwise (at risk, off track, no data);
    * the base rate: a constant forecast, the share of KRs that hit in the *other* backtest quarters
      (leave one quarter out, so a quarter's own outcomes never enter its forecast; with a single
      quarter, that quarter's share — then it has seen the outcomes and flatters itself).

    Parameters
    ----------
    ds : Dataset
    quarters : iterable of str, optional
        Default: every quarter with objectives whose last full week the data reach.
    at : sequence of float, default (1/3, 1/2)
        As-of points, fractions of the quarter in (0, 1].
    with_drivers : bool, default False
        Also forecast with the drivers found by the lead-lag analysis on the data up to each as-of
        date, and report both (``p_hit_drivers``; summary ``brier_p_hit_drivers``, ``drivers_improved``).
    n_paths, seed, engine
        As in :func:`forecast_key_results`.

    Returns
    -------
    BacktestResult
        ``.predictions``, ``.summary``, ``.calibration`` (DataFrames), ``.write(directory)``, ``.plot()``.
    """
    if not isinstance(ds, Dataset):
        raise TypeError(f"ds must be a Dataset (from okr_analysis.load), got {type(ds).__name__}.")
    n_paths, seed = _check_paths(n_paths), _check_seed(seed)
    try:
        fracs = [float(a) for a in at]
    except (TypeError, ValueError):
        raise ValueError(f"at must be a sequence of fractions of the quarter such as (1/3, 1/2), got {at!r}.") from None
    if not fracs or any(not 0 < a <= 1 for a in fracs):
        raise ValueError(f"at must hold fractions of the quarter in (0, 1], got {at!r}.")
    labels = _past_quarters(ds) if quarters is None else [ds.quarter(x).label for x in quarters]
    for lab in labels:
        if lab not in ds.quarters:
            raise ValueError(f"quarters: {lab!r} has no objectives; quarters with objectives: "
                             f"{', '.join(ds.quarters)}.")
    if not labels:
        raise ValueError("no past quarter to backtest: the data do not reach the end of any quarter with objectives.")
    parts = []
    for lab in labels:
        q = ds.quarter(lab)
        outcome = _outcomes(ds, q).set_index("kr_id")
        for a in fracs:
            ts = _as_of_at(q, a)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ForecastWarning)
                f = forecast_key_results(ds, q, as_of=ts, n_paths=n_paths, seed=seed, engine=engine)
                if with_drivers:
                    fd = forecast_key_results(ds, q, as_of=ts, n_paths=n_paths, seed=seed, with_drivers=True,
                                              engine=engine)
            cut = ds.known_on(ts)
            pace = _kr_frame(cut, q, ts).set_index("kr_id")["status"]
            f = f.loc[f["direction"].isin(_MOVING + _MAINTAIN)].copy()
            f["at"] = a
            f["pace_status"] = f["kr_id"].map(pace).astype("str")
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
    cols = PREDICTION_COLUMNS + (["p_hit_drivers", "method_drivers", "drivers"] if with_drivers else [])
    pred = pred[cols].sort_values(["quarter", "at", "team_id", "kr_id"], kind="stable").reset_index(drop=True)
    return BacktestResult(
        predictions=pred, summary=_summarise(pred, with_drivers), calibration=_calibration(pred),
        options={"quarters": labels, "at": fracs, "n_paths": n_paths, "seed": seed, "with_drivers": with_drivers,
                 "base_rate": rule},
    )
