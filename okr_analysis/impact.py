"""Did the initiative work? The effect of an initiative on its KPI, against comparison teams.

For each initiative (a row of the ``initiatives`` table, or a completed milestone key result with
``from_milestones=True``) :func:`initiative_impact` estimates the change of the team's KPI after the
start, in the metric's unit, with a 95% interval, and gives a verdict:

* **With comparison teams** (teams that measure the metric, with no initiative on it in the window):
  difference-in-differences with team and period effects (statsmodels OLS, Driscoll–Kraay standard
  errors, ``cov_type="hac-groupsum"``), on the metric's periods (:func:`okr_analysis.resample.resample_kpis`).
  Period effects absorb an organisation-wide change; a test of the team's slope before the start
  (``pretrend_p``) and one of its own linear trend over the whole window, a step at the start allowed, catch a
  team that was already moving, and then the estimate allows the team its own linear trend. Placebo runs, in
  space (each comparison team as if it had the initiative) and in time (false start dates before the real
  one), give ``placebo_p``: the real change against the placebo changes' scale. Both tests are calibrated on
  the comparison teams themselves, so persistent KPIs do not fool them.
* **Without comparison teams**: an interrupted time series on the team alone (a level shift in a
  regression with a linear trend and AR(1) errors, statsmodels ``SARIMAX``): weaker evidence, said so in
  ``method`` and ``reason``.

Verdicts follow the metric's ``higher_is_better``. See docs/methods/impact.md for the method and its limits.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.sandwich_covariance import cov_nw_groupsum

from .io.dataset import Dataset, check_dataset
from .io.quarters import to_day
from .io.schemas import TABLES
from .privacy import gate
from .resample import infer_freq, period_start, resample_kpis

__all__ = ["IMPACT_COLUMNS", "SERIES_COLUMNS", "ImpactResult", "estimate_impact", "initiative_impact",
           "initiatives_from_milestones", "sentence"]

#: The columns of :func:`initiative_impact`, in order.
IMPACT_COLUMNS = ["initiative_id", "team_id", "metric", "start", "n_pre", "n_post", "n_controls", "method",
                  "effect", "ci_low", "ci_high", "relative_effect", "p_value", "placebo_p", "pretrend_p",
                  "verdict", "reason"]

#: The columns of :attr:`ImpactResult.series`, in order.
SERIES_COLUMNS = ["initiative_id", "team_id", "period_start", "observed", "counterfactual", "lower", "upper", "post"]

#: Periods used before and after the start (at most), per frequency.
WINDOW = {"W": (26, 26), "M": (12, 12), "Q": (8, 8)}
#: Periods needed before and after the start (at least), per frequency.
MIN_PERIODS = {"W": (8, 4), "M": (6, 3), "Q": (4, 2)}
#: At most this many comparison teams (the most similar before the start) enter one estimate.
MAX_CONTROLS = 40
#: Significance levels: the effect's p-value, the placebo p-value and the pre-trend test.
ALPHA, PLACEBO_ALPHA, PRETREND_ALPHA = 0.05, 0.05, 0.01
#: Significance level of the whole-window trend test (:func:`_trend_p`).
TREND_ALPHA = 0.01
#: Bins of the periods before the start in the event-study pre-trend test.
PRETREND_BINS = 4
#: Comparison teams from which the pre-trend test is calibrated on them (placebo in space; its smallest p-value
#: is 1 / (teams + 1)); with fewer, the Driscoll–Kraay Wald test.
MIN_PLACEBO_TEAMS = 9

DID = "difference-in-differences"
DID_TREND = "difference-in-differences, trend-adjusted"
ITS = "interrupted time series (no comparison teams; weaker evidence)"


# ----------------------------------------------------------------------------------
# Which initiatives
# ----------------------------------------------------------------------------------
def initiatives_from_milestones(ds: Dataset) -> pd.DataFrame:
    """Completed milestone key results as initiatives, one per metric of the other key results of their objective.

    A milestone key result whose check-in value reaches 1 becomes an initiative starting on the date of
    that check-in (the first one at 1), for each metric of the other key results of its objective.

    Returns
    -------
    pandas.DataFrame
        The columns of the ``initiatives`` table: ``initiative_id`` (``"<kr_id>:<metric>"``), ``team_id``,
        ``title`` (the key result's), ``start``, ``metric``, ``end`` (empty) and ``kr_id``.
    """
    cols = TABLES["initiatives"].column_names
    krs = ds.key_results_in()
    ms = krs[krs["direction"] == "milestone"]
    ci = ds.checkins[ds.checkins["kr_id"].isin(set(ms["kr_id"])) & (ds.checkins["value"] >= 1)]
    done = ci.groupby("kr_id")["date"].min()
    rows = []
    measured = krs.dropna(subset=["metric"])
    for kr in ms.itertuples(index=False):
        if kr.kr_id not in done.index:
            continue
        others = measured[(measured["objective_id"] == kr.objective_id) & (measured["kr_id"] != kr.kr_id)]
        for metric in pd.unique(others["metric"]):
            rows.append({"initiative_id": f"{kr.kr_id}:{metric}", "team_id": kr.team_id, "title": kr.title,
                         "start": done[kr.kr_id], "metric": metric, "end": pd.NaT, "kr_id": kr.kr_id})
    out = pd.DataFrame(rows, columns=cols)
    out["start"] = pd.to_datetime(out["start"]).astype("datetime64[ns]")
    out["end"] = pd.to_datetime(out["end"]).astype("datetime64[ns]")
    return out


def _select(ds: Dataset, initiatives: Any, from_milestones: bool) -> pd.DataFrame:
    table = ds.initiatives
    if from_milestones:
        extra = initiatives_from_milestones(ds)
        have = set(zip(table["kr_id"], table["metric"]))
        extra = extra[[(k, m) not in have for k, m in zip(extra["kr_id"], extra["metric"])]]
        table = pd.concat([table, extra], ignore_index=True) if len(table) else extra
    if initiatives is None:
        return table.reset_index(drop=True)
    if isinstance(initiatives, pd.DataFrame):
        missing = [c for c in ("initiative_id", "team_id", "start", "metric") if c not in initiatives.columns]
        if missing:
            raise ValueError(f"initiatives is missing the column(s) {', '.join(missing)}; give a frame with the "
                             f"columns of the initiatives table ({', '.join(TABLES['initiatives'].column_names)}).")
        out = initiatives.copy()
        for col in TABLES["initiatives"].column_names:
            if col not in out.columns:
                out[col] = pd.NaT if col == "end" else None
        out["start"] = pd.to_datetime(out["start"]).astype("datetime64[ns]")
        out["end"] = pd.to_datetime(out["end"]).astype("datetime64[ns]")
        return out[TABLES["initiatives"].column_names].reset_index(drop=True)
    ids = [initiatives] if isinstance(initiatives, str) else list(initiatives)
    if not all(isinstance(i, str) for i in ids):
        raise TypeError(f"initiatives must be initiative ids (str), a list of them or a DataFrame, got {initiatives!r}.")
    unknown = [i for i in ids if i not in set(table["initiative_id"])]
    if unknown:
        known = ", ".join(table["initiative_id"].head(10)) or "none"
        hint = "" if from_milestones else " (add from_milestones=True for completed milestones)"
        raise ValueError(f"initiatives: {', '.join(map(repr, unknown))} not found; known initiatives: {known}{hint}.")
    return table[table["initiative_id"].isin(ids)].reset_index(drop=True)


# ----------------------------------------------------------------------------------
# The estimators
# ----------------------------------------------------------------------------------
class _Fit:
    """One initiative's estimate (internal)."""

    def __init__(self, method: str, effect: float, lo: float, hi: float, p: float, counterfactual: np.ndarray,
                 base: float):
        self.method, self.effect, self.lo, self.hi, self.p = method, effect, lo, hi, p
        self.counterfactual, self.base = counterfactual, base


def _did_columns(n_periods: int, n_teams: int, post: np.ndarray, trend: bool) -> np.ndarray:
    """The regressors of interest in long format (team-major, team 0 treated): treated × post, [treated × t]."""
    treated = np.repeat(np.arange(n_teams), n_periods) == 0
    cols = [(treated & np.tile(post, n_teams)).astype(float)]
    if trend:
        t = np.arange(n_periods) - (n_periods - 1) / 2
        cols.append(np.where(treated, np.tile(t, n_teams), 0.0))
    return np.column_stack(cols)


def _within(values: np.ndarray, n_periods: int, n_teams: int) -> np.ndarray:
    """Two-way demeaning (team and period effects) of long-format columns of a balanced panel."""
    v = values.reshape(n_teams, n_periods, -1)
    out = v - v.mean(axis=1, keepdims=True) - v.mean(axis=0, keepdims=True) + v.mean(axis=(0, 1), keepdims=True)
    return out.reshape(n_teams * n_periods, -1)


def _dk_lags(n_periods: int) -> int:
    """Newey–West's rule for the Driscoll–Kraay bandwidth."""
    return max(1, int(math.floor(4 * (n_periods / 100) ** (2 / 9))))


class _Coefs(NamedTuple):
    """Coefficients of a two-way fixed-effects regression, their Driscoll–Kraay covariance and t's degrees of freedom."""

    params: np.ndarray
    cov: np.ndarray
    df: float

    def contrast(self, r: np.ndarray) -> tuple[float, float, float, float]:
        """Estimate, 95% interval and p-value of ``r @ params``."""
        est = float(r @ self.params)
        se = float(np.sqrt(r @ self.cov @ r))
        q = float(stats.t.ppf(1 - ALPHA / 2, self.df))
        p = float(2 * stats.t.sf(abs(est) / se, self.df)) if se > 0 else float("nan")
        return est, est - q * se, est + q * se, p


def _twfe(y: np.ndarray, X: np.ndarray, n_periods: int, n_teams: int) -> _Coefs:
    """OLS with team and period effects and Driscoll–Kraay standard errors (statsmodels' ``cov_nw_groupsum``,
    the covariance of ``cov_type="hac-groupsum"``).

    The effects are absorbed by two-way demeaning (the panel is balanced, so the coefficients are those of the
    regression with dummies: Frisch–Waugh–Lovell): ~30× faster than the dummy regression on this machine
    (35 ms a fit), and tests/test_impact.py checks both agree. The small-sample factor is the one statsmodels
    applies to the dummy regression (``cluster``: G/(G − 1) · (n − 1)/(n − k), ``k`` counting the absorbed
    effects); t has (periods − 1) degrees of freedom, as statsmodels' ``df_correction``.
    """
    yd = _within(y[:, None], n_periods, n_teams)[:, 0]
    Xd = _within(X, n_periods, n_teams)
    time = np.tile(np.arange(n_periods), n_teams)
    res = sm.OLS(yd, Xd, hasconst=False).fit()
    cov = cov_nw_groupsum(res, _dk_lags(n_periods), time, use_correction=False)
    nobs, k = len(yd), X.shape[1] + n_periods + n_teams - 1
    cov = cov * n_periods / (n_periods - 1) * (nobs - 1) / (nobs - k)
    return _Coefs(np.asarray(res.params), cov, float(n_periods - 1))


def _did_fit(Y: np.ndarray, post: np.ndarray, trend: bool) -> tuple[float, float, float, float, np.ndarray]:
    """Two-way fixed-effects DiD of column 0 of ``Y`` (periods × teams) against the others, Driscoll–Kraay SEs.

    With ``trend`` the treated team also gets its own linear trend over the whole window (the usual
    "unit-specific trend" DiD). Returns effect, 95% interval, p-value and the treated team's fitted trend per
    period (zeros without trend).
    """
    T, N = Y.shape
    treated = np.repeat(np.arange(N), T) == 0
    cols = [(treated & np.tile(post, N)).astype(float)]
    t = np.arange(T) - (T - 1) / 2
    if trend:
        cols.append(np.where(treated, np.tile(t, N), 0.0))
    fit = _twfe(Y.T.ravel(), np.column_stack(cols), T, N)
    est, lo, hi, p = fit.contrast(np.eye(len(cols))[0])
    return est, lo, hi, p, (float(fit.params[1]) * t if trend else np.zeros(T))


def _pretrend_dk(Y: np.ndarray, n_pre: int) -> float:
    """Event-study test on the periods before the start: treated × lead-bin effects jointly zero (Wald, DK SEs)."""
    Yp = Y[:n_pre]
    T, N = Yp.shape
    bins = np.minimum((np.arange(T) * PRETREND_BINS) // T, PRETREND_BINS - 1)
    k = PRETREND_BINS - 1  # the bin next to the start is the reference
    team0 = np.repeat(np.arange(N), T) == 0
    leads = np.column_stack([(team0 & np.tile(bins == b, N)).astype(float) for b in range(k)])
    fit = _twfe(Yp.T.ravel(), leads, T, N)
    b = fit.params
    try:
        wald = float(b @ np.linalg.solve(fit.cov, b)) / k
    except np.linalg.LinAlgError:
        return float("nan")
    return float(stats.f.sf(wald, k, fit.df))


def _slope_t(gaps: np.ndarray) -> np.ndarray:
    """|t| of the linear slope of each gap column over the periods before the start (OLS, iid errors)."""
    T = gaps.shape[0]
    t = np.arange(T) - (T - 1) / 2
    slope = (t @ (gaps - gaps.mean(axis=0))) / (t @ t)
    resid = gaps - gaps.mean(axis=0) - np.outer(t, slope)
    se = np.sqrt((resid ** 2).sum(axis=0) / max(T - 2, 1) / (t @ t))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(slope / se)


def _as_z(t_abs: np.ndarray, df: float) -> np.ndarray:
    """|t| statistics with ``df`` degrees of freedom as the |z| of the same tail probability."""
    return stats.norm.isf(stats.t.sf(t_abs, df))


def _calibrated_p(real_z: float, placebo_z: np.ndarray) -> float:
    """Two-sided p-value of ``real_z`` against placebo statistics, on the placebos' own scale.

    The placebo |z|'s estimate the scale σ of the statistic when nothing happened (σ = 1 with independent
    errors, larger for persistent KPIs); under the null, ``real_z / s`` with ``s² = mean(placebo_z²)``
    follows Student's t with as many degrees of freedom as placebo runs (z ~ N(0, σ²), m·s²/σ² ~ χ²(m)).
    Unlike the rank of the real run among the placebo runs, this p is not limited to multiples of
    1 / (runs + 1), so a real change is not lost to the luck of one large placebo.
    """
    z = placebo_z[np.isfinite(placebo_z)]
    if len(z) < 2 or not np.isfinite(real_z):
        return float("nan")
    s = float(np.sqrt(np.mean(z ** 2)))
    return float(2 * stats.t.sf(real_z / s, len(z))) if s > 0 else float("nan")


def _pretrend_p(Y: np.ndarray, n_pre: int) -> float:
    """Did the team move unlike its comparison teams before the start?

    With 9 or more comparison teams, a placebo test in space: the studentised slope of the team's gap to the
    comparison mean over the periods before the start, against the comparison teams' own slopes (each
    against the others), on their scale (:func:`_calibrated_p`): robust to persistent KPIs. With fewer, the
    event-study Wald test of :func:`_pretrend_dk`.
    """
    N = Y.shape[1]
    if N - 1 >= MIN_PLACEBO_TEAMS:
        ctrl = Y[:n_pre, 1:]
        gaps = np.column_stack([Y[:n_pre, 0] - ctrl.mean(axis=1),
                                ctrl - (ctrl.sum(axis=1, keepdims=True) - ctrl) / (N - 2)])
        z = _as_z(_slope_t(gaps), max(n_pre - 2, 1))
        return _calibrated_p(float(z[0]), z[1:])
    return _pretrend_dk(Y, n_pre)


def _trend_p(Y: np.ndarray, post: np.ndarray) -> float:
    """Is the team on its own linear trend over the whole window, a step at the start allowed?

    The trend's studentised coefficient in the regression of the team's gap to the comparison mean on
    [1, post, t] (:func:`_shift_stat` with ``coef=2``): a step at the start does not bias it, and with periods
    on both sides of the start it is about 1.4 times as precise as a slope fitted before the start alone.
    Calibrated on the comparison teams' own (each against the others; :func:`_calibrated_p`) from 9 of them,
    else the Driscoll–Kraay t-test of the trend in :func:`_did_fit`.
    """
    T, N = Y.shape
    if N - 1 >= MIN_PLACEBO_TEAMS:
        ctrl = Y[:, 1:]
        gaps = np.column_stack([Y[:, 0] - ctrl.mean(axis=1),
                                ctrl - (ctrl.sum(axis=1, keepdims=True) - ctrl) / (N - 2)])
        z = _as_z(_shift_stat(gaps, post, True, coef=2), max(T - 3, 1))
        return _calibrated_p(float(z[0]), z[1:])
    t = np.arange(T) - (T - 1) / 2
    treated = np.repeat(np.arange(N), T) == 0
    X = np.column_stack([(treated & np.tile(post, N)).astype(float), np.where(treated, np.tile(t, N), 0.0)])
    return _twfe(Y.T.ravel(), X, T, N).contrast(np.array([0.0, 1.0]))[3]


def _shift_stat(gaps: np.ndarray, post: np.ndarray, trend: bool, *, coef: int = 1) -> np.ndarray:
    """Studentised post-start shift of each gap column (team minus comparison mean): the placebo statistic.

    OLS of the gap on a constant and the post indicator (and, with ``trend``, a linear trend), independent
    errors: |t| of the post coefficient (``coef=2``: of the trend's). Without a trend the post coefficient is
    the DiD estimate itself.
    """
    T = gaps.shape[0]
    cols = [np.ones(T), post.astype(float)]
    if trend:
        cols.append(np.arange(T) - (T - 1) / 2)
    X = np.column_stack(cols)
    xtx_inv = np.linalg.inv(X.T @ X)
    b = xtx_inv @ X.T @ gaps
    resid = gaps - X @ b
    s2 = (resid ** 2).sum(axis=0) / max(T - X.shape[1], 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(b[coef] / np.sqrt(s2 * xtx_inv[coef, coef]))


def _placebos(Y: np.ndarray, n_pre: int, post: np.ndarray, trend: bool, mins: tuple[int, int]) -> tuple[float, np.ndarray]:
    """The real statistic and the placebo ones: each comparison team as if treated (against the other comparison
    teams), and false starts before the real one (on the periods before it).

    Each is the |t| of :func:`_shift_stat` put on the normal scale (:func:`_as_z`, with its own degrees of
    freedom), so runs of different lengths compare."""
    T, N = Y.shape
    k = 3 if trend else 2
    ctrl = Y[:, 1:]
    real = _as_z(_shift_stat((Y[:, 0] - ctrl.mean(axis=1))[:, None], post, trend), T - k)[0]
    out = []
    if N - 1 >= 2:
        others = (ctrl.sum(axis=1, keepdims=True) - ctrl) / (N - 2)
        out.append(_as_z(_shift_stat(ctrl - others, post, trend), T - k))
    gap_pre = (Y[:n_pre, 0] - ctrl[:n_pre].mean(axis=1))[:, None]
    min_pre, min_post = mins
    for f in range(min_pre + (2 if trend else 0), n_pre - min_post + 1):
        out.append(_as_z(_shift_stat(gap_pre, np.arange(n_pre) >= f, trend), n_pre - k))
    return float(real), (np.concatenate(out) if out else np.array([]))


def _its_fit(y: np.ndarray, post: np.ndarray) -> _Fit:
    """Level shift in a regression on a constant and a linear trend with AR(1) errors (statsmodels SARIMAX)."""
    t = np.arange(len(y), dtype=float)
    exog = np.column_stack([np.ones(len(y)), t - t.mean(), post.astype(float)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = sm.tsa.SARIMAX(y, exog=exog, order=(1, 0, 0), trend="n").fit(disp=False)
    params = np.asarray(res.params)
    ci = np.asarray(res.conf_int(alpha=ALPHA))[2]
    counterfactual = params[0] + params[1] * exog[:, 1]  # the regression without the shift
    return _Fit(ITS, float(params[2]), float(ci[0]), float(ci[1]), float(np.asarray(res.pvalues)[2]),
                counterfactual, float(np.mean(counterfactual[post])))


# ----------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImpactResult:
    """What :func:`estimate_impact` returns: the table, each team's observed and counterfactual series.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per initiative (:func:`initiative_impact`).
    metrics : pandas.DataFrame
        The metrics catalogue (units for the sentences).
    titles : dict
        Initiative id → title.
    placebo_counts : dict
        Initiative id → (placebo runs with a change at least as large, placebo runs).
    series : pandas.DataFrame
        The periods of each estimated initiative's window, with columns:

        - ``initiative_id`` (str)
        - ``team_id`` (str): the initiative's team
        - ``period_start`` (datetime64): first day of the period
        - ``observed`` (float): the team's value
        - ``counterfactual`` (float): what the comparison teams (or, without them, the team's own
          history) say it would have been without the initiative
        - ``lower``, ``upper`` (float): the counterfactual shifted by the effect's 95% interval, after the start
        - ``post`` (bool): the period is after the start
    """

    table: pd.DataFrame
    series: pd.DataFrame = field(repr=False)
    metrics: pd.DataFrame = field(repr=False)
    titles: dict = field(repr=False, default_factory=dict)
    placebo_counts: dict = field(repr=False, default_factory=dict)

    def sentence(self, initiative_id: str) -> str:
        """The plain sentence for reports (see :func:`sentence`): the same words whether the result was just
        estimated or rebuilt from a report's shared table (``placebo_p`` in words, not the placebo counts)."""
        row = self._row(initiative_id)
        return sentence(row, metrics=self.metrics, title=self.titles.get(initiative_id))

    def _row(self, initiative_id: str) -> pd.Series:
        hit = self.table[self.table["initiative_id"] == initiative_id]
        if hit.empty:
            known = ", ".join(self.table["initiative_id"].head(10)) or "none"
            raise ValueError(f"initiative_id {initiative_id!r} is not in this result; known: {known}.")
        return hit.iloc[0]

    def plot(self, initiative_id: str, *, ax: Any = None, label: str | None = None, unit: str | None = None,
             title: str | None = None) -> Any:
        """The team's values against the counterfactual, with the effect's 95% interval after the start.

        The title is the initiative's sentence (:meth:`sentence`) unless ``title`` is given (a report that
        prints the sentence above the chart gives a short title instead); the sentence is always the chart's alt text
        (:func:`okr_analysis.style.alt_text`); colours are those of :mod:`okr_analysis.style` (the team blue,
        the counterfactual grey, the interval sky blue); the legend sits below the axes.

        Parameters
        ----------
        initiative_id : str
        ax : matplotlib Axes, optional
            Drawn on this axes (default: the current one).
        label : str, optional
            The metric's name in words for the value axis (default: its id in words).
        unit : str, optional
            The metric's unit (default: from the metrics table).
        title : str, optional
            The chart's title (default: the initiative's sentence).

        Returns
        -------
        matplotlib Axes
        """
        # lazy import: pyplot adds ~0.5 s to every command that draws nothing (the style module with it)
        import textwrap

        import matplotlib.dates as mdates
        import matplotlib.pyplot as plt

        from .style import NEUTRAL, PEERS, REFERENCE, TEAM, legend_outside, set_alt_text

        row = self._row(initiative_id)
        s = self.series[self.series["initiative_id"] == initiative_id]
        ax = plt.gca() if ax is None else ax
        if s.empty:
            ax.text(0.5, 0.5, f"No estimate: {row['reason']}", ha="center", va="center", transform=ax.transAxes,
                    wrap=True)
            ax.set_axis_off()
            set_alt_text(ax, f"No estimate: {row['reason']}")
            return ax
        against = "comparison teams" if row["method"] != ITS else "the team's own trend"
        ax.plot(s["period_start"], s["observed"], color=TEAM, marker="o", markersize=3, label="observed")
        ax.plot(s["period_start"], s["counterfactual"], color=NEUTRAL, linestyle="--",
                label=f"without the initiative ({against})")
        post = s[s["post"]]
        ax.fill_between(post["period_start"], post["lower"], post["upper"], color=PEERS, alpha=0.3, linewidth=0,
                        label="95% interval of the effect")
        ax.axvline(row["start"], color=REFERENCE, linewidth=1, label="initiative starts")
        message = self.sentence(initiative_id)
        ax.set_title(textwrap.fill(message if title is None else title, 90), fontsize=9, loc="left")
        metric = str(row["metric"])
        if unit is None:
            info = self.metrics.set_index("metric") if isinstance(self.metrics, pd.DataFrame) and \
                "metric" in self.metrics else None
            unit = info["unit"].get(metric, "") if info is not None and "unit" in info else ""
        unit = unit if isinstance(unit, str) else ""
        name = label or metric.replace("_", " ")
        ax.set_ylabel(f"{name} ({unit})" if unit else name)
        legend_outside(ax, where="below", ncol=2)
        set_alt_text(ax, message)
        locator = mdates.AutoDateLocator(maxticks=7)  # a few readable dates, not one per period
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        return ax


def _verdict(effect: float, p: float, placebo_p: float, higher: bool, method: str) -> tuple[str, str]:
    if not np.isfinite(effect) or not np.isfinite(p):
        return "insufficient data", "the model could not be fitted"
    if p >= ALPHA:
        return "no detectable effect", f"p = {p:.2g} (a change this size is plausible by chance)"
    if method != ITS and not (np.isfinite(placebo_p) and placebo_p <= PLACEBO_ALPHA):
        return "no detectable effect", (f"p = {p:.2g} but the placebo runs show changes this large too "
                                        f"(placebo p = {placebo_p:.2g})")
    good = (effect > 0) == bool(higher)
    reason = f"p = {p:.2g}" + ("" if method == ITS else f", placebo p = {placebo_p:.2g}")
    if method == ITS:
        reason += "; no comparison teams: the team's own history is the only evidence"
    return ("improved" if good else "worsened"), reason


def estimate_impact(ds: Dataset, *, initiatives: Any = None, as_of: Any = None, from_milestones: bool = False,
                    min_group_size: int | None = 5) -> ImpactResult:
    """The effect of initiatives on their KPIs, with the series behind each estimate.

    Parameters are those of :func:`initiative_impact`.

    Returns
    -------
    ImpactResult
        ``.table`` (:func:`initiative_impact`), ``.series``, ``.plot(initiative_id, ax=None)``,
        ``.sentence(initiative_id)``.
    """
    check_dataset(ds)
    cutoff = None
    if as_of is not None:
        cutoff = to_day(as_of)
        if cutoff is None:
            raise ValueError(f"as_of must be a date such as '2026-09-30', got {as_of!r}.")
    chosen = _select(ds, initiatives, bool(from_milestones))
    freq = infer_freq(ds) if len(ds.kpis) else "W"
    before, after = WINDOW[freq]
    mins = MIN_PERIODS[freq]
    higher = dict(zip(ds.metrics["metric"], ds.metrics["higher_is_better"].astype(bool)))
    all_ini = pd.concat([ds.initiatives, chosen], ignore_index=True).drop_duplicates(
        subset=["initiative_id", "team_id", "metric", "start"])
    rows, series = [], []
    wide_cache: dict[str, tuple[pd.DatetimeIndex, dict[str, int], np.ndarray, np.ndarray]] = {}
    resampled = resample_kpis(ds, freq, metrics=set(chosen["metric"].dropna()), end=cutoff)
    by_metric = {m: g for m, g in resampled.groupby("metric", sort=False)}
    p0s = period_start(chosen["start"], freq, fiscal_year_start=ds.fiscal_year_start).tolist() if len(chosen) else []
    others: dict[str, tuple[np.ndarray, ...]] = {}  # per metric: every initiative's id, team, start and end
    for m, g in all_ini.groupby("metric", sort=False):
        others[m] = (g["initiative_id"].to_numpy(dtype=object), g["team_id"].to_numpy(dtype=object),
                     g["start"].to_numpy(dtype="datetime64[ns]"),
                     g["end"].fillna(pd.Timestamp.max).to_numpy(dtype="datetime64[ns]"))
    for ini, p0 in zip(chosen.itertuples(index=False), p0s):
        row = {"initiative_id": ini.initiative_id, "team_id": ini.team_id, "metric": ini.metric,
               "start": ini.start, "n_pre": 0, "n_post": 0, "n_controls": 0, "method": "", "effect": np.nan,
               "ci_low": np.nan, "ci_high": np.nan, "relative_effect": np.nan, "p_value": np.nan,
               "placebo_p": np.nan, "pretrend_p": np.nan, "verdict": "insufficient data", "reason": ""}
        rows.append(row)
        if ini.metric not in wide_cache:
            k = by_metric.get(ini.metric, resampled.iloc[:0])
            w = k.pivot(index="period_start", columns="team_id", values="value").sort_index()
            wide_cache[ini.metric] = (w.index, {c: i for i, c in enumerate(w.columns)},
                                      np.asarray(w.columns, dtype=object), w.to_numpy(dtype="float64"))
        idx, col_of, _, values = wide_cache[ini.metric]
        if ini.team_id not in col_of:
            row["reason"] = f"team {ini.team_id} has no values of {ini.metric}"
            continue
        start = pd.Timestamp(ini.start)
        first_post = p0 if p0 == start else p0 + (pd.DateOffset(days=7) if freq == "W" else
                                                  pd.DateOffset(months=1 if freq == "M" else 3))
        stop = ini.end if isinstance(ini.end, pd.Timestamp) and not pd.isna(ini.end) else None
        if cutoff is not None:
            stop = cutoff if stop is None else min(stop, cutoff)
        pre_rows = np.flatnonzero(idx < p0)[-before:]
        post_mask = (idx >= first_post) if stop is None else ((idx >= first_post) & (idx <= stop))
        post_rows = np.flatnonzero(post_mask)[:after]
        y_all = values[:, col_of[ini.team_id]]
        pre_rows = pre_rows[np.isfinite(y_all[pre_rows])]
        post_rows = post_rows[np.isfinite(y_all[post_rows])]
        n_pre, n_post = len(pre_rows), len(post_rows)
        row.update(n_pre=n_pre, n_post=n_post)
        if n_pre < mins[0] or n_post < mins[1]:
            short = []
            if n_pre < mins[0]:
                short.append(f"{n_pre} period(s) before the start ({mins[0]} needed)")
            if n_post < mins[1]:
                short.append(f"{n_post} period(s) after the start ({mins[1]} needed)")
            row["reason"] = "only " + " and ".join(short)
            continue
        use = np.concatenate([pre_rows, post_rows])
        window = values[use]
        lo_day, hi_day = idx[use[0]], idx[use[-1]]
        ids, teams_of, starts, ends = others[ini.metric]
        busy = (ids != ini.initiative_id) & (starts <= hi_day.to_datetime64()) & (ends >= lo_day.to_datetime64())
        ok = ~np.isnan(window).any(axis=0)
        ok[col_of[ini.team_id]] = False
        ok[[col_of[b] for b in set(teams_of[busy]) if b in col_of]] = False
        candidates = np.flatnonzero(ok)
        y = window[:, col_of[ini.team_id]]
        post = np.r_[np.zeros(n_pre, dtype=bool), np.ones(n_post, dtype=bool)]
        if len(candidates) > MAX_CONTROLS:
            C = window[:n_pre, candidates]
            dist = (((C - C.mean(axis=0)) - (y[:n_pre] - y[:n_pre].mean())[:, None]) ** 2).mean(axis=0)
            candidates = candidates[np.argsort(dist, kind="stable")[:MAX_CONTROLS]]
        row["n_controls"] = len(candidates)
        if len(candidates):
            Y = np.column_stack([y, window[:, candidates]])
            pre_p = _pretrend_p(Y, n_pre) if n_pre >= 2 * PRETREND_BINS else float("nan")
            trend_p = _trend_p(Y, post)
            trend = bool((np.isfinite(pre_p) and pre_p < PRETREND_ALPHA)
                         or (np.isfinite(trend_p) and trend_p < TREND_ALPHA))
            effect, lo, hi, p, t_term = _did_fit(Y, post, trend)
            real, placebo = _placebos(Y, n_pre, post, trend, mins)
            placebo = placebo[np.isfinite(placebo)]
            larger = int((placebo >= real).sum())
            placebo_p = _calibrated_p(real, placebo)
            ctrl = Y[:, 1:].mean(axis=1)
            gap_pre = (y - ctrl)[:n_pre]
            if trend:
                # the fitted no-initiative path: comparison mean + the team's level and trend
                level = float(np.mean(gap_pre - t_term[:n_pre]))
                counterfactual = ctrl + level + t_term
            else:
                counterfactual = ctrl + float(gap_pre.mean())
            fit = _Fit(DID_TREND if trend else DID, effect, lo, hi, p, counterfactual,
                       float(np.mean(counterfactual[post])))
            row.update(pretrend_p=pre_p, placebo_p=placebo_p)
            row["_trend_p"] = trend_p
            row["_placebo"] = (larger, len(placebo))
        else:
            fit = _its_fit(y, post)
            fit.base = float(np.mean(fit.counterfactual[post]))
        verdict, reason = _verdict(fit.effect, fit.p, row["placebo_p"], higher.get(ini.metric, True), fit.method)
        if fit.method == DID_TREND:
            why = (f"pre-trend p = {row['pretrend_p']:.2g}" if row["pretrend_p"] < PRETREND_ALPHA
                   else f"its own trend over the window: p = {row['_trend_p']:.2g}")
            reason += f"; the team was already moving before the start ({why}): the estimate allows it its own linear trend"
        row.update(method=fit.method, effect=fit.effect, ci_low=fit.lo, ci_high=fit.hi, p_value=fit.p,
                   relative_effect=fit.effect / abs(fit.base) if fit.base else np.nan, verdict=verdict,
                   reason=reason)
        half = (fit.hi - fit.lo) / 2
        series.append(pd.DataFrame({
            "initiative_id": ini.initiative_id, "team_id": ini.team_id, "period_start": idx[use].to_numpy(), "observed": y,
            "counterfactual": fit.counterfactual,
            "lower": np.where(post, fit.counterfactual + fit.effect - half, np.nan),
            "upper": np.where(post, fit.counterfactual + fit.effect + half, np.nan), "post": post}))
    placebo_counts = {r["initiative_id"]: r.pop("_placebo") for r in rows if "_placebo" in r}
    for r in rows:
        r.pop("_trend_p", None)
    table = pd.DataFrame(rows, columns=IMPACT_COLUMNS)
    for col in ("n_pre", "n_post", "n_controls"):
        table[col] = table[col].astype("int64")
    table["start"] = pd.to_datetime(table["start"]).astype("datetime64[ns]")
    table["method"] = table["method"].astype("str")
    for col in ("effect", "ci_low", "ci_high", "relative_effect", "p_value", "placebo_p", "pretrend_p"):
        table[col] = table[col].astype("float64")
    series_frame = (pd.concat(series, ignore_index=True) if series else
                    pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(
                        SERIES_COLUMNS, ["str", "str", "datetime64[ns]", "float64", "float64", "float64", "float64",
                                         "bool"])}))
    if min_group_size is not None:
        table = gate(table, ds, kind="impact", min_group_size=min_group_size).drop(columns="suppressed")
        hidden = set(table.loc[table["verdict"].astype(str).str.startswith("suppressed"), "initiative_id"])
        series_frame = series_frame[~series_frame["initiative_id"].isin(hidden)].reset_index(drop=True)
        placebo_counts = {k: v for k, v in placebo_counts.items() if k not in hidden}
    titles = dict(zip(chosen["initiative_id"], chosen["title"]))
    return ImpactResult(table.reset_index(drop=True), series_frame, ds.metrics.copy(), titles, placebo_counts)


def initiative_impact(ds: Dataset, *, initiatives: Any = None, as_of: Any = None, from_milestones: bool = False,
                      min_group_size: int | None = 5) -> pd.DataFrame:
    """The effect of each initiative on its KPI after the start, with a 95% interval and a verdict.

    Parameters
    ----------
    ds : Dataset
    initiatives : str, list of str or DataFrame, optional
        Initiative ids of ``ds.initiatives`` (default: all of them), or a frame with the columns of the
        ``initiatives`` table (to ask "what if" about initiatives not in the data).
    as_of : date-like, optional
        Use only KPI values dated up to this day (default: all).
    from_milestones : bool, default False
        Also treat every milestone key result that reached 1 as an initiative
        (:func:`initiatives_from_milestones`).
    min_group_size : int or None, default 5
        Rows of people metrics of teams below this headcount are suppressed
        (:func:`okr_analysis.privacy.gate`, kind ``impact``); None: no suppression.

    Returns
    -------
    pandas.DataFrame
        One row per initiative, with columns:

        - ``initiative_id`` (str)
        - ``team_id`` (str)
        - ``metric`` (str): the KPI the initiative should move
        - ``start`` (datetime64): the start date
        - ``n_pre`` (int): periods of the team's values used before the start
        - ``n_post`` (int): periods used from the start on (up to the end, ``as_of`` or the window)
        - ``n_controls`` (int): comparison teams (0: interrupted time series on the team alone)
        - ``method`` (str): ``difference-in-differences``, ``difference-in-differences, trend-adjusted``
          or ``interrupted time series (no comparison teams; weaker evidence)``
        - ``effect`` (float): the change after the start, in the metric's unit
        - ``ci_low`` (float): lower end of its 95% interval
        - ``ci_high`` (float): upper end of its 95% interval
        - ``relative_effect`` (float): the effect as a share of the counterfactual level after the start
        - ``p_value`` (float): of the effect (Driscoll–Kraay standard errors; ITS: the model's)
        - ``placebo_p`` (float): how unusual the change is among the placebo runs (in space and time): the
          real studentised change against the placebo runs' scale, Student's t with as many degrees of
          freedom as runs; NaN for an interrupted time series
        - ``pretrend_p`` (float): test that the team moved like its comparison before the start (its slope
          against the comparison teams' own; with fewer than 9 comparison teams, an event-study Wald test);
          below 0.01, or when the whole-window trend test gives below 0.01, the estimate is trend-adjusted
        - ``verdict`` (str): ``improved``, ``worsened``, ``no detectable effect`` or ``insufficient data``
          (polarity from ``higher_is_better``)
        - ``reason`` (str): why, in words (which side is short for insufficient data)

        People metrics of teams below ``min_group_size`` read ``"suppressed (minimum group size N)"``
        in every column but the ids, metric and start.

    Warns
    -----
    A degenerate fit gives a NaN row (verdict ``insufficient data``), never an exception.

    Examples
    --------
    >>> from okr_analysis import load, initiative_impact  # doctest: +SKIP
    >>> initiative_impact(load("data/sample"))  # doctest: +SKIP
    """
    return estimate_impact(ds, initiatives=initiatives, as_of=as_of, from_milestones=from_milestones,
                           min_group_size=min_group_size).table


# ----------------------------------------------------------------------------------
# Words
# ----------------------------------------------------------------------------------
def _number(x: float, decimals: int) -> str:
    return f"{x:,.{decimals}f}".replace("-", "−")


def _chance_words(p: float) -> str:
    """``placebo_p`` for a reader who is not a statistician: "by chance alone a change this large would turn
    up about once in 40 tries (placebo p = 0.024)"; "less than once in 1,000 tries" below 0.001."""
    if p < 0.001:
        return f"by chance alone a change this large would turn up less than once in 1,000 tries (placebo p = {p:.2g})"
    n = 1 / p if p > 0 else math.inf
    if n < 1.5:
        return f"a change this large is common among teams without the initiative (placebo p = {p:.2g})"
    step = 1 if n < 10 else 5 if n < 50 else 10 if n < 200 else 50
    n = int(round(n / step) * step)
    return f"by chance alone a change this large would turn up about once in {n:,} tries (placebo p = {p:.2g})"


def sentence(row: "pd.Series | dict", *, metrics: pd.DataFrame | None = None, title: str | None = None,
             placebo_counts: tuple[int, int] | None = None) -> str:
    """One plain sentence about an initiative's row of :func:`initiative_impact`, for reports.

    Parameters
    ----------
    row : Series or dict
        A row of :func:`initiative_impact`.
    metrics : DataFrame, optional
        The ``metrics`` table (for the unit); default: no unit.
    title : str, optional
        The initiative's title (default: its id).
    placebo_counts : (int, int), optional
        How many placebo runs showed a change this large, of how many (default: ``placebo_p`` in words,
        :func:`_chance_words`).

    Returns
    -------
    str
        E.g. "Engagement rose by 5.3 points (3.7 to 6.9) after Mentoring programme launched on 4 May 2026,
        compared with 11 similar teams; by chance alone a change this large would turn up about once in 40
        tries (placebo p = 0.024)."
    """
    r = dict(row)
    name = str(r["metric"]).replace("_", " ")
    name = name[:1].upper() + name[1:]
    what = title or r["initiative_id"]
    start = pd.Timestamp(r["start"])
    when = f"{start.day} {start.strftime('%B %Y')}"
    verdict = str(r["verdict"])
    if verdict.startswith("suppressed"):
        return f"{name} of this team is not shown: {verdict}."
    if verdict == "insufficient data":
        return f"Too little data to tell whether {what} (from {when}) moved {name.lower()}: {r['reason']}."
    unit = ""
    if metrics is not None:
        hit = metrics.loc[metrics["metric"] == r["metric"], "unit"]
        unit = "" if hit.empty or pd.isna(hit.iloc[0]) else str(hit.iloc[0])
    unit = "points" if unit == "%" else unit
    effect, lo, hi = float(r["effect"]), float(r["ci_low"]), float(r["ci_high"])
    width = abs(hi - lo)
    decimals = int(min(3, max(0, 1 - math.floor(math.log10(width))))) if width > 0 else 1
    size = _number(abs(effect), decimals) + (f" {unit}" if unit else "")
    interval = f"({_number(lo, decimals)} to {_number(hi, decimals)})"
    moved = "rose" if effect > 0 else "fell"
    n = int(r["n_controls"])
    if str(r["method"]).startswith("interrupted"):
        compared = "judged against the team's own history alone (no comparison teams: weaker evidence)"
    else:
        compared = f"compared with {n} similar team{'s' if n != 1 else ''}"
    tail = ""
    if placebo_counts is not None:
        k, m = placebo_counts
        tail = f"; a change this large appeared in {k} of {m} placebo runs"
    elif np.isfinite(float(r["placebo_p"])):
        tail = f"; {_chance_words(float(r['placebo_p']))}"
    if verdict == "no detectable effect":
        return (f"{name} did not change detectably after {what} launched on {when}: "
                f"the estimate is {_number(effect, decimals)}{' ' + unit if unit else ''} {interval}, {compared}{tail}.")
    return f"{name} {moved} by {size} {interval} after {what} launched on {when}, {compared}{tail}."
