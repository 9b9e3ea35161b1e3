"""Leading-vs-lagging driver analysis: does a leading KPI predict a key-result outcome, at what lag,
and for which teams?

:func:`lead_lag` answers it for every (leading, lagging) pair of a :class:`~okr_analysis.Dataset`;
:func:`lead_lag_frame` does the same on a plain DataFrame. The method (each step and its reason is in
notes-drivers-method.md until it moves to the docs):

1. pairs: catalogue leading × lagging metrics (or the pairs named), resampled to one frequency (W, M, Q
   or A); a lag is counted in periods and a positive lag means the leading metric moves first; the
   largest lag follows the frequency (W 8, M 6, Q 4, A 2, at most a tenth of the periods);
2. seasonality (weekly or monthly data of 2+ years): each team's annual cycle removed (Fourier terms);
   stationarity: ADF and KPSS together vote per team series; a metric is differenced when at least half
   its series vote so, and a pair is differenced as a whole when either metric is;
3. the primary test, one per pair: a pooled Granger F test (team constants and own-lag dynamics, own
   order by BIC per team, common coefficients on the leading metric's lags, the cross-team mean of each
   period removed from 3 teams), combined over the orders 1..L by Simes (the order AIC picks is
   reported with its F and the summed effect); with two teams or more the pooled forward and reverse
   tests are bias-corrected by the half-panel jackknife (Juodis, Karavias & Sarafidis 2021);
4. Benjamini–Hochberg over the primary tests of the run only; team rows are tested only within the
   pairs the pooled screen selected (Benjamini–Bogomolov);
5. diagnostics with their own columns: the reverse direction (same two-stage rule), the prewhitened
   cross-correlation by lag (lag 0 included; BH per scope), the test given the same-period value;
6. rolling-origin out-of-sample forecasts with and without the leading metric (skill, Clark–West),
   reported beside the verdict (``oos_confirmed``), not a veto; their series are prepared without
   look-ahead (transform decision, seasonal fit, trend line and standardisation on the periods before the
   first forecast origin, :func:`_oos_transforms`, :func:`_oos_block`);
7. a verdict per pair and team (:data:`VERDICTS`) and its plain-language sentence
   (:func:`verdict_sentence`).

The numerical kernels are vectorised across teams in :mod:`okr_analysis._screen`.
"""

from __future__ import annotations

import functools
import math
import warnings
import weakref
from dataclasses import dataclass, field
from itertools import product
from typing import Any, Iterable, Iterator, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from . import _screen as S
from ._distributions import bh_qvalues, f_sf, norm_ppf, norm_sf, t_sf
from .io.dataset import Dataset, check_dataset
from .parallel import LocalWorkers, check_executor, local_workers, map_local, map_ordered
from .resample import check_freq, infer_freq, kpi_panel
from .rules import VERDICT_ORDER, VERDICTS, driver_min_periods, driver_min_periods_floor

__all__ = [
    "VERDICTS",
    "POOLED",
    "TABLE_COLUMNS",
    "TRANSFORMS",
    "GrangerResult",
    "granger_test",
    "select_order",
    "benjamini_hochberg",
    "benjamini_bogomolov",
    "decide_transform",
    "default_max_lag",
    "verdict_sentence",
    "lead_lag",
    "lead_lag_frame",
    "lagged_correlations",
    "LeadLagResult",
    "PairDetail",
]

TRANSFORMS = ("none", "detrend", "diff")
POOLED = "*"

#: Out-of-sample skill (1 - MSE with the leading metric / MSE without) a ``leads`` verdict needs.
SKILL_THRESHOLD = 0.02
#: Teams needed before the pooled correlation's interval may widen by the between-team spread.
CLUSTER_MIN_TEAMS = 10
#: Teams needed before the pooled analysis removes the common (cross-team mean) movement of each period.
COMMON_MIN_TEAMS = 3
#: Confirmations a ``leads`` verdict may be asked to need beyond the primary test (see ``require``);
#: none by default: out-of-sample evidence sits beside the verdict (``oos_confirmed``), it is not a veto.
REQUIRE = ("ccf", "oos")
#: Default largest lag by frequency (capped at a tenth of the periods, see :func:`default_max_lag`).
MAX_LAG = {"W": 8, "M": 6, "Q": 4, "A": 2}
#: How the primary test handles the number of leading lags (see ``lead_order`` of :func:`lead_lag_frame`).
LEAD_ORDER = "simes"
LEAD_ORDERS = ("simes", "all", "aic", "bic", "hqic")
#: Out-of-sample forecasts needed before ``oos_confirmed`` is True or False (else NA).
MIN_FORECASTS = 8
#: Seasonal terms: periods a year and Fourier harmonics, for the frequencies that get them (2+ years).
SEASONAL = {"W": (365.25 / 7, 3), "M": (12.0, 2)}
#: Teams whose series are tested (ADF, KPSS) to decide a metric's transform.
STATIONARITY_TEAMS = 24
#: Team × pair series a run needs before ``jobs > 1`` starts worker processes: a spawned worker costs
#: about 1.3 s of CPU to start (the interpreter and this module's imports) and a team × pair about 0.35 ms
#: (1,000 teams × 15 pairs × 156 weeks: ~5 s), so smaller runs finish as fast in this process alone.
PARALLEL_MIN_SERIES = 4000
#: Interior gaps of at most this many periods are filled by linear interpolation.
MAX_GAP_FILL = 2
#: Bias corrections of the pooled tests (``bias_correction`` of :func:`lead_lag_frame`).
BIAS_CORRECTIONS = ("hpj", "none")
#: Teams the pooled tests need before the half-panel jackknife corrects them (one team: the plain test).
HPJ_MIN_TEAMS = 2

TABLE_COLUMNS = [
    "leading", "lagging", "team_id", "freq", "lag", "correlation", "ci_low", "ci_high",
    "granger_p", "q_value", "oos_skill", "verdict",
    "ccf_p", "ccf_q", "lag0_correlation", "lag0_q",
    "granger_lags", "own_lags", "granger_f", "reverse_own_lags", "reverse_f", "reverse_p", "reverse_q",
    "effect", "effect_se", "effect_p", "effect_lag",
    "cw_stat", "cw_p", "n_forecasts", "n_teams", "n_periods", "common_removed",
    "transform_leading", "transform_lagging", "reason",
    "oos_confirmed", "reverse_lags", "granger_p_given_lag0", "reverse_p_given_lag0", "test", "sentence",
    "levels_f", "levels_p",
]
LAG_COLUMNS = ["leading", "lagging", "team_id", "lag", "correlation", "ci_low", "ci_high", "n", "p_value",
               "q_value"]
GRANGER_COLUMNS = ["leading", "lagging", "team_id", "order", "f", "p", "df_den", "reverse_f", "reverse_p", "ic",
                   "chosen"]
ICS = ("aic", "bic", "hqic")
FORECAST_COLUMNS = ["leading", "lagging", "scope", "team_id", "period", "actual", "restricted", "unrestricted"]
TRANSFORM_COLUMNS = ["metric", "transform", "decided_by", "n_series", "share_stationary",
                     "share_trend_stationary", "share_unit_root"]
_INT_COLS = ("lag", "granger_lags", "own_lags", "reverse_own_lags", "effect_lag", "n_forecasts", "n_teams", "n_periods",
             "reverse_lags")
#: Words for one period of each frequency, for sentences.
UNITS = {"W": "week", "M": "month", "Q": "quarter", "A": "year"}


# =============================================================================================
# Small tests on plain data
# =============================================================================================
class GrangerResult(NamedTuple):
    """Granger SSR F test of "x does not Granger-cause y" (R ``lmtest::grangertest``)."""

    f: float
    p: float
    df_num: int
    df_den: int
    order: int


def _as_series_array(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype="float64").ravel()
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains missing or infinite values; drop or fill them first.")
    return arr


def _check_int(value: Any, name: str, *, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}.")
    if value < low:
        raise ValueError(f"{name} must be at least {low}, got {value}.")
    return int(value)


def granger_test(y: Any, x: Any, *, order: int) -> GrangerResult:
    """Does ``x`` Granger-cause ``y``? The SSR-based F test at a given order.

    Regresses ``y_t`` on a constant and ``y_{t-1..t-order}`` (restricted) and additionally on
    ``x_{t-1..t-order}`` (unrestricted), on the periods ``order .. T-1``; identical to R's
    ``lmtest::grangertest(y ~ x, order = order)`` and statsmodels'
    ``grangercausalitytests(...)[order][0]["ssr_ftest"]``.

    Parameters
    ----------
    y, x : array-like
        Equal-length series without missing values, oldest first.
    order : int
        Number of lags (at least 1).

    Returns
    -------
    GrangerResult
        ``f``, ``p``, ``df_num`` (= order), ``df_den`` (= T - 3*order - 1), ``order``.
    """
    order = _check_int(order, "order", low=1)
    yy, xx = _as_series_array(y, "y"), _as_series_array(x, "x")
    if yy.size != xx.size:
        raise ValueError(f"y and x must have the same length, got {yy.size} and {xx.size}.")
    if yy.size <= 3 * order + 1:
        raise ValueError(f"order={order} needs more than {3 * order + 1} observations, got {yy.size}; "
                         f"use an order of at most {max((yy.size - 2) // 3, 0)}.")
    g = S.granger_screen(yy, xx, max_lag=order, orders=[order], reverse=False)
    return GrangerResult(float(g.f[0, 0]), float(g.p[0, 0]), order, int(g.df_den[0, 0]), order)


def select_order(y: Any, x: Any, *, max_lag: int = 8, ic: str = "bic") -> int:
    """The Granger lag order chosen by an information criterion (not by the smallest p-value).

    The order of the bivariate VAR of ``(y, x)`` with a constant, fitted for p = 1..max_lag on the common
    sample ``max_lag .. T-1`` (statsmodels ``VAR(...).select_order(max_lag)`` semantics, order 0 left out);
    ``ic`` is ``'bic'`` (default), ``'aic'``, ``'hqic'`` or ``'fpe'``.
    """
    max_lag = _check_int(max_lag, "max_lag", low=1)
    if ic not in ICS + ("fpe",):
        raise ValueError(f"ic must be one of {ICS + ('fpe',)}, got {ic!r}.")
    yy, xx = _as_series_array(y, "y"), _as_series_array(x, "x")
    if yy.size <= 3 * max_lag + 1:
        raise ValueError(f"max_lag={max_lag} needs more than {3 * max_lag + 1} observations, got {yy.size}.")
    Z = S.lagged_design(np.stack([S.standardise(yy[None]), S.standardise(xx[None])], axis=-1), max_lag)
    crit = S.var_ic(S.GramCache(Z, max_lag), 2, ic=ic)
    return int(np.argmin(crit[0]) + 1)


def benjamini_hochberg(pvalues: Any) -> np.ndarray:
    """Benjamini–Hochberg (1995) q-values (statsmodels ``multipletests(method="fdr_bh")``, computed by
    :func:`_distributions.bh_qvalues` without importing statsmodels); NaN stays NaN."""
    p = np.asarray(pvalues, dtype="float64")
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = bh_qvalues(p[ok])
    return q


def benjamini_bogomolov(pvalues: Any, families: Any, selected: Any, *, n_families: int) -> np.ndarray:
    """q-values of hypotheses tested only within selected families (Benjamini & Bogomolov 2014).

    A screen first selects ``R`` of ``n_families`` families (here: the pairs whose pooled primary test has
    q < alpha); within each selected family the hypotheses (here: the teams) get Benjamini–Hochberg
    q-values multiplied by ``n_families / R`` (capped at 1). Rejecting ``q < alpha`` is BH at level
    ``alpha * R / n_families`` within each selected family, which keeps the expected average
    false-discovery proportion over the selected families at most ``alpha`` (for independent families).

    Parameters
    ----------
    pvalues : array-like of float
        One p-value per hypothesis (NaN: not tested, stays NaN).
    families : array-like
        The family of each hypothesis (any hashable labels, e.g. ``"lead|lag"``).
    selected : collection
        The family labels the screen selected.
    n_families : int
        Families screened (the size of the first-stage family, ``m``).

    Returns
    -------
    numpy.ndarray
        q-values; NaN for hypotheses of families that were not selected.
    """
    p = np.asarray(pvalues, dtype="float64")
    fam = np.asarray(families, dtype=object)
    if p.shape != fam.shape:
        raise ValueError(f"pvalues and families must have the same length, got {p.shape} and {fam.shape}.")
    sel = set(selected)
    q = np.full(p.shape, np.nan)
    if not sel or n_families <= 0:
        return q
    scale = n_families / len(sel)
    for f in sel:
        m = fam == f
        if m.any():
            q[m] = np.minimum(1.0, benjamini_hochberg(p[m]) * scale)
    return q


def default_max_lag(freq: str, n_periods: int) -> int:
    """The largest lag tested by default: by frequency (W 8, M 6, Q 4, A 2; other labels 8), and at most
    a tenth of the periods (at least 1).

    Parameters
    ----------
    freq : str
        ``'W'``, ``'M'``, ``'Q'``, ``'A'`` or another label.
    n_periods : int
        The longest team series, in periods.
    """
    return int(max(1, min(MAX_LAG.get(str(freq), 8), int(n_periods) // 10)))


def _check_seasonal(seasonal: Any) -> bool | None:
    if seasonal is not None and not isinstance(seasonal, (bool, np.bool_)):
        raise TypeError(f"seasonal must be True, False or None (automatic), got {seasonal!r}.")
    return None if seasonal is None else bool(seasonal)


def _check_bias_correction(how: Any) -> str:
    if how is None or how is False:
        return "none"
    if how not in BIAS_CORRECTIONS:
        raise ValueError(f"bias_correction must be one of {BIAS_CORRECTIONS}, got {how!r}.")
    return how


def _check_lead_order(how: Any) -> str:
    if how not in LEAD_ORDERS:
        raise ValueError(f"lead_order must be one of {LEAD_ORDERS}, got {how!r}.")
    return how


def _simes(pvalues: Sequence[float]) -> float:
    """Simes (1986) combination ``min_k p_(k) m / k`` of the F tests at orders 1..m (NaN ignored)."""
    p = np.sort(np.asarray([v for v in pvalues if np.isfinite(v)], dtype="float64"))
    if p.size == 0:
        return np.nan
    return float(min(1.0, np.min(p * p.size / np.arange(1, p.size + 1))))


def _check_ic(ic: str) -> str:
    if ic not in ICS:
        raise ValueError(f"ic must be one of {ICS}, got {ic!r}.")
    return ic


# =============================================================================================
# Stationarity: ADF and KPSS together
# =============================================================================================
def _votes(series: list[np.ndarray], level: float = 0.05) -> list[str]:
    """Every series' vote (:func:`_vote`), the ADF and KPSS tests batched over the series of one length
    (:func:`_screen.adf` and :func:`_screen.kpss`, equal to statsmodels' ``adfuller`` and ``kpss``; KPSS
    counts, as in :func:`_vote`, only where ADF rejects). A series whose batched ADF statistic is not
    finite (an exact fit) votes by :func:`_vote`."""
    votes: list[str] = [""] * len(series)
    by_length: dict[int, list[int]] = {}
    for i, s in enumerate(series):
        by_length.setdefault(s.size, []).append(i)
    for idx in by_length.values():
        X = np.vstack([series[i] for i in idx])
        with np.errstate(all="ignore"):
            c, kc = S.adf(X, regression="c"), S.kpss(X, regression="c")
        rest = []
        for j, i in enumerate(idx):
            if not np.isfinite(c.stat[j]):
                votes[i] = _vote(series[i], level)
            elif c.p[j] < level and kc.p[j] > level:
                votes[i] = "none"
            else:
                rest.append(j)
        if rest:
            with np.errstate(all="ignore"):
                ct, kct = S.adf(X[rest], regression="ct"), S.kpss(X[rest], regression="ct")
            for j, stat, p, kp in zip(rest, ct.stat, ct.p, kct.p):
                i = idx[j]
                if not np.isfinite(stat):
                    votes[i] = _vote(series[i], level)
                else:
                    votes[i] = "detrend" if p < level and kp > level else "diff"
    return votes


def _vote(x: np.ndarray, level: float = 0.05) -> str:
    """One series' vote: 'none' (level-stationary), 'detrend' (trend-stationary) or 'diff' (statsmodels'
    tests, series by series: the reference for :func:`_votes`, and its fallback for an exact fit)."""
    # lazy import: statsmodels adds ~1 s to every command that does not fit a model
    from statsmodels.tsa.stattools import adfuller, kpss

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if adfuller(x, regression="c", autolag="AIC")[1] < level and kpss(x, regression="c", nlags="auto")[1] > level:
            return "none"
        if adfuller(x, regression="ct", autolag="AIC")[1] < level and kpss(x, regression="ct", nlags="auto")[1] > level:
            return "detrend"
    return "diff"


def decide_transform(series: Iterable[Any], *, level: float = 0.05, max_series: int = STATIONARITY_TEAMS) -> dict:
    """Decide one metric family's transform from its series in several teams (ADF + KPSS).

    Each series votes: ``none`` when ADF rejects a unit root and KPSS does not reject level
    stationarity (both at ``level``); else ``detrend`` when the same holds with a linear trend
    (ADF and KPSS with ``regression="ct"``); else ``diff``. The family is differenced when at least
    half of its series vote ``diff`` (the majority of teams, ties counted as integrated: a missed unit
    root gives spurious leads), else detrended when at least half vote ``detrend`` or ``diff`` (the
    majority is not level-stationary), else left as it is: one stationary AR(1) metric is not
    differenced because a third of its short team series look integrated.
    At most ``max_series`` series (evenly spaced) are tested; series under 20 points are skipped.

    Returns
    -------
    dict
        ``transform``, ``n_series``, ``share_stationary``, ``share_trend_stationary``, ``share_unit_root``.
    """
    usable = [np.asarray(s, dtype="float64") for s in series]
    usable = [s for s in usable if s.size >= 20 and np.nanmax(s) > np.nanmin(s)]  # not constant
    if len(usable) > max_series:
        idx = np.unique(np.linspace(0, len(usable) - 1, max_series).round().astype(int))
        usable = [usable[i] for i in idx]
    votes = _votes(usable, level)
    n = len(votes)
    if n == 0:
        return dict(transform="none", n_series=0, share_stationary=np.nan, share_trend_stationary=np.nan,
                    share_unit_root=np.nan)
    share = {v: votes.count(v) / n for v in TRANSFORMS}
    if share["diff"] >= 1 / 2:
        t = "diff"
    elif share["detrend"] + share["diff"] >= 1 / 2:
        t = "detrend"
    else:
        t = "none"
    return dict(transform=t, n_series=n, share_stationary=share["none"], share_trend_stationary=share["detrend"],
                share_unit_root=share["diff"])


def _pair_transforms(tx: str, ty: str) -> tuple[str, str]:
    """A pair is analysed in one order of integration: when either metric is differenced, both are (a
    lead of a level on a difference, or the reverse, sums to about zero over the lags and moves the
    cross-correlation's peak by one period)."""
    if "diff" in (tx, ty):
        return "diff", "diff"
    return tx, ty


def _apply_transform(a: np.ndarray, how: str) -> np.ndarray:
    if how == "diff":
        return np.diff(a)
    if how == "detrend":
        t = np.arange(a.size, dtype="float64")
        t -= t.mean()
        beta = (t * (a - a.mean())).sum() / (t * t).sum()
        return a - a.mean() - beta * t
    return a.copy()


# =============================================================================================
# Preparing series: windows, gaps, transforms; batches of equal-length teams
# =============================================================================================
def _fill_short_gaps(a: np.ndarray, limit: int = MAX_GAP_FILL) -> np.ndarray:
    """Linear interpolation of interior NaN runs of at most ``limit`` periods."""
    bad = ~np.isfinite(a)
    if not bad.any():
        return a
    ok = np.flatnonzero(~bad)
    if ok.size < 2:
        return a
    out = a.copy()
    i = 0
    n = a.size
    while i < n:
        if bad[i]:
            j = i
            while j < n and bad[j]:
                j += 1
            if i > 0 and j < n and (j - i) <= limit:
                out[i:j] = np.interp(np.arange(i, j), [i - 1, j], [a[i - 1], a[j]])
            i = j
        else:
            i += 1
    return out


def _longest_run(mask: np.ndarray) -> tuple[int, int]:
    """(start, stop) of the longest run of True."""
    if mask.all():
        return 0, int(mask.size)
    if not mask.any():
        return 0, 0
    m = np.concatenate([[False], mask, [False]]).astype(int)
    d = np.diff(m)
    starts, stops = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    k = int(np.argmax(stops - starts))
    return int(starts[k]), int(stops[k])


@dataclass
class _TeamSeries:
    team: str
    x: np.ndarray      # leading, transformed
    y: np.ndarray      # lagging, transformed
    periods: np.ndarray
    codes: np.ndarray  # period codes (shared across teams, for period means and clustering)
    problem: str = ""
    rx: np.ndarray | None = None  # leading, the same run before the seasonal fit and the transform
    ry: np.ndarray | None = None  # lagging, likewise (for the out-of-sample series, :func:`_oos_block`)
    rcodes: np.ndarray | None = None  # period codes of rx, ry (one more than ``codes`` when differenced)
    rperiods: np.ndarray | None = None  # period labels of rx, ry


@dataclass
class _Block:
    teams: list[str]
    X: np.ndarray      # (B, T) leading, transformed
    Y: np.ndarray      # (B, T) lagging, transformed
    periods: np.ndarray  # (T,) period labels (shared)
    period_codes: np.ndarray  # (T,) int codes for clustering
    RX: np.ndarray | None = None  # (B, T + d) leading before the seasonal fit and the transform
    RY: np.ndarray | None = None  # (B, T + d) lagging, likewise
    rcodes: np.ndarray | None = None  # (T + d,) period codes of RX, RY
    rperiods: np.ndarray | None = None  # (T + d,) period labels of RX, RY


def _deseason_teams(values: dict[str, np.ndarray], codes: dict[str, np.ndarray], per_year: float, K: int,
                    least: int) -> int:
    """Remove each team's annual cycle from ``values`` (team → series, replaced in place) by
    :func:`_deseason_values`; teams with the same calendar (``codes``) and the same missing values share one
    design: one least-squares solve per group. Returns the number of series deseasoned (those with at least
    ``least`` values)."""
    groups: dict[tuple[bytes, bytes], list[str]] = {}
    for tid, v in values.items():
        ok = np.isfinite(v)
        if ok.sum() >= least:
            groups.setdefault((np.asarray(codes[tid], dtype="int64").tobytes(), ok.tobytes()), []).append(tid)
    for tids in groups.values():
        new = _deseason_values(np.column_stack([values[t] for t in tids]), codes[tids[0]], per_year, K, least)
        for j, tid in enumerate(tids):
            values[tid] = new[:, j]
    return sum(len(t) for t in groups.values())


class _Frame:
    """A wide frame split by team: per metric, per team, the values on that team's period grid."""

    def __init__(self, frame: pd.DataFrame, *, time: str, team: str | None, metrics: Sequence[str]):
        f = frame
        if team is None:
            f = f.assign(__team__="all")
            team = "__team__"
        if f.duplicated([team, time]).any():
            dup = f.loc[f.duplicated([team, time], keep=False), [team, time]].head(3).to_dict("records")
            raise ValueError(f"frame has more than one row per team and period ({dup} …); aggregate first "
                             "(e.g. with okr_analysis.resample.resample_kpis).")
        f = f.sort_values([team, time], kind="stable")
        self.metrics = list(metrics)
        self.teams: list[str] = []
        self.periods: dict[str, np.ndarray] = {}
        self.values: dict[str, dict[str, np.ndarray]] = {m: {} for m in self.metrics}
        codes, _ = pd.factorize(f[time], sort=True)
        self.pcodes: dict[str, np.ndarray] = {}
        self.raw: dict[str, dict[str, np.ndarray]] | None = None  # values before deseason (set by it)
        # the pre-origin transform decisions by (metric, calendar code) (_oos_transforms): a cache of each
        # process holding the frame, so pairs sharing a metric vote once per process
        self.oos_votes: dict[tuple[str, int], str] = {}
        self.season: tuple[float, int, int] | None = None  # (per_year, K, least values) when deseasoned
        arrays = {m: pd.to_numeric(f[m], errors="coerce").to_numpy(dtype="float64") for m in self.metrics}
        tvals = f[time].to_numpy()
        for tid, idx in f.groupby(team, sort=True).indices.items():
            tid = str(tid)
            self.teams.append(tid)
            self.periods[tid] = tvals[idx]
            self.pcodes[tid] = codes[idx]
            for m in self.metrics:
                self.values[m][tid] = arrays[m][idx]

    # Pickled once for each worker process (map_local's ``shared``): each table of per-team arrays as one
    # array and the teams' lengths, since pickling ~26,000 small arrays (1,000 teams × 8 metrics, values and
    # raw) cost ~0.15 s here and ~0.1 s in the worker, a few large ones a fraction. The worker's arrays are
    # views of those (nothing changes a team's array in place: deseason replaces them).
    _TEAM_TABLES = ("periods", "pcodes")

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        sizes = np.array([self.pcodes[t].size for t in self.teams], dtype="int64")
        pack = lambda d: np.concatenate([d[t] for t in self.teams]) if self.teams else None  # noqa: E731
        for key in self._TEAM_TABLES:
            state[key] = pack(state[key])
        for key in ("values", "raw"):
            if state[key] is not None:
                state[key] = {m: pack(d) for m, d in state[key].items()}
        state["_sizes"] = sizes
        return state

    def __setstate__(self, state: dict) -> None:
        sizes = state.pop("_sizes")
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        teams = state["teams"]
        unpack = lambda a: {t: a[bounds[i]:bounds[i + 1]] for i, t in enumerate(teams)}  # noqa: E731
        for key in self._TEAM_TABLES:
            state[key] = unpack(state[key]) if teams else {}
        for key in ("values", "raw"):
            if state[key] is not None:
                state[key] = {m: unpack(a) if teams else {} for m, a in state[key].items()}
        self.__dict__.update(state)

    def deseason(self, freq: str, seasonal: bool | None) -> int:
        """Remove each team's annual cycle from every metric, in place; returns the Fourier terms fitted per
        series (0 when none). See :func:`_deseason_values`."""
        if seasonal is False or freq not in SEASONAL:
            return 0
        per_year, K = SEASONAL[freq]
        need = int(2 * per_year) - 1  # two years of periods (104 weeks, 24 months)
        longest = max((int(np.isfinite(v).sum()) for m in self.metrics for v in self.values[m].values()), default=0)
        if seasonal is None and longest < need:
            return 0
        done = 0
        least = min(need, 4 * K + 4)
        self.raw = {m: dict(self.values[m]) for m in self.metrics}  # the arrays are replaced, not changed
        for m in self.metrics:
            done += _deseason_teams(self.values[m], self.pcodes, per_year, K, least)
        self.season = (per_year, K, least) if done else None
        return 2 * K if done else 0

    def series(self, metric: str) -> list[np.ndarray]:
        """Each team's longest complete run of one metric (for the stationarity vote)."""
        out = []
        for tid in self.teams:
            a = _fill_short_gaps(self.values[metric][tid])
            s, e = _longest_run(np.isfinite(a))
            if e > s:
                out.append(a[s:e])
        return out

    def vote(self, metric: str) -> dict:
        """:func:`decide_transform` of one metric's :meth:`series` (an item of the transform votes)."""
        return decide_transform(self.series(metric))

    def measured(self, leading: str, lagging: str) -> bool:
        """Whether a team measures both metrics in one period (else :meth:`pair` is empty)."""
        a, b = self.values[leading], self.values[lagging]
        return any((np.isfinite(a[tid]) & np.isfinite(b[tid])).any() for tid in self.teams)

    def series_before(self, metric: str, code: int) -> list[np.ndarray]:
        """:meth:`series` on the periods before the calendar code ``code`` only (the first forecast origin):
        each team's values of those periods, its annual cycle fitted on them alone when the seasonal terms
        apply (the same fit as :meth:`deseason`, one solve per group of teams sharing a calendar), then its
        longest complete run. The out-of-sample series' stationarity vote, without look-ahead."""
        raw = self.values if self.raw is None else self.raw
        vals: dict[str, np.ndarray] = {}
        codes: dict[str, np.ndarray] = {}
        for tid in self.teams:
            n = int(np.searchsorted(self.pcodes[tid], code))  # a team's codes are sorted: the periods before
            vals[tid], codes[tid] = raw[metric][tid][:n], self.pcodes[tid][:n]
        if self.season is not None:
            _deseason_teams(vals, codes, *self.season)
        out = []
        for tid in self.teams:
            a = _fill_short_gaps(vals[tid])
            s, e = _longest_run(np.isfinite(a))
            if e > s:
                out.append(a[s:e])
        return out

    def pair(self, leading: str, lagging: str, tx: str, ty: str) -> list[_TeamSeries]:
        out = []
        raw = self.values if self.raw is None else self.raw
        for tid in self.teams:
            a, b = self.values[leading][tid], self.values[lagging][tid]
            ra, rb = raw[leading][tid], raw[lagging][tid]  # the same missing values (deseason keeps them)
            both = np.isfinite(a) & np.isfinite(b)
            if both.all():
                s, e = 0, a.size  # complete: nothing to fill or cut
            elif not both.any():
                continue  # the team does not measure both metrics
            else:
                a, b = _fill_short_gaps(a), _fill_short_gaps(b)
                ra, rb = (a, b) if raw is self.values else (_fill_short_gaps(ra), _fill_short_gaps(rb))
                s, e = _longest_run(np.isfinite(a) & np.isfinite(b))
            a, b, per, pc = a[s:e], b[s:e], self.periods[tid][s:e], self.pcodes[tid][s:e]
            ra, rb = ra[s:e], rb[s:e]
            problem = ""
            if a.size < 3:
                out.append(_TeamSeries(tid, a, b, per, pc, "fewer than 3 joint periods", ra, rb, pc, per))
                continue
            xa, yb = _apply_transform(a, tx), _apply_transform(b, ty)
            d = 1 if "diff" in (tx, ty) else 0
            if tx != "diff":
                xa = xa[d:]
            if ty != "diff":
                yb = yb[d:]
            rpc, rper = pc, per
            per, pc = per[d:], pc[d:]
            for name, v in ((leading, xa), (lagging, yb)):
                if not v.size:
                    continue
                hi, lo = float(v.max()), float(v.min())
                tol = 1e-12 * max(1.0, abs(hi), abs(lo))
                # the standard deviation is at least range / sqrt(2n): compute it only when it may be tiny
                if hi - lo <= 2 * math.sqrt(v.size) * tol and np.std(v) <= tol:
                    problem = f"{name} is constant"
            out.append(_TeamSeries(tid, xa, yb, per, pc, problem, ra, rb, rpc, rper))
        return out


def _blocks(series: list[_TeamSeries]) -> list[_Block]:
    groups: dict[tuple, list[_TeamSeries]] = {}
    for s in series:
        rc = b"" if s.rcodes is None else np.asarray(s.rcodes, dtype="int64").tobytes()
        groups.setdefault((s.x.size, np.asarray(s.codes, dtype="int64").tobytes(), rc), []).append(s)
    out = []
    for members in groups.values():
        per = members[0].periods
        raw = members[0].rx is not None
        out.append(_Block([m.team for m in members], np.vstack([m.x for m in members]),
                          np.vstack([m.y for m in members]), per, members[0].codes,
                          np.vstack([m.rx for m in members]) if raw else None,
                          np.vstack([m.ry for m in members]) if raw else None,
                          members[0].rcodes, members[0].rperiods))
    return out


def _n_test(T: int, fraction: float) -> int:
    """Out-of-sample forecasts of a series of T periods: the last ``fraction`` of them, at least 5."""
    return max(5, int(math.ceil(fraction * T)))


def _oos_cut(n: int, fraction: float) -> int:
    """The raw periods of a run of ``n`` before its first forecast origin, whether or not the out-of-sample
    series are differenced (differenced, the origin is one raw period later: ``n - _n_test(n - 1)``, never
    earlier). The pre-origin transform decision looks at these periods only."""
    return n - _n_test(n, fraction)


def _oos_block(blk: _Block, tx: str, ty: str, opt: "_Options") -> tuple[_Block, int, np.ndarray | None]:
    """The series of one block prepared for the out-of-sample evaluation without look-ahead, and the
    first forecast origin (index into the out-of-sample series' periods).

    The primary test's series (``blk.X``, ``blk.Y``) are prepared on the whole sample: the seasonal fit
    (step 3), the detrending and the transform decision use every period, the forecast periods included.
    Here every fit uses only the periods before the first forecast origin (the first ``1 - oos_fraction`` of
    the periods), fixed once and applied to all periods: the annual cycle (OLS on a constant, a trend and
    the Fourier terms, the Fourier part subtracted, one least-squares solve for the block's teams,
    :func:`_deseason_values` with ``fit``) and the trend line of a detrended metric. Differencing looks at
    no later period. ``tx``, ``ty``: the pair's transforms decided on the periods before the first origin
    (:func:`_oos_transforms`); when they differ from the primary test's in differencing, the series have
    one period more or fewer than ``blk``'s. The standardisation and the period means of the pooled row
    come after (:func:`_demean` with ``upto``).

    The third value: the deterministic columns both forecasting models also get (``exog`` of
    :func:`_screen.rolling_oos`, re-estimated at every origin): the Fourier terms of the annual cycle when
    the seasonal terms apply, and a linear trend when the pair is not differenced and is detrended or
    deseasoned (None otherwise). A fit fixed before the first origin extrapolates its error, a smooth
    curve, into every forecast period of both KPIs, and the leading KPI's lags then "predict" the outcome's
    in the expanding windows; re-fitted at every origin it does not (the fixed fit is then redundant:
    OLS with these columns is invariant to subtracting any combination of them).
    """
    diffed = "diff" in (tx, ty)
    if blk.RX is None:  # no raw run kept: nothing was fitted on the whole sample but the transform
        codes, periods, raw = blk.period_codes, blk.periods, None
    else:
        raw = blk.RX.shape[1]
        d = 1 if diffed else 0
        if raw - d == blk.Y.shape[1]:  # the primary test's periods
            codes, periods = blk.period_codes, blk.periods
        else:
            codes, periods = blk.rcodes[d:], blk.rperiods[d:]
    T = codes.size
    first = T - _n_test(T, opt.oos_fraction)
    exog = []
    t = np.asarray(codes, dtype="float64")
    if not diffed and (opt.season is not None or "detrend" in (tx, ty)):
        exog.append((t - t.mean()) / max(t.size, 1))
    if opt.season is not None:
        exog.append(_fourier(t, opt.season[0], opt.season[1])[:, 1:])
    exog = np.column_stack(exog) if exog else None
    if raw is None:
        return blk, first, exog
    cut = first + d  # raw periods before the first forecast's period
    out = []
    for R, how in ((blk.RX, tx), (blk.RY, ty)):
        A = R.T  # (T + d, B): one right-hand side per team
        if opt.season is not None:
            per_year, K, least = opt.season
            new = _deseason_values(A, blk.rcodes, per_year, K, least, fit=cut)
            A = A if new is None else new
        if how == "diff":
            A = np.diff(A, axis=0)
        elif how == "detrend":
            t = np.arange(A.shape[0], dtype="float64")
            tc = t[:cut] - t[:cut].mean()
            mu = A[:cut].mean(axis=0)
            beta = tc @ (A[:cut] - mu) / (tc @ tc)
            A = A - mu - np.outer(t - t[:cut].mean(), beta)
        else:
            A = A[d:]
        out.append(np.ascontiguousarray(A.T))
    return _Block(blk.teams, out[0], out[1], periods, codes), first, exog


# =============================================================================================
# Pooling helpers
# =============================================================================================
def _fisher_pool(r: np.ndarray, n: np.ndarray, level: float) -> tuple[np.ndarray, ...]:
    """Pool per-team correlations (teams × lags) by their Fisher z, weights n - 3.

    Standard error: the model one, 1/sqrt(sum w); with at least CLUSTER_MIN_TEAMS teams the larger of
    that and the between-team (cluster) one, so heterogeneous teams widen the interval.
    Returns (r, lo, hi, p, n_total).
    """
    w = np.where(np.isfinite(r) & (n > 3), n - 3.0, 0.0)
    z = np.arctanh(np.clip(np.where(w > 0, r, 0.0), -0.999999999, 0.999999999))
    sw = w.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        zbar = (w * z).sum(axis=0) / sw
        se = 1.0 / np.sqrt(sw)
        G = (w > 0).sum(axis=0)
        robust = np.sqrt((w ** 2 * (z - zbar) ** 2).sum(axis=0) * G / np.maximum(G - 1, 1)) / sw
        se = np.where(G >= CLUSTER_MIN_TEAMS, np.maximum(se, robust), se)
    crit = norm_ppf(1 - level / 2)
    p = 2 * norm_sf(np.abs(zbar) / se)
    bad = sw <= 0
    out = [np.tanh(zbar), np.tanh(zbar - crit * se), np.tanh(zbar + crit * se), p]
    out = [np.where(bad, np.nan, o) for o in out]
    return (*out, np.where(w > 0, n, 0).sum(axis=0))


def _team_ccf_stats(r: np.ndarray, n: np.ndarray, level: float) -> tuple[np.ndarray, ...]:
    with np.errstate(invalid="ignore", divide="ignore"):
        se = 1.0 / np.sqrt(n - 3.0)
        z = np.arctanh(np.clip(r, -0.999999999, 0.999999999))
        crit = norm_ppf(1 - level / 2)
        p = 2 * norm_sf(np.abs(z) / se)
        lo, hi = np.tanh(z - crit * se), np.tanh(z + crit * se)
    bad = ~np.isfinite(r) | (n <= 3)
    return tuple(np.where(bad, np.nan, a) for a in (lo, hi, p))


def _standardise_upto(a: np.ndarray, upto: int) -> np.ndarray:
    """Centre and scale each row by the mean and standard deviation of its first ``upto`` values."""
    mu = a[:, :upto].mean(axis=1, keepdims=True)
    sd = a[:, :upto].std(axis=1, keepdims=True)
    return (a - mu) / np.where(sd > 0, sd, 1.0)


def _demean(blocks: list[_Block], upto: Sequence[int] | None = None) -> tuple[list[_Block], list[_Block], int]:
    """Remove the common (cross-team) movement: subtract each period's mean over the teams.

    Returns (standardised-then-demeaned blocks, demeaned blocks in the metrics' units, number of
    period means removed). Standardising first keeps large teams from defining the common movement.
    With ``upto`` (one per block: the first forecast origin), each team is standardised by the mean and
    standard deviation of its periods before that origin (the out-of-sample series, no look-ahead); each
    period's mean uses that period's values only.
    """
    size = 1 + max(int(b.period_codes.max()) for b in blocks)
    std = []
    for i, b in enumerate(blocks):
        if upto is None:
            Ys, Xs = S.standardise(b.Y), S.standardise(b.X)
        else:
            Ys, Xs = _standardise_upto(b.Y, upto[i]), _standardise_upto(b.X, upto[i])
        std.append((Ys, Xs))
    # each period's sums over the teams: one bincount over every block's values, which adds them to their
    # period's sum one after the other in the order the blocks and rows come (as np.add.at did, block by
    # block), so the same numbers
    codes = np.concatenate([np.broadcast_to(b.period_codes, b.Y.shape).ravel() for b in blocks])
    sums = {key: np.bincount(codes, weights=np.concatenate([v.ravel() for v in vals]), minlength=size)
            for key, vals in (("ys", [s[0] for s in std]), ("xs", [s[1] for s in std]),
                              ("y", [b.Y for b in blocks]), ("x", [b.X for b in blocks]))}
    cnt = np.bincount(codes, minlength=size).astype("float64")
    mean = {k: v / np.maximum(cnt, 1) for k, v in sums.items()}
    out_std, out_raw = [], []
    for b, (Ys, Xs) in zip(blocks, std):
        c = b.period_codes
        out_std.append(_Block(b.teams, Xs - mean["xs"][c], Ys - mean["ys"][c], b.periods, c))
        out_raw.append(_Block(b.teams, b.X - mean["x"][c], b.Y - mean["y"][c], b.periods, c))
    return out_std, out_raw, int((cnt > 0).sum())


class _Partial(NamedTuple):
    beta: np.ndarray
    se: np.ndarray
    f: float
    p: float
    df_den: int
    ssr: float
    n: int
    n_params: int
    cov: np.ndarray | None = None
    acc: np.ndarray | None = None  # the partialled cross-products [target, tested]' [target, tested]
    jackknife: bool = False  # True: beta is the half-panel jackknife estimate and the F its Wald test / q


def _partial_test(items: Iterable[tuple[S.GramCache, int]], L: int, *, target: int, own: int, other: int,
                  other_lags: Sequence[int], n_common: int = 0, controls: Sequence[int] = (),
                  start: int | None = None) -> _Partial:
    """Pooled test of lags ``other_lags`` of series ``other``, each team keeping its own constant and own-lag
    dynamics.

    ``items`` are ``(gram, own_lags)``: cross-product caches of teams sharing an own-lag order. Per team,
    the constant and ``own_lags`` lags of series ``own`` are partialled out of the target and of the tested
    columns (Frisch–Waugh: the Schur complement of the team's cross-product matrix over the rows
    ``t >= max(own_lags, max(other_lags))``); the partialled cross-products are summed over teams and the
    common coefficients are tested with the classic F test, residual degrees of freedom
    ``N - sum(1 + own_lags) - q - n_common`` (``n_common``: period means removed beforehand). With one team
    this is exactly the single-series Granger F test. ``controls`` are further design columns partialled
    out per team like the own lags (e.g. the other series' current value); ``start`` fixes the first row
    for every order (a common sample for comparing orders by an information criterion).
    """
    other_lags = list(other_lags)
    return _partial_tests([items], L, target=target, own=own, other=other, other_lags=other_lags,
                          orders=[len(other_lags)], n_common=n_common, controls=controls, start=start)[0][0]


def _partial_tests(items_lists: Sequence[Iterable[tuple[S.GramCache, int]]], L: int, *, target: int, own: int,
                   other: int, other_lags: Sequence[int], orders: Sequence[int], n_common: int = 0,
                   controls: Sequence[int] = (), start: int | None = None) -> list[list[_Partial]]:
    """:func:`_partial_test` of the first ``q`` lags of ``other_lags``, for every ``q`` in ``orders``, on each
    of several panels with the same teams in the same own-lag groups (e.g. the whole series and its two
    halves, :func:`_half_grams`): ``out[i][j]`` is
    ``_partial_test(items_lists[j], L, ..., other_lags=other_lags[:orders[i]])``.

    Each group of teams costs one batched factorisation for all the orders and panels together, instead
    of one per test. Exact, not an approximation:

    - the forward substitution ``W = L^-1 Gam`` works column by column, so the columns of the first ``q``
      tested lags are the same numbers whether or not later lags are among the right-hand sides, and the
      partialled cross-products of order ``q`` are the leading ``(q + 1)``-square block of those of the
      longest order at the same first row (orders whose first row ``max(own, lags)`` is the same share
      one factorisation; the others get theirs in the same batch);
    - the teams of a batch are independent (every operation of :func:`_screen._chol_forward` is per
      team), so stacking the panels' teams changes nothing but the number of calls;
    - the sums over each group's teams and then over the groups are taken in the same order as before.
    """
    other_lags = [int(j) for j in other_lags]
    lists = [list(items) for items in items_lists]
    n_groups = len(lists[0])
    if any(len(x) != n_groups for x in lists) or any(
            int(x[g][1]) != int(lists[0][g][1]) for x in lists for g in range(n_groups)):
        raise ValueError("_partial_tests: the panels must have the same own-lag groups in the same order.")
    Q = max(orders)
    mm = [target] + [S.lag_col(other, j, L) for j in other_lags[:Q]]
    n_panels = len(lists)
    acc = {(q, j): np.zeros((q + 1, q + 1)) for q in set(orders) for j in range(n_panels)}
    N = {(q, j): 0 for q in set(orders) for j in range(n_panels)}
    k_own = {(q, j): 0 for q in set(orders) for j in range(n_panels)}
    for g in range(n_groups):
        p = int(lists[0][g][1])
        a = [0] + [S.lag_col(own, j, L) for j in range(1, p + 1)] + list(controls)
        na = len(a)
        # the first row of each order; orders with the same first row share one factorisation, with the
        # tested lags of the longest of them
        row_of = {q: (max(p, max(other_lags[:q])) if start is None else int(start)) for q in set(orders)}
        for r in sorted(set(row_of.values())):
            qs = [q for q in set(orders) if row_of[q] == r]
            cols = np.asarray(a + mm[:max(qs) + 1])
            # the group's teams only, indexed from the shared cache (no copy of it); the panels stacked
            parts = [lists[j][g][0].block(r, cols, cols) for j in range(n_panels)]
            X = parts[0] if n_panels == 1 else np.concatenate(parts)
            Gaa, Gam, Gmm = X[:, :na, :na], X[:, :na, na:], X[:, na:, na:]
            W = S._chol_forward(Gaa, Gam)  # L^-1 Gam, L L' = Gaa: Gam' Gaa^-1 Gam = W'W (batched over the teams)
            Spart = Gmm - np.matmul(W.transpose(0, 2, 1), W)
            pos = 0
            for j, blk in enumerate(parts):
                sl = slice(pos, pos + blk.shape[0])
                pos = sl.stop
                tot = Spart[sl].sum(axis=0)
                n_rows = int(round(Gaa[sl, 0, 0].sum()))  # a[0] = 0: the constant's column counts the rows
                for q in qs:
                    acc[q, j] += tot[:q + 1, :q + 1]
                    N[q, j] += n_rows
                    k_own[q, j] += blk.shape[0] * na
    return [[_partial_from(acc[q, j], N[q, j], k_own[q, j], q, n_common) for j in range(n_panels)]
            for q in orders]


def _granger_rows(grams: Sequence[S.GramCache], L: int, *, n_common: int) -> list[tuple[_Partial, _Partial]]:
    """The pooled tests in the grangertest form at every order ``k = 1..L`` (every team with ``k`` own lags
    and the other series' lags ``1..k``), forward and reverse: ``out[k - 1]`` is
    ``(_partial_test([(g, k) for g in grams], L, target=<y_t>, own=0, other=1, other_lags=range(1, k + 1),
    n_common=n_common), <the same with the series swapped>)``.

    The two directions' blocks have the same size at an order, so they share one batched factorisation
    (the teams of a batch are independent: the same numbers as two calls), summed per direction in the
    same order as :func:`_partial_test`."""
    specs = ((S.cur_col(0, 2, L), 0, 1), (S.cur_col(1, 2, L), 1, 0))  # (target, own, other)
    out = []
    for k in range(1, L + 1):
        parts, which = [], []
        for d, (tgt, own, oth) in enumerate(specs):
            cols = np.asarray([0] + [S.lag_col(own, j, L) for j in range(1, k + 1)]
                              + [tgt] + [S.lag_col(oth, j, L) for j in range(1, k + 1)])
            for g in grams:
                parts.append(g.block(k, cols, cols))
                which.append(d)
        X = np.concatenate(parts)
        na = k + 1
        W = S._chol_forward(X[:, :na, :na], X[:, :na, na:])
        Spart = X[:, na:, na:] - np.matmul(W.transpose(0, 2, 1), W)
        acc = [np.zeros((k + 1, k + 1)) for _ in specs]
        N, k_own = [0, 0], [0, 0]
        pos = 0
        for d, blk in zip(which, parts):
            sl = slice(pos, pos + blk.shape[0])
            pos = sl.stop
            acc[d] += Spart[sl].sum(axis=0)
            N[d] += int(round(X[sl, 0, 0].sum()))  # the constant's column counts the rows
            k_own[d] += blk.shape[0] * na
        out.append((_partial_from(acc[0], N[0], k_own[0], k, n_common),
                    _partial_from(acc[1], N[1], k_own[1], k, n_common)))
    return out


def _partial_from(acc: np.ndarray, N: int, k_own: int, q: int, n_common: int) -> _Partial:
    """The F test of the ``q`` common coefficients from the partialled cross-products summed over teams
    (``acc``: [target, tested]' [target, tested]), ``N`` rows and ``k_own`` per-team coefficients."""
    k = k_own + q
    dfd = N - k - n_common
    nan = np.full(q, np.nan)
    syy, sxy, sxx = acc[0, 0], acc[1:, 0], acc[1:, 1:]
    try:
        inv = np.linalg.inv(sxx)
    except np.linalg.LinAlgError:
        return _Partial(nan, nan, np.nan, np.nan, dfd, np.nan, N, k, acc=acc)
    beta = inv @ sxy
    ssr_u, ssr_r = float(syy - sxy @ beta), float(syy)
    if dfd <= 0 or not ssr_u > 0:
        return _Partial(beta, nan, np.nan, np.nan, dfd, ssr_u, N, k)
    f = (ssr_r - ssr_u) / q / (ssr_u / dfd)
    se = np.sqrt(np.diag(inv) * ssr_u / dfd)
    return _Partial(beta, se, float(f), float(f_sf(f, q, dfd)), int(dfd), ssr_u, N, k, inv * ssr_u / dfd,
                    acc)


def _half_grams(grams: Sequence[S.GramCache]) -> tuple[list[S.GramCache], list[S.GramCache]]:
    """The cross-product caches of the first and the second half of each team's periods (periods
    ``0 .. T//2 - 1`` and ``T//2 .. T - 1``). Each half is a panel of its own: its regression rows start
    ``max(own, tested lags)`` periods into the half, so no lag reaches into the other half (the halves do
    not overlap, as in ``xtgrangert``'s default). Slices of the full design, no new lagged design."""
    first, second = [], []
    for g in grams:
        a, b = g.halves(g.Z.shape[1] // 2)
        first.append(a)
        second.append(b)
    return first, second


def _jackknife(full: _Partial, first: _Partial, second: _Partial) -> _Partial:
    """Half-panel jackknife (HPJ) bias correction of a pooled test (Juodis, Karavias & Sarafidis 2021).

    ``full``, ``first``, ``second``: :func:`_partial_test` on all periods and on each half of every team's
    periods (each half with its own team constants and own-lag coefficients). The pooled estimator with a
    lagged dependent variable and team effects has an O(1/T) bias (Nickell 1981; its sign is the same in
    every team, so it does not average out over teams and a test on N teams sees it as a signal of size
    ~ sqrt(N/T)); the jackknife removes it: ``b = 2 b_full - (b_first + b_second) / 2``. The test is the
    Wald statistic of ``b`` with the full-sample covariance, ``W = b' S_xx b / s2``, ``S_xx`` the
    partialled cross-products of the tested lags summed over teams and ``s2`` the residual variance at
    ``b`` (``(S_yy - 2 b' S_xy + b' S_xx b) / df``); reported as ``F = W / q`` with the F(q, df)
    distribution of the uncorrected test (its small-sample reference; W is chi2(q) for large N T). With
    ``b = b_full`` this is exactly the classic F test. Falls back to ``full`` when a half cannot be fitted.
    """
    if full.acc is None or not (np.isfinite(full.f) and np.all(np.isfinite(first.beta))
                                and np.all(np.isfinite(second.beta))):
        return full
    q = full.beta.size
    syy, sxy, sxx = full.acc[0, 0], full.acc[1:, 0], full.acc[1:, 1:]
    b = 2.0 * full.beta - 0.5 * (first.beta + second.beta)
    ssr = float(syy - 2.0 * b @ sxy + b @ sxx @ b)
    dfd = full.df_den
    if not ssr > 0:
        return full
    s2 = ssr / dfd
    f = float(b @ sxx @ b) / s2 / q
    cov = np.linalg.inv(sxx) * s2
    return _Partial(b, np.sqrt(np.diag(cov)), f, float(f_sf(f, q, dfd)), dfd, ssr, full.n, full.n_params,
                    cov, full.acc, True)


def _lag_augmented_test(blocks: list[_Block], opt: "_Options", q: int, n_common: int) -> tuple[float, float]:
    """Toda–Yamamoto (1995) lag-augmented test of ``x → y`` in levels, pooled like the primary test.

    Per team: the constant and ``p_i + d`` own lags of ``y`` (``p_i`` by ``ic`` on the levels, as the
    primary test's own order; ``d = 1``, the largest order of integration the differencing rule assumes),
    partialled out (Frisch–Waugh); common coefficients on lags ``1..q + d`` of ``x``; F test of lags
    ``1..q`` only, the extra ``d`` lags being untested controls. Residual degrees of freedom
    ``N - sum(1 + p_i + d) - (q + d) - n_common``. Returns ``(F, p)``.
    """
    d = 1
    L = opt.max_lag
    Lt = max(L, q) + d
    tested = q + d
    acc = np.zeros((tested + 1, tested + 1))
    N = k_own = 0
    for blk in blocks:
        Ys, Xs = S.standardise(blk.Y), S.standardise(blk.X)
        if Ys.shape[1] <= Lt + tested + 2:
            continue
        gram = S.GramCache(S.lagged_design(np.stack([Ys, Xs], axis=-1), Lt), Lt)
        own = (S.ar_select(Ys, max_order=L, ic=opt.ic, min_order=1)[0] if opt.order is None
               else np.full(Ys.shape[0], opt.order))
        m = [S.cur_col(0, 2, Lt)] + [S.lag_col(1, j, Lt) for j in range(1, tested + 1)]
        for po in np.unique(own):
            idx = np.flatnonzero(own == po)
            k = int(po) + d
            G = gram.from_row(max(k, tested))[idx]
            a = [0] + [S.lag_col(0, j, Lt) for j in range(1, k + 1)]
            Gaa, Gam, Gmm = G[:, a][:, :, a], G[:, a][:, :, m], G[:, m][:, :, m]
            acc += (Gmm - np.matmul(Gam.transpose(0, 2, 1), S._solve(Gaa, Gam))).sum(axis=0)
            N += int(round(G[:, 0, 0].sum()))
            k_own += idx.size * len(a)
    dfd = N - k_own - tested - n_common
    if N == 0 or dfd <= 0:
        return np.nan, np.nan
    syy, sxy, sxx = acc[0, 0], acc[1:, 0], acc[1:, 1:]
    try:
        ssr_u = float(syy - sxy @ np.linalg.solve(sxx, sxy))
    except np.linalg.LinAlgError:
        return np.nan, np.nan
    extra = slice(q, tested)  # the untested extra lags
    try:
        ssr_r = float(syy - sxy[extra] @ np.linalg.solve(sxx[extra, extra], sxy[extra]))
    except np.linalg.LinAlgError:
        return np.nan, np.nan
    if not ssr_u > 0:
        return np.nan, np.nan
    f = (ssr_r - ssr_u) / q / (ssr_u / dfd)
    return float(f), float(f_sf(f, q, dfd))


def _lead_order(grams: list[S.GramCache], own: list[np.ndarray], L: int, *, target: int, own_series: int,
                other: int, n_common: int, ic: str) -> int:
    """How many lags of the other series the primary test uses: the order 1..L minimising the information
    criterion of the pooled regression (every order on the common sample ``t >= L``; the team constants and
    own lags are the same for every order, so only the common coefficients count)."""
    best, best_v = 1, np.inf
    # one pass: every order's regression is on the rows t >= L, so the partialled cross-products of order q
    # are the leading block of those of order L (the Schur complement of each team's constant and own lags)
    r = _partial_test(_split(grams, own), L, target=target, own=own_series, other=other,
                      other_lags=range(1, L + 1), n_common=n_common, start=L)
    if r.acc is None or not r.n > 0:
        return best
    acc, n = r.acc, r.n
    pen = {"aic": 2.0, "bic": np.log(n), "hqic": 2.0 * np.log(np.log(n))}[ic]
    for q in range(1, L + 1):
        sxy, sxx = acc[1:q + 1, 0], acc[1:q + 1, 1:q + 1]
        try:
            ssr = float(acc[0, 0] - sxy @ np.linalg.solve(sxx, sxy))
        except np.linalg.LinAlgError:
            continue
        if not (np.isfinite(ssr) and ssr > 0):
            continue
        v = n * np.log(ssr / n) + pen * q
        if v < best_v - 1e-12:
            best, best_v = q, v
    return best


class _Rows:
    """The teams ``idx`` of a cross-product cache, without copying it: ``block`` indexes the cache's
    (shared, cached) matrices, which is all a pooled test needs."""

    def __init__(self, gram: S.GramCache, idx: np.ndarray, every: bool):
        # a weak reference: the cache keeps its groups (see _split), which must not keep it alive in a cycle
        self.gram, self.idx = weakref.proxy(gram), (None if every else idx)

    def block(self, p: int, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        return self.gram.block(p, r, c, self.idx)


def _split(grams: Iterable[S.GramCache], orders: list[np.ndarray]) -> Iterator[tuple[_Rows, int]]:
    """Cross-product caches split into groups of teams with the same own-lag order (each group's rows of
    the cache are taken once per start row and kept with the cache, for every test of the pair)."""
    for g, o in zip(grams, orders):
        # the groups of a cache and an orders array are kept with the cache: every test of a pair reuses them
        memo = g.__dict__.setdefault("_groups", {})
        key = (id(o), o.tobytes())
        if key not in memo:
            ps = np.unique(o)
            memo[key] = [(_Rows(g, np.flatnonzero(o == p), ps.size == 1), int(p)) for p in ps]
        yield from memo[key]


def _f_test(gram: S.GramCache, own_cols: list[int], other_cols: list[int], target: int, start: int):
    """Classic F test of ``other_cols`` given ``own_cols`` (with the constant) on rows ``t >= start``."""
    _, e_u, n = S.ols_fit(gram, start, own_cols + other_cols, [target])
    _, e_r, _ = S.ols_fit(gram, start, own_cols, [target])
    ssr_u = (e_u[:, :, 0] ** 2).sum(axis=1)
    ssr_r = (e_r[:, :, 0] ** 2).sum(axis=1)
    q = len(other_cols)
    dfd = n - len(own_cols) - q
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (ssr_r - ssr_u) / ssr_u / q * dfd
    f = np.where(ssr_u > 0, f, np.nan)
    return f, f_sf(f, q, dfd), dfd


def _windowed_granger(gram_all: S.GramCache, L: int, own_orders: np.ndarray, window: int, *, reverse: bool,
                      lag0: bool = False):
    """Per team: Granger F test with ``own_orders[i]`` own lags and the other series' lags 1..window
    (``lag0``: with the other series' current value as a control)."""
    B = gram_all.Z.shape[0]
    f, p, dfd = np.full(B, np.nan), np.full(B, np.nan), np.zeros(B, dtype=int)
    tgt, own, oth = (S.cur_col(1, 2, L), 1, 0) if reverse else (S.cur_col(0, 2, L), 0, 1)
    for po in np.unique(own_orders):
        sel = own_orders == po
        gram = gram_all.subset(sel)
        own_cols = [0] + [S.lag_col(own, j, L) for j in range(1, int(po) + 1)]
        if lag0:
            own_cols.append(S.cur_col(oth, 2, L))
        other_cols = [S.lag_col(oth, j, L) for j in range(1, window + 1)]
        f[sel], p[sel], dfd[sel] = _f_test(gram, own_cols, other_cols, tgt, max(int(po), window))
    return f, p, dfd


def _team_kernels(blocks: list[_Block], opt: "_Options", *, reference: bool = True,
                  oos: Sequence[_Block] | None = None, exog: Sequence[np.ndarray | None] | None = None) -> dict:
    """Per team: own-lag orders, Granger tests in the grangertest form, prewhitened CCF and rolling-origin
    forecasts (vectorised over teams); the primary tests come later, at the pooled orders (:func:`_team_tests`).
    The forecasts use ``oos`` (one block per block, the same teams, prepared without look-ahead — one period
    more or fewer when its transform differs in differencing:
    :func:`_oos_block`) when given, else the blocks themselves, and both forecasting models the
    deterministic columns ``exog`` (one array or None per block)."""
    L = opt.max_lag
    W = opt.order or L
    lags = np.arange(-L, L + 1)
    teams: list[dict] = []
    designs_std, own_y_all, own_x_all = [], [], []
    for bi, blk in enumerate(blocks):
        B, T = blk.Y.shape
        ob = blk if oos is None else oos[bi]
        ex = None if exog is None else exog[bi]
        Ys, Xs = S.standardise(blk.Y), S.standardise(blk.X)
        gram = S.GramCache(S.lagged_design(np.stack([Ys, Xs], axis=-1), L), L)
        designs_std.append(gram)
        # grangertest at every order, for the team rows' reference table (the pooled rows have their own)
        nan = np.full((B, L), np.nan)
        gs = (S._granger_from_design(gram, range(1, L + 1)) if reference
              else S.GrangerScreen(np.arange(1, L + 1), nan, nan, nan, nan, nan))
        if opt.order is None:
            own_y = S.ar_select(Ys, max_order=L, ic=opt.ic, min_order=1)[0]
            own_x = S.ar_select(Xs, max_order=L, ic=opt.ic, min_order=1)[0]
        else:
            own_y = own_x = np.full(B, opt.order)
        own_y_all.append(own_y)
        own_x_all.append(own_x)
        ao, ap = S.ar_select(Xs, max_order=L)  # prewhitening filter: AR by AIC
        xt, yt = S.prewhiten(Xs, Ys, ao, ap)
        r, n = S.ccf(xt, yt, lags)
        To = ob.Y.shape[1]  # the out-of-sample series' periods (one more or fewer when differenced otherwise)
        P = _n_test(To, opt.oos_fraction)
        # forecasts: the own-lag order and the leading lag are chosen inside each expanding window
        if opt.order is None:
            act, fcr, fcu, _ = S.rolling_oos(ob.Y, ob.X, own=1, max_lead=W, n_test=P, own_max=L, ic=opt.ic,
                                             exog=ex)
        else:
            act, fcr, fcu, _ = S.rolling_oos(ob.Y, ob.X, own=opt.order, max_lead=W, n_test=P, exog=ex)
        sd = ob.Y[:, : To - P].std(axis=1)  # each team's scale in the pooled Clark–West test: pre-origin
        cws = S.clark_west_rows(act, fcr, fcu)
        for i, tid in enumerate(blk.teams):
            teams.append(dict(
                team=tid, T=T, own=int(own_y[i]), rown=int(own_x[i]), window=W, all_f=gs.f[i], all_p=gs.p[i], all_df=gs.df_den[i], all_fr=gs.f_rev[i],
                all_pr=gs.p_rev[i], ar_order=int(ao[i]), r=r[i], n=n[i], cw=S.ClarkWest(float(cws.stat[i]), float(cws.p[i]), float(cws.skill[i]), int(cws.n[i])),
                act=act[i], fr_=fcr[i], fu_=fcu[i], sd=sd[i] if sd[i] > 0 else 1.0,
                codes=ob.period_codes[To - P:], periods=ob.periods[To - P:]))
    return dict(teams=teams, designs_std=designs_std, own_y=own_y_all, own_x=own_x_all,
                codes=[b.period_codes for b in blocks])


def _best_positive(r: np.ndarray, lags: np.ndarray) -> int | None:
    a = np.where((lags > 0) & np.isfinite(r), np.abs(r), -1.0)
    j = int(np.argmax(a))
    return j if a[j] >= 0 else None


def _lag_fields(r, lo, hi, p, lags) -> dict:
    j = _best_positive(r, lags)
    z = int(np.flatnonzero(lags == 0)[0])
    if j is None:
        return dict(lag=pd.NA, correlation=np.nan, ci_low=np.nan, ci_high=np.nan, ccf_p=np.nan,
                    lag0_correlation=r[z])
    return dict(lag=int(lags[j]), correlation=r[j], ci_low=lo[j], ci_high=hi[j], ccf_p=p[j], lag0_correlation=r[z])


# =============================================================================================
# The analysis of one pair
# =============================================================================================
@dataclass
class _Options:
    max_lag: int
    alpha: float
    by_team: bool
    order: int | None
    ic: str
    skill_threshold: float
    oos_fraction: float
    min_periods: int
    freq: str
    require: tuple[str, ...] = ()
    lead_order: str = LEAD_ORDER
    seasonal: bool | None = None
    n_seasonal: int = 0  # Fourier terms removed per team series (set by _run)
    season: tuple[float, int, int] | None = None  # (per_year, K, least) of the seasonal fit (set by _run)
    bias_correction: str = "hpj"


def _analyse_pair(leading: str, lagging: str, series: list[_TeamSeries], tx: str, ty: str, opt: _Options,
                  levels: list[_TeamSeries] | None = None,
                  oos_transforms: tuple[str, str] | None = None) -> dict[str, list[dict]]:
    L = opt.max_lag
    lags = np.arange(-L, L + 1)
    level = opt.alpha
    base = dict(leading=leading, lagging=lagging, freq=opt.freq, transform_leading=tx, transform_lagging=ty)
    rows: list[dict] = []
    lag_rows: list[pd.DataFrame] = []
    granger_rows: list[dict] = []
    fc_rows: list[pd.DataFrame] = []
    key = dict(leading=leading, lagging=lagging)

    short = [s for s in series if not s.problem and s.x.size < opt.min_periods]
    bad = [s for s in series if s.problem]
    good = [s for s in series if not s.problem and s.x.size >= opt.min_periods]
    if short or bad:
        names = ", ".join(s.team for s in (short + bad)[:8]) + (" …" if len(short) + len(bad) > 8 else "")
        warnings.warn(f"lead_lag {leading} → {lagging}: {len(short) + len(bad)} team(s) have insufficient data "
                      f"(fewer than {opt.min_periods} periods after the transform for max_lag={L}, or a constant "
                      f"series): {names}. They are left out of the pooled row"
                      + ("; their rows say 'insufficient data'." if opt.by_team else "."), stacklevel=4)
    if opt.by_team:
        for s in short + bad:
            why = s.problem or (f"{s.x.size} periods; max_lag={L} needs at least {opt.min_periods} "
                                f"(lower max_lag to {max((s.x.size - 12) // 4, 0)} or use more data)")
            rows.append(dict(base, team_id=s.team, verdict="insufficient data", n_teams=1, n_periods=s.x.size,
                             reason=why))
    if not good:
        first = (short + bad)[0] if (short + bad) else None
        why = (f"no team has enough data ({first.problem})" if first is not None and first.problem
               else f"no team has at least {opt.min_periods} periods for max_lag={L}")
        rows.append(dict(base, team_id=POOLED, verdict="insufficient data", n_teams=0,
                         n_periods=max([s.x.size for s in series], default=0), reason=why))
        return dict(rows=rows, lags=lag_rows, granger=granger_rows, forecasts=fc_rows)

    n_seasonal = opt.n_seasonal * len(good)  # residual degrees of freedom the lagging metric's fits used
    blocks = _blocks(good)
    G = len(good)
    common = G >= COMMON_MIN_TEAMS
    # the pooled tests: half-panel jackknife bias correction (Juodis, Karavias & Sarafidis 2021), 2+ teams
    hpj = opt.bias_correction == "hpj" and G >= HPJ_MIN_TEAMS
    # the out-of-sample series: every fit on the periods before the first forecast origin (no look-ahead)
    # (and the transforms decided on those periods: ``oos_transforms``, :func:`_oos_transforms`)
    otx, oty = (tx, ty) if oos_transforms is None else oos_transforms
    oblocks, firsts, exogs = zip(*(_oos_block(b, otx, oty, opt) for b in blocks))
    team_k = _team_kernels(blocks, opt, oos=oblocks, exog=exogs) if (opt.by_team or not common) else None
    if common:
        pblocks, _, n_common = _demean(blocks)
        pool_k = _team_kernels(pblocks, opt, reference=False, oos=_demean(list(oblocks), upto=firsts)[0],
                               exog=exogs)
    else:
        n_common = 0
        pool_k = team_k
    test_name = "granger" + (" with seasonal terms" if n_seasonal else "")
    n_common += n_seasonal

    # ---- pooled row: the primary test ----
    ts = pool_k["teams"]
    R = np.vstack([t["r"] for t in ts])
    N = np.vstack([t["n"] for t in ts])
    pr, plo, phi, pp, pn = _fisher_pool(R, N, level)
    D = pool_k["designs_std"]
    fwd_t, rev_t = S.cur_col(0, 2, L), S.cur_col(1, 2, L)
    how = "order" if opt.order is not None else opt.lead_order
    if how == "order":
        p_f = p_r = opt.order
    elif how == "all":
        p_f = p_r = L
    else:  # the order by an information criterion (AIC for 'simes')
        ic = "aic" if how == "simes" else how
        p_f = _lead_order(D, pool_k["own_y"], L, target=fwd_t, own_series=0, other=1, n_common=n_common, ic=ic)
        p_r = _lead_order(D, pool_k["own_x"], L, target=rev_t, own_series=1, other=0, n_common=n_common, ic=ic)
    # with seasonal terms, the jackknife's cross-products get the seasonal fit's expected loss added back
    seasoned = _season_corrected_grams(D, pblocks if common else blocks, opt, tx, ty) if hpj and n_seasonal else None
    DJ, halves = (D, _half_grams(D) if hpj else None) if seasoned is None else seasoned

    def pooled(forward: bool, qs: Sequence[int], controls: Sequence[int] = ()) -> dict[int, _Partial]:
        """The pooled tests of the orders ``qs`` in one direction (bias-corrected with ``hpj``), by order."""
        own_o = pool_k["own_y"] if forward else pool_k["own_x"]
        kw = dict(target=fwd_t if forward else rev_t, own=0 if forward else 1, other=1 if forward else 0,
                  other_lags=range(1, max(qs) + 1), orders=list(qs), n_common=n_common, controls=controls)
        if not hpj:
            return {q: r[0] for q, r in zip(qs, _partial_tests([_split(D, own_o)], L, **kw))}
        # the whole series and its two halves in one batch (the same teams and own-lag groups)
        panels = [_split(DJ, own_o)] + [_split(h, own_o) for h in halves]
        return {q: _jackknife(*r) for q, r in zip(qs, _partial_tests(panels, L, **kw))}

    # the test at the chosen order; with 'simes' the tests at every order 1..L (the same batch)
    every = how == "simes"
    fwd_all = pooled(True, range(1, L + 1) if every else [p_f])
    rev_all = pooled(False, range(1, L + 1) if every else [p_r])
    fwd, rev = fwd_all[p_f], rev_all[p_r]
    fwd_p, rev_p = fwd.p, rev.p
    if every:  # the p-value of the whole procedure: Simes over the tests at every order 1..L
        fwd_p = _simes([fwd_all[q].p for q in range(1, L + 1)])
        rev_p = _simes([rev_all[q].p for q in range(1, L + 1)])
    fwd0, rev0 = pooled(True, [p_f], [rev_t])[p_f], pooled(False, [p_r], [fwd_t])[p_r]
    pooled_test = test_name + (", half-panel jackknife" if fwd.jackknife else "")
    for k, (gf, gr) in enumerate(_granger_rows(D, L, n_common=n_common), start=1):  # for reference
        granger_rows.append(dict(key, team_id=POOLED, order=k, f=gf.f, p=gf.p, df_den=gf.df_den,
                                 reverse_f=gr.f, reverse_p=gr.p))
    own_f = int(np.median(np.concatenate(pool_k["own_y"])))
    own_r = int(np.median(np.concatenate(pool_k["own_x"])))
    eff, eff_se, eff_p = _pooled_effect(pool_k, L, p_f)
    lev_f = lev_p = np.nan
    if levels is not None:  # an integrated pair: the lag-augmented test in levels, the same teams
        keep = {s.team for s in good}
        lv = [s for s in levels if s.team in keep and not s.problem and s.x.size >= opt.min_periods]
        if lv:
            lblocks = _blocks(lv)
            n_lc = 0
            if common and len(lv) >= COMMON_MIN_TEAMS:
                lblocks, _, n_lc = _demean(lblocks)
            lev_f, lev_p = _lag_augmented_test(lblocks, opt, p_f, n_lc + opt.n_seasonal * len(lv))
    act = np.concatenate([t["act"] / t["sd"] for t in ts])
    frc = np.concatenate([t["fr_"] / t["sd"] for t in ts])
    fuc = np.concatenate([t["fu_"] / t["sd"] for t in ts])
    cl = np.concatenate([t["codes"] for t in ts])
    cw = S.clark_west(act, frc, fuc, clusters=cl if G > 1 else None)
    rows.append(dict(base, team_id=POOLED, n_teams=G, n_periods=int(max(t["T"] for t in ts)),
                     **_lag_fields(pr, plo, phi, pp, lags),
                     granger_lags=p_f, own_lags=own_f, granger_f=fwd.f, granger_p=fwd_p,
                     reverse_own_lags=own_r, reverse_f=rev.f, reverse_p=rev_p, reverse_lags=p_r,
                     granger_p_given_lag0=fwd0.p, reverse_p_given_lag0=rev0.p, test=pooled_test,
                     effect=eff, effect_se=eff_se, effect_p=eff_p, effect_lag=p_f,
                     oos_skill=cw.skill, cw_stat=cw.stat, cw_p=cw.p, n_forecasts=cw.n,
                     common_removed=common, levels_f=lev_f, levels_p=lev_p))
    lag_rows.append(pd.DataFrame(dict(key, team_id=POOLED, lag=lags, correlation=pr, ci_low=plo, ci_high=phi,
                                      n=pn.astype("int64"), p_value=pp)))
    fc_rows.append(_forecast_frame(key, "pooled", ts))

    # ---- team rows: the same test (the pooled orders) in each team ----
    if opt.by_team:
        tt = team_k["teams"]
        tests = _team_tests(team_k, L, p_f, p_r)
        nl = lags.size
        Rt = np.vstack([t["r"] for t in tt])
        Nt = np.vstack([t["n"] for t in tt])
        lo_t, hi_t, p_t = _team_ccf_stats(Rt, Nt, level)
        lag_rows.append(pd.DataFrame(dict(
            key, team_id=np.repeat([t["team"] for t in tt], nl), lag=np.tile(lags, len(tt)),
            correlation=Rt.ravel(), ci_low=lo_t.ravel(), ci_high=hi_t.ravel(), n=Nt.ravel().astype("int64"),
            p_value=p_t.ravel())))
        granger_rows.append(pd.DataFrame(dict(
            key, team_id=np.repeat([t["team"] for t in tt], L), order=np.tile(np.arange(1, L + 1), len(tt)),
            f=np.concatenate([t["all_f"] for t in tt]), p=np.concatenate([t["all_p"] for t in tt]),
            df_den=np.concatenate([t["all_df"] for t in tt]), reverse_f=np.concatenate([t["all_fr"] for t in tt]),
            reverse_p=np.concatenate([t["all_pr"] for t in tt]))))
        fc_rows.append(_forecast_frame(key, "team", tt))
        for i, t in enumerate(tt):
            rows.append(dict(base, team_id=t["team"], n_teams=1, n_periods=t["T"],
                             **_lag_fields(t["r"], lo_t[i], hi_t[i], p_t[i], lags),
                             granger_lags=p_f, own_lags=t["own"], granger_f=tests["f"][i], granger_p=tests["p"][i],
                             reverse_own_lags=t["rown"], reverse_f=tests["fr"][i], reverse_p=tests["pr"][i],
                             reverse_lags=p_r, granger_p_given_lag0=tests["p0"][i],
                             reverse_p_given_lag0=tests["pr0"][i], test=test_name,
                             effect=tests["eff"][i], effect_se=tests["eff_se"][i], effect_p=tests["eff_p"][i],
                             effect_lag=p_f, oos_skill=t["cw"].skill, cw_stat=t["cw"].stat, cw_p=t["cw"].p,
                             n_forecasts=t["cw"].n, common_removed=False))
    return dict(rows=rows, lags=lag_rows, granger=granger_rows, forecasts=fc_rows)


def _fourier(t: np.ndarray, period: float, order: int) -> np.ndarray:
    """A constant and statsmodels' ``Fourier(period, order)`` columns at positions ``t``."""
    return np.column_stack([np.ones_like(t)] + [f(2 * np.pi * k * t / period) for k in range(1, order + 1)
                                                for f in (np.sin, np.cos)])


def _deseason_values(a: np.ndarray, codes: np.ndarray, per_year: float, K: int, need: int,
                     fit: int | None = None) -> np.ndarray | None:
    """One team's metric without its annual cycle (None: too few values to fit it); ``a`` may also be a
    (periods × teams) block of teams sharing the calendar ``codes`` and the missing values (one
    least-squares solve with a right-hand side per team, the same fit as team by team).

    Applied with ``seasonal=True``, or by default to weekly and monthly data of at least two years (104
    weeks or 24 months): two KPIs that follow the same team's calendar, one a few weeks behind, would
    otherwise "predict" each other. OLS of the finite values on a constant, a linear trend and Fourier terms
    ``sin/cos(2 pi k t / P)``, k = 1..K (W: P = 52.18, K = 3; M: P = 12, K = 2; ``t`` the period's position
    on the run's calendar); the fitted Fourier part is subtracted, the level and the trend are kept (the
    stationarity vote comes after, and no longer mistakes a cycle for a unit root).

    With ``fit``, the coefficients are estimated on the first ``fit`` periods only and the cycle they give
    is subtracted from every period (the out-of-sample series, :func:`_oos_block`).
    """
    a = np.asarray(a, dtype="float64")
    ok = np.isfinite(a if a.ndim == 1 else a[:, 0])
    if fit is not None:
        ok &= np.arange(ok.size) < fit
    if ok.sum() < need:
        return None
    t = np.asarray(codes, dtype="float64")
    F = _fourier(t, per_year, K)
    X = np.column_stack([F[:, :1], t - t[ok].mean(), F[:, 1:]])
    # the pseudo-inverse of the small design, then one product with every team's column: the same
    # minimum-norm least-squares solution as lstsq (SVD; rtol=None: lstsq's cut-off), whose LAPACK driver
    # is ~100x slower with a thousand right-hand sides (measured: 60-76 ms vs 0.1-0.7 ms, 110 x 8, 1,000 teams)
    coef = np.linalg.pinv(X[ok], rtol=None) @ a[ok]
    return a - F[:, 1:] @ coef[2:]


# =============================================================================================
# The seasonal fit's bias in the pooled tests (step 6): an analytical correction of the cross-products
# =============================================================================================
@functools.lru_cache(maxsize=16)
def _season_operator(codes: bytes, per_year: float, K: int, how: str) -> tuple[np.ndarray, ...]:
    """The linear maps from a team's series (at the calendar ``codes``, int64 bytes) to the series the pooled
    test sees, with and without the seasonal fit: ``A = C - U W`` subtracts the Fourier part of the step-3 fit
    (OLS on a constant, a trend and the Fourier terms; ``W`` the rows of its pseudo-inverse for the Fourier
    terms) and then the mean (the standardisation centres each series) or, for ``how="detrend"``, the trend
    line; ``C = I - D D^+`` only the mean or the trend line, ``U = C F``. Returns ``(A, D, D^+, U, W)``."""
    t = np.frombuffer(codes, dtype="int64").astype("float64")
    F = _fourier(t, per_year, K)
    X = np.column_stack([F[:, :1], t - t.mean(), F[:, 1:]])
    D = X[:, :2] if how == "detrend" else X[:, :1]
    Dp = np.linalg.pinv(D)
    W = np.linalg.pinv(X)[2:]
    U = F[:, 1:] - D @ (Dp @ F[:, 1:])
    A = np.eye(t.size) - D @ Dp - U @ W
    return A, D, Dp, U, W


@functools.lru_cache(maxsize=16)
def _lag_sum_matrix(codes: bytes, per_year: float, K: int, how_u: str, how_v: str, H: int) -> np.ndarray:
    """``R[h, g] = sum_{s, r} A_u[s, r] A_v[s + h, r + g]`` for ``h, g = -H .. H`` (:func:`_season_operator`):
    the expected lag-``h`` cross-product of the fitted series ``A_u u`` and ``A_v v`` is
    ``sum_g R[h, g] Cov(u_r, v_{r+g})``. By FFT (a cross-correlation of the two maps)."""
    Au, Av = _season_operator(codes, per_year, K, how_u)[0], _season_operator(codes, per_year, K, how_v)[0]
    T = Au.shape[0]
    R = np.fft.irfft2(np.conj(np.fft.rfft2(Au, s=(2 * T, 2 * T))) * np.fft.rfft2(Av, s=(2 * T, 2 * T)),
                      s=(2 * T, 2 * T))
    hs = np.arange(-H, H + 1) % (2 * T)
    return R[np.ix_(hs, hs)]


def _season_correction(blk: _Block, opt: "_Options", L: int, tx: str, ty: str) -> np.ndarray | None:
    """Per design row, the cross-products of the pooled test's lagged design (:func:`_screen.lagged_design`
    of the standardised ``(Y, X)``) that the per-team seasonal fit removed from the series' own noise, in
    expectation: ``(T, k, k)``, to be added back to the design's cross-products.

    Step 3 fits ``2K`` Fourier coefficients per team and metric on the whole series. A fitted cycle takes
    with it part of each team's noise near the annual frequencies: the cross-products of the lagged series
    lose ``A Γ A' - C Γ C'`` (``A`` the fit-and-centre map of :func:`_season_operator`, ``C`` centring only,
    ``Γ`` the noise's auto- and cross-covariances), the same in sign for every team. With a lagged outcome
    among the regressors this biases the pooled coefficients by O(1/T) with a large O(1/T^2) term (fitted
    again on 78-week halves it is 2.6 times the 156-week series', not 2, so the half-panel jackknife
    over-corrects it; with halves that reuse the whole-series fit it leaves it), so it is added back
    analytically (docs/methods/drivers.md, step 6). ``Γ`` is estimated from the
    pooled lagged cross-products of the block's series (teams × periods, after the fit) up to lag ``H``,
    un-biased for the fit (their expectation is linear in the autocovariances, :func:`_lag_sum_matrix`). The
    remaining bias (team constants and own lags) is the jackknife's.

    None when the block cannot be corrected (a differenced metric, or too short for the covariances)."""
    if opt.season is None or "diff" in (tx, ty):
        return None
    per_year, K, _ = opt.season
    B, T = blk.Y.shape
    H = min(T // 3, 4 * L + 8)
    if T < 4 * K + 8 or H < L + 1:
        return None
    key = np.asarray(blk.period_codes, dtype="int64").tobytes()
    hows = (ty, tx)  # design order: series 0 is the lagging metric (Y), 1 the leading one (X)
    ops = [_season_operator(key, per_year, K, how) for how in hows]
    hs = np.arange(-H, H + 1) % (2 * T)
    series = (S.standardise(blk.Y), S.standardise(blk.X))  # the scale of the pooled design
    fft = [np.fft.rfft(a, n=2 * T, axis=1) for a in series]
    idx = np.arange(T)
    diff = idx[None, :] - idx[:, None]  # r' - r
    inside = np.abs(diff) <= H
    V = {}
    for u, v in product(range(2), range(2)):
        cc = np.fft.irfft((np.conj(fft[u]) * fft[v]).sum(axis=0) / B, n=2 * T)  # mean of sum_s u_s v_{s+h}
        try:  # the covariances whose fitted series have these expected lag sums
            g = np.linalg.solve(_lag_sum_matrix(key, per_year, K, hows[u], hows[v], H), cc[hs])
        except np.linalg.LinAlgError:
            return None
        G = np.where(inside, g[np.clip(diff, -H, H) + H], 0.0)  # Cov(u_r, v_r')
        (_, Du, Dpu, Uu, W), (_, Dv, Dpv, Uv, _) = ops[u], ops[v]
        # A_u G A_v' - C_u G C_v' with A = C - U W, from thin products (no T x T x T product)
        GW, GtW = G @ W.T, G.T @ W.T
        left = GW - Du @ (Dpu @ GW)  # C_u G W'
        right = GtW - Dv @ (Dpv @ GtW)  # C_v G' W'
        V[u, v] = Uu @ ((W @ GW) @ Uv.T - right.T) - left @ Uv.T
    k = 1 + 2 * L + 2
    cols = [(c, v, j) for v in range(2) for j in range(1, L + 1) for c in [S.lag_col(v, j, L)]]
    cols += [(S.cur_col(v, 2, L), v, 0) for v in range(2)]
    out = np.zeros((T, k, k))
    for (a, u, ja), (b, v, jb) in product(cols, cols):
        lo = max(ja, jb)
        out[lo:, a, b] = -V[u, v][idx[lo:] - ja, idx[lo:] - jb]  # the loss, added back
    return out


class _CorrectedCache:
    """A cross-product cache (a ``GramCache`` or one of its halves) with a per-row correction, the same for
    every team, added: ``from_row(p)`` is the cache's plus the correction summed over the same rows (no copy
    of the cache's per-team rows)."""

    def __init__(self, gram: S.GramCache, corr: np.ndarray, lo: int, hi: int):
        self.gram, self.L = gram, gram.L
        self._sums = corr[lo:hi][::-1].cumsum(axis=0)[::-1]  # [j]: the rows lo + j .. hi - 1
        self._cache: dict[int, np.ndarray] = {}

    def from_row(self, p: int) -> np.ndarray:
        p = min(int(p), self.L)  # as GramCache: from L on, the tail
        if p not in self._cache:
            self._cache[p] = self.gram.from_row(p) + self._sums[p]
        return self._cache[p]

    def block(self, p: int, r: np.ndarray, c: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """``from_row(p)[:, r][:, :, c]`` (teams ``idx``), from the cache's blocks and the correction's:
        the same sums, without the whole corrected matrices."""
        p = min(int(p), self.L)
        return self.gram.block(p, r, c, idx) + self._sums[p][r[:, None], c]


def _corrected_cache(gram: S.GramCache, corr: np.ndarray, lo: int = 0, hi: int | None = None) -> _CorrectedCache:
    """The cache of the design rows ``lo .. hi - 1`` (``gram`` itself, or one of its halves, which count their
    rows from ``lo``) with ``corr[lo:hi]`` added."""
    return _CorrectedCache(gram, corr, lo, lo + gram.Z.shape[1] if hi is None else hi)


def _season_corrected_grams(grams: Sequence[S.GramCache], blocks: Sequence[_Block], opt: "_Options", tx: str,
                            ty: str) -> tuple[list[_CorrectedCache], tuple[list, list]] | None:
    """The pooled test's cross-product caches (whole series and each half, as :func:`_half_grams`) with
    the seasonal fit's expected loss added back (:func:`_season_correction`); None when any block cannot
    be corrected."""
    full, first, second = [], [], []
    for g, blk in zip(grams, blocks):
        corr = _season_correction(blk, opt, g.L, tx, ty)
        if corr is None:
            return None
        T = g.Z.shape[1]
        mid = T // 2
        a, b = g.halves(mid)
        full.append(_corrected_cache(g, corr))
        first.append(_corrected_cache(a, corr, 0, mid))
        second.append(_corrected_cache(b, corr, mid, T))
    return full, (first, second)


def _partialled(pool_k: dict, L: int, q: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The primary regression with each team's constant and own lags partialled out (Frisch–Waugh):
    stacked residualised ``y_t`` (n,), leading lags 1..q (n, q), the period code of each row (n,) and the
    number of coefficients partialled out."""
    ys, xs, ts = [], [], []
    k = 0
    tgt = S.cur_col(0, 2, L)
    m = [tgt] + [S.lag_col(1, j, L) for j in range(1, q + 1)]
    for gram_all, own, codes in zip(pool_k["designs_std"], pool_k["own_y"], pool_k["codes"]):
        for po in np.unique(own):
            sel = np.flatnonzero(own == po)
            start = max(int(po), q)
            a = [0] + [S.lag_col(0, j, L) for j in range(1, int(po) + 1)]
            an, mn = np.asarray(a), np.asarray(m)
            coef = S._solve(gram_all.block(start, an, an, sel), gram_all.block(start, an, mn, sel))
            # only the design's columns in use, of the group's teams (the same entries as slicing Z whole)
            Z = np.take(gram_all.Z[sel, start:, :], np.concatenate([an, mn]), axis=2)
            r = Z[:, :, len(a):] - np.matmul(Z[:, :, :len(a)], coef)
            ys.append(r[:, :, 0].ravel())
            xs.append(r[:, :, 1:].reshape(-1, q))
            ts.append(np.tile(np.asarray(codes)[start:], r.shape[0]))
            k += r.shape[0] * len(a)
    return np.concatenate(ys), np.vstack(xs), np.concatenate(ts), k


def _pooled_effect(pool_k: dict, L: int, q: int) -> tuple[float, float, float]:
    """The summed distributed-lag effect of the primary regression (standardised series) with a
    Driscoll–Kraay standard error (statsmodels ``cov_type="hac-groupsum"``: robust to correlation across
    teams within a period and to autocorrelation up to ``floor(4 (T/100)^(2/9))`` periods) and its
    two-sided normal p-value. The small-sample factor is statsmodels' default (``'cluster'``) for the
    whole regression, team constants and own lags included: equal to fitting that regression with team
    dummies (tested).

    Computed directly (statsmodels on the stacked rows took 2 s a pair at 1,000 teams): OLS of the
    partialled target on the partialled leading lags, scores ``x_it e_it`` summed per period, Bartlett-
    weighted autocovariances of those sums (``S_hac_simple``), sandwich with ``(X'X)^-1``.
    """
    y, X, t, k_part = _partialled(pool_k, L, q)
    if y.size <= q + 2 or not np.isfinite(X).all() or not np.isfinite(y).all():
        return np.nan, np.nan, np.nan
    time = S.dense_codes(t)
    T = int(time.max()) + 1
    lags = int(np.floor(4 * (T / 100.0) ** (2 / 9)))
    XtX = X.T @ X
    try:
        bread = np.linalg.inv(XtX)
    except np.linalg.LinAlgError:
        return np.nan, np.nan, np.nan
    beta = bread @ (X.T @ y)
    e = y - X @ beta
    scores = X * e[:, None]
    h = np.column_stack([np.bincount(time, weights=scores[:, j], minlength=T) for j in range(q)])  # (T, q)
    meat = h.T @ h
    for lag in range(1, lags + 1):
        s = h[lag:].T @ h[:-lag]
        meat += (1 - lag / (lags + 1.0)) * (s + s.T)
    cov = bread @ meat @ bread
    n, k = y.size, q + k_part
    factor = T / max(T - 1, 1) * (n - 1) / max(n - k, 1)
    est = float(np.sum(beta))
    var = float(np.sum(cov)) * factor
    if not var > 0:
        return est, np.nan, np.nan
    se = math.sqrt(var)
    return est, se, float(2 * norm_sf(abs(est / se)))


def _team_tests(team_k: dict, L: int, p_f: int, p_r: int) -> dict[str, np.ndarray]:
    """Per team (in the order of ``team_k["teams"]``): the forward and reverse tests at the pooled orders,
    the same with the other series' current value as a control, and the summed distributed-lag effect."""
    out: dict[str, list] = {k: [] for k in ("f", "p", "fr", "pr", "p0", "pr0", "eff", "eff_se", "eff_p")}
    for gram, own_y, own_x in zip(team_k["designs_std"], team_k["own_y"], team_k["own_x"]):
        f, p, _ = _windowed_granger(gram, L, own_y, p_f, reverse=False)
        fr, pr, _ = _windowed_granger(gram, L, own_x, p_r, reverse=True)
        _, p0, _ = _windowed_granger(gram, L, own_y, p_f, reverse=False, lag0=True)
        _, pr0, _ = _windowed_granger(gram, L, own_x, p_r, reverse=True, lag0=True)
        e, se, pe = _team_sum_effect(gram, L, own_y, p_f)
        for k, v in zip(out, (f, p, fr, pr, p0, pr0, e, se, pe)):
            out[k].append(v)
    return {k: np.concatenate(v) for k, v in out.items()}


def _team_sum_effect(gram_all: S.GramCache, L: int, own_orders: np.ndarray, q: int):
    """Per team OLS of y_t on 1, y_{t-1..t-p_i}, x_{t-1..t-q}: sum of the x coefficients, SE, p-value."""
    B = gram_all.Z.shape[0]
    est, se, pv = np.full(B, np.nan), np.full(B, np.nan), np.full(B, np.nan)
    for po in np.unique(own_orders):
        sel = own_orders == po
        gram = gram_all.subset(sel)
        reg = [0] + [S.lag_col(0, j, L) for j in range(1, int(po) + 1)] + [S.lag_col(1, j, L) for j in range(1, q + 1)]
        start = max(int(po), q)
        b, e, n = S.ols_fit(gram, start, reg, [S.cur_col(0, 2, L)])
        A = gram.from_row(start)[:, reg][:, :, reg]
        w = np.zeros((A.shape[0], len(reg), 1))
        w[:, -q:, 0] = 1.0
        v = (w[:, :, 0] * S._solve(A, w)[:, :, 0]).sum(axis=1)
        dof = n - len(reg)
        s2 = (e[:, :, 0] ** 2).sum(axis=1) / dof
        with np.errstate(invalid="ignore", divide="ignore"):
            est[sel] = b[:, -q:, 0].sum(axis=1)
            se[sel] = np.sqrt(s2 * v)
            pv[sel] = 2 * t_sf(np.abs(est[sel] / se[sel]), dof)
    return est, se, pv


def _forecast_frame(key: dict, scope: str, teams: list[dict]) -> pd.DataFrame:
    n = [t["act"].size for t in teams]
    return pd.DataFrame(dict(key, scope=scope, team_id=np.repeat([t["team"] for t in teams], n),
                             period=np.concatenate([np.asarray(t["periods"]) for t in teams]),
                             actual=np.concatenate([t["act"] for t in teams]),
                             restricted=np.concatenate([t["fr_"] for t in teams]),
                             unrestricted=np.concatenate([t["fu_"] for t in teams])))


# =============================================================================================
# Verdicts
# =============================================================================================
def _fdr(table: pd.DataFrame, lags: pd.DataFrame, alpha: float) -> int:
    """Fill the q-value columns in place; returns the size of the primary family.

    - ``q_value`` of pooled rows: Benjamini–Hochberg over the pooled forward (primary) tests of the run,
      one per pair; team rows never enter, so pooled q-values do not depend on ``by_team``.
    - ``q_value`` of team rows: Benjamini–Bogomolov within the pairs the pooled screen selected
      (pooled q < alpha); NaN for the teams of pairs it did not select.
    - ``reverse_q``: the same two-stage rule for the reverse direction (a diagnostic family of its own).
    - ``q_value`` of :attr:`LeadLagResult.lags` (and ``ccf_q``, ``lag0_q``): Benjamini–Hochberg over the
      cross-correlations of each scope (pooled rows; team rows), diagnostics only.
    """
    pooled = (table["team_id"] == POOLED).to_numpy()
    fam = (table["leading"] + "\x1f" + table["lagging"]).to_numpy(dtype=object)
    for p_col, q_col in (("granger_p", "q_value"), ("reverse_p", "reverse_q")):
        p = table[p_col].to_numpy(dtype="float64")
        q = np.full(len(table), np.nan)
        q[pooled] = benjamini_hochberg(p[pooled])
        m = int(np.isfinite(p[pooled]).sum())
        sel = set(fam[pooled & (q < alpha)])
        if (~pooled).any():
            q[~pooled] = benjamini_bogomolov(p[~pooled], fam[~pooled], sel, n_families=m)
        table[q_col] = q
    lp = (lags["team_id"] == POOLED).to_numpy()
    lq = np.full(len(lags), np.nan)
    pv = lags["p_value"].to_numpy(dtype="float64")
    for scope in (lp, ~lp):
        if scope.any():
            lq[scope] = benjamini_hochberg(pv[scope])
    lags["q_value"] = lq
    look = {(a, b, c, int(k)): v for a, b, c, k, v in
            zip(lags["leading"], lags["lagging"], lags["team_id"], lags["lag"], lags["q_value"])}

    def pick(lag_col) -> np.ndarray:
        return np.array([np.nan if pd.isna(k) else look.get((a, b, c, int(k)), np.nan) for a, b, c, k in
                         zip(table["leading"], table["lagging"], table["team_id"], lag_col)], dtype="float64")

    table["ccf_q"] = pick(table["lag"])
    table["lag0_q"] = pick(np.zeros(len(table)))
    return int(np.isfinite(table.loc[pooled, "granger_p"].to_numpy(dtype="float64")).sum())


def _verdicts(table: pd.DataFrame, lag_table: pd.DataFrame, opt: _Options) -> pd.DataFrame:
    """Apply the verdict rules (notes-drivers-method.md, "Verdicts").

    With ``a = alpha``: the forward direction holds when its q-value (pooled: BH over the primary tests;
    team: Benjamini–Bogomolov) is below ``a``; the reverse direction likewise with ``reverse_q``.
    Both → ``feedback``; forward only → ``leads``; reverse only → ``reverse``; neither, but a significant
    lag-0 correlation → ``contemporaneous``; else ``no evidence``. Out-of-sample evidence is reported
    beside the verdict (``oos_skill``, ``cw_p``, ``oos_confirmed``), and whether the lead survives the
    same-period value as a control (``granger_p_given_lag0``) is in the reason and the sentence; only
    confirmations named in ``require`` veto a verdict.
    """
    a = opt.alpha
    verdicts, reasons = [], []
    for row in table.itertuples(index=False):
        if row.verdict == "insufficient data":
            verdicts.append(row.verdict)
            reasons.append(row.reason)
            continue
        sig = lambda v: bool(pd.notna(v) and np.isfinite(v) and v < a)  # noqa: E731
        lag0 = sig(row.lag0_q)
        fwd = sig(row.q_value)
        rev = sig(row.reverse_q)
        team = row.team_id != POOLED
        facts = (f"Granger q={_fmt(row.q_value)} (p={_fmt(row.granger_p)}, lags 1-{row.granger_lags}, "
                 f"{row.own_lags} own; p={_fmt(row.granger_p_given_lag0)} given the same-period value), "
                 f"reverse q={_fmt(row.reverse_q)} (p={_fmt(row.reverse_p)}, lags 1-{row.reverse_lags}); "
                 f"prewhitened r={_fmt(row.correlation, 2)} at lag {row.lag} (q={_fmt(row.ccf_q)}), lag 0 "
                 f"r={_fmt(row.lag0_correlation, 2)} (q={_fmt(row.lag0_q)}); out-of-sample skill "
                 f"{_fmt(row.oos_skill, 3)} (Clark–West p={_fmt(row.cw_p)})")
        if team and not np.isfinite(row.q_value):
            facts = "the pooled screen did not select this pair, so its teams are not tested; " + facts
        missing = []
        if fwd and "ccf" in opt.require and not sig(row.ccf_q):
            missing.append(f"a positive-lag prewhitened correlation with q < {a:g}")
        if fwd and "oos" in opt.require and not (np.isfinite(row.oos_skill) and row.oos_skill > opt.skill_threshold
                                                 and sig(row.cw_p)):
            missing.append(f"out-of-sample skill > {opt.skill_threshold:g} with Clark–West p < {a:g}")
        if fwd and missing:
            verdicts.append("no evidence")
            reasons.append("lacks the required " + ", ".join(missing) + f"; {facts}")
        elif fwd and rev:
            verdicts.append("feedback")
            reasons.append(f"each metric helps predict the other (both q < {a:g}); {facts}")
        elif fwd:
            verdicts.append("leads")
            same = (" (much of it is a same-period link: not significant given the same-period value)"
                    if lag0 and not sig(row.granger_p_given_lag0) else "")
            reasons.append(f"the leading metric's past predicts the lagging one (q < {a:g}), not the other way "
                           f"round{same}; {facts}")
        elif rev:
            verdicts.append("reverse")
            reasons.append(f"the lagging metric's past predicts the leading one (reverse q < {a:g}), not the other "
                           f"way round; {facts}")
        elif lag0:
            verdicts.append("contemporaneous")
            reasons.append(f"related in the same period only (lag 0 q < {a:g}); {facts}")
        else:
            verdicts.append("no evidence")
            reasons.append(f"neither direction significant at q < {a:g}; {facts}")
    return table.assign(verdict=verdicts, reason=reasons)


def _pretty(metric: str, names: Mapping[str, str] | None) -> str:
    if names and metric in names:
        return str(names[metric])
    return str(metric).replace("_", " ")


def _moves(name: str) -> str:
    """'moves' or 'move': plural when the last word ends in a single s (coaching hours, qualified leads),
    not for short acronyms (nps) or -ss words (process)."""
    last = name.split()[-1] if name.split() else name
    plural = len(last) > 3 and last.endswith("s") and not last.endswith("ss") and not last.isupper()
    return "move" if plural else "moves"


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}" + ("" if n == 1 else "s")


def verdict_sentence(row: Mapping[str, Any] | pd.Series, *, metric_names: Mapping[str, str] | None = None,
                     freq_unit: str | None = None, alpha: float = 0.05) -> str:
    """The plain-language sentence of one row of :attr:`LeadLagResult.table`, for reports.

    E.g. "Coaching hours move first; engagement follows about 4 weeks later across the organisation;
    confirmed on data the model had not seen."

    Parameters
    ----------
    row : mapping or pandas.Series
        A row of the table (needs ``leading``, ``lagging``, ``team_id``, ``verdict``, ``lag``,
        ``oos_confirmed``; ``freq`` when ``freq_unit`` is not given).
    metric_names : mapping, optional
        Display names by metric id (default: the id with underscores as spaces).
    freq_unit : str, optional
        The word for one period (default from ``row["freq"]``: week, month, quarter, year; else period).
    alpha : float, default 0.05
        The level the run used (for the same-period caveat of a ``leads`` row).

    Returns
    -------
    str
        One sentence, starting with a capital letter and ending with a full stop.
    """
    get = row.get if hasattr(row, "get") else (lambda k, d=None: getattr(row, k, d))
    lead, lagm = _pretty(get("leading"), metric_names), _pretty(get("lagging"), metric_names)
    unit = freq_unit or UNITS.get(str(get("freq", "")), "period")
    team = get("team_id", POOLED)
    where = "across the organisation" if team == POOLED else f"in team {team}"
    verdict = get("verdict")
    lag = get("lag")
    lag = None if lag is None or pd.isna(lag) else int(lag)
    conf = get("oos_confirmed")
    if conf is None or pd.isna(conf):
        oos = "too few periods to check it on data the model had not seen"
    elif bool(conf):
        oos = "confirmed on data the model had not seen"
    else:
        oos = "not confirmed on data the model had not seen"
    later = f"about {_plural(lag, unit)} later" if lag else "later"
    cap = lambda t: t[:1].upper() + t[1:]  # noqa: E731
    if verdict == "leads":
        text = f"{lead} {_moves(lead)} first; {lagm} follows {later} {where}; {oos}"
        p0, q0, a = get("granger_p_given_lag0"), get("lag0_q"), alpha
        if p0 is not None and q0 is not None and pd.notna(p0) and pd.notna(q0) and q0 < a and not p0 < a:
            text += f"; much of the link is within the same {unit}"
    elif verdict == "feedback":
        text = f"{lead} and {lagm} drive each other {where}: each one's past helps predict the other; {oos}"
    elif verdict == "reverse":
        text = (f"{lagm} {_moves(lagm)} first and {lead} follows {where}: {lead} does not move ahead of "
                f"{lagm}, it follows it")
    elif verdict == "contemporaneous":
        text = f"{lead} and {lagm} move together in the same {unit} {where}, but neither moves first"
    elif verdict == "no evidence":
        text = f"No evidence that {lead} {_moves(lead)} before {lagm} {where}"
    else:
        text = f"Too little data to tell whether {lead} {_moves(lead)} before {lagm} {where}"
    return cap(text) + "."


def _fmt(v: Any, digits: int = 2) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not np.isfinite(v):
        return "NA"
    if digits == 2 and abs(v) < 0.01 and v != 0:
        return f"{v:.1e}"
    return f"{v:.{digits}g}" if digits != 2 else f"{v:.2g}"


# =============================================================================================
# Result object
# =============================================================================================
@dataclass(frozen=True)
class PairDetail:
    """Everything computed for one pair and team (``team_id="*"``: pooled).

    Attributes
    ----------
    row : pandas.Series
        The pair's row of :attr:`LeadLagResult.table`.
    ccf : pandas.DataFrame
        Prewhitened cross-correlation by lag (lag, correlation, ci_low, ci_high, n, p_value, q_value).
    granger : pandas.DataFrame
        Granger tests in the ``grangertest`` form (the same order for both series) at every order 1..L
        (order, f, p, df_den, reverse_f, reverse_p), for reference; the verdict uses the table's test.
    forecasts : pandas.DataFrame
        Rolling-origin one-step forecasts (team_id, period, actual, restricted, unrestricted).
    """

    row: pd.Series
    ccf: pd.DataFrame
    granger: pd.DataFrame
    forecasts: pd.DataFrame


@dataclass(frozen=True)
class LeadLagResult:
    """Result of :func:`lead_lag` / :func:`lead_lag_frame`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per pair and team (``team_id="*"`` is the pooled row), columns in this order:

        - ``leading``, ``lagging`` (str): the pair; ``team_id`` (str): ``*`` for the pooled row
        - ``freq`` (str): the period the lags count (``W``, ``M``, ``Q`` or the frame's label)
        - ``lag`` (Int64): the positive lag with the largest prewhitened |correlation|; a positive lag
          means the leading metric moves first
        - ``correlation``, ``ci_low``, ``ci_high`` (float): prewhitened correlation at ``lag`` and its
          (1 - alpha) confidence interval (Fisher z; pooled over teams by inverse-variance weights)
        - ``granger_p`` (float): the primary test "the leading metric's past does not help predict the
          lagging metric" (pooled: team constants and own lags, common leading-lag coefficients; with
          ``lead_order='simes'`` the Simes combination of the F tests with 1..max_lag lags; team rows: the
          same regression in the team at ``granger_lags``)
        - ``q_value`` (float): pooled rows: Benjamini–Hochberg over the primary tests of the run (one per
          pair); team rows: Benjamini–Bogomolov within the pairs whose pooled q < alpha, NaN elsewhere
        - ``oos_skill`` (float): 1 - MSE(with the leading metric) / MSE(own past only), rolling origin
          (series prepared on the periods before the first forecast origin: no look-ahead)
        - ``verdict`` (str): one of :data:`VERDICTS`
        - ``ccf_p``, ``ccf_q`` (float): p- and q-value of the correlation at ``lag`` (diagnostic; BH over the
          cross-correlations of the same scope, pooled or team)
        - ``lag0_correlation``, ``lag0_q`` (float): the same at lag 0
        - ``granger_lags`` (Int64): the leading metric's lags in the reported regression (AIC's order, or
          ``order``); ``own_lags`` (Int64): the lagging metric's own lags (BIC of its AR model; pooled: the
          teams' median); ``granger_f`` (float): the F statistic at ``granger_lags``
        - ``reverse_own_lags`` (Int64), ``reverse_f``, ``reverse_p``, ``reverse_q`` (float): the test of the
          other direction (does the lagging metric predict the leading one?), a diagnostic with the same
          two-stage FDR rule as the primary test
        - ``effect``, ``effect_se``, ``effect_p`` (float), ``effect_lag`` (Int64): the summed distributed-lag
          effect, in standard deviations of the lagging metric per standard deviation of the leading one
          held over the last ``effect_lag`` (= ``granger_lags``) periods, of the primary regression on
          standardised series; one linear combination, so no best-lag search to adjust for. Pooled rows:
          Driscoll–Kraay standard error (teams correlated within a period, autocorrelation; normal
          p-value); team rows: the OLS standard error (t p-value)
        - ``cw_stat``, ``cw_p`` (float): Clark–West statistic and one-sided p-value; ``n_forecasts`` (Int64)
        - ``n_teams``, ``n_periods`` (Int64): teams pooled and periods used (after the transform)
        - ``common_removed`` (bool): True when each period's cross-team mean (of the standardised series) was
          removed before the pooled tests (pooled rows of pairs with at least three teams); False for team
          rows and smaller pairs
        - ``transform_leading``, ``transform_lagging`` (str): ``none``, ``detrend`` or ``diff``
        - ``reason`` (str): why the verdict was given, with the numbers
        - ``oos_confirmed`` (boolean): Clark–West p < alpha (True / False); NA with fewer than
          :data:`MIN_FORECASTS` forecasts or no verdict. Evidence beside the verdict, not a veto
        - ``reverse_lags`` (Int64): the lagging metric's lags in the reverse regression
        - ``granger_p_given_lag0``, ``reverse_p_given_lag0`` (float): the forward / reverse test with the
          other metric's same-period value as a control (a significant lead that is not significant here
          is mostly a same-period link seen through persistence: the sentence says so)
        - ``test`` (str): the primary test used (``granger``, or ``granger with seasonal terms`` when each
          team's annual cycle was removed first; pooled rows of two teams or more add ``, half-panel
          jackknife`` when the forward and reverse tests are bias-corrected, ``bias_correction='hpj'``;
          ``none`` without a test)
        - ``sentence`` (str): the verdict in one plain-language sentence (:func:`verdict_sentence`)
        - ``levels_f``, ``levels_p`` (float): when the pair is differenced (an integrated metric), the
          Toda–Yamamoto lag-augmented test in levels (pooled rows): the lagging metric in levels on each
          team's constant and ``own + 1`` own lags and on lags ``1..granger_lags + 1`` of the leading metric
          (common coefficients), F test of lags ``1..granger_lags`` only (the extra lag is not tested, which
          keeps the test's distribution standard whatever the order of integration); NaN otherwise. A
          diagnostic beside the primary (differenced) test, not a member of its FDR family
    lags : pandas.DataFrame
        Prewhitened cross-correlations by pair, team and lag -L..L (leading, lagging, team_id, lag,
        correlation, ci_low, ci_high, n, p_value, q_value).
    granger : pandas.DataFrame
        Granger tests at every order (see :class:`PairDetail`), with ``leading``, ``lagging``, ``team_id``.
    forecasts : pandas.DataFrame
        Out-of-sample forecasts (leading, lagging, team_id, period, actual, restricted, unrestricted).
    transforms : pandas.DataFrame
        Per metric: transform, decided_by (``ADF+KPSS`` or ``user``), n_series, share_stationary,
        share_trend_stationary, share_unit_root.
    options : dict
        The options of the run (max_lag, alpha, freq, ic, order, skill_threshold, ...).
    """

    table: pd.DataFrame
    lags: pd.DataFrame
    granger: pd.DataFrame
    forecasts: pd.DataFrame
    transforms: pd.DataFrame
    options: dict = field(default_factory=dict)

    # -- access -------------------------------------------------------------------------------
    def details(self, leading: str, lagging: str, team_id: str = POOLED) -> PairDetail:
        """Everything computed for one pair and team."""
        t = self.table
        m = (t["leading"] == leading) & (t["lagging"] == lagging) & (t["team_id"] == team_id)
        if not m.any():
            pairs = sorted(set(zip(t["leading"], t["lagging"])))
            if (leading, lagging) not in pairs:
                raise ValueError(f"pair ({leading!r}, {lagging!r}) is not in the result; pairs: {pairs[:10]}.")
            raise ValueError(f"team_id {team_id!r} has no row for this pair"
                             + ("" if self.options.get("by_team") else "; run with by_team=True for team rows")
                             + ".")

        def sel(df: pd.DataFrame) -> pd.DataFrame:
            k = (df["leading"] == leading) & (df["lagging"] == lagging) & (df["team_id"] == team_id)
            return df[k].drop(columns=["leading", "lagging"]).reset_index(drop=True)

        fc = self.forecasts
        fk = (fc["leading"] == leading) & (fc["lagging"] == lagging)
        fk &= (fc["scope"] == "pooled") if team_id == POOLED else ((fc["scope"] == "team") & (fc["team_id"] == team_id))
        return PairDetail(row=t[m].iloc[0], ccf=sel(self.lags).drop(columns="team_id"),
                          granger=sel(self.granger).drop(columns="team_id"),
                          forecasts=fc[fk].drop(columns=["leading", "lagging", "scope"]).reset_index(drop=True))

    # -- text ---------------------------------------------------------------------------------
    def summary(self) -> str:
        """A readable account: options, transforms, and each pair's pooled verdict with its numbers."""
        o = self.options
        t = self.table
        lines = [f"Lead/lag analysis — frequency {o.get('freq')}, lags up to {o.get('max_lag')} periods, "
                 f"alpha {o.get('alpha')} (Benjamini–Hochberg over {o.get('n_tests', 0)} primary tests, "
                 f"team rows Benjamini–Bogomolov within the selected pairs), "
                 + (f"Granger: own lags by {str(o.get('ic')).upper()}, leading lags 1-{o.get('max_lag')} "
                    f"({o.get('lead_order')})"
                    if o.get('order') is None else f"Granger order {o.get('order')} (grangertest form)")
                 + (f", confirmations required: {list(o.get('require'))} (skill threshold {o.get('skill_threshold')})"
                    if o.get("require") else "")]
        if not self.transforms.empty:
            tr = ", ".join(f"{r.metric}: {r.transform}" for r in self.transforms.itertuples())
            lines.append(f"Transforms (ADF+KPSS): {tr}")
        counts = t.loc[t["team_id"] == POOLED, "verdict"].value_counts()
        lines.append("Pooled verdicts: " + ", ".join(f"{v} {counts.get(v, 0)}" for v in VERDICTS))
        lines.append("")
        pooled = t[t["team_id"] == POOLED].assign(_o=lambda d: d["verdict"].map(VERDICT_ORDER)).sort_values(
            ["_o", "q_value"])
        for r in pooled.itertuples(index=False):
            head = f"{r.leading} → {r.lagging}: {r.verdict}"
            if r.verdict == "insufficient data":
                lines.append(f"{head} ({r.reason})")
                continue
            where = (f"lag 0 (r={_fmt(r.lag0_correlation, 2)})" if r.verdict == "contemporaneous" else
                     f"best lag {r.lag} ({o.get('freq')}) (r={_fmt(r.correlation, 2)} "
                     f"[{_fmt(r.ci_low, 2)}, {_fmt(r.ci_high, 2)}])")
            lines.append(
                f"{head} — {where}, Granger F={_fmt(r.granger_f, 3)} q={_fmt(r.q_value)}, "
                f"reverse q={_fmt(r.reverse_q)}, out-of-sample skill {_fmt(100 * r.oos_skill, 3)}% "
                f"(CW p={_fmt(r.cw_p)}), {r.n_teams} team(s)")
            lines.append(f"    {r.sentence}")
            teams = t[(t["leading"] == r.leading) & (t["lagging"] == r.lagging) & (t["team_id"] != POOLED)]
            if len(teams):
                held = teams.loc[teams["verdict"] == "leads", "team_id"].tolist()
                lines.append(f"    leads in {len(held)}/{len(teams)} teams" + (f": {', '.join(held)}" if held else ""))
        return "\n".join(lines)

    def __repr__(self) -> str:
        t = self.table
        return (f"<LeadLagResult: {t[['leading', 'lagging']].drop_duplicates().shape[0]} pairs, "
                f"{(t['team_id'] != POOLED).sum()} team rows, verdicts "
                f"{t.loc[t['team_id'] == POOLED, 'verdict'].value_counts().to_dict()}>")

    # -- plots --------------------------------------------------------------------------------
    def plot_ccf(self, leading: str, lagging: str, team_id: str = POOLED, *, ax=None):
        """Bars of the prewhitened cross-correlation by lag, with the (1 - alpha) significance band.

        The band is the interval a correlation of 0 would fall in (±z/√(n-3) for one team, the pooled
        standard error for ``*``); the chosen lag is highlighted. Returns the axes.
        """
        # lazy import: pyplot adds ~0.5 s to every command that draws nothing
        import matplotlib.pyplot as plt

        d = self.details(leading, lagging, team_id)
        c = d.ccf
        ax = ax if ax is not None else plt.gca()
        best = d.row["lag"]
        colors = ["#d62728" if (not pd.isna(best) and k == best) else "#4c72b0" for k in c["lag"]]
        ax.bar(c["lag"], c["correlation"], color=colors, width=0.7)
        # the interval around 0 a correlation must leave to be significant: the CI's half-width in z units
        crit = norm_ppf(1 - float(self.options.get("alpha", 0.05)) / 2)
        with np.errstate(invalid="ignore", divide="ignore"):
            se = (np.arctanh(c["ci_high"].clip(-0.999999, 0.999999))
                  - np.arctanh(c["ci_low"].clip(-0.999999, 0.999999))) / (2 * crit)
        band = np.tanh(crit * se.to_numpy())
        ax.fill_between(c["lag"], -band, band, step="mid", color="grey", alpha=0.25, lw=0)
        ax.axhline(0, color="black", lw=0.8)
        ax.axvline(0, color="black", lw=0.5, ls=":")
        ax.set_xlabel(f"lag ({self.options.get('freq')} periods; positive: {leading} moves first)")
        ax.set_ylabel("prewhitened correlation")
        who = "all teams (pooled)" if team_id == POOLED else team_id
        ax.set_title(f"{leading} → {lagging}, {who}: {d.row['verdict']}")
        return ax

    def plot(self, *, ax=None):
        """Pooled prewhitened correlation at the best lag of each pair, with its interval, by verdict."""
        # lazy import: pyplot adds ~0.5 s to every command that draws nothing
        import matplotlib.pyplot as plt

        ax = ax if ax is not None else plt.gca()
        t = self.table[(self.table["team_id"] == POOLED) & (self.table["verdict"] != "insufficient data")]
        t = t.sort_values("correlation")
        palette = {"leads": "#2ca02c", "feedback": "#1f77b4", "reverse": "#ff7f0e", "contemporaneous": "#9467bd",
                   "no evidence": "#7f7f7f"}
        ylab = [f"{a} → {b} (lag {k})" for a, b, k in zip(t["leading"], t["lagging"], t["lag"])]
        y = np.arange(len(t))
        for v, col in palette.items():
            m = (t["verdict"] == v).to_numpy()
            if m.any():
                ax.errorbar(t["correlation"][m], y[m], xerr=[(t["correlation"] - t["ci_low"])[m],
                                                             (t["ci_high"] - t["correlation"])[m]],
                            fmt="o", color=col, label=v, capsize=2)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(y, ylab)
        ax.set_xlabel("prewhitened correlation at the best lag")
        ax.legend(loc="best", fontsize="small")
        return ax


# =============================================================================================
# Entry points
# =============================================================================================
def _resolve_max_lag(max_lag: Any, order: Any, freq: str, n_periods: int) -> int:
    """``max_lag`` as given, or the frequency's default (:func:`default_max_lag`), at least ``order``."""
    if max_lag is not None:
        return max_lag
    m = default_max_lag(freq, n_periods)
    if isinstance(order, (int, np.integer)) and not isinstance(order, bool) and order > m:
        m = int(order)
    return m


def _check_options(max_lag, alpha, order, ic, skill_threshold, oos_fraction, min_periods):
    max_lag = _check_int(max_lag, "max_lag", low=1)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a number between 0 and 1 (e.g. 0.05), got {alpha!r}.")
    if order is not None:
        order = _check_int(order, "order", low=1)
        if order > max_lag:
            raise ValueError(f"order ({order}) must not exceed max_lag ({max_lag}); raise max_lag or lower order.")
    ic = _check_ic(ic)
    if not isinstance(skill_threshold, (int, float)) or not -1 < skill_threshold < 1:
        raise ValueError(f"skill_threshold must be a number in (-1, 1), got {skill_threshold!r}.")
    if not isinstance(oos_fraction, (int, float)) or not 0.05 <= oos_fraction <= 0.5:
        raise ValueError(f"oos_fraction must be between 0.05 and 0.5, got {oos_fraction!r}.")
    if min_periods is None:
        min_periods = driver_min_periods(max_lag)
    else:
        min_periods = _check_int(min_periods, "min_periods", low=driver_min_periods_floor(max_lag))
    return max_lag, float(alpha), order, ic, float(skill_threshold), float(oos_fraction), min_periods


def _check_executor(executor: Any, scheduler: Any) -> tuple[str, str | None]:
    return check_executor(executor, scheduler)


def _check_jobs(jobs: Any, executor: str) -> int:
    if jobs is None:
        return 1
    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or jobs < 1:
        raise ValueError(f"jobs must be a whole number of processes >= 1, got {jobs!r}.")
    if jobs > 1 and executor != "local":
        raise ValueError(f"jobs={jobs} applies to executor='local'; a Dask cluster has its own workers.")
    return int(jobs)


def _check_workers(workers: Any, jobs: Any, executor: str) -> LocalWorkers | None:
    if workers is None:
        return None
    if not isinstance(workers, LocalWorkers):
        raise TypeError(f"workers must be worker processes started by okr_analysis.parallel.local_workers, "
                        f"got {type(workers).__name__}.")
    if jobs is not None or executor != "local":
        raise ValueError("workers= are processes of this machine you started: give them or jobs=, not both, "
                         "and only with executor='local'.")
    return workers


def _check_require(require: Any) -> tuple[str, ...]:
    if isinstance(require, str):
        require = (require,)
    try:
        req = tuple(require)
    except TypeError:
        raise TypeError(f"require must be a list drawn from {REQUIRE}, got {require!r}.") from None
    for r in req:
        if r not in REQUIRE:
            raise ValueError(f"require: unknown confirmation {r!r}; use any of {REQUIRE} (or () for the classic "
                             "Granger-only reading).")
    return req


def _normalise_pairs(pairs: Any, available: Sequence[str], name: str = "pairs") -> list[tuple[str, str]]:
    if isinstance(pairs, tuple) and len(pairs) == 2 and all(isinstance(p, str) for p in pairs):
        pairs = [pairs]
    out = []
    for p in pairs:
        if not (isinstance(p, (tuple, list)) and len(p) == 2 and all(isinstance(v, str) for v in p)):
            raise TypeError(f"{name} must be a list of (leading, lagging) metric-name pairs, got {p!r}.")
        for v in p:
            if v not in available:
                raise ValueError(f"{name}: metric {v!r} is not in the data; available: {sorted(available)}.")
        if p[0] == p[1]:
            raise ValueError(f"{name}: a pair needs two different metrics, got ({p[0]!r}, {p[1]!r}).")
        out.append((p[0], p[1]))
    if not out:
        raise ValueError(f"{name} is empty; name at least one (leading, lagging) pair.")
    return list(dict.fromkeys(out))


def _resolve_transforms(frame: _Frame, metrics: Sequence[str], transform: Any,
                        workers: LocalWorkers | None = None) -> pd.DataFrame:
    rows = []
    user: Mapping[str, str] = {}
    if isinstance(transform, Mapping):
        user = dict(transform)
        default = "auto"
    else:
        default = transform
    if default not in ("auto",) + TRANSFORMS:
        raise ValueError(f"transform must be 'auto', 'none', 'detrend', 'diff' or a dict of those by metric, "
                         f"got {transform!r}.")
    for m, t in user.items():
        if t not in ("auto",) + TRANSFORMS:
            raise ValueError(f"transform[{m!r}] must be 'auto', 'none', 'detrend' or 'diff', got {t!r}.")
    auto = [m for m in metrics if user.get(m, default) == "auto"]
    # the ADF/KPSS votes, one item per metric (on the workers too, when there are: they have the frame)
    votes = dict(zip(auto, map_local(_Frame.vote, [(m,) for m in auto], workers=workers, shared=frame,
                                     stacklevel=3) if workers is not None
                     else [frame.vote(m) for m in auto]))
    for m in metrics:
        t = user.get(m, default)
        if t == "auto":
            rows.append(dict(metric=m, decided_by="ADF+KPSS", **votes[m]))
        else:
            rows.append(dict(metric=m, transform=t, decided_by="user", n_series=0, share_stationary=np.nan,
                             share_trend_stationary=np.nan, share_unit_root=np.nan))
    return pd.DataFrame(rows, columns=TRANSFORM_COLUMNS)


def _oos_transforms(frame: _Frame, series: list[_TeamSeries], pair: tuple[str, str], tmap: Mapping[str, str],
                    auto: set[str], opt: _Options, cache: dict[tuple[str, int], str]) -> tuple[str, str] | None:
    """The pair's transforms for the out-of-sample series, decided without look-ahead: the same ADF/KPSS
    majority vote as the primary test's (:func:`decide_transform`), on each team's periods before the pair's
    first forecast origin only (the earliest over the teams the pair analyses, :func:`_oos_cut`; the annual
    cycle fitted on those periods: :meth:`_Frame.series_before`), then the pair rule
    (:func:`_pair_transforms`). A metric's transform given by the user is kept. ``cache`` holds the decisions
    by (metric, first origin's calendar code): pairs sharing a metric and a calendar vote once. None when no
    team has enough periods (the pair is not forecast)."""
    good = [s for s in series if not s.problem and s.x.size >= opt.min_periods and s.rcodes is not None]
    if not good:
        return None
    code = min(int(s.rcodes[_oos_cut(s.rcodes.size, opt.oos_fraction)]) for s in good)
    out = []
    for m in pair:
        if m not in auto:
            out.append(tmap[m])
            continue
        if (m, code) not in cache:
            cache[(m, code)] = decide_transform(frame.series_before(m, code))["transform"]
        out.append(cache[(m, code)])
    return _pair_transforms(*out)


def _pair_job(frame: _Frame, leading: str, lagging: str, tmap: Mapping[str, str], auto: set[str],
              opt: _Options) -> dict[str, list[dict]]:
    """One pair from the frame: its series (and in levels, when differenced), its out-of-sample transforms,
    then :func:`_analyse_pair`. The same code in this process and in a worker holding a copy of the frame.

    On one BLAS thread (threadpoolctl), wherever it runs: OpenBLAS's threaded products add in another
    order, so the numbers are the same with any ``jobs`` and on any number of cores; and the two processes
    of ``-j 2`` on two cores do not run four threads (1,000 teams × 15 pairs: 4.9 s instead of 5.2 s,
    median of five interleaved runs of the whole command)."""
    with threadpool_limits(limits=1, user_api="blas"):
        return _pair_job_on_one_thread(frame, leading, lagging, tmap, auto, opt)


def _pair_job_on_one_thread(frame: _Frame, leading: str, lagging: str, tmap: Mapping[str, str], auto: set[str],
                            opt: _Options) -> dict[str, list[dict]]:
    tx, ty = _pair_transforms(tmap[leading], tmap[lagging])
    series = frame.pair(leading, lagging, tx, ty)
    levels = None
    if "diff" in (tx, ty):  # the Toda–Yamamoto test needs the series in levels
        lvl = {m: ("none" if tmap[m] == "diff" else tmap[m]) for m in (leading, lagging)}
        levels = frame.pair(leading, lagging, lvl[leading], lvl[lagging])
    return _analyse_pair(leading, lagging, series, tx, ty, opt, levels,
                         _oos_transforms(frame, series, (leading, lagging), tmap, auto, opt, frame.oos_votes))


def _run(frame: _Frame, pairs: list[tuple[str, str]], opt: _Options, transform: Any, progress: bool,
         drop_empty: bool, executor: str = "local", scheduler: str | None = None, jobs: int = 1,
         workers: LocalWorkers | None = None) -> LeadLagResult:
    try:
        if workers is not None:  # the caller's, started before it loaded the data
            return _run_on(frame, pairs, opt, transform, progress, drop_empty, executor, scheduler, workers)
        # jobs > 1 (local executor) and a large run: worker processes, started now so that they import while
        # this process removes the seasonal cycles and votes on the transforms (with them)
        n_workers = 0
        if executor == "local" and jobs > 1 and len(pairs) > 1 and len(pairs) * len(frame.teams) >= PARALLEL_MIN_SERIES:
            n_workers = min(jobs, len(pairs)) - 1
        with local_workers(n_workers, warm=(__name__,)) as workers:
            return _run_on(frame, pairs, opt, transform, progress, drop_empty, executor, scheduler, workers)
    finally:
        S.clear_caches()  # the kernels' per-process caches (up to ~130 MB at 1,000 teams) serve one run


def _run_on(frame: _Frame, pairs: list[tuple[str, str]], opt: _Options, transform: Any, progress: bool,
            drop_empty: bool, executor: str, scheduler: str | None, workers: LocalWorkers | None) -> LeadLagResult:
    metrics = list(dict.fromkeys([m for p in pairs for m in p]))
    opt.n_seasonal = frame.deseason(opt.freq, opt.seasonal)
    opt.season = frame.season
    transforms = _resolve_transforms(frame, metrics, transform, workers)
    tmap = dict(zip(transforms["metric"], transforms["transform"]))
    auto = set(transforms.loc[transforms["decided_by"] == "ADF+KPSS", "metric"])
    rows, lag_rows, granger_rows, fc_rows = [], [], [], []
    # Each pair is a slot: the row of a pair no team measures, or the output of _pair_job. With
    # executor="dask" the pairs are analysed on the cluster, with workers on them and this process (each
    # holding the frame), and the slots filled in the same order.
    slots: list[dict] = []
    jobs: list[tuple] = []
    defer = executor == "dask" or workers is not None
    for leading, lagging in tqdm(pairs, desc="lead/lag pairs", unit="pair", disable=not progress or defer):
        if not frame.measured(leading, lagging):
            tx, ty = _pair_transforms(tmap[leading], tmap[lagging])
            if drop_empty:
                continue
            warnings.warn(f"lead_lag {leading} → {lagging}: no team measures both metrics.", stacklevel=3)
            slots.append({"rows": [dict(leading=leading, lagging=lagging, team_id=POOLED, freq=opt.freq,
                                        verdict="insufficient data", n_teams=0, n_periods=0,
                                        transform_leading=tx, transform_lagging=ty,
                                        reason="no team measures both metrics")],
                          "lags": [], "granger": [], "forecasts": []})
            continue
        args = (leading, lagging, tmap, auto, opt)
        if defer:
            jobs.append(args)
            slots.append({"job": len(jobs) - 1})
        else:
            slots.append(_pair_job(frame, *args))
    if jobs:
        bar = tqdm(total=len(jobs), desc="lead/lag pairs", unit="pair", disable=not progress)
        try:
            if workers is not None:
                # taken by lagging metric: a process gets runs of pairs sharing it (map_local deals
                # neighbours to one process), for the work a process caches per metric
                order = sorted(range(len(jobs)), key=lambda i: jobs[i][1])
                done = map_local(_pair_job, jobs, workers=workers, shared=frame, order=order,
                                 progress=bar.update, stacklevel=3)
            else:
                done = map_ordered(_pair_job, jobs, scheduler=scheduler, shared=frame, progress=bar.update,
                                   stacklevel=3)
        finally:
            bar.close()
        slots = [done[s["job"]] if "job" in s else s for s in slots]
    for out in slots:
        rows += out["rows"]
        lag_rows += out["lags"]
        granger_rows += out["granger"]
        fc_rows += out["forecasts"]
    table = pd.DataFrame(rows).reindex(columns=TABLE_COLUMNS)

    def cat(parts: list, cols: list[str]) -> pd.DataFrame:
        frames = [p if isinstance(p, pd.DataFrame) else pd.DataFrame([p]) for p in parts]
        frames = [f for f in frames if len(f)]
        return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()).reindex(columns=cols)

    lags = cat(lag_rows, LAG_COLUMNS)
    granger = cat(granger_rows, GRANGER_COLUMNS)
    forecasts = cat(fc_rows, FORECAST_COLUMNS)
    # ---- multiple testing (see _fdr): the primary family is the pooled forward tests only ----
    n_primary = _fdr(table, lags, opt.alpha)
    table = _verdicts(table, lags, opt)
    ok = table["n_forecasts"].notna() & (pd.to_numeric(table["n_forecasts"], errors="coerce") >= MIN_FORECASTS) \
        & table["cw_p"].notna() & (table["verdict"] != "insufficient data")
    table["oos_confirmed"] = pd.array(np.where(ok, table["cw_p"].astype(float) < opt.alpha, False), dtype="boolean")
    table.loc[~ok.to_numpy(), "oos_confirmed"] = pd.NA
    table["test"] = table["test"].astype(object).where(table["test"].notna(), "none").astype("str")  # all-NaN: float
    for c in _INT_COLS:
        table[c] = pd.array(table[c], dtype="Int64")
    table["common_removed"] = table["common_removed"].astype("boolean").fillna(False).astype(bool)
    table["sentence"] = [verdict_sentence(r, freq_unit=UNITS.get(opt.freq, "period"), alpha=opt.alpha)
                         for _, r in table.iterrows()]
    for c in ("leading", "lagging", "team_id", "freq", "verdict", "transform_leading", "transform_lagging", "reason",
              "test", "sentence"):
        table[c] = table[c].astype("str")
    lags["lag"] = lags["lag"].astype("int64")
    lags["n"] = lags["n"].astype("int64")
    table = table.assign(_pooled=table["team_id"] != POOLED).sort_values(
        ["leading", "lagging", "_pooled", "team_id"], kind="stable").drop(columns="_pooled").reset_index(drop=True)
    options = dict(max_lag=opt.max_lag, alpha=opt.alpha, freq=opt.freq, by_team=opt.by_team, order=opt.order,
                   ic=opt.ic, skill_threshold=opt.skill_threshold, oos_fraction=opt.oos_fraction,
                   min_periods=opt.min_periods, require=opt.require, lead_order=opt.lead_order,
                   seasonal=opt.seasonal, bias_correction=opt.bias_correction, n_tests=n_primary)
    return LeadLagResult(table=table, lags=lags, granger=granger, forecasts=forecasts, transforms=transforms,
                         options=options)


def lead_lag_frame(
    frame: pd.DataFrame,
    *,
    leading: str | Sequence[str] | None = None,
    lagging: str | Sequence[str] | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    time: str = "period_start",
    team: str | None = None,
    freq: str | None = None,
    max_lag: int | None = None,
    by_team: bool = False,
    alpha: float = 0.05,
    transform: str | Mapping[str, str] = "auto",
    order: int | None = None,
    ic: str = "bic",
    skill_threshold: float = SKILL_THRESHOLD,
    oos_fraction: float = 0.3,
    min_periods: int | None = None,
    require: Sequence[str] = (),
    lead_order: str = LEAD_ORDER,
    seasonal: bool | None = None,
    bias_correction: str = "hpj",
    progress: bool = False,
    executor: str = "local",
    scheduler: str | None = None,
    jobs: int | None = None,
    workers: LocalWorkers | None = None,
) -> LeadLagResult:
    """Lead/lag analysis of a plain wide DataFrame (one row per team and period, one column per metric).

    Parameters
    ----------
    frame : DataFrame
        Columns ``time``, optionally ``team``, and the metrics. Rows of a team are taken as consecutive
        periods in ``time`` order (a missing period must be a row with NaN, not an absent row).
    leading, lagging : str or list of str
        Every combination is analysed. Or give ``pairs``.
    pairs : list of (leading, lagging)
        The pairs to analyse.
    time, team : str
        Column names; without ``team`` the frame is one series ("team" ``all``).
    freq : str, optional
        Label of the period for the table (``"W"``, ``"M"``, ``"Q"``, ``"A"`` or any label); default:
        guessed from a datetime ``time`` column (else ``"P"``). It sets the default ``max_lag``.
    max_lag : int, optional
        Largest lag, in periods; default :func:`default_max_lag` (W 8, M 6, Q 4, A 2, other 8; at most a
        tenth of the longest team series).
    by_team : bool, default False
        Add a row per team to the pooled row.
    alpha : float, default 0.05
        False-discovery rate of the primary family (Benjamini–Hochberg over the pooled tests; team rows
        Benjamini–Bogomolov) and level of the diagnostics.
    transform : {'auto', 'none', 'detrend', 'diff'} or dict
        ``auto``: ADF + KPSS per metric (:func:`decide_transform`); a dict sets it per metric.
    order : int, optional
        Fix the Granger order: ``order`` own lags and ``order`` lags of the other metric, exactly R's
        ``grangertest(order = order)`` (default: own lags by ``ic``, other lags as ``lead_order`` says).
    ic : {'bic', 'aic', 'hqic'}, default 'bic'
        Information criterion choosing the own-lag order of the Granger regressions (the AR model of the
        lagging metric; of the leading metric for the reverse test), per team.
    skill_threshold : float, default 0.02
        Out-of-sample skill a ``leads`` verdict needs when ``require`` names ``'oos'``.
    oos_fraction : float, default 0.3
        Share of the periods forecast out of sample (at least 5).
    min_periods : int, optional
        Periods (after the transform) a team needs; default ``4 * max_lag + 12``.
    require : sequence of {'ccf', 'oos'}, default ()
        Confirmations a ``leads`` (or ``feedback``) verdict is made to need beyond the primary test:
        ``ccf``, a prewhitened correlation at a positive lag with q < alpha; ``oos``, out-of-sample skill
        above ``skill_threshold`` with Clark–West p < alpha. Default none: the out-of-sample evidence is
        reported beside the verdict (``oos_confirmed``); a veto on raw skill loses most real leads of the
        size people-analytics data has (a correct bigger model's raw error is inflated by estimation noise).
    lead_order : {'simes', 'all', 'aic', 'bic', 'hqic'}, default 'simes'
        How many lags of the leading metric the primary test uses. ``'simes'``: the F tests with 1..max_lag
        lags combined by Simes' rule (``granger_p``), the order AIC picks reported (``granger_lags``,
        ``granger_f``, ``effect``); ``'all'``: lags 1..max_lag (the plain pooled F test); an information
        criterion: the order it picks, tested as if fixed (faster, but choosing the order on the same data
        inflates the false-lead rate: measured 15% at 5% with AIC, 8 teams × 130 weeks).
    seasonal : bool, optional
        Remove each team's annual cycle from both metrics before testing (Fourier terms per team; see
        ``test``). Default: for weekly and monthly data of at least two years (``freq`` ``'W'``/``'M'``).
    bias_correction : {'hpj', 'none'}, default 'hpj'
        The pooled forward and reverse tests (two teams or more): ``'hpj'`` corrects the O(1/T) bias of the
        pooled estimator with team effects and own lags by the half-panel jackknife and tests the corrected
        coefficients (Juodis, Karavias & Sarafidis 2021); without it, large panels (hundreds of teams) call
        a true lead ``feedback``. It does not correct the bias of the seasonal terms fitted per team
        before the test (``seasonal``): with them, large panels can still say ``feedback`` (see
        docs/methods/drivers.md). ``'none'``: the uncorrected pooled F test. Team rows and single series
        are never corrected (their F test is exact for one series).
    progress : bool, default False
        Show a progress bar over the pairs (tqdm).
    executor : {'local', 'dask'}, default 'local'
        ``'dask'``: analyse the pairs on a Dask distributed cluster; the result is the same
        (see README.md, Dask section).
    scheduler : str, optional
        With ``executor='dask'``, the address of an existing cluster's scheduler (``tcp://HOST:PORT``);
        default: a local cluster started for the call.
    jobs : int, optional
        With ``executor='local'``: analyse the pairs (and vote on the transforms) in up to ``jobs``
        processes of this machine, this one and ``jobs - 1`` spawned workers, when the run is large
        enough to repay starting them (at least :data:`PARALLEL_MIN_SERIES` team × pair series).
        Default 1: everything in this process. The result does not depend on it. The workers are
        spawned (fresh interpreters): in a script, call this under ``if __name__ == "__main__":``.
    workers : LocalWorkers, optional
        Worker processes you started (:func:`okr_analysis.parallel.local_workers`), used for this call
        whatever its size instead of ``jobs``; they are yours to stop. Started before the data are
        loaded, they import while this process loads (as ``okr-analysis drivers`` does). The result does
        not depend on them.

    Returns
    -------
    LeadLagResult
        See :class:`LeadLagResult` for the columns of ``.table``.
    """
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__}.")
    if time not in frame.columns:
        raise ValueError(f"time column {time!r} is not in frame; columns: {list(frame.columns)}.")
    if team is not None and team not in frame.columns:
        raise ValueError(f"team column {team!r} is not in frame; columns: {list(frame.columns)}.")
    metric_cols = [c for c in frame.columns if c not in (time, team)]
    if pairs is None:
        if leading is None or lagging is None:
            raise ValueError("give pairs=[(leading, lagging), ...] or both leading= and lagging=.")
        lead_l = [leading] if isinstance(leading, str) else list(leading)
        lag_l = [lagging] if isinstance(lagging, str) else list(lagging)
        pairs = [(a, b) for a, b in product(lead_l, lag_l) if a != b]
    pairs = _normalise_pairs(pairs, metric_cols)
    label = str(freq) if freq is not None else _guess_freq(frame[time])
    max_lag = _resolve_max_lag(max_lag, order, label, frame.groupby(team).size().max() if team else len(frame))
    opts = _check_options(max_lag, alpha, order, ic, skill_threshold, oos_fraction, min_periods)
    lead_order = _check_lead_order(lead_order)
    executor, scheduler = _check_executor(executor, scheduler)
    workers = _check_workers(workers, jobs, executor)
    jobs = _check_jobs(jobs, executor)
    fr = _Frame(frame, time=time, team=team, metrics=list(dict.fromkeys([m for p in pairs for m in p])))
    opt = _Options(*opts[:2], bool(by_team), *opts[2:], label, _check_require(require), lead_order,
                   _check_seasonal(seasonal), bias_correction=_check_bias_correction(bias_correction))
    return _run(fr, pairs, opt, transform, progress, drop_empty=False, executor=executor, scheduler=scheduler,
                jobs=jobs, workers=workers)


def _guess_freq(t: pd.Series) -> str:
    if pd.api.types.is_datetime64_any_dtype(t):
        d = np.diff(np.sort(pd.to_datetime(t).dropna().unique()).astype("datetime64[D]").astype("int64"))
        d = d[d > 0]
        if d.size == 0:
            return "P"
        step = float(np.median(d))
        return "W" if step < 20 else "M" if step < 60 else "Q" if step < 200 else "A"
    return "P"


def lead_lag(
    ds: Dataset,
    *,
    pairs: Sequence[tuple[str, str]] | None = None,
    freq: str | None = None,
    max_lag: int | None = None,
    by_team: bool = False,
    alpha: float = 0.05,
    transform: str | Mapping[str, str] = "auto",
    order: int | None = None,
    ic: str = "bic",
    skill_threshold: float = SKILL_THRESHOLD,
    oos_fraction: float = 0.3,
    min_periods: int | None = None,
    require: Sequence[str] = (),
    lead_order: str = LEAD_ORDER,
    seasonal: bool | None = None,
    bias_correction: str = "hpj",
    progress: bool = False,
    executor: str = "local",
    scheduler: str | None = None,
    jobs: int | None = None,
    workers: LocalWorkers | None = None,
) -> LeadLagResult:
    """Does each leading KPI predict each key-result (lagging) KPI, at what lag, for which teams?

    Parameters
    ----------
    ds : Dataset
    pairs : list of (leading, lagging), optional
        Default: every catalogue metric of kind ``leading`` with every metric of kind ``lagging``
        (pairs that no team measures both of are left out).
    freq : {'W', 'M', 'Q', 'A'}, optional
        Resample the KPIs to this frequency (:func:`okr_analysis.resample.kpi_panel`); default: the
        data's own (:func:`okr_analysis.resample.infer_freq`). Lags count periods of this frequency.
    max_lag, by_team, alpha, transform, order, ic, skill_threshold, oos_fraction, min_periods, require,
    lead_order, seasonal, bias_correction, progress
        As in :func:`lead_lag_frame` (the default ``max_lag`` counts the longest team's periods).
    executor, scheduler, jobs, workers
        Where the pairs are analysed, as in :func:`lead_lag_frame`.

    Returns
    -------
    LeadLagResult
        ``.table`` (one row per pair for the pooled estimate, ``team_id="*"``, plus one per team with
        ``by_team=True``), ``.summary()``, ``.plot_ccf(...)``, ``.details(...)``; see :class:`LeadLagResult`.
    """
    check_dataset(ds)
    freq = infer_freq(ds) if freq is None else check_freq(freq)
    have = set(ds.kpis["metric"].dropna().unique())
    if pairs is None:
        cat = ds.metrics
        leads = [m for m in cat.loc[cat["kind"] == "leading", "metric"] if m in have]
        lags_ = [m for m in cat.loc[cat["kind"] == "lagging", "metric"] if m in have]
        if not leads or not lags_:
            raise ValueError("the metrics catalogue needs at least one metric of kind 'leading' and one of kind "
                             "'lagging' with KPI values, or name the pairs: pairs=[(leading, lagging)].")
        pair_list = [(a, b) for a in leads for b in lags_ if a != b]
        drop_empty = True
    else:
        pair_list = _normalise_pairs(pairs, sorted(have))
        drop_empty = False
    if max_lag is not None:
        _check_int(max_lag, "max_lag", low=1)
    lead_order = _check_lead_order(lead_order)
    require = _check_require(require)
    executor, scheduler = _check_executor(executor, scheduler)
    workers = _check_workers(workers, jobs, executor)
    jobs = _check_jobs(jobs, executor)
    metrics = list(dict.fromkeys([m for p in pair_list for m in p]))
    panel = kpi_panel(ds, freq, metrics=metrics).reset_index()
    for m in metrics:
        if m not in panel.columns:
            panel[m] = np.nan
    longest = int(panel.groupby("team_id").size().max()) if len(panel) else 0
    max_lag = _resolve_max_lag(max_lag, order, freq, longest)
    opts = _check_options(max_lag, alpha, order, ic, skill_threshold, oos_fraction, min_periods)
    fr = _Frame(panel, time="period_start", team="team_id", metrics=metrics)
    opt = _Options(*opts[:2], bool(by_team), *opts[2:], freq, require, lead_order, _check_seasonal(seasonal),
                   bias_correction=_check_bias_correction(bias_correction))
    return _run(fr, pair_list, opt, transform, progress, drop_empty=drop_empty, executor=executor,
                scheduler=scheduler, jobs=jobs, workers=workers)


def lagged_correlations(
    ds: Dataset,
    *,
    metrics: Sequence[str] | None = None,
    max_lag: int = 8,
    freq: str | None = None,
    team_id: str | None = None,
    prewhiten: bool = True,
    transform: str | Mapping[str, str] = "auto",
) -> pd.DataFrame:
    """Correlations of every ordered metric pair by lag, for exploratory heat maps.

    ``correlation`` is ``corr(x_t, y_{t+lag})`` for lag 0..max_lag (positive: ``metric_x`` moves first;
    the negative lags are the swapped pair's rows), after the transform (ADF+KPSS by default) and, with
    ``prewhiten``, Box–Jenkins prewhitening by ``metric_x``'s AR model. Over all teams the team
    correlations are pooled by their Fisher z (weights n - 3); with ``team_id``, that team only.
    No verdicts and no multiple-testing correction: use :func:`lead_lag` to test.

    Returns
    -------
    pandas.DataFrame
        Columns ``metric_x``, ``metric_y`` (str), ``lag`` (int), ``correlation`` (float), ``n`` (int: pairs
        of periods used, summed over teams), ``p_value`` (float: unadjusted).
    """
    check_dataset(ds)
    max_lag = _check_int(max_lag, "max_lag", low=0)
    freq = infer_freq(ds) if freq is None else check_freq(freq)
    have = sorted(set(ds.kpis["metric"].dropna().unique()))
    if metrics is None:
        metrics = [m for m in ds.metrics["metric"] if m in have]
    else:
        metrics = list(metrics)
        for m in metrics:
            if m not in have:
                raise ValueError(f"metrics: {m!r} has no KPI values; available: {have}.")
    teams = None
    if team_id is not None:
        if team_id not in set(ds.kpis["team_id"]):
            raise ValueError(f"team_id {team_id!r} has no KPI values.")
        teams = [team_id]
    panel = kpi_panel(ds, freq, metrics=metrics, teams=teams).reset_index()
    fr = _Frame(panel, time="period_start", team="team_id", metrics=[m for m in metrics if m in panel.columns])
    tmap = dict(zip(*_resolve_transforms(fr, fr.metrics, transform)[["metric", "transform"]].to_numpy().T))
    lags = np.arange(0, max_lag + 1)
    out = []
    for mx, my in product(fr.metrics, fr.metrics):
        if mx == my:
            continue
        series = [s for s in fr.pair(mx, my, tmap[mx], tmap[my]) if not s.problem and s.x.size >= max_lag + 10]
        if not series:
            continue
        rs, ns = [], []
        for blk in _blocks(series):
            X, Y = blk.X, blk.Y
            if prewhiten:
                o, p = S.ar_select(X, max_order=max(1, min(max_lag, X.shape[1] // 5)))
                X, Y = S.prewhiten(X, Y, o, p)
            r, n = S.ccf(X, Y, lags)
            rs.append(r)
            ns.append(n)
        r, lo, hi, p, n = _fisher_pool(np.vstack(rs), np.vstack(ns), 0.05)
        for j, k in enumerate(lags):
            out.append(dict(metric_x=mx, metric_y=my, lag=int(k), correlation=r[j], n=int(n[j]), p_value=p[j]))
    res = pd.DataFrame(out, columns=["metric_x", "metric_y", "lag", "correlation", "n", "p_value"])
    return res.astype({"lag": "int64", "n": "int64"})
