"""``okr_analysis._distributions``: the distribution functions and p-value tables the analyses take without
importing scipy.stats or statsmodels, against the library functions they stand for."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy import stats

from okr_analysis import _distributions as D


def test_scipy_stats_distributions_bit_for_bit():
    rng = np.random.default_rng(0)
    f = np.concatenate([rng.gamma(1.0, 2.0, 5000), [0.0, -1e-12, -3.0, np.inf, np.nan]])
    dfn = rng.integers(1, 12, f.size).astype(float)
    dfd = rng.integers(3, 200_000, f.size).astype(float)
    np.testing.assert_array_equal(D.f_sf(f, dfn, dfd), stats.f.sf(f, dfn, dfd))  # 1 below the support
    assert D.f_sf(2.5, 3, 40) == stats.f.sf(2.5, 3, 40) and np.ndim(D.f_sf(2.5, 3, 40)) == 0
    z = np.concatenate([rng.normal(0.0, 3.0, 5000), [0.0, -np.inf, np.inf, np.nan, 40.0]])
    np.testing.assert_array_equal(D.norm_sf(z), stats.norm.sf(z))
    np.testing.assert_array_equal(D.norm_cdf(z), stats.norm.cdf(z))
    np.testing.assert_array_equal(D.t_sf(z, dfn), stats.t.sf(z, dfn))
    q = np.concatenate([rng.uniform(0, 1, 2000), [0.0, 1.0, 0.5, 0.025, 0.975]])
    np.testing.assert_array_equal(D.norm_ppf(q), stats.norm.ppf(q))


@pytest.mark.parametrize("regression", ["c", "ct"])
def test_mackinnonp_equals_statsmodels(regression):
    """Every branch of statsmodels' ``mackinnonp(stat, regression, N=1)``: above the table's largest
    statistic (1), below its smallest (0), the small-p surface at and below ``tau_star``, the large-p one
    above it."""
    from statsmodels.tsa.adfvalues import mackinnonp

    stat = np.concatenate([np.linspace(-25.0, 4.0, 4001), [-1.61, -2.89, 2.74, 0.7, -18.83, -16.18, np.nan]])
    got = D.mackinnonp(stat, regression=regression)
    ref = np.array([mackinnonp(v, regression=regression, N=1) if np.isfinite(v) else np.nan for v in stat])
    np.testing.assert_array_equal(got, ref)
    assert (got == 0).any() and (got == 1).any() and ((got > 0) & (got < 1)).any()
    with pytest.raises(ValueError, match="regression must be one of"):
        D.mackinnonp(stat, regression="ctt")


@pytest.mark.parametrize("regression", ["c", "ct"])
def test_kpss_pvalue_is_statsmodels_interpolation(regression):
    from statsmodels.tsa.stattools import kpss

    rng = np.random.default_rng(1)
    for x in (rng.standard_normal(150), np.cumsum(rng.standard_normal(150)), 0.1 * np.arange(80.0) + rng.standard_normal(80)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stat, p, *_ = kpss(x, regression=regression, nlags="auto")
        assert D.kpss_pvalue(stat, regression=regression) == p
    grid = np.linspace(0.0, 1.0, 201)
    p = D.kpss_pvalue(grid, regression=regression)
    assert p.max() == 0.10 and p.min() == 0.01 and np.all(np.diff(p) <= 0)


def test_bh_qvalues_equal_statsmodels_multipletests():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(2)
    for p in (rng.uniform(0, 1, 400), np.concatenate([rng.uniform(0, 1e-4, 30), rng.uniform(0, 1, 50)]),
              np.array([0.01, 0.01, 0.04, 0.04, 0.9]), np.array([0.3]), rng.uniform(0.5, 1, 10)):
        np.testing.assert_array_equal(D.bh_qvalues(p), multipletests(p, method="fdr_bh")[1])
    assert D.bh_qvalues(np.array([])).size == 0
    with pytest.raises(ValueError, match="one-dimensional"):
        D.bh_qvalues(np.ones((2, 2)))


def test_the_driver_screen_imports_neither_scipy_stats_nor_statsmodels():
    """Why the module exists: the CLI loads, and the driver screen runs (pooled and by team, transforms
    voted, forecasts), without importing scipy.stats or statsmodels (about 0.9 s of imports)."""
    code = ("import sys, numpy as np, pandas as pd, okr_analysis.cli, okr_analysis.monitoring\n"
            "from okr_analysis.leadlag import lead_lag_frame\n"
            "rng = np.random.default_rng(0)\n"
            "x = rng.standard_normal((6, 130)); y = 0.5 * np.roll(x, 2, axis=1) + rng.standard_normal((6, 130))\n"
            "d = pd.DataFrame({'team': np.repeat(list('abcdef'), 130), 'period_start': np.tile(pd.date_range("
            "'2023-01-02', periods=130, freq='7D'), 6), 'x': x.ravel(), 'y': y.ravel()})\n"
            "r = lead_lag_frame(d, leading='x', lagging='y', team='team', by_team=True)\n"
            "assert r.table['verdict'].iloc[0] == 'leads', r.table\n"
            "print(sorted(m for m in sys.modules if m == 'scipy.stats' or m.split('.')[0] == 'statsmodels'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
