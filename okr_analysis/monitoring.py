"""KPI monitoring: trends, control charts, peer benchmarks and candidate key results.

Which KPIs moved for real, which are noise, how a team compares with its peers,
and which KPI should become next quarter's key result:

* :func:`kpi_trends` — Mann–Kendall trend test (with a correction for
  autocorrelation) and Theil–Sen slope per team and metric over a window;
* :func:`control_chart` — XmR (individuals) chart with natural process limits and
  the four Western Electric run rules, optionally with limits adjusted for the
  lag-1 autocorrelation of weekly KPIs; returns a :class:`ControlChartResult`;
* :func:`benchmark` — a team's latest value against its peers, the company median
  and the external ``benchmarks`` table;
* :func:`candidate_key_results` — KPIs to consider as next quarter's key results,
  with the reason, a suggested baseline and a suggested target;
* :func:`monitor` — the one-row-per-team-and-metric table of ``okr-analysis monitor``.

All KPIs are first aggregated to periods with :func:`okr_analysis.resample.resample_kpis`
(weekly, monthly or fiscal-quarterly, each metric with its own ``aggregation``).

Windows and ``as_of``
---------------------
``as_of`` defaults to the latest KPI date. The window ends with the last *complete*
period at ``as_of``: the period containing ``as_of`` counts when the data's next
observation (at the data's own frequency, :func:`~okr_analysis.resample.infer_freq`)
would fall in a later period, otherwise the window ends with the period before. So a
monthly window of weekly data never ends with a half-filled month (which would look
like a drop for metrics aggregated by ``sum``). ``window`` is a number of periods
(default 13) or ``"quarter"``: the periods of the fiscal quarter containing ``as_of``,
counting only observations dated in that quarter.
"""

from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass
from typing import Any, Iterable, NamedTuple

import numpy as np
import pandas as pd

from ._distributions import norm_ppf, norm_sf
from .formatting import chart_value, significant
from .io.dataset import Dataset, check_dataset
from .io.quarters import Quarter
from .resample import check_freq, infer_freq, period_start, resample_kpis
from .rules import BAND_COLOURS, BASELINE_PERIODS, MONITOR_WINDOW, period_word, window_label
from .style import NEUTRAL, PEERS, REFERENCE, TEAM, legend_outside, set_alt_text

__all__ = [
    "RULES",
    "ADJUSTED_RULES",
    "ControlChartResult",
    "kpi_trends",
    "control_chart",
    "benchmark",
    "candidate_key_results",
    "monitor",
]

#: Run rules of the control chart (Western Electric rules 1–4): code → description.
RULES: dict[str, str] = {
    "beyond_3sigma": "a point beyond 3 sigma (outside the natural process limits)",
    "2_of_3_beyond_2sigma": "2 of 3 consecutive points beyond 2 sigma on the same side",
    "4_of_5_beyond_1sigma": "4 of 5 consecutive points beyond 1 sigma on the same side",
    "8_same_side": "8 consecutive points on the same side of the centre line",
}

#: Rules checked by default when the limits are adjusted for autocorrelation
#: (``autocorrelation="adjust"``): ``beyond_3sigma`` always, ``2_of_3_beyond_2sigma``
#: only when the baseline's autocorrelation estimate is below 0.2. The run rules
#: (4 of 5, 8 in a row) fire far too often on autocorrelated KPIs even with correct
#: limits; see :func:`control_chart` and docs/methods/monitoring.md for the measurements.
ADJUSTED_RULES: tuple[str, ...] = ("beyond_3sigma", "2_of_3_beyond_2sigma")

#: d2 for moving ranges of 2 points, and the XmR chart factors derived from it.
D2 = 1.128
E2 = 2.66  # 3 / d2: natural process limits = centre ± E2 × mean moving range
D4 = 3.267  # upper limit of the moving-range chart = D4 × mean moving range

_TREND_METHOD = "yue_wang_lag1"
_MIN_POINTS_AUTOCORR = 10  # below this the lag-1 autocorrelation is too unstable to correct with
_STRAIGHT = 1e-10  # detrended residuals below this × the data's scale: a straight line, nothing to correct
_MIN_BASELINE = 8  # fewest baseline points for control limits in batch functions
_AUTOCORRELATION = ("ignore", "adjust")
_MIN_BASELINE_ADJUST = 12  # fewest baseline points to estimate the lag-1 autocorrelation for the limits
_RHO_CLIP = (0.0, 0.95)  # the autocorrelation used for the limits is clipped to this range
_RHO_MAX_2_OF_3 = 0.2  # with adjusted limits, 2_of_3_beyond_2sigma is checked only below this rho
_REASONS = ("bottom_quartile", "declining", "below_benchmark")
_OFFSETS = {"W": pd.DateOffset(weeks=1), "M": pd.DateOffset(months=1), "Q": pd.DateOffset(months=3)}


# ----------------------------------------------------------------------------------
# Arguments and windows
# ----------------------------------------------------------------------------------
class _Window(NamedTuple):
    freq: str
    as_of: pd.Timestamp
    periods: pd.DatetimeIndex  # period starts of the window, oldest first
    obs_start: pd.Timestamp  # observations dated from here …
    label: str  # "13 weeks" / "quarter 2026Q3"


def _check_ds(ds: Any) -> Dataset:
    return check_dataset(ds)


_NATIVE_FREQ: "weakref.WeakKeyDictionary[Dataset, tuple[int, str]]" = weakref.WeakKeyDictionary()


def _native_freq(ds: Dataset) -> str:
    """:func:`infer_freq`, remembered per dataset (it sorts every KPI row)."""
    hit = _NATIVE_FREQ.get(ds)
    if hit is None or hit[0] != id(ds.kpis):
        hit = (id(ds.kpis), infer_freq(ds))
        _NATIVE_FREQ[ds] = hit
    return hit[1]


def _resolve_freq(ds: Dataset, freq: str | None) -> str:
    return _native_freq(ds) if freq is None else check_freq(freq)


def _resolve_as_of(ds: Dataset, as_of: Any) -> pd.Timestamp:
    if as_of is None:
        dates = ds.kpis["date"].dropna()
        if dates.empty:
            raise ValueError("as_of: the kpis table is empty, so there is no latest date; pass as_of=... "
                             "or load a source with KPI values.")
        return pd.Timestamp(dates.max()).normalize()
    try:
        ts = pd.Timestamp(as_of)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"as_of must be a date such as '2026-09-30', got {as_of!r}.") from exc
    if pd.isna(ts):
        raise ValueError(f"as_of must be a date such as '2026-09-30', got {as_of!r}.")
    return ts.normalize()


def _check_window(window: Any) -> int | str:
    if isinstance(window, str):
        if window.strip().lower() == "quarter":
            return "quarter"
    elif isinstance(window, (int, np.integer)) and not isinstance(window, bool) and window >= 2:
        return int(window)
    raise ValueError(f"window must be a number of periods (2 or more) or 'quarter', got {window!r}.")


def _last_complete_period(ds: Dataset, as_of: pd.Timestamp, freq: str) -> pd.Timestamp:
    """The period containing as_of if the data's next observation falls after it, else the one before."""
    fys = ds.fiscal_year_start
    native = _native_freq(ds)
    step = pd.Timedelta(days=7) if native == "W" else _OFFSETS[native]
    here = period_start(pd.Series([as_of]), freq, fiscal_year_start=fys).iloc[0]
    after = period_start(pd.Series([as_of + step]), freq, fiscal_year_start=fys).iloc[0]
    return here if after > here else here - _OFFSETS[freq]


def _resolve_window(ds: Dataset, window: Any, as_of: Any, freq: str | None) -> _Window:
    window = _check_window(window)
    freq = _resolve_freq(ds, freq)
    as_of = _resolve_as_of(ds, as_of)
    end = _last_complete_period(ds, as_of, freq)
    if window == "quarter":
        q = Quarter.containing(as_of, fiscal_year_start=ds.fiscal_year_start)
        start = period_start(pd.Series([q.start]), freq, fiscal_year_start=ds.fiscal_year_start).iloc[0]
        obs_start, label = q.start, f"quarter {q.label}"
    else:
        start = end - _OFFSETS[freq] * (window - 1)
        obs_start, label = start, window_label(window, freq)
    periods = pd.date_range(start, end, freq=_OFFSETS[freq]) if end >= start else pd.DatetimeIndex([])
    return _Window(freq, as_of, pd.DatetimeIndex(periods), pd.Timestamp(obs_start), label)


def _metric_table(ds: Dataset) -> pd.DataFrame:
    m = ds.metrics.set_index("metric")
    return pd.DataFrame({"higher_is_better": m["higher_is_better"].astype(bool),
                         "unit": m["unit"].fillna("").astype(str)})


def _hib(ds: Dataset, metrics: pd.Series) -> np.ndarray:
    """higher_is_better for each metric (True for metrics missing from the catalogue)."""
    return metrics.map(_metric_table(ds)["higher_is_better"]).fillna(True).astype(bool).to_numpy()


def _window_matrix(ds: Dataset, win: _Window, *, teams: Iterable[str] | None,
                   metrics: Iterable[str] | None) -> tuple[pd.DataFrame, np.ndarray]:
    """Keys (team_id, metric) of every series with data up to as_of, and their window values.

    Returns the keys frame and an array (series × window periods) with NaN for periods
    without an observation.
    """
    k = ds.kpis
    if teams is not None:
        k = k[k["team_id"].isin(set(teams))]
    if metrics is not None:
        k = k[k["metric"].isin(set(metrics))]
    k = k[(k["date"] <= win.as_of) & k["value"].notna()]
    keys = (k[["team_id", "metric"]].drop_duplicates().sort_values(["team_id", "metric"])
            .reset_index(drop=True))
    if keys.empty or len(win.periods) == 0:
        return keys, np.full((len(keys), len(win.periods)), np.nan)
    long = resample_kpis(ds, win.freq, teams=keys["team_id"].unique(), metrics=keys["metric"].unique(),
                         start=win.obs_start, end=win.as_of)
    long = long[long["period_start"].isin(win.periods)]
    wide = long.pivot_table(index=["team_id", "metric"], columns="period_start", values="value",
                            aggfunc="first")
    wide = wide.reindex(index=pd.MultiIndex.from_frame(keys), columns=win.periods)
    return keys, wide.to_numpy(dtype="float64")


def _baseline_matrix(ds: Dataset, win: _Window, keys: pd.DataFrame, baseline_periods: int) -> tuple[
        pd.DatetimeIndex, np.ndarray]:
    """Values of the ``baseline_periods`` periods before the window (series × periods)."""
    if len(win.periods) == 0 or keys.empty:
        return pd.DatetimeIndex([]), np.full((len(keys), 0), np.nan)
    first = win.periods[0]
    periods = pd.DatetimeIndex(pd.date_range(first - _OFFSETS[win.freq] * baseline_periods,
                                             first - _OFFSETS[win.freq], freq=_OFFSETS[win.freq]))
    long = resample_kpis(ds, win.freq, teams=keys["team_id"].unique(), metrics=keys["metric"].unique(),
                         start=periods[0], end=min(win.obs_start - pd.Timedelta(days=1), win.as_of))
    long = long[long["period_start"].isin(periods)]
    if long.empty:
        return periods, np.full((len(keys), len(periods)), np.nan)
    wide = long.pivot_table(index=["team_id", "metric"], columns="period_start", values="value",
                            aggfunc="first")
    wide = wide.reindex(index=pd.MultiIndex.from_frame(keys), columns=periods)
    return periods, wide.to_numpy(dtype="float64")


def _warn_list(what: str, items: list[str], hint: str) -> None:
    if not items:
        return
    shown = ", ".join(items[:5]) + (f" and {len(items) - 5} more" if len(items) > 5 else "")
    warnings.warn(f"{len(items)} {what}: {shown}. {hint}", UserWarning, stacklevel=3)


# ----------------------------------------------------------------------------------
# Mann–Kendall and Theil–Sen
# ----------------------------------------------------------------------------------
_TREND_FIELDS = ("n_points", "s", "var_s", "tau", "p_value", "variance_factor", "slope", "slope_low",
                 "slope_high", "intercept")


def _mk_fast(Y: np.ndarray, alpha: float, correct: bool = True) -> dict[str, np.ndarray]:
    """Vectorised Mann–Kendall (Yue–Wang lag-1 correction) and Theil–Sen over the rows of Y.

    ``Y`` is (series × periods) with NaN for missing periods. Gives, per row, exactly what
    :func:`_mk_reference` gives with pymannkendall and :func:`scipy.stats.theilslopes`
    (tested in tests/test_monitoring.py); rows with fewer than 3 points are NaN.
    """
    m, _ = Y.shape
    out = {f: np.full(m, np.nan) for f in _TREND_FIELDS}
    valid = ~np.isnan(Y)
    counts = valid.sum(axis=1)
    out["n_points"] = counts.astype("float64")
    order = np.argsort(~valid, axis=1, kind="stable")  # valid columns first, in time order
    z_ci = norm_ppf(alpha / 2)
    for k in np.unique(counts):
        if k < 3:
            continue
        rows = np.flatnonzero(counts == k)
        pos = order[rows, :k].astype("float64")
        x = np.take_along_axis(Y[rows], order[rows, :k], axis=1)
        i, j = np.triu_indices(k, 1)
        dx = x[:, j] - x[:, i]
        s = np.sign(dx).sum(axis=1)
        ties = (x[:, :, None] == x[:, None, :]).sum(axis=2)  # size of each value's tie group
        var0 = (k * (k - 1) * (2 * k + 5) - ((ties - 1) * (2 * ties + 5)).sum(axis=1)) / 18.0
        slopes = np.sort(dx / (pos[:, j] - pos[:, i]), axis=1)
        nt = slopes.shape[1]
        slope = np.median(slopes, axis=1)
        intercept = np.median(x, axis=1) - slope * np.median(pos, axis=1)
        # Sen (1968) eq. 2.6 confidence interval, as in scipy.stats.theilslopes
        sigma = np.sqrt(var0)
        ru = np.minimum(np.round((nt - z_ci * sigma) / 2.0).astype(int), nt - 1)
        rl = np.maximum(np.round((nt + z_ci * sigma) / 2.0).astype(int) - 1, 0)
        lo = np.take_along_axis(slopes, rl[:, None], axis=1)[:, 0]
        hi = np.take_along_axis(slopes, ru[:, None], axis=1)[:, 0]
        # Yue & Wang (2004): variance × (1 + 2 (1 - 1/n) r1), r1 = lag-1 autocorrelation of the
        # series detrended by the Sen slope (as pymannkendall.yue_wang_modification_test, lag=1)
        factor = np.ones(len(rows))
        if correct and k >= _MIN_POINTS_AUTOCORR:
            det = x - np.arange(1, k + 1) * slope[:, None]
            yc = det - det.mean(axis=1, keepdims=True)
            acov0 = (yc * yc).sum(axis=1) / k
            acov1 = (yc[:, :-1] * yc[:, 1:]).sum(axis=1) / k
            with np.errstate(invalid="ignore", divide="ignore"):
                r1 = acov1 / acov0
            f = 1 + 2 * (1 - 1 / k) * r1
            line = acov0 <= (_STRAIGHT * np.abs(x).max(axis=1)) ** 2  # residuals are rounding noise
            factor = np.where(np.isfinite(f) & (f > 1) & ~line, f, 1.0)
        var = var0 * factor
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.where(s > 0, (s - 1) / np.sqrt(var), np.where(s < 0, (s + 1) / np.sqrt(var), 0.0))
        p = 2 * norm_sf(np.abs(z))
        for name, val in (("s", s), ("var_s", var), ("tau", s / (0.5 * k * (k - 1))), ("p_value", p),
                          ("variance_factor", factor), ("slope", slope), ("slope_low", lo),
                          ("slope_high", hi), ("intercept", intercept)):
            out[name][rows] = val
    return out


def _mk_reference(Y: np.ndarray, alpha: float, correct: bool = True) -> dict[str, np.ndarray]:
    """Row by row with pymannkendall and scipy: the reference that :func:`_mk_fast` reproduces."""
    # lazy import: pymannkendall adds ~0.5 s to every command that does not test a trend
    import pymannkendall as mk
    from scipy.stats import theilslopes

    m, _ = Y.shape
    out = {f: np.full(m, np.nan) for f in _TREND_FIELDS}
    for r in range(m):
        y = Y[r]
        ok = ~np.isnan(y)
        k = int(ok.sum())
        out["n_points"][r] = k
        if k < 3:
            continue
        orig = mk.original_test(y[ok], alpha=alpha)
        res, factor = orig, 1.0
        if correct and k >= _MIN_POINTS_AUTOCORR:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                yw = mk.yue_wang_modification_test(y, alpha=alpha, lag=1)
            det = y[ok] - np.arange(1, k + 1) * mk.sens_slope(y).slope
            line = np.mean((det - det.mean()) ** 2) <= (_STRAIGHT * np.abs(y[ok]).max()) ** 2
            if np.isfinite(yw.var_s) and yw.var_s > orig.var_s and not line:
                res, factor = yw, yw.var_s / orig.var_s
        ts = theilslopes(y[ok], np.flatnonzero(ok).astype(float), alpha=1 - alpha)
        for name, val in (("s", res.s), ("var_s", res.var_s), ("tau", res.Tau), ("p_value", res.p),
                          ("variance_factor", factor), ("slope", ts.slope), ("slope_low", ts.low_slope),
                          ("slope_high", ts.high_slope), ("intercept", ts.intercept)):
            out[name][r] = val
    return out


def kpi_trends(
    ds: Dataset,
    *,
    window: int | str = MONITOR_WINDOW,
    as_of: Any = None,
    freq: str | None = None,
    alpha: float = 0.05,
    min_points: int = 6,
    teams: Iterable[str] | None = None,
    metrics: Iterable[str] | None = None,
    autocorrelation: bool = True,
    engine: str = "fast",
) -> pd.DataFrame:
    """Trend of every team's KPIs over a window: Mann–Kendall test and Theil–Sen slope.

    The KPIs are aggregated to periods (:func:`~okr_analysis.resample.resample_kpis`);
    each (team, metric) series in the window is tested for a monotonic trend with the
    Mann–Kendall test, its variance corrected for autocorrelation after Yue & Wang
    (2004) with the lag-1 autocorrelation of the Sen-detrended series (as
    ``pymannkendall.yue_wang_modification_test(x, lag=1)``). The correction only
    ever *inflates* the variance (factor floored at 1): weekly KPIs are positively
    autocorrelated, which makes the original test see trends in noise, whereas on
    short windows a spurious negative autocorrelation would make it overconfident.
    Yue–Wang with lag 1 was chosen over Hamed & Rao (1998) because on 13-point windows
    Hamed–Rao only counts autocorrelations beyond ±0.54 (its significance screen), so
    it hardly corrects, and when it does it can deflate the variance: in simulations
    (13 points, 2,000 series) white noise gave 7.5 % false trends at alpha 0.05 with
    Hamed–Rao (lag 3) against 3.7 % with this test, and AR(1) noise with phi 0.3 gave
    10.5 % with the original test against 8.5 %. Windows with fewer than 10 points use
    the original test (the lag-1 autocorrelation is too unstable there), and so do
    series lying on a straight line (their residual autocorrelation is rounding noise).

    Parameters
    ----------
    ds : Dataset
    window : int or 'quarter', default 13
        Number of periods ending with the last complete period at ``as_of``, or
        ``'quarter'`` for the fiscal quarter containing ``as_of`` (see the module notes).
    as_of : date-like, optional
        Default: the latest KPI date.
    freq : {'W', 'M', 'Q'}, optional
        Period length; default: the data's own frequency. With monthly or quarterly
        periods a window of 13 is 13 months or quarters.
    alpha : float, default 0.05
        Significance level of the trend test; the slope's confidence interval has
        level ``1 - alpha``.
    min_points : int, default 6
        Series with fewer observed periods in the window get a NaN row with
        ``trend = 'insufficient data'`` (one warning lists them).
    teams, metrics : iterable of str, optional
        Restrict to these teams / metrics.
    autocorrelation : bool, default True
        Correct the test for autocorrelation as above; False gives the original
        Mann–Kendall test (Mann 1945, Kendall 1975, as in Gilbert 1987).
    engine : {'fast', 'reference'}, default 'fast'
        ``'fast'`` computes all series at once with NumPy; ``'reference'`` calls
        pymannkendall and :func:`scipy.stats.theilslopes` series by series (about
        1.5 ms per series). Both give the same numbers (tested).

    Returns
    -------
    pandas.DataFrame
        One row per team and metric with a KPI value on or before ``as_of``, sorted by
        team_id and metric, with columns:

        - ``team_id``, ``metric`` (str)
        - ``freq`` (str): ``'W'``, ``'M'`` or ``'Q'``
        - ``window_start``, ``window_end`` (datetime64): first and last period of the window
        - ``n_points`` (int): periods with a value in the window
        - ``latest`` (float): value of the last period with a value in the window
        - ``trend`` (str): ``'increasing'``, ``'decreasing'``, ``'stable'`` (no significant
          trend at ``alpha``) or ``'insufficient data'``
        - ``assessment`` (str): ``'improving'``, ``'worsening'`` or ``'stable'``: the trend read
          with the metric's ``higher_is_better``; NaN when the data are insufficient
        - ``slope`` (float): Theil–Sen slope, in the metric's unit per period
        - ``slope_low``, ``slope_high`` (float): its ``1 - alpha`` confidence interval
          (Sen 1968, as :func:`scipy.stats.theilslopes`; it assumes independent values,
          so it can exclude 0 when the autocorrelation-corrected test is not significant:
          ``trend`` follows the test)
        - ``p_value`` (float): two-sided p-value of the (corrected) Mann–Kendall test
        - ``tau`` (float): Kendall's tau, S / (n (n − 1) / 2)
        - ``s`` (float): Mann–Kendall S (concordant minus discordant pairs)
        - ``variance_factor`` (float): factor applied to Var(S) for autocorrelation (≥ 1)
        - ``method`` (str): ``'yue_wang_lag1'`` when the factor is above 1, else ``'original'``
        - ``fitted_start``, ``fitted_end`` (float): the Theil–Sen line (Conover intercept) at
          the first and last period of the window
        - ``higher_is_better`` (bool)

    Warns
    -----
    UserWarning
        Listing the series with too few points and the constant series (a constant series
        is ``stable`` with slope 0 and a NaN p-value).
    """
    ds = _check_ds(ds)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (e.g. 0.05), got {alpha!r}.")
    if isinstance(min_points, bool) or not isinstance(min_points, (int, np.integer)) or min_points < 3:
        raise ValueError(f"min_points must be an integer of at least 3, got {min_points!r}.")
    if engine not in ("fast", "reference"):
        raise ValueError(f"engine must be 'fast' or 'reference', got {engine!r}.")
    win = _resolve_window(ds, window, as_of, freq)
    keys, Y = _window_matrix(ds, win, teams=teams, metrics=metrics)
    return _trend_table(ds, win, keys, Y, alpha=alpha, min_points=int(min_points), engine=engine,
                        autocorrelation=bool(autocorrelation))


def _trend_table(ds: Dataset, win: _Window, keys: pd.DataFrame, Y: np.ndarray, *, alpha: float,
                 min_points: int, engine: str = "fast", autocorrelation: bool = True) -> pd.DataFrame:
    res = (_mk_fast if engine == "fast" else _mk_reference)(Y, alpha, autocorrelation)
    n = res["n_points"].astype("int64")
    valid = ~np.isnan(Y)
    latest = np.full(len(Y), np.nan)
    if Y.size:
        last_idx = Y.shape[1] - 1 - np.argmax(valid[:, ::-1], axis=1)
        latest = np.where(valid.any(axis=1), Y[np.arange(len(Y)), last_idx], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        constant = valid.any(axis=1) & (np.nanmax(np.where(valid, Y, -np.inf), axis=1, initial=-np.inf)
                                        == np.nanmin(np.where(valid, Y, np.inf), axis=1, initial=np.inf))
    short = n < min_points
    constant &= ~short
    p = res["p_value"]
    s = res["s"]
    trend = np.where(p < alpha, np.where(s > 0, "increasing", "decreasing"), "stable").astype(object)
    trend[constant] = "stable"
    trend[short] = "insufficient data"
    hib = _hib(ds, keys["metric"])
    good_up = np.where(hib, "improving", "worsening")
    good_down = np.where(hib, "worsening", "improving")
    assessment = np.where(trend == "increasing", good_up,
                          np.where(trend == "decreasing", good_down, "stable")).astype(object)
    assessment[short] = np.nan
    num = {f: res[f].copy() for f in _TREND_FIELDS if f != "n_points"}
    for f in num:
        num[f][short] = np.nan
    for f in ("slope", "slope_low", "slope_high", "s", "tau"):
        num[f][constant] = 0.0
    for f in ("p_value", "var_s"):
        num[f][constant] = np.nan
    factor = num["variance_factor"]
    method = np.where(factor > 1, _TREND_METHOD, "original").astype(object)
    method[short] = np.nan
    last_pos = len(win.periods) - 1
    out = pd.DataFrame({
        "team_id": keys["team_id"].astype("str").to_numpy(),
        "metric": keys["metric"].astype("str").to_numpy(),
        "freq": win.freq,
        "window_start": win.periods[0] if len(win.periods) else pd.NaT,
        "window_end": win.periods[-1] if len(win.periods) else pd.NaT,
        "n_points": n,
        "latest": latest,
        "trend": trend,
        "assessment": assessment,
        "slope": num["slope"],
        "slope_low": num["slope_low"],
        "slope_high": num["slope_high"],
        "p_value": num["p_value"],
        "tau": num["tau"],
        "s": num["s"],
        "variance_factor": factor,
        "method": method,
        "fitted_start": num["intercept"],
        "fitted_end": num["intercept"] + num["slope"] * last_pos,
        "higher_is_better": hib,
    })
    out["window_start"] = out["window_start"].astype("datetime64[ns]")
    out["window_end"] = out["window_end"].astype("datetime64[ns]")
    for col in ("trend", "assessment", "method"):
        out[col] = out[col].astype("str").where(out[col].notna())
    labels = [f"{t}/{m} ({c})" for t, m, c in zip(out["team_id"], out["metric"], n)]
    _warn_list(f"series with fewer than {min_points} points in the window ({win.label}) are "
               "'insufficient data'", [lab for lab, sh in zip(labels, short) if sh],
               "Use a longer window or a shorter period (freq).")
    _warn_list("series are constant over the window (trend 'stable', p-value NaN)",
               [f"{t}/{m}" for t, m, c in zip(out["team_id"], out["metric"], constant) if c],
               "A constant KPI may be a data-entry default; check the source.")
    return out


# ----------------------------------------------------------------------------------
# Control charts
# ----------------------------------------------------------------------------------
def _check_rules(rules: Iterable[str] | None) -> tuple[str, ...] | None:
    """The rules as a tuple; None stays None (the default set of the chart's mode)."""
    if rules is None:
        return None
    if isinstance(rules, str):
        rules = [rules]
    rules = tuple(rules)
    bad = [r for r in rules if r not in RULES]
    if bad:
        raise ValueError(f"rules: unknown rule(s) {bad}; choose from {list(RULES)}.")
    return rules


def _check_autocorrelation(value: Any, name: str = "autocorrelation") -> str:
    if isinstance(value, str) and value.strip().lower() in _AUTOCORRELATION:
        return value.strip().lower()
    raise ValueError(f"{name} must be 'adjust' (limits adjusted for the lag-1 autocorrelation of the baseline) "
                     f"or 'ignore' (the classic XmR chart), got {value!r}.")


def _rolling_count(mask: np.ndarray, width: int) -> np.ndarray:
    """Per row: number of True values among each point and the width − 1 points before it."""
    c = np.concatenate([np.zeros((mask.shape[0], 1), dtype=np.int64), np.cumsum(mask, axis=1, dtype=np.int64)],
                       axis=1)
    idx = np.arange(1, mask.shape[1] + 1)
    return c[:, idx] - c[:, np.maximum(idx - width, 0)]


def _run_length(mask: np.ndarray) -> np.ndarray:
    """Per row: length of the run of True values ending at each point (0 where False)."""
    idx = np.broadcast_to(np.arange(mask.shape[1]), mask.shape)
    last_false = np.maximum.accumulate(np.where(~mask, idx, -1), axis=1)
    return np.where(mask, idx - last_false, 0)


def _rule_masks(V: np.ndarray, centre: np.ndarray, sigma: np.ndarray, rules: tuple[str, ...],
                enabled: dict[str, np.ndarray] | None = None) -> list[tuple[str, str, np.ndarray]]:
    """(rule, side, mask) for each rule and side; mask[r, i] = point i of row r signals.

    ``V`` is (series × points) in time order; NaN only after a row's last value (NaN
    never signals). A point signals a rule when the pattern is complete at that point
    and the point itself belongs to it, so a longer run flags every point extending it.
    ``enabled`` optionally says which rows check each rule (rule → bool per row; a rule
    missing from it is checked by no row).
    """
    out = []
    c, s = centre[:, None], sigma[:, None]
    for side, sgn in (("above", 1.0), ("below", -1.0)):
        with np.errstate(invalid="ignore"):
            d = sgn * (V - c)
            b1, b2, b3, b0 = d > s, d > 2 * s, d > 3 * s, d > 0
        masks = {
            "beyond_3sigma": lambda: b3,
            "2_of_3_beyond_2sigma": lambda: b2 & (_rolling_count(b2, 3) >= 2),
            "4_of_5_beyond_1sigma": lambda: b1 & (_rolling_count(b1, 5) >= 4),
            "8_same_side": lambda: _run_length(b0) >= 8,
        }
        for rule in rules:
            if enabled is None:
                out.append((rule, side, masks[rule]()))
            elif rule in enabled and enabled[rule].any():
                out.append((rule, side, masks[rule]() & enabled[rule][:, None]))
    return out


def _run_rules(values: np.ndarray, centre: float, sigma: float,
               rules: tuple[str, ...]) -> list[tuple[int, str, str]]:
    """Signals of one series as (index, rule, side), ordered by index then rule order."""
    v = np.asarray(values, dtype="float64")[None, :]
    found = [(int(i), rule, side) for rule, side, mask in
             _rule_masks(v, np.array([centre]), np.array([sigma]), rules) for i in np.flatnonzero(mask[0])]
    order = {r: n for n, r in enumerate(RULES)}
    found.sort(key=lambda t: (t[0], order[t[1]], t[2]))
    return found


def _lag1_autocorrelation(P: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lag-1 autocorrelation of each row of a left-packed matrix (values first, NaN after).

    Returns ``r1``, the sample autocorrelation Σ (x_t − x̄)(x_t+1 − x̄) / Σ (x_t − x̄)²
    (as ``statsmodels.tsa.stattools.acf``; NaN with fewer than 3 points or no variation),
    and ``rho``, the estimate used for adjusted limits: ``r1`` corrected for its
    small-sample bias, E[r1] ≈ ρ − (1 + 3ρ)/n for an AR(1) whose mean is estimated
    (Marriott & Pope 1954), i.e. ``r1 + (1 + 3 r1) / n``, clipped to [0, 0.95]
    (0 where ``r1`` is NaN).
    """
    n = counts.astype("float64")
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # rows without values
        c = P - np.nanmean(P, axis=1, keepdims=True)
        num = np.nansum(c[:, :-1] * c[:, 1:], axis=1)
        den = np.nansum(c * c, axis=1)
        r1 = np.where((counts >= 3) & (den > 0), num / den, np.nan)
        rho = np.clip(r1 + (1 + 3 * r1) / n, *_RHO_CLIP)
    return r1, np.where(np.isfinite(rho), rho, 0.0)


class _Limits(NamedTuple):
    centre: np.ndarray
    mr_bar: np.ndarray
    sigma: np.ndarray
    r1: np.ndarray  # lag-1 sample autocorrelation of the baseline
    rho: np.ndarray  # autocorrelation used in sigma (NaN where the limits are not adjusted)
    adjusted: np.ndarray  # bool: sigma adjusted for autocorrelation
    enabled: dict[str, np.ndarray] | None  # default rules per row (None: the rules given apply to every row)


def _xmr_limits(P: np.ndarray, counts: np.ndarray, autocorrelation: str,
                rules: tuple[str, ...] | None) -> _Limits:
    """Centre, mean moving range and sigma of each row's baseline (left-packed, NaN after).

    Classic: sigma = mR̄ / d2. Adjusted (rows with at least 12 baseline points):
    sigma = mR̄ / (d2 · sqrt(1 − rho)). With ``rules=None`` also the default rules of
    each row: all four (classic); with ``autocorrelation='adjust'`` beyond_3sigma, plus
    2_of_3_beyond_2sigma where the limits are adjusted and rho < 0.2.
    """
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        centre = np.nanmean(P, axis=1)
        mr_bar = np.nansum(np.abs(np.diff(P, axis=1)), axis=1) / (counts - 1)
    r1, rho = _lag1_autocorrelation(P, counts)
    adjusted = (counts >= _MIN_BASELINE_ADJUST) if autocorrelation == "adjust" else np.zeros(len(P), dtype=bool)
    sigma = np.where(adjusted, mr_bar / (D2 * np.sqrt(1 - rho)), mr_bar / D2)
    enabled = None
    if rules is None:
        if autocorrelation == "adjust":
            enabled = {"beyond_3sigma": np.ones(len(P), dtype=bool),
                       "2_of_3_beyond_2sigma": adjusted & (rho < _RHO_MAX_2_OF_3)}
        else:
            enabled = {r: np.ones(len(P), dtype=bool) for r in RULES}
    return _Limits(centre, mr_bar, sigma, r1, np.where(adjusted, rho, np.nan), adjusted, enabled)


def _zones(v: np.ndarray, centre: float, sigma: float) -> np.ndarray:
    d = np.abs(v - centre)
    return np.select([d > 3 * sigma, d > 2 * sigma, d > sigma], ["beyond", "A", "B"], "C").astype(object)


@dataclass(frozen=True, eq=False)
class ControlChartResult:
    """An XmR (individuals and moving range) chart: limits, points and run-rule signals.

    Attributes
    ----------
    centre : float
        Centre line: mean of the baseline points.
    ucl, lcl : float
        Natural process limits: ``centre ± 2.66 × mr_bar`` (= ± 3 sigma) on the classic
        chart; ``centre ± 3 × sigma`` when the limits are adjusted for autocorrelation.
    sigma : float
        ``mr_bar / 1.128`` (d2 for moving ranges of two points); when adjusted,
        ``mr_bar / (1.128 × sqrt(1 − rho))``.
    mr_bar : float
        Mean moving range of the baseline (absolute differences of consecutive points).
    mr_ucl : float
        Upper limit of the moving-range chart: ``3.267 × mr_bar``.
    baseline_start, baseline_end : Timestamp or object
        First and last point of the baseline (index labels of the series).
    n_baseline : int
        Number of baseline points.
    points : pandas.DataFrame
        One row per point, in order, with columns:

        - ``date`` (datetime64 or the series' index labels), ``value`` (float)
        - ``moving_range`` (float): absolute difference from the previous point; NaN for the first
        - ``zone`` (str): ``'C'`` within 1 sigma of the centre, ``'B'`` 1–2 sigma, ``'A'`` 2–3 sigma,
          ``'beyond'`` beyond 3 sigma
        - ``side`` (str): ``'above'``, ``'below'`` or ``'centre'``
        - ``in_baseline`` (bool): the point is part of the baseline
        - ``signal`` (bool): any rule fired here
    signals : pandas.DataFrame
        One row per point and rule that fired, ordered by date, with columns:

        - ``date``, ``value``: as in ``points``
        - ``rule`` (str): a key of :data:`RULES`
        - ``side`` (str): ``'above'`` or ``'below'``
        - ``description`` (str): what the rule says, in words
    label : str
        Name used in the plot title.
    autocorrelation : str
        The option asked for: ``'ignore'`` (classic chart) or ``'adjust'``.
    adjusted : bool
        Whether sigma was adjusted for autocorrelation (False with ``'ignore'``, and with
        ``'adjust'`` when the baseline has fewer than 12 points: see ``note``).
    r1 : float
        Lag-1 sample autocorrelation of the baseline (NaN with fewer than 3 points or no
        variation), reported in both modes.
    rho : float
        The autocorrelation used for sigma: ``r1`` corrected for small-sample bias,
        ``r1 + (1 + 3 r1) / n_baseline``, clipped to [0, 0.95]; NaN when not adjusted.
    rules : tuple of str
        The rules that were checked.
    note : str
        Why an asked-for adjustment was not made (empty otherwise).
    """

    centre: float
    ucl: float
    lcl: float
    sigma: float
    mr_bar: float
    mr_ucl: float
    baseline_start: Any
    baseline_end: Any
    n_baseline: int
    points: pd.DataFrame
    signals: pd.DataFrame
    label: str = ""
    autocorrelation: str = "ignore"
    adjusted: bool = False
    r1: float = float("nan")
    rho: float = float("nan")
    rules: tuple[str, ...] = tuple(RULES)
    note: str = ""

    @property
    def table(self) -> pd.DataFrame:
        """The points (alias of :attr:`points`)."""
        return self.points

    def summary(self) -> pd.Series:
        """The limits, the autocorrelation adjustment and the number of signals per rule, as a Series."""
        counts = self.signals["rule"].value_counts()
        data = {"centre": self.centre, "ucl": self.ucl, "lcl": self.lcl, "sigma": self.sigma,
                "mr_bar": self.mr_bar, "mr_ucl": self.mr_ucl, "n_baseline": self.n_baseline,
                "baseline_start": self.baseline_start, "baseline_end": self.baseline_end,
                "n_points": len(self.points), "autocorrelation": self.autocorrelation,
                "adjusted": self.adjusted, "r1": self.r1, "rho": self.rho, "rules": ", ".join(self.rules),
                "note": self.note}
        data.update({f"n_{r}": int(counts.get(r, 0)) for r in RULES})
        return pd.Series(data, name=self.label or "control chart", dtype=object)

    def _mark_baseline_end(self, ax: Any) -> None:
        if self.n_baseline and len(self.points) > self.n_baseline:
            ax.axvline(self.baseline_end, color=NEUTRAL, linestyle=":", linewidth=1, zorder=1,
                       label="end of the baseline")

    def _message(self, name: str, unit: str) -> str:
        """The chart's message in words: the latest value, its place against the limits and the signals."""
        def num(v: float) -> str:
            return chart_value(v, unit)

        if self.points.empty:
            return f"{name}: no values"
        last = self.points.iloc[-1]
        def day(d: Any) -> str:
            d = pd.Timestamp(d)
            return f"{d.day} {d:%b %Y}"

        head = f"{name}: {num(float(last['value']))} on {day(last['date'])}"
        flagged = self.points[self.points["signal"]]
        if flagged.empty:
            return f"{head}, within the usual range ({num(self.lcl)}–{num(self.ucl)}); no signal"
        n = len(flagged)
        return (f"{head}; usual range {num(self.lcl)}–{num(self.ucl)}; {n} point{'s' if n != 1 else ''} "
                f"flagged, the latest on {day(flagged['date'].iloc[-1])}")

    def plot(self, ax: Any = None, *, label: str | None = None, unit: str = "", legend: bool = True) -> Any:
        """Draw the individuals chart: points, centre line, limits, shaded sigma zones, signals.

        The title states the message (latest value, the usual range, the signals) and is also recorded as
        the chart's alt text (:func:`okr_analysis.style.alt_text`); colours are those of
        :mod:`okr_analysis.style`; the legend sits below the axes.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Default: the current axes.
        label : str, optional
            The metric's name in words (e.g. its description); default: the result's ``label``.
        unit : str
            The metric's unit, written on the value axis and in the title.
        legend : bool, default True
            Draw the legend (False in small multiples that share one).

        Returns
        -------
        matplotlib Axes
        """
        # lazy import: pyplot adds ~0.5 s to every command that draws nothing
        import matplotlib.dates as mdates
        import matplotlib.pyplot as plt

        ax = plt.gca() if ax is None else ax
        unit = unit if isinstance(unit, str) else ""
        name = label or self.label or "value"
        x, y = self.points["date"], self.points["value"]
        c, s = self.centre, self.sigma
        for k, alpha in ((3, 0.05), (2, 0.07), (1, 0.09)):
            ax.axhspan(c - k * s, c + k * s, color=PEERS, alpha=alpha, linewidth=0, zorder=0)
        ax.plot(x, y, marker="o", markersize=2.5, linewidth=1.0, color=TEAM, label="value", zorder=2)
        ax.axhline(c, color=REFERENCE, linewidth=1, label="centre", zorder=1)
        how = " (adjusted for autocorrelation)" if self.adjusted else ""
        ax.axhline(self.ucl, color=BAND_COLOURS["red"], linestyle="--", linewidth=1, label=f"limits{how}", zorder=1)
        ax.axhline(self.lcl, color=BAND_COLOURS["red"], linestyle="--", linewidth=1, zorder=1)
        self._mark_baseline_end(ax)
        flagged = self.points[self.points["signal"]]
        if not flagged.empty:
            ax.scatter(flagged["date"], flagged["value"], s=40, facecolors="none", edgecolors=BAND_COLOURS["red"],
                       linewidths=1.3, label="signal", zorder=3)
        message = self._message(name, unit)
        ax.set_title(message, fontsize=9)
        ax.set_xlabel("date")
        ax.set_ylabel(f"{name} ({unit})" if unit else name)
        locator = mdates.AutoDateLocator(maxticks=6)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        if legend:
            legend_outside(ax)
        set_alt_text(ax, message)
        return ax

    def plot_moving_range(self, ax: Any = None, *, label: str | None = None, unit: str = "",
                          legend: bool = True) -> Any:
        """Draw the moving-range chart: moving ranges, their baseline mean and upper limit.

        Moving ranges above the upper limit (``3.267 × mr_bar``) are circled. The limit
        stays valid for autocorrelated values: a moving range is the absolute value of
        a normal difference whatever its variance, and ``mr_bar`` estimates its mean.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Default: the current axes.
        label : str, optional
            The metric's name in words; default: the result's ``label``.
        unit : str
            The metric's unit (the value axis).
        legend : bool, default True
            Draw the legend (below the axes).

        Returns
        -------
        matplotlib Axes
        """
        # lazy import: pyplot adds ~0.5 s to every command that draws nothing
        import matplotlib.dates as mdates
        import matplotlib.pyplot as plt

        ax = plt.gca() if ax is None else ax
        unit = unit if isinstance(unit, str) else ""
        name = label or self.label or "value"
        x, mr = self.points["date"], self.points["moving_range"]
        ax.plot(x, mr, marker="o", markersize=2.5, linewidth=1.0, color=TEAM, label="moving range", zorder=2)
        ax.axhline(self.mr_bar, color=REFERENCE, linewidth=1, label="mean moving range", zorder=1)
        ax.axhline(self.mr_ucl, color=BAND_COLOURS["red"], linestyle="--", linewidth=1, label="upper limit",
                   zorder=1)
        self._mark_baseline_end(ax)
        high = self.points[self.points["moving_range"] > self.mr_ucl]
        if not high.empty:
            ax.scatter(high["date"], high["moving_range"], s=40, facecolors="none", edgecolors=BAND_COLOURS["red"],
                       linewidths=1.3, label="above the limit", zorder=3)
        n = len(high)
        message = (f"Moving range of {name}: changes from one period to the next "
                   + (f"larger than usual {n} time{'s' if n != 1 else ''}" if n else "within the usual size")
                   + f" (mean {self.mr_bar:.3g}, limit {self.mr_ucl:.3g})")
        ax.set_title(message, fontsize=9)
        ax.set_xlabel("date")
        ax.set_ylabel(f"moving range ({unit})" if unit else "moving range")
        ax.set_ylim(bottom=0)
        locator = mdates.AutoDateLocator(maxticks=6)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        if legend:
            legend_outside(ax)
        set_alt_text(ax, message)
        return ax


def control_chart(
    series: pd.Series | pd.DataFrame,
    *,
    baseline: int | tuple[Any, Any] | None = None,
    rules: Iterable[str] | None = None,
    autocorrelation: str = "ignore",
    label: str | None = None,
) -> ControlChartResult:
    """XmR chart (individuals and moving range) with the Western Electric run rules.

    **Classic chart** (``autocorrelation='ignore'``, the default): centre line = mean of
    the baseline; sigma = mean moving range / 1.128 (d2 for moving ranges of two
    points); natural process limits = centre ± 2.66 × mean moving range; the
    moving-range chart's upper limit = 3.267 × mean moving range (Wheeler & Chambers,
    *Understanding Statistical Process Control*; Montgomery, *Introduction to
    Statistical Quality Control*, individuals charts). Every point, baseline included,
    is checked against the rules (see :data:`RULES`):

    - ``beyond_3sigma``: a point beyond 3 sigma;
    - ``2_of_3_beyond_2sigma``: 2 of 3 consecutive points beyond 2 sigma on one side;
    - ``4_of_5_beyond_1sigma``: 4 of 5 consecutive points beyond 1 sigma on one side;
    - ``8_same_side``: 8 points in a row on one side of the centre line.

    A pattern signals at the point that completes it, and only if that point is itself
    part of it; a longer run signals again at every point that extends it. "Beyond" is
    strict, and a point exactly on the centre line breaks a run. On independent normal
    values the per-point false-alarm rates are about 0.27 %, 0.20 %, 0.45 % and 0.78 %.

    **Adjusted for autocorrelation** (``autocorrelation='adjust'``). The XmR chart
    assumes independent values. Weekly KPIs are positively autocorrelated, and then
    consecutive points are close, so the mean moving range understates the process's
    spread and the limits are too narrow (Montgomery, *Introduction to Statistical
    Quality Control*, 7th ed., section 10.4, "SPC with autocorrelated process data").
    For a stationary Gaussian AR(1) process with standard deviation σ and lag-1
    autocorrelation ρ, X_t − X_t−1 is normal with variance 2σ²(1 − ρ), so
    E|X_t − X_t−1| = 2σ·sqrt((1 − ρ)/π) = 1.128·σ·sqrt(1 − ρ). Hence

        sigma = mR̄ / (1.128 · sqrt(1 − ρ̂)),   limits = centre ± 3 sigma,

    with ρ̂ the baseline's lag-1 sample autocorrelation r1 corrected for its
    small-sample bias (E[r1] ≈ ρ − (1 + 3ρ)/n, Marriott & Pope 1954: ρ̂ = r1 + (1 + 3 r1)/n),
    clipped to [0, 0.95]. The centre line is unchanged; a baseline with ρ̂ = 0 gives
    the classic sigma. With fewer than 12 baseline points the autocorrelation is
    not estimated: the classic limits are used, ``adjusted`` is False and ``note``
    (and a warning) says so.

    Correct limits are not enough for the run rules: under positive autocorrelation
    points stay on one side and near each other, so "4 of 5" and "8 in a row" fire
    often even with the right sigma. With ``'adjust'`` and ``rules=None`` the chart
    therefore checks ``beyond_3sigma``, plus ``2_of_3_beyond_2sigma`` only when
    ρ̂ < 0.2 (:data:`ADJUSTED_RULES`); without an estimate (short baseline),
    ``beyond_3sigma`` only. Measured on simulated AR(1) noise (26 baseline and 13 new
    points, 4,000 series per phi; docs/methods/monitoring.md): the share of 13-point windows
    with a signal is 9 %, 12 %, 12 % and 15 % for phi = 0, 0.3, 0.5, 0.8, against 24 %,
    51 %, 75 % and 95 % on the classic chart with all four rules.

    Parameters
    ----------
    series : pandas.Series or DataFrame
        Values indexed by date (e.g. ``ds.kpi_series(team, metric)`` or one series of
        :func:`~okr_analysis.resample.resample_kpis`), or a frame with a ``date`` or
        ``period_start`` column and a ``value`` column. Missing values are dropped;
        points are sorted by date.
    baseline : int or (start, end), optional
        Points that set the limits: the first ``n`` points, or the points dated from
        ``start`` to ``end`` (inclusive; either may be None). Default: all points.
    rules : iterable of str, optional
        Rules to check (keys of :data:`RULES`). Default: all four on the classic chart;
        with ``autocorrelation='adjust'`` the set described above. Rules given here are
        checked as given in either mode.
    autocorrelation : {'ignore', 'adjust'}, default 'ignore'
        ``'ignore'``: the classic (textbook) XmR chart. ``'adjust'``: sigma adjusted for
        the baseline's lag-1 autocorrelation, as above — what :func:`monitor` and
        :func:`candidate_key_results` use by default.
    label : str, optional
        Title and axis label of the plot; default the series name.

    Returns
    -------
    ControlChartResult

    Raises
    ------
    ValueError
        With fewer than two baseline points (no moving range), an unknown rule or
        ``autocorrelation`` value.

    Warns
    -----
    UserWarning
        When the baseline has no variation (sigma 0: every point off the centre signals),
        and when ``'adjust'`` falls back to the classic limits (fewer than 12 baseline points).
    """
    rules = _check_rules(rules)
    autocorrelation = _check_autocorrelation(autocorrelation)
    if isinstance(series, pd.DataFrame):
        date_col = next((c for c in ("date", "period_start") if c in series.columns), None)
        if date_col is None or "value" not in series.columns:
            raise ValueError("series: a DataFrame needs a 'date' (or 'period_start') column and a 'value' "
                             f"column, got columns {list(series.columns)}.")
        series = series.set_index(date_col)["value"]
    if not isinstance(series, pd.Series):
        raise TypeError(f"series must be a pandas Series indexed by date, got {type(series).__name__}.")
    name = label if label is not None else ("" if series.name is None else str(series.name))
    s = pd.to_numeric(series, errors="coerce").dropna().sort_index()
    dates, v = s.index, s.to_numpy(dtype="float64")
    if baseline is None:
        in_base = np.ones(len(v), dtype=bool)
    elif isinstance(baseline, (int, np.integer)) and not isinstance(baseline, bool):
        in_base = np.arange(len(v)) < int(baseline)
    elif isinstance(baseline, tuple) and len(baseline) == 2:
        lo, hi = baseline
        in_base = np.ones(len(v), dtype=bool)
        if lo is not None:
            in_base &= np.asarray(dates >= pd.Timestamp(lo))
        if hi is not None:
            in_base &= np.asarray(dates <= pd.Timestamp(hi))
    else:
        raise ValueError(f"baseline must be a number of points, a (start, end) pair of dates or None, "
                         f"got {baseline!r}.")
    base = v[in_base]
    if len(base) < 2:
        raise ValueError(f"baseline: the control limits need at least 2 baseline points, found {len(base)}; "
                         "widen the baseline (Wheeler recommends 20 or more points).")
    lim = _xmr_limits(base[None, :], np.array([len(base)]), autocorrelation, rules)
    centre, mr_bar, sigma = float(lim.centre[0]), float(lim.mr_bar[0]), float(lim.sigma[0])
    adjusted = bool(lim.adjusted[0])
    if rules is None:
        rules = tuple(r for r in RULES if r in lim.enabled and lim.enabled[r][0])
    what = f"control_chart{' ' + name if name else ''}"
    note = ""
    if autocorrelation == "adjust" and not adjusted:
        note = (f"autocorrelation='adjust' needs at least {_MIN_BASELINE_ADJUST} baseline points to estimate the "
                f"autocorrelation, found {len(base)}: classic limits (mean moving range / 1.128) used"
                + (", rule beyond_3sigma only" if rules == ("beyond_3sigma",) else ""))
        warnings.warn(f"{what}: {note}.", UserWarning, stacklevel=2)
    if sigma == 0:
        warnings.warn(f"{what}: the baseline has no variation (all values {centre:g}); every point off the centre "
                      "line signals.", UserWarning, stacklevel=2)
    mr = np.concatenate([[np.nan], np.abs(np.diff(v))])
    found = _run_rules(v, centre, sigma, rules)
    flagged = np.zeros(len(v), dtype=bool)
    flagged[[i for i, _, _ in found]] = True
    points = pd.DataFrame({
        "date": dates,
        "value": v,
        "moving_range": mr,
        "zone": _zones(v, centre, sigma),
        "side": np.select([v > centre, v < centre], ["above", "below"], "centre").astype(object),
        "in_baseline": in_base,
        "signal": flagged,
    })
    signals = pd.DataFrame({
        "date": [dates[i] for i, _, _ in found],
        "value": np.array([v[i] for i, _, _ in found], dtype="float64"),
        "rule": [r for _, r, _ in found],
        "side": [sd for _, _, sd in found],
        "description": [RULES[r] for _, r, _ in found],
    })
    if not len(found):
        signals["date"] = signals["date"].astype(points["date"].dtype)
    base_dates = dates[in_base]
    half_width = 3 * sigma if adjusted else E2 * mr_bar
    return ControlChartResult(
        centre=centre, ucl=centre + half_width, lcl=centre - half_width, sigma=sigma, mr_bar=mr_bar,
        mr_ucl=D4 * mr_bar, baseline_start=base_dates[0], baseline_end=base_dates[-1],
        n_baseline=int(in_base.sum()), points=points, signals=signals, label=name,
        autocorrelation=autocorrelation, adjusted=adjusted, r1=float(lim.r1[0]), rho=float(lim.rho[0]),
        rules=tuple(rules), note=note)


class _SignalSummary(NamedTuple):
    centre: np.ndarray  # baseline centre line per series (NaN without a baseline)
    sigma: np.ndarray  # sigma of the limits per series (NaN without a baseline)
    rho: np.ndarray  # autocorrelation used for sigma (NaN when not adjusted)
    n_signals: np.ndarray  # points with a signal, float, NaN without a baseline
    text: list[str]
    found: pd.DataFrame  # row (series position), date, rule, side — signals inside the window
    fallback: np.ndarray  # bool: 'adjust' asked for but too few baseline points (classic limits used)


def _pack_left(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values of each row moved to the front in order (NaN after), the column order and the counts."""
    valid = ~np.isnan(A)
    order = np.argsort(~valid, axis=1, kind="stable")
    return np.take_along_axis(A, order, axis=1), order, valid.sum(axis=1)


def _batch_signals(ds: Dataset, win: _Window, keys: pd.DataFrame, Y: np.ndarray, *, baseline_periods: int,
                   rules: tuple[str, ...] | None, autocorrelation: str = "adjust") -> _SignalSummary:
    """Control-chart signals inside the window for every series, limits from the periods before it.

    Vectorised over series: missing periods are skipped (each series' points are its
    observed periods in order), as :func:`control_chart` does for one series, with the
    same limits and (for ``rules=None``) the same default rules.
    """
    m = len(keys)
    _, B = _baseline_matrix(ds, win, keys, baseline_periods)
    Bp, _, kb = _pack_left(B)
    ok = kb >= _MIN_BASELINE
    centre = np.full(m, np.nan)
    sigma = np.full(m, np.nan)
    rho = np.full(m, np.nan)
    adjusted = np.zeros(m, dtype=bool)
    sel = np.flatnonzero(ok)
    lim = _xmr_limits(Bp[sel], kb[sel], autocorrelation, rules)
    centre[sel], sigma[sel], rho[sel], adjusted[sel] = lim.centre, lim.sigma, lim.rho, lim.adjusted
    Yp, yorder, kw = _pack_left(Y)
    V = np.concatenate([Bp, Yp], axis=1)
    V, _, _ = _pack_left(V)  # baseline points then window points, NaN at the end
    rows_all, pos_all, rule_all, side_all = [], [], [], []
    checked = tuple(RULES) if rules is None else rules
    for rule, side, mask in _rule_masks(V[sel], centre[sel], sigma[sel], checked, lim.enabled):
        r, p = np.nonzero(mask)
        keep = p >= kb[sel][r]  # inside the window
        rows_all.append(sel[r[keep]])
        pos_all.append(p[keep] - kb[sel][r[keep]])
        rule_all.append(np.full(keep.sum(), rule, dtype=object))
        side_all.append(np.full(keep.sum(), side, dtype=object))
    rows = np.concatenate(rows_all) if rows_all else np.array([], dtype=int)
    wpos = np.concatenate(pos_all) if pos_all else np.array([], dtype=int)
    cols = yorder[rows, wpos] if len(rows) else np.array([], dtype=int)
    order_map = {r: n for n, r in enumerate(RULES)}
    found = pd.DataFrame({
        "row": rows,
        "date": win.periods[cols] if len(rows) else pd.DatetimeIndex([]),
        "rule": np.concatenate(rule_all) if rule_all else np.array([], dtype=object),
        "side": np.concatenate(side_all) if side_all else np.array([], dtype=object),
    })
    found["_o"] = found["rule"].map(order_map)
    found = found.sort_values(["row", "date", "_o"], kind="stable").drop(columns="_o").reset_index(drop=True)
    points = found.drop_duplicates(["row", "date"])["row"].to_numpy(dtype=int)
    n_sig = np.where(ok, np.bincount(points, minlength=m)[:m], np.nan)
    text = [""] * m
    for r in np.flatnonzero(~ok):
        text[r] = f"no baseline (fewer than {_MIN_BASELINE} periods with a value before the window)"
    if not found.empty:
        g = found.groupby(["row", "rule"], sort=False).agg(n=("date", "size"), last=("date", "last"),
                                                            side=("side", "last")).reset_index()
        g["_o"] = g["rule"].map(order_map)
        g = g.sort_values(["row", "_o"])
        last = g["last"].dt.strftime("%Y-%m-%d")
        g["text"] = np.where(g["n"] == 1, g["rule"] + " (" + last + ", " + g["side"] + ")",
                             g["rule"] + " ×" + g["n"].astype(str) + " (last " + last + ", " + g["side"] + ")")
        for r, t in g.groupby("row", sort=False)["text"].agg("; ".join).items():
            text[int(r)] = t
    fallback = ok & ~adjusted if autocorrelation == "adjust" else np.zeros(m, dtype=bool)
    return _SignalSummary(centre, sigma, rho, n_sig.astype("float64"), text, found, fallback)


# ----------------------------------------------------------------------------------
# Benchmarks
# ----------------------------------------------------------------------------------
def benchmark(
    ds: Dataset,
    *,
    as_of: Any = None,
    freq: str | None = None,
    metrics: Iterable[str] | None = None,
    leaves_only: bool = True,
    min_group_size: int = 5,
) -> pd.DataFrame:
    """Each team's latest KPI value against its peers, the company and external benchmarks.

    For people metrics, teams smaller than ``min_group_size`` take part in ranks and percentiles
    (pooled, never shown alone) but not in ``peer_median`` or ``company_median``: a median of a few
    values is one of them, and could show a small team's value.

    ``latest`` is the value of the team's latest period up to the last complete period
    at ``as_of`` (see the module notes). Peers are the other teams with the same parent
    that have a value of the metric; the company median is taken over all teams with a
    value. "Better" follows the metric's ``higher_is_better``.

    Parameters
    ----------
    ds : Dataset
    as_of : date-like, optional
        Default: the latest KPI date.
    freq : {'W', 'M', 'Q'}, optional
        Period of the latest value; default the data's own frequency.
    metrics : iterable of str, optional
        Restrict to these metrics.
    leaves_only : bool, default True
        Rows, peers and company median use leaf teams only (team KPIs, not department
        roll-ups). With False every team with data takes part.

    Returns
    -------
    pandas.DataFrame
        One row per team and metric with data, sorted by team_id and metric, with columns:

        - ``team_id``, ``team_name``, ``parent_team_id`` (str)
        - ``metric`` (str)
        - ``latest_period`` (datetime64): the period of ``latest``
        - ``latest`` (float)
        - ``n_peers`` (int): peers (same parent, with a value), the team excluded
        - ``peer_rank`` (float): rank of the team among itself and its peers, 1 = best;
          ties share the best rank
        - ``peer_percentile`` (float): share of peers, in percent (0–100), whose value the
          team's equals or beats; NaN without peers. 0 = worst of its peers, 100 = at
          least as good as every peer
        - ``peer_median`` (float): median of the peers' latest values (team excluded)
        - ``company_median`` (float): median over all teams with a value
        - ``benchmark_value`` (float), ``benchmark_source`` (str): from the ``benchmarks``
          table (the first row of the metric when there are several); NaN when absent
        - ``vs_benchmark`` (str): ``'better'``, ``'worse'`` or ``'equal'``; NaN without a benchmark
        - ``higher_is_better`` (bool)
    """
    ds = _check_ds(ds)
    freq = _resolve_freq(ds, freq)
    as_of = _resolve_as_of(ds, as_of)
    end = _last_complete_period(ds, as_of, freq)
    tree = ds.team_tree.set_index("team_id")
    cols = ["team_id", "team_name", "parent_team_id", "metric", "latest_period", "latest", "n_peers",
            "peer_rank", "peer_percentile", "peer_median", "company_median", "benchmark_value",
            "benchmark_source", "vs_benchmark", "higher_is_better"]
    teams = tree.index[tree["is_leaf"]] if leaves_only else tree.index
    long = resample_kpis(ds, freq, teams=teams, metrics=metrics, end=as_of)
    long = long[long["period_start"] <= end]
    if long.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in cols})
    # long is sorted by team, metric and period: the latest period of a series is the last row of its run
    # (compared in place: sorting or grouping millions of string rows costs hundreds of MB).
    team, metric = long["team_id"].array, long["metric"].array
    last = np.ones(len(long), dtype=bool)
    last[:-1] = np.asarray((team[1:] != team[:-1]) | (metric[1:] != metric[:-1]), dtype=bool)
    df = long.loc[last, ["team_id", "metric", "period_start", "value"]].rename(
        columns={"period_start": "latest_period", "value": "latest"}).reset_index(drop=True)
    df["team_name"] = df["team_id"].map(tree["team_name"])
    df["parent_team_id"] = df["team_id"].map(tree["parent_team_id"])
    hib = _hib(ds, df["metric"])
    df["higher_is_better"] = hib
    score = np.where(hib, df["latest"], -df["latest"])  # larger = better
    df["_group"] = df["parent_team_id"].fillna("\0root")
    for col in ("n_peers", "peer_rank", "peer_percentile", "peer_median"):
        df[col] = np.nan
    people = set(ds.metrics.loc[ds.metrics["people_metric"], "metric"])
    headcount = df["team_id"].map(ds.teams.set_index("team_id")["headcount"].astype("float64"))
    df["_private"] = df["metric"].isin(people) & (headcount < min_group_size).fillna(False)
    private = df["_private"].to_numpy()
    for _, idx in df.groupby(["_group", "metric"], sort=False).indices.items():
        sc = score[idx]
        val = df["latest"].to_numpy()[idx]
        usable = ~private[idx]
        n_o = len(idx) - 1
        better = (sc[None, :] > sc[:, None]).sum(axis=1)  # peers strictly better than each team
        at_most = (sc[None, :] <= sc[:, None]).sum(axis=1) - 1  # peers it equals or beats
        df.loc[df.index[idx], "n_peers"] = n_o
        df.loc[df.index[idx], "peer_rank"] = 1.0 + better
        if n_o:
            df.loc[df.index[idx], "peer_percentile"] = 100.0 * at_most / n_o
            medians = []
            for j in range(len(idx)):
                others = np.delete(val, j)[np.delete(usable, j)]
                medians.append(float(np.median(others)) if len(others) else np.nan)
            df.loc[df.index[idx], "peer_median"] = medians
    df["n_peers"] = df["n_peers"].astype("int64")
    df["company_median"] = df["latest"].where(~df["_private"]).groupby(df["metric"]).transform("median")
    bm = ds.benchmarks.dropna(subset=["value"])
    dup = bm["metric"][bm["metric"].duplicated()].unique().tolist()
    _warn_list("metrics have several benchmark rows; the first row of each is used", [str(d) for d in dup],
               "Keep one benchmark per metric to choose it yourself.")
    first = bm.drop_duplicates("metric").set_index("metric")
    df["benchmark_value"] = df["metric"].map(first["value"]).astype("float64")
    df["benchmark_source"] = df["metric"].map(first["source"])
    diff = np.where(hib, df["latest"] - df["benchmark_value"], df["benchmark_value"] - df["latest"])
    df["vs_benchmark"] = np.select([diff > 0, diff < 0, diff == 0], ["better", "worse", "equal"], "")
    df["vs_benchmark"] = df["vs_benchmark"].where(df["benchmark_value"].notna() & (df["vs_benchmark"] != ""))
    for col in ("team_id", "team_name", "parent_team_id", "metric", "benchmark_source", "vs_benchmark"):
        df[col] = df[col].astype("str").where(df[col].notna())
    return df[cols]


# ----------------------------------------------------------------------------------
# Candidate key results
# ----------------------------------------------------------------------------------
def candidate_key_results(
    ds: Dataset,
    quarter: str | Quarter,
    *,
    as_of: Any = None,
    freq: str | None = None,
    window: int | str = "quarter",
    baseline_periods: int = BASELINE_PERIODS,
    alpha: float = 0.05,
    min_points: int = 6,
    min_peers: int = 3,
    bottom_percentile: float = 25.0,
    rules: Iterable[str] | None = None,
    chart_autocorrelation: str = "adjust",
    skip_existing: bool = True,
) -> pd.DataFrame:
    """KPIs a team should consider turning into next quarter's key results, and why.

    The classic reasons a KPI becomes a key result:

    - ``bottom_quartile`` — the team wants to strengthen it: its latest value is in the
      bottom quartile of its peers (``peer_percentile <= bottom_percentile``, with at
      least ``min_peers`` peers). Suggested target: the peer median.
    - ``declining`` — it is declining: a control-chart signal on the worse side inside
      the window (limits from the ``baseline_periods`` periods before it, adjusted for
      autocorrelation by default) while the latest value is still worse than the
      centre line (a dip that has recovered is not a decline). A ``worsening`` trend
      over the window (:func:`kpi_trends`) is quoted in the evidence but is not enough
      on its own, except for KPIs without a baseline for the chart: on 13 weekly,
      autocorrelated points the trend test calls 4–13 % of unchanged KPIs worsening
      (AR(1) phi 0.3–0.8; docs/methods/monitoring.md). Suggested target: reverse the decline,
      i.e. get back to the level before the window, the control chart's centre line;
      without a baseline, the Theil–Sen line's value at the start of the window.
    - ``below_benchmark`` — an external trend: the latest value is worse than the
      external benchmark. Suggested target: the benchmark.

    Parameters
    ----------
    ds : Dataset
    quarter : str or Quarter
        The quarter whose data are reviewed; the candidates are for the quarter after it.
    as_of : date-like, optional
        Default: the quarter's last day, or the latest KPI date when earlier.
    freq : {'W', 'M', 'Q'}, optional
        Default: the data's own frequency.
    window : int or 'quarter', default 'quarter'
        Trend and signal window, as in :func:`kpi_trends`.
    baseline_periods : int, default 26
        Periods before the window that set the control limits (at least 8 with a value
        are needed).
    alpha, min_points
        As in :func:`kpi_trends`.
    min_peers : int, default 3
        Fewest peers for ``bottom_quartile``.
    bottom_percentile : float, default 25
        ``peer_percentile`` at or below which a KPI is in the bottom quartile.
    rules : iterable of str, optional
        Control-chart rules that count as a decline; default the set of the chart's mode
        (see :func:`control_chart`): with adjusted limits ``beyond_3sigma``, plus
        ``2_of_3_beyond_2sigma`` where the baseline's autocorrelation is below 0.2; on
        the classic chart all of :data:`RULES`.
    chart_autocorrelation : {'adjust', 'ignore'}, default 'adjust'
        ``'adjust'``: control limits adjusted for the baseline's lag-1 autocorrelation
        (``control_chart(..., autocorrelation='adjust')``); ``'ignore'``: the classic XmR
        chart with all four rules, which on autocorrelated weekly KPIs flags many
        unchanged KPIs as declining (measured: 26 % at phi 0.5, 40 % at phi 0.8).
    skip_existing : bool, default True
        Leave out a team's metrics that already have a key result in the next quarter.

    Returns
    -------
    pandas.DataFrame
        One row per team, metric and reason (a KPI with two reasons has two rows), sorted
        by team_id, metric and reason (in the order above), with columns:

        - ``team_id``, ``metric`` (str)
        - ``reason`` (str): ``'bottom_quartile'``, ``'declining'`` or ``'below_benchmark'``
        - ``latest`` (float): latest value (the window's last period with a value)
        - ``suggested_baseline`` (float): the key result's baseline, the latest value
        - ``suggested_target`` (float): see the reasons above
        - ``direction`` (str): ``'increase'`` or ``'decrease'`` (from ``higher_is_better``)
        - ``evidence`` (str): one sentence with the numbers behind the reason
        - ``quarter`` (str): the reviewed quarter
        - ``for_quarter`` (str): the quarter the key result is for
    """
    ds = _check_ds(ds)
    q = ds.quarter(quarter)
    if as_of is None:
        latest_date = _resolve_as_of(ds, None)
        as_of = min(q.end, latest_date)
        if as_of < q.start:
            raise ValueError(f"quarter {q.label}: the KPIs end on {latest_date:%Y-%m-%d}, before the quarter "
                             f"starts; review an earlier quarter or pass as_of.")
    rules = _check_rules(rules)
    chart_autocorrelation = _check_autocorrelation(chart_autocorrelation, "chart_autocorrelation")
    if isinstance(baseline_periods, bool) or not isinstance(baseline_periods, (int, np.integer)) \
            or baseline_periods < _MIN_BASELINE:
        raise ValueError(f"baseline_periods must be an integer of at least {_MIN_BASELINE}, "
                         f"got {baseline_periods!r}.")
    win = _resolve_window(ds, window, as_of, freq)
    keys, Y = _window_matrix(ds, win, teams=None, metrics=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # insufficient/constant series simply give no trend reason
        trends = _trend_table(ds, win, keys, Y, alpha=alpha, min_points=min_points)
    sig = _batch_signals(ds, win, keys, Y, baseline_periods=int(baseline_periods), rules=rules,
                         autocorrelation=chart_autocorrelation)
    bench = benchmark(ds, as_of=win.as_of, freq=win.freq)
    nxt = q.next()
    # one frame: the trend rows (every series) joined with the benchmark rows (leaf teams)
    t = trends.assign(_row=np.arange(len(trends)), centre=sig.centre, chart_rho=sig.rho)
    df = t.merge(bench.drop(columns=["team_name", "parent_team_id"]), on=["team_id", "metric"], how="outer",
                 suffixes=("", "_b"))
    df["higher_is_better"] = df["higher_is_better"].fillna(df["higher_is_better_b"]).astype(bool)
    df["latest"] = df["latest"].fillna(df["latest_b"])
    if skip_existing:
        krs = ds.key_results_in(nxt)
        existing = pd.MultiIndex.from_arrays([krs["team_id"], krs["metric"]])
        df = df[~pd.MultiIndex.from_frame(df[["team_id", "metric"]]).isin(existing)]
    df = df.reset_index(drop=True)
    hib = df["higher_is_better"].to_numpy()
    latest = df["latest"].to_numpy(dtype="float64")
    unit = df["metric"].map(_metric_table(ds)["unit"]).fillna("").to_numpy()
    # the last signal on the worse side inside the window, and how many there were
    bad_side = np.where(trends["higher_is_better"].to_numpy(dtype=bool), "below", "above")
    f = sig.found[sig.found["side"].to_numpy() == bad_side[sig.found["row"].to_numpy(dtype=int)]]
    last_bad = f.groupby("row").agg(n_bad=("date", "size"), bad_date=("date", "last"), bad_rule=("rule", "last"),
                                    bad_side=("side", "last"))
    df = df.join(last_bad, on="_row")
    centre = df["centre"].to_numpy(dtype="float64")
    with np.errstate(invalid="ignore"):
        still_worse = np.where(hib, centre > latest, centre < latest)  # worse than before the window
    signalled = still_worse & (df["n_bad"].fillna(0).to_numpy() > 0)
    worsening = (df["assessment"] == "worsening").to_numpy()
    no_chart = ~np.isfinite(centre)  # fewer than 8 baseline periods: the trend is the only evidence
    bottom = ((df["n_peers"] >= min_peers) & (df["peer_percentile"] <= bottom_percentile)).to_numpy()
    below_bm = (df["vs_benchmark"] == "worse").to_numpy()
    unit_word = period_word(win.freq)
    level = 100 * (1 - alpha)

    def declining_text(r: pd.Series, u: str, sig_ok: bool) -> str:
        parts = []
        if r["assessment"] == "worsening":
            su = "percentage points" if u == "%" else u  # a slope of a percentage is in points
            parts.append(f"Worsening trend over {win.label}: {significant(r['slope'], su)} per {unit_word} ({level:.0f}% CI "
                         f"{significant(r['slope_low'])} to {significant(r['slope_high'])}), Mann–Kendall p = {r['p_value']:.2g}")
        if sig_ok:
            more = f" and {int(r['n_bad']) - 1} more" if r["n_bad"] > 1 else ""
            how = (f"; limits adjusted for lag-1 autocorrelation {r['chart_rho']:.2f}"
                   if np.isfinite(r["chart_rho"]) else "")
            parts.append(f"control-chart signal {r['bad_rule']} on {r['bad_date']:%Y-%m-%d}{more} "
                         f"({r['bad_side']} the centre line{how})")
        if np.isfinite(r["centre"]):
            parts.append(f"level before the window {significant(r['centre'], u)}")
        else:
            parts.append("no control-chart baseline before the window")
        text = "; ".join(parts)
        return text[0].upper() + text[1:] + "."

    parts = []
    sub = df[bottom]
    parts.append(pd.DataFrame({
        "team_id": sub["team_id"], "metric": sub["metric"], "reason": "bottom_quartile", "latest": latest[bottom],
        "suggested_target": sub["peer_median"],
        "evidence": [f"Latest {significant(r.latest_b, u)} ranks {int(r.peer_rank)} of {int(r.n_peers) + 1} among its "
                     f"peers (at least as good as {r.peer_percentile:.0f}% of them); peer median "
                     f"{significant(r.peer_median, u)}." for r, u in zip(sub.itertuples(), unit[bottom])]}))
    dec = signalled | (no_chart & worsening)
    sub = df[dec]
    # target: back to the level before the window (the centre line, which a signalled KPI is still worse
    # than); without a chart, where the worsening trend line started
    target = np.where(signalled[dec], centre[dec], sub["fitted_start"].to_numpy())
    parts.append(pd.DataFrame({
        "team_id": sub["team_id"], "metric": sub["metric"], "reason": "declining", "latest": latest[dec],
        "suggested_target": target,
        "evidence": [declining_text(r, u, ok) for (_, r), u, ok in zip(sub.iterrows(), unit[dec], signalled[dec])]}))
    sub = df[below_bm]
    parts.append(pd.DataFrame({
        "team_id": sub["team_id"], "metric": sub["metric"], "reason": "below_benchmark", "latest": latest[below_bm],
        "suggested_target": sub["benchmark_value"],
        "evidence": [f"Latest {significant(r.latest_b, u)} is worse than the external benchmark {significant(r.benchmark_value, u)}"
                     f" ({r.benchmark_source if isinstance(r.benchmark_source, str) else 'no source given'})."
                     for r, u in zip(sub.itertuples(), unit[below_bm])]}))
    hib_of = pd.Series(hib, index=df.index)
    rows = pd.concat([p.assign(_hib=hib_of[p.index]) for p in parts], ignore_index=True)
    out = rows.assign(suggested_baseline=rows["latest"],
                      direction=np.where(rows["_hib"].to_numpy(dtype=bool), "increase", "decrease"))
    cols = ["team_id", "metric", "reason", "latest", "suggested_baseline", "suggested_target", "direction",
            "evidence", "quarter", "for_quarter"]
    out["quarter"] = q.label
    out["for_quarter"] = nxt.label
    out = out.astype({"latest": "float64", "suggested_baseline": "float64", "suggested_target": "float64"})
    for col in ("team_id", "metric", "reason", "direction", "evidence"):
        out[col] = out[col].astype("str")
    out["_r"] = out["reason"].map({r: n for n, r in enumerate(_REASONS)})
    out = out.sort_values(["team_id", "metric", "_r"], kind="stable").drop(columns="_r").reset_index(drop=True)
    return out[cols]


# ----------------------------------------------------------------------------------
# The monitor table
# ----------------------------------------------------------------------------------
def monitor(
    ds: Dataset,
    *,
    as_of: Any = None,
    window: int | str = MONITOR_WINDOW,
    freq: str | None = None,
    baseline_periods: int = BASELINE_PERIODS,
    alpha: float = 0.05,
    min_points: int = 6,
    rules: Iterable[str] | None = None,
    chart_autocorrelation: str = "adjust",
) -> pd.DataFrame:
    """The KPI monitoring table: trend, peers and control-chart signals per team and metric.

    What ``okr-analysis monitor SOURCE [--as-of DATE] [--window N|quarter] [--out FILE.csv]``
    prints. Combines :func:`kpi_trends`, :func:`benchmark` and control charts whose
    limits come from the ``baseline_periods`` periods before the window (signals are
    counted inside the window).

    Parameters
    ----------
    ds : Dataset
    as_of, window, freq, alpha, min_points
        As in :func:`kpi_trends` (default window: the last 13 periods).
    baseline_periods : int, default 26
        Periods before the window that set the control limits; at least 8 of them need a
        value, otherwise ``n_signals`` is NaN and ``signals`` says so.
    rules : iterable of str, optional
        Control-chart rules to check; default the set of the chart's mode (see
        :func:`control_chart`): with adjusted limits ``beyond_3sigma``, plus
        ``2_of_3_beyond_2sigma`` where the baseline's autocorrelation is below 0.2; on
        the classic chart all of :data:`RULES`.
    chart_autocorrelation : {'adjust', 'ignore'}, default 'adjust'
        ``'adjust'``: control limits adjusted for each baseline's lag-1 autocorrelation,
        as ``control_chart(..., autocorrelation='adjust')``. On simulated AR(1) noise with
        phi 0–0.8 and nothing changing, 9–15 % of 13-week windows show a signal (a level
        shift of 2 process standard deviations: 58–91 %, of 3: 80–100 %). ``'ignore'``:
        the classic XmR chart with all four rules (24 % of windows on independent noise,
        76 % at phi 0.5, 95 % at phi 0.8).
        Series with 8–11 baseline periods get the classic limits and ``beyond_3sigma``
        only, with a warning.

    Returns
    -------
    pandas.DataFrame
        One row per team and metric with data up to ``as_of``, sorted by team_id and
        metric, with columns:

        - ``team_id``, ``metric`` (str)
        - ``trend``, ``assessment``, ``slope``, ``slope_low``, ``slope_high``, ``p_value``,
          ``latest``, ``n_points``: as in :func:`kpi_trends`
        - ``peer_rank``, ``n_peers``, ``peer_percentile``, ``vs_benchmark``: as in
          :func:`benchmark` (NaN for teams that are not leaves)
        - ``n_signals`` (float): periods inside the window where the control chart signals
          (by any rule checked); NaN without a baseline
        - ``signals`` (str): short text per rule, e.g. ``'8_same_side ×3 (last 2026-09-14,
          below)'``; empty when there is none
        - ``window_start``, ``window_end`` (datetime64)
    """
    ds = _check_ds(ds)
    rules = _check_rules(rules)
    chart_autocorrelation = _check_autocorrelation(chart_autocorrelation, "chart_autocorrelation")
    if isinstance(baseline_periods, bool) or not isinstance(baseline_periods, (int, np.integer)) \
            or baseline_periods < _MIN_BASELINE:
        raise ValueError(f"baseline_periods must be an integer of at least {_MIN_BASELINE}, "
                         f"got {baseline_periods!r}.")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (e.g. 0.05), got {alpha!r}.")
    win = _resolve_window(ds, window, as_of, freq)
    keys, Y = _window_matrix(ds, win, teams=None, metrics=None)
    trends = _trend_table(ds, win, keys, Y, alpha=alpha, min_points=min_points)
    sig = _batch_signals(ds, win, keys, Y, baseline_periods=int(baseline_periods), rules=rules,
                         autocorrelation=chart_autocorrelation)
    _warn_list(f"series have only {_MIN_BASELINE}–{_MIN_BASELINE_ADJUST - 1} baseline periods, too few to adjust "
               "the control limits for autocorrelation; they get the classic limits and beyond_3sigma only",
               [f"{t}/{m}" for t, m, f in zip(keys["team_id"], keys["metric"], sig.fallback) if f],
               f"Use a longer baseline_periods (at least {_MIN_BASELINE_ADJUST} periods with a value).")
    bench = benchmark(ds, as_of=win.as_of, freq=win.freq)[
        ["team_id", "metric", "peer_rank", "n_peers", "peer_percentile", "vs_benchmark"]]
    out = trends[["team_id", "metric", "trend", "assessment", "slope", "slope_low", "slope_high", "p_value",
                  "latest", "n_points", "window_start", "window_end"]].copy()
    out["n_signals"] = sig.n_signals
    out["signals"] = sig.text
    out = out.merge(bench, on=["team_id", "metric"], how="left")
    cols = ["team_id", "metric", "trend", "assessment", "slope", "slope_low", "slope_high", "p_value", "latest",
            "n_points", "peer_rank", "n_peers", "peer_percentile", "vs_benchmark", "n_signals", "signals",
            "window_start", "window_end"]
    out["n_peers"] = out["n_peers"].astype("float64")
    return out[cols].reset_index(drop=True)
