"""The few distribution functions and p-value tables the analyses need, without importing scipy.stats or
statsmodels.

Why this module exists: ``import scipy.stats`` costs about 0.4 s and statsmodels (which imports it) about
0.5 s more, on every command, while the functions the analyses call are thin wrappers of
:mod:`scipy.special` ufuncs (0.15 s to import) or small published tables. ``okr-analysis drivers`` on
1,000 teams has a 4.5 s budget (issue 19, ``benchmarks/bench_leadlag.py``), so the driver screen, the
KPI monitor and the CLI take these from here. Each function is tested equal to the library function it
stands for in ``tests/test_distributions.py`` (scipy.stats to the last bit; statsmodels' ``mackinnonp``,
``kpss`` and ``multipletests(method="fdr_bh")`` to 1e-12 or exactly).

Anything else (model fits, the forecasting models, reference implementations in the tests) keeps using
scipy.stats and statsmodels directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

__all__ = ["f_sf", "t_sf", "norm_sf", "norm_cdf", "norm_ppf", "mackinnonp", "kpss_pvalue", "bh_qvalues"]


# ---------------------------------------------------------------------------------------------
# scipy.stats distributions, from the scipy.special ufuncs they wrap (same values, bit for bit)
# ---------------------------------------------------------------------------------------------
def f_sf(f: Any, dfn: Any, dfd: Any) -> Any:
    """``scipy.stats.f.sf(f, dfn, dfd)``: the F distribution's upper tail (1 below its support, as scipy)."""
    f = np.asarray(f, dtype="float64")
    out = np.where(f < 0, 1.0, special.fdtrc(dfn, dfd, np.where(f < 0, 0.0, f)))
    return out[()] if out.ndim == 0 else out


def t_sf(t: Any, df: Any) -> Any:
    """``scipy.stats.t.sf(t, df)``: Student's t upper tail."""
    return special.stdtr(df, -np.asarray(t, dtype="float64"))


def norm_sf(z: Any) -> Any:
    """``scipy.stats.norm.sf(z)``: the standard normal upper tail."""
    return special.ndtr(-np.asarray(z, dtype="float64"))


def norm_cdf(z: Any) -> Any:
    """``scipy.stats.norm.cdf(z)``."""
    return special.ndtr(np.asarray(z, dtype="float64"))


def norm_ppf(q: Any) -> Any:
    """``scipy.stats.norm.ppf(q)``: the standard normal quantile."""
    return special.ndtri(np.asarray(q, dtype="float64"))


# ---------------------------------------------------------------------------------------------
# Augmented Dickey–Fuller p-values: MacKinnon (1994), one series (N = 1)
# ---------------------------------------------------------------------------------------------
# MacKinnon, J. G. (1994). "Approximate asymptotic distribution functions for unit-root and cointegration
# tests." Journal of Business & Economic Statistics 12, 167–176, Tables 3 and 4 (the coefficients of the
# response surfaces for N = 1), as statsmodels.tsa.adfvalues holds them (tau_star_*, tau_min_*, tau_max_*,
# tau_*_smallp, tau_*_largep; statsmodels 0.14, BSD-3-Clause) — the p-values statsmodels' adfuller reports.
_MACKINNON = {
    # regression: (tau_max, tau_min, tau_star, small-p coefficients, large-p coefficients), lowest order first
    "c": (2.74, -18.83, -1.61, (2.1659, 1.4412, 3.8269), (1.7339, 9.3202, -1.2745, -1.0368)),
    "ct": (0.7, -16.18, -2.89, (3.2512, 1.6047, 4.9588), (2.5261, 6.1654, -3.7956, -6.0285)),
}
# the tables' scaling, as statsmodels applies it (table * scaling: the same floats)
_SMALL_SCALING = np.array([1, 1, 1e-2])
_LARGE_SCALING = np.array([1, 1e-1, 1e-1, 1e-2])


def mackinnonp(stat: Any, *, regression: str = "c") -> np.ndarray:
    """statsmodels' ``mackinnonp(stat, regression=regression, N=1)`` for an array of ADF statistics.

    1 above the table's largest statistic, 0 below its smallest, else the normal CDF of MacKinnon's
    response-surface polynomial (the small-p surface at or below ``tau_star``, the large-p one above).
    """
    if regression not in _MACKINNON:
        raise ValueError(f"regression must be one of {sorted(_MACKINNON)}, got {regression!r}.")
    tmax, tmin, tstar, small, large = _MACKINNON[regression]
    s = np.asarray(stat, dtype="float64")
    small_c = np.asarray(small) * _SMALL_SCALING
    large_c = np.asarray(large) * _LARGE_SCALING
    p = np.where(s <= tstar, special.ndtr(np.polyval(small_c[::-1], s)),
                 special.ndtr(np.polyval(large_c[::-1], s)))
    p = np.where(s > tmax, 1.0, np.where(s < tmin, 0.0, p))
    return np.where(np.isnan(s), np.nan, p)


# ---------------------------------------------------------------------------------------------
# KPSS p-values: Kwiatkowski, Phillips, Schmidt & Shin (1992), Table 1, interpolated as statsmodels' kpss
# ---------------------------------------------------------------------------------------------
_KPSS_P = (0.10, 0.05, 0.025, 0.01)
_KPSS_CRIT = {"c": (0.347, 0.463, 0.574, 0.739), "ct": (0.119, 0.146, 0.176, 0.216)}


def kpss_pvalue(stat: Any, *, regression: str = "c") -> np.ndarray:
    """statsmodels' ``kpss`` p-value for KPSS statistics: linear interpolation in Kwiatkowski et al. (1992)
    Table 1's critical values, clipped to [0.01, 0.10] (statsmodels warns there; the vote needs only
    whether p exceeds the level)."""
    if regression not in _KPSS_CRIT:
        raise ValueError(f"regression must be one of {sorted(_KPSS_CRIT)}, got {regression!r}.")
    return np.interp(np.asarray(stat, dtype="float64"), _KPSS_CRIT[regression], _KPSS_P)


# ---------------------------------------------------------------------------------------------
# Benjamini–Hochberg
# ---------------------------------------------------------------------------------------------
def bh_qvalues(p: Any) -> np.ndarray:
    """Benjamini–Hochberg (1995) adjusted p-values of finite p-values, statsmodels'
    ``multipletests(p, method="fdr_bh")[1]`` (the same operations: sorted p over its rank / n, the
    running minimum from the largest, capped at 1)."""
    p = np.asarray(p, dtype="float64")
    if p.ndim != 1:
        raise ValueError(f"p must be one-dimensional, got shape {p.shape}.")
    n = p.size
    if n == 0:
        return p.copy()
    order = np.argsort(p)
    ranked = p[order] / (np.arange(1, n + 1) / float(n))
    q_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
    q_sorted[q_sorted > 1] = 1
    q = np.empty(n)
    q[order] = q_sorted
    return q
