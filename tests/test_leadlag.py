"""Lead/lag driver analysis: kernels against statsmodels/pandas, published values, simulations with known truth,
the sample organisation, and the API contract."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from okr_analysis import _screen as S
from okr_analysis.leadlag import (
    POOLED,
    TABLE_COLUMNS,
    VERDICTS,
    GrangerResult,
    LeadLagResult,
    benjamini_hochberg,
    decide_transform,
    granger_test,
    lagged_correlations,
    lead_lag,
    lead_lag_frame,
    select_order,
)

sm_stattools = pytest.importorskip("statsmodels.tsa.stattools")


# =============================================================================================
# helpers: simulated panels
# =============================================================================================
def _ar1(rng, shape, phi):
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    e = rng.standard_normal(shape)
    out = np.zeros(shape)
    out[..., 0] = e[..., 0] / np.sqrt(1 - phi ** 2)
    for t in range(1, shape[-1]):
        out[..., t] = phi * out[..., t - 1] + e[..., t]
    return out


def _frame(x: np.ndarray, y: np.ndarray, names=("lead", "lag")) -> pd.DataFrame:
    """Teams × periods arrays → a wide frame (team, t, lead, lag)."""
    G, T = x.shape
    return pd.DataFrame({"team": np.repeat([f"t{i:03d}" for i in range(G)], T),
                         "t": np.tile(np.arange(T), G),
                         names[0]: x.ravel(), names[1]: y.ravel()})


def _quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **k)


def _pooled(res: LeadLagResult, leading="lead", lagging="lag") -> pd.Series:
    t = res.table
    return t[(t["leading"] == leading) & (t["lagging"] == lagging) & (t["team_id"] == POOLED)].iloc[0]


# =============================================================================================
# vectorised kernels = statsmodels / pandas (to 1e-8)
# =============================================================================================
@pytest.mark.parametrize("trend", [False, True])
def test_granger_screen_matches_statsmodels(trend):
    rng = np.random.default_rng(11)
    B, T, L = 7, 90, 6
    x = rng.standard_normal((B, T))
    y = 0.4 * np.roll(x, 2, axis=1) + rng.standard_normal((B, T))
    if trend:  # random walks with drift, in levels: ill-conditioned but still equal
        x, y = np.cumsum(x + 0.3, axis=1) + 1e3, np.cumsum(y, axis=1)
    g = S.granger_screen(y, x, max_lag=L)
    for b in range(B):
        fwd = sm_stattools.grangercausalitytests(np.column_stack([y[b], x[b]]), L)
        rev = sm_stattools.grangercausalitytests(np.column_stack([x[b], y[b]]), L)
        for p in range(1, L + 1):
            f, pv, df_den, df_num = fwd[p][0]["ssr_ftest"]
            assert g.f[b, p - 1] == pytest.approx(f, rel=1e-8, abs=1e-10)
            assert g.p[b, p - 1] == pytest.approx(pv, rel=1e-8, abs=1e-12)
            assert g.df_den[b, p - 1] == df_den and df_num == p
            fr, pr, _, _ = rev[p][0]["ssr_ftest"]
            assert g.f_rev[b, p - 1] == pytest.approx(fr, rel=1e-8, abs=1e-10)
            assert g.p_rev[b, p - 1] == pytest.approx(pr, rel=1e-8, abs=1e-12)


def test_ccf_matches_pandas_shift_corr_with_gaps():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 60))
    y = rng.standard_normal((4, 60))
    x[1, :3] = np.nan  # prewhitened series start with NaN
    y[2, 10] = np.nan
    lags = range(-8, 9)
    r, n = S.ccf(x, y, lags)
    for b in range(4):
        xs, ys = pd.Series(x[b]), pd.Series(y[b])
        for j, k in enumerate(lags):
            assert r[b, j] == pytest.approx(ys.shift(-k).corr(xs), abs=1e-12)
            assert n[b, j] == int((xs.notna() & ys.shift(-k).notna()).sum())


def test_ar_select_and_prewhiten_match_statsmodels():
    from statsmodels.tsa.ar_model import AutoReg, ar_select_order

    rng = np.random.default_rng(5)
    x = np.vstack([_ar1(rng, 120, 0.7) + 5, _ar1(rng, 120, 0.0), np.cumsum(rng.standard_normal(120)),
                   rng.standard_normal(120) + 0.6 * np.sin(np.arange(120))])
    orders, params = S.ar_select(x, max_order=6)
    for b in range(x.shape[0]):
        sel = ar_select_order(x[b], 6, ic="aic", trend="c")
        p = 0 if sel.ar_lags is None else len(sel.ar_lags)
        assert orders[b] == p
        ref = AutoReg(x[b], p, trend="c").fit().params
        np.testing.assert_allclose(params[b, : p + 1], ref, rtol=1e-8, atol=1e-9)
        # prewhitening = the AR model's residuals for the leading series
        xt, _ = S.prewhiten(x[b: b + 1], x[b: b + 1], orders[b: b + 1], params[b: b + 1])
        np.testing.assert_allclose(xt[0, p:], AutoReg(x[b], p, trend="c").fit().resid, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("regression", ["c", "ct"])
@pytest.mark.parametrize("test", ["adf", "kpss"])
def test_batched_unit_root_tests_equal_statsmodels(test, regression):
    """``_screen.adf`` (one batched QR per step) = statsmodels ``adfuller(x, regression, autolag="AIC")``
    and ``_screen.kpss`` (batched) = statsmodels ``kpss(x, regression, nlags="auto")``: the statistic and
    the p-value to 1e-10, the lag order (bandwidth) exactly, at the lengths the vote sees (20 periods, the
    shortest it tests, to 300) and for random walks, AR(1), white noise, trends and large levels (KPSS's
    p-values at both ends of its table included)."""
    batched, reference, seed = {
        "adf": (S.adf, lambda v: sm_stattools.adfuller(v, regression=regression, autolag="AIC"), 11),
        "kpss": (S.kpss, lambda v: sm_stattools.kpss(v, regression=regression, nlags="auto"), 13),
    }[test]
    rng = np.random.default_rng(seed)
    seen = set()
    for n in (20, 21, 33, 73, 109, 156, 300):
        X = np.vstack([np.cumsum(rng.standard_normal((4, n)), axis=1), _ar1(rng, (4, n), 0.6),
                       rng.standard_normal((4, n)), 0.05 * np.arange(n) + rng.standard_normal((4, n)),
                       1e4 + 50 * _ar1(rng, (4, n), 0.9)])
        got = batched(X, regression=regression)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = [reference(v) for v in X]
        np.testing.assert_allclose(got.stat, [r[0] for r in ref], rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(got.p, [r[1] for r in ref], rtol=1e-10, atol=1e-10)
        np.testing.assert_array_equal(got.lags, [r[2] for r in ref])
        seen |= set(np.round(got.p, 3))
    if test == "kpss":
        assert {0.01, 0.1} <= seen and len(seen) > 4  # both ends of the table and interpolated values


def test_batched_votes_equal_each_series_vote():
    """The stationarity vote of ``decide_transform`` batches its ADF and KPSS tests (``_votes``); every series votes
    as it does alone with statsmodels' ``adfuller`` and ``kpss`` (``_vote``), lengths mixed."""
    from okr_analysis.leadlag import _vote, _votes

    rng = np.random.default_rng(12)
    series = []
    for n in (20, 60, 104, 156, 156, 156):
        series += [np.cumsum(rng.standard_normal(n)), _ar1(rng, n, 0.5), 0.08 * np.arange(n) + _ar1(rng, n, 0.3),
                   _ar1(rng, n, 0.95)]
    assert _votes(series) == [_vote(s) for s in series]
    assert set(_votes(series)) == {"none", "detrend", "diff"}


def test_own_lag_order_is_statsmodels_ar_select_order_bic():
    from statsmodels.tsa.ar_model import ar_select_order

    rng = np.random.default_rng(6)
    x = np.vstack([_ar1(rng, 150, 0.6), _ar1(rng, 150, -0.4), np.cumsum(rng.standard_normal(150)),
                   _ar1(rng, 150, 0.3) + 0.5 * np.roll(_ar1(rng, 150, 0.3), 2)])
    crit = S.ar_ic(x, max_order=8, ic="bic")
    orders, _ = S.ar_select(x, max_order=8, ic="bic", min_order=1)
    for b in range(x.shape[0]):
        sel = ar_select_order(x[b], 8, ic="bic", trend="c")
        ref = np.array([sel.bic[0 if p == 0 else tuple(range(1, p + 1))] for p in range(9)])
        np.testing.assert_allclose(np.diff(crit[b]), np.diff(ref), rtol=1e-8, atol=1e-8)
        assert orders[b] == max(1, 0 if sel.ar_lags is None else len(sel.ar_lags))


def test_windowed_team_test_and_pooled_test_equal_statsmodels_ols():
    """The pipeline's Granger test (own lags by BIC, leading lags 1..L) and its pooled version (team
    constants and own-lag coefficients, common leading-lag coefficients) = nested statsmodels OLS F tests."""
    import statsmodels.api as sm

    from okr_analysis.leadlag import _partial_test, _windowed_granger

    rng = np.random.default_rng(12)
    G, T, L = 3, 80, 4
    x = _ar1(rng, (G, T), 0.5)
    y = 0.3 * np.roll(x, 2, axis=1) + _ar1(rng, (G, T), 0.5)
    Z = S.lagged_design(np.stack([S.standardise(y), S.standardise(x)], axis=-1), L)
    own = np.array([1, 2, 2])
    gram = S.GramCache(Z, L)
    f, p, _ = _windowed_granger(gram, L, own, L, reverse=False)
    rows_all, Xr_all, Xu_all, ys = [], [], [], []
    for i in range(G):
        ys_, xs_ = S.standardise(y[i]), S.standardise(x[i])
        rows = np.arange(L, T)
        own_i = np.column_stack([ys_[rows - j] for j in range(1, own[i] + 1)])
        lead = np.column_stack([xs_[rows - j] for j in range(1, L + 1)])
        ru = sm.OLS(ys_[rows], sm.add_constant(np.column_stack([own_i, lead]))).fit()
        rr = sm.OLS(ys_[rows], sm.add_constant(own_i)).fit()
        fi, pi, _ = ru.compare_f_test(rr)
        assert f[i] == pytest.approx(fi, rel=1e-8) and p[i] == pytest.approx(pi, rel=1e-8)
        # pooled design: team dummies × (constant, own lags), common leading lags
        block = np.zeros((rows.size, G * 3))
        block[:, i * 3] = 1.0
        block[:, i * 3 + 1: i * 3 + 1 + own[i]] = own_i
        Xr_all.append(block)
        Xu_all.append(lead)
        ys.append(ys_[rows])
    Xr, lead, yy = np.vstack(Xr_all), np.vstack(Xu_all), np.concatenate(ys)
    Xr = Xr[:, np.abs(Xr).sum(axis=0) > 0]
    ref_f, ref_p, _ = sm.OLS(yy, np.column_stack([Xr, lead])).fit().compare_f_test(sm.OLS(yy, Xr).fit())
    pooled = _partial_test([(gram.subset(own == 1), 1), (gram.subset(own == 2), 2)], L, target=S.cur_col(0, 2, L), own=0, other=1,
                           other_lags=range(1, L + 1))
    assert pooled.f == pytest.approx(ref_f, rel=1e-8) and pooled.p == pytest.approx(ref_p, rel=1e-8)


def test_half_panel_jackknife_equals_statsmodels_ols_on_the_half_panels():
    """The bias-corrected pooled test (Juodis, Karavias & Sarafidis 2021): b = 2 b_full - (b_1 + b_2) / 2,
    each b the common leading-lag coefficients of a statsmodels OLS with team dummies x (constant, own
    lags), on all periods and on each half of every team's periods (lags inside the half); Wald test of b
    with the full-sample covariance, s2 from the residuals at b; F = W / q."""
    import statsmodels.api as sm

    from okr_analysis.leadlag import _half_grams, _jackknife, _partial_test, _split

    rng = np.random.default_rng(31)
    G, T, L, q = 4, 90, 4, 3
    x = _ar1(rng, (G, T), 0.5)
    y = 0.2 * np.roll(x, 2, axis=1) + _ar1(rng, (G, T), 0.5)
    ys, xs = S.standardise(y), S.standardise(x)
    gram = S.GramCache(S.lagged_design(np.stack([ys, xs], axis=-1), L), L)
    own = np.array([1, 2, 2, 1])
    kw = dict(target=S.cur_col(0, 2, L), own=0, other=1, other_lags=range(1, q + 1))
    full = _partial_test(_split([gram], [own]), L, **kw)
    first, second = (_partial_test(_split(h, [own]), L, **kw) for h in _half_grams([gram]))
    hpj = _jackknife(full, first, second)
    assert hpj.jackknife

    def fit(lo, hi):
        """statsmodels OLS on the periods lo..hi-1 of every team: team dummies x (1, own lags), lead lags."""
        blocks, leads, target = [], [], []
        for i in range(G):
            rows = np.arange(lo + max(own[i], q), hi)
            d = np.zeros((rows.size, G * 3))
            d[:, 3 * i] = 1.0
            for j in range(1, own[i] + 1):
                d[:, 3 * i + j] = ys[i, rows - j]
            blocks.append(d)
            leads.append(np.column_stack([xs[i, rows - j] for j in range(1, q + 1)]))
            target.append(ys[i, rows])
        a = np.vstack(blocks)
        a = a[:, np.abs(a).sum(axis=0) > 0]
        return a, np.vstack(leads), np.concatenate(target)

    bs = []
    for lo, hi in ((0, T), (0, T // 2), (T // 2, T)):
        a, lead, target = fit(lo, hi)
        bs.append(sm.OLS(target, np.column_stack([a, lead])).fit().params[-q:])
    np.testing.assert_allclose(full.beta, bs[0], rtol=1e-8)
    np.testing.assert_allclose(first.beta, bs[1], rtol=1e-8)
    np.testing.assert_allclose(second.beta, bs[2], rtol=1e-8)
    b = 2 * bs[0] - (bs[1] + bs[2]) / 2
    np.testing.assert_allclose(hpj.beta, b, rtol=1e-8)
    a, lead, target = fit(0, T)
    res = sm.OLS(target - lead @ b, a).fit()                   # residuals at b, team terms re-fitted
    s2 = res.ssr / (target.size - a.shape[1] - q)
    u = sm.OLS(target, np.column_stack([a, lead])).fit()
    cov = u.normalized_cov_params[-q:, -q:] * s2               # full-sample (X'M X)^-1 s2
    w = float(b @ np.linalg.solve(cov, b))
    assert hpj.f == pytest.approx(w / q, rel=1e-8)
    assert hpj.p == pytest.approx(stats.f.sf(w / q, q, u.df_resid), rel=1e-8)
    np.testing.assert_allclose(hpj.se, np.sqrt(np.diag(cov)), rtol=1e-8)
    # with b = b_full the Wald statistic is the classic F test
    same = _jackknife(full, full, full)
    assert same.f == pytest.approx(full.f, rel=1e-10) and same.p == pytest.approx(full.p, rel=1e-10)


def _plain_partial(gram, groups, L, *, target, own, other, lags, controls=(), start=None):
    """The pooled partialled test done the plain way: per team, the Schur complement of its constant,
    own lags and controls by ``np.linalg.solve`` on ``from_row``; summed over the teams; classic F."""
    mm = [target] + [S.lag_col(other, j, L) for j in lags]
    acc = np.zeros((len(mm), len(mm)))
    N = k_own = 0
    for idx, p in groups:
        row = max(p, max(lags)) if start is None else start
        a = [0] + [S.lag_col(own, j, L) for j in range(1, p + 1)] + list(controls)
        for i in idx:
            G = gram.from_row(row)[i]
            Gaa, Gam, Gmm = G[np.ix_(a, a)], G[np.ix_(a, mm)], G[np.ix_(mm, mm)]
            acc += Gmm - Gam.T @ np.linalg.solve(Gaa, Gam)
            N += int(round(G[0, 0]))
            k_own += len(a)
    q = len(lags)
    dfd = N - k_own - q
    beta = np.linalg.solve(acc[1:, 1:], acc[1:, 0])
    ssr_u = acc[0, 0] - acc[1:, 0] @ beta
    f = (acc[0, 0] - ssr_u) / q / (ssr_u / dfd)
    return beta, f, stats.f.sf(f, q, dfd), dfd


def test_batched_pooled_tests_equal_the_plain_test_at_every_order_and_panel():
    """_partial_tests (every order and the whole series and its halves in one batch per group of teams)
    = the plain per-team Schur complements, order by order and panel by panel, with controls and a common
    start row too."""
    from okr_analysis.leadlag import _half_grams, _partial_test, _partial_tests, _split

    rng = np.random.default_rng(5)
    G, T, L = 9, 70, 4
    x = _ar1(rng, (G, T), 0.5)
    y = 0.25 * np.roll(x, 1, axis=1) + _ar1(rng, (G, T), 0.4)
    gram = S.GramCache(S.lagged_design(np.stack([S.standardise(y), S.standardise(x)], axis=-1), L), L)
    own = np.array([1, 3, 2, 1, 1, 3, 2, 4, 1])
    groups = [(np.flatnonzero(own == p), int(p)) for p in np.unique(own)]
    first, second = _half_grams([gram])
    for fwd in (True, False):
        tgt = S.cur_col(0 if fwd else 1, 2, L)
        kw = dict(target=tgt, own=0 if fwd else 1, other=1 if fwd else 0)
        for controls, start in (((), None), ([S.cur_col(1 if fwd else 0, 2, L)], None), ((), L)):
            out = _partial_tests([_split([gram], [own]), _split(first, [own]), _split(second, [own])], L,
                                 other_lags=range(1, L + 1), orders=list(range(1, L + 1)), controls=controls,
                                 start=start, **kw)
            for q, per_panel in zip(range(1, L + 1), out):
                for panel, got in zip((gram, first[0], second[0]), per_panel):
                    beta, f, p, dfd = _plain_partial(panel, groups, L, lags=range(1, q + 1), controls=controls,
                                                     start=start, **kw)
                    np.testing.assert_allclose(got.beta, beta, rtol=1e-10)
                    assert got.f == pytest.approx(f, rel=1e-10) and got.p == pytest.approx(p, rel=1e-10)
                    assert got.df_den == dfd
                one = _partial_test(_split([gram], [own]), L, other_lags=range(1, q + 1), controls=controls,
                                    start=start, **kw)
                assert one.f == per_panel[0].f and one.p == per_panel[0].p


def test_teams_last_cholesky_forward_equals_the_teams_first_one_and_a_triangular_solve():
    """_chol_forward_t (teams as the last axis) gives the same numbers as _chol_forward and as
    L^-1 C from numpy's Cholesky."""
    rng = np.random.default_rng(8)
    B, m, r = 7, 5, 3
    X = rng.standard_normal((B, 40, m))
    A = np.matmul(X.transpose(0, 2, 1), X)
    C = rng.standard_normal((B, m, r))
    W = S._chol_forward(A, C)
    Wt = S._chol_forward_t(np.ascontiguousarray(A.transpose(1, 2, 0)), np.ascontiguousarray(C.transpose(1, 2, 0)))
    np.testing.assert_array_equal(W, Wt.transpose(2, 0, 1))
    for b in range(B):
        np.testing.assert_allclose(W[b], np.linalg.solve(np.linalg.cholesky(A[b]), C[b]), rtol=1e-10, atol=1e-12)


def test_season_operator_is_the_pipelines_seasonal_fit_then_centring_or_detrending():
    """The linear map of the seasonal correction (step 6) is the series the pooled test sees: the Fourier
    part of step 3's fit subtracted (:func:`_deseason_values`, equal to a statsmodels OLS on a constant, a
    trend and statsmodels' Fourier terms), then the mean (transform none) or the trend line (detrend),
    equal to the residuals of a statsmodels OLS on a constant (and a trend)."""
    from okr_analysis.leadlag import SEASONAL, _apply_transform, _deseason_values, _season_operator

    rng = np.random.default_rng(8)
    T = 110
    codes = np.arange(5, 5 + T)
    per_year, K = SEASONAL["W"]
    a = 3 + 0.02 * codes + np.sin(2 * np.pi * codes / per_year) + _ar1(rng, T, 0.5)
    fitted = _deseason_values(a, codes, per_year, K, 16)
    # the same fit by statsmodels: OLS on a constant, a trend and statsmodels' Fourier terms
    import statsmodels.api as sm
    from statsmodels.tsa.deterministic import Fourier

    fourier = Fourier(period=per_year, order=K).in_sample(pd.RangeIndex(5, 5 + T)).to_numpy()
    ols = sm.OLS(a, np.column_stack([np.ones(T), codes, fourier])).fit()
    np.testing.assert_allclose(fitted, a - fourier @ ols.params[2:], atol=1e-10)
    key = codes.astype("int64").tobytes()
    for how in ("none", "detrend"):
        A = _season_operator(key, per_year, K, how)[0]
        want = _apply_transform(fitted, how)
        want = want - want.mean()
        np.testing.assert_allclose(A @ a, want, atol=1e-10)
        trend = sm.OLS(fitted, np.column_stack([np.ones(T), codes][: 2 if how == "detrend" else 1])).fit()
        np.testing.assert_allclose(A @ a, trend.resid, atol=1e-10)


def test_season_correction_is_the_expected_loss_of_the_seasonal_fit():
    """The cross-products the per-team seasonal fit removes from the lagged design, in expectation (the
    correction added back before the jackknife): Monte Carlo over 2,000 teams without any cycle, a lead at
    lag 2 (cross-covariances), versus the correction estimated from the fitted series alone."""
    from okr_analysis.leadlag import SEASONAL, _Block, _deseason_values, _Options, _season_correction

    rng = np.random.default_rng(5)
    G, T, L = 2000, 104, 4
    x = _ar1(rng, (G, T + 2), 0.5)
    y = 0.4 * x[:, :-2] + _ar1(rng, (G, T), 0.4)
    x = x[:, 2:]
    codes = np.arange(T)
    per_year, K = SEASONAL["W"]
    opt = _Options(max_lag=L, alpha=0.05, by_team=False, order=None, ic="bic", skill_threshold=0.0,
                   oos_fraction=0.3, min_periods=20, freq="W", season=(per_year, K, 16))
    fx = _deseason_values(x.T, codes, per_year, K, 16).T
    fy = _deseason_values(y.T, codes, per_year, K, 16).T
    sx, sy = fx.std(axis=1, keepdims=True), fy.std(axis=1, keepdims=True)

    def design(a, b):
        return S.lagged_design(np.stack([(a - a.mean(axis=1, keepdims=True)) / sy,
                                         (b - b.mean(axis=1, keepdims=True)) / sx], axis=-1), L)

    zf, zu = design(fy, fx), design(y, x)
    loss = (np.einsum("gtk,gtl->kl", zf, zf) - np.einsum("gtk,gtl->kl", zu, zu))[1:, 1:] / G
    corr = _season_correction(_Block([str(i) for i in range(G)], fx, fy, codes, codes), opt, L, "none", "none")
    pred = -corr.sum(axis=0)[1:, 1:]
    assert corr.shape == (T, 1 + 2 * L + 2, 1 + 2 * L + 2) and np.all(corr[:, 0] == 0)
    assert np.abs(loss).max() > 10  # about 2K + 2 periods' worth of each series' variance
    # the remaining gap (about 7%) is the per-team standardisation's (a ratio), not the fit's
    assert np.abs(pred - loss).max() < 0.1 * np.abs(loss).max()
    assert 0.85 < pred.sum() / loss.sum() < 1.02
    assert _season_correction(_Block(["a"], fx[:1], fy[:1], codes, codes), opt, L, "diff", "none") is None


def test_season_corrected_caches_add_the_correction_over_the_same_rows():
    """The whole-series cache and both halves of the jackknife, with the per-row correction added: every
    ``from_row`` equals the brute-force sum of the design's cross-products and the correction over the
    rows that cache covers (the second half counts from its middle)."""
    from okr_analysis.leadlag import _corrected_cache

    rng = np.random.default_rng(9)
    G, T, L = 3, 41, 3
    Z = S.lagged_design(rng.standard_normal((G, T, 2)), L)
    gram = S.GramCache(Z, L)
    k = Z.shape[2]
    corr = rng.standard_normal((T, k, k))
    mid = T // 2
    a, b = gram.halves(mid)
    caches = [(_corrected_cache(gram, corr), 0, T), (_corrected_cache(a, corr, 0, mid), 0, mid),
              (_corrected_cache(b, corr, mid, T), mid, T)]
    for cache, lo, hi in caches:
        for p in range(L, -1, -1):
            rows = np.arange(lo + p, hi)
            want = np.einsum("gtk,gtl->gkl", Z[:, rows], Z[:, rows]) + corr[rows].sum(axis=0)
            np.testing.assert_allclose(cache.from_row(p), want, atol=1e-10)


@pytest.mark.parametrize("ic", ["aic", "bic", "hqic", "fpe"])
def test_granger_order_is_statsmodels_var_select_order(ic):
    from statsmodels.tsa.api import VAR

    rng = np.random.default_rng(8)
    T, L = 100, 5
    for _ in range(5):
        x = _ar1(rng, T + 3, 0.5)
        y = 0.5 * x[:-3] + _ar1(rng, T, 0.3)
        x = x[3:] + 10
        Z = S.lagged_design(np.stack([y[None], x[None]], axis=-1), L)
        ours = S.var_ic(S.GramCache(Z, L), 2, ic=ic)[0]
        sel = VAR(np.column_stack([y, x])).select_order(L)
        np.testing.assert_allclose(ours, np.asarray(sel.ics[ic])[1:], rtol=1e-8)  # order 0 is left out
        if sel.selected_orders[ic] >= 1:
            assert select_order(y, x, max_lag=L, ic=ic) == sel.selected_orders[ic]


def test_var_order_selection_reproduces_jmulti_macrodata():
    """statsmodels macrodata levels of realcons, realgdp, realinv, up to 10 lags with a constant:
    JMulTi selects AIC 4, BIC 2, HQ 2, FPE 4 (reference README)."""
    import statsmodels.api as sm

    d = sm.datasets.macrodata.load_pandas().data[["realcons", "realgdp", "realinv"]].to_numpy()
    Z = S.lagged_design(S.standardise(d.T).T[None], 10)
    gram = S.GramCache(Z, 10)
    chosen = {ic: int(np.argmin(S.var_ic(gram, 3, ic=ic)[0]) + 1) for ic in ("aic", "bic", "hqic", "fpe")}
    assert chosen == {"aic": 4, "bic": 2, "hqic": 2, "fpe": 4}


def test_rolling_oos_matches_refitted_statsmodels_ols():
    """Expanding window; the unrestricted model adds the one leading lag that fits the training window best."""
    import statsmodels.api as sm

    rng = np.random.default_rng(3)
    T, p, K, P = 70, 2, 4, 20
    x = _ar1(rng, (2, T), 0.5)
    y = 0.6 * np.roll(x, 3, axis=1) + rng.standard_normal((2, T)) + 10
    actual, fr, fu, chosen = S.rolling_oos(y, x, own=p, max_lead=K, n_test=P)
    for b in range(2):
        for i, s in enumerate(range(T - P, T)):
            rows = np.arange(K, s)
            Xr = np.column_stack([np.ones(rows.size)] + [y[b, rows - j] for j in range(1, p + 1)])
            zr = np.r_[1.0, [y[b, s - j] for j in range(1, p + 1)]]
            assert fr[b, i] == pytest.approx(zr @ sm.OLS(y[b, rows], Xr).fit().params, rel=1e-8)
            fits = [sm.OLS(y[b, rows], np.column_stack([Xr, x[b, rows - k]])).fit() for k in range(1, K + 1)]
            k = int(np.argmin([f.ssr for f in fits])) + 1
            assert chosen[b, i] == k
            assert fu[b, i] == pytest.approx(np.r_[zr, x[b, s - k]] @ fits[k - 1].params, rel=1e-8)
            assert actual[b, i] == y[b, s]
    assert (chosen[:, -10:] == 3).mean() > 0.9


def test_clark_west_by_hand():
    rng = np.random.default_rng(4)
    a, fr, fu = rng.standard_normal(40), rng.standard_normal(40), rng.standard_normal(40)
    cw = S.clark_west(a, fr, fu)
    f = (a - fr) ** 2 - ((a - fu) ** 2 - (fr - fu) ** 2)
    t = f.mean() / (f.std(ddof=1) / np.sqrt(40))
    assert cw.stat == pytest.approx(t, rel=1e-12)
    assert cw.p == pytest.approx(stats.norm.sf(t), rel=1e-12)
    assert cw.skill == pytest.approx(1 - np.mean((a - fu) ** 2) / np.mean((a - fr) ** 2), rel=1e-12)


def test_pooled_row_of_one_team_is_the_single_series_test():
    rng = np.random.default_rng(9)
    x = _ar1(rng, (1, 120), 0.4)
    y = 0.5 * np.roll(x, 2, axis=1) + rng.standard_normal((1, 120))
    res = _quiet(lead_lag_frame, _frame(x, y), pairs=[("lead", "lag")], time="t", team="team",
                 transform="none", order=3)
    row = _pooled(res)
    ref = granger_test(y[0], x[0], order=3)
    assert row["granger_f"] == pytest.approx(ref.f, rel=1e-8)
    assert row["granger_p"] == pytest.approx(ref.p, rel=1e-8)
    rev = granger_test(x[0], y[0], order=3)
    assert row["reverse_f"] == pytest.approx(rev.f, rel=1e-8)


# =============================================================================================
# published values
# =============================================================================================
@pytest.fixture(scope="module")
def chickegg(reference_dir):
    return pd.read_csv(reference_dir / "ChickEgg.csv")


def test_chickegg_granger_test_reproduces_lmtest(chickegg):
    """lmtest 0.9-40 saved output: grangertest(chicken ~ egg, order = 3) and the reverse."""
    r = granger_test(chickegg["chicken"], chickegg["egg"], order=3)
    assert isinstance(r, GrangerResult)
    assert (r.df_num, r.df_den, r.order) == (3, 44, 3)
    assert r.f == pytest.approx(5.405, abs=5e-4)
    assert r.p == pytest.approx(0.002966, abs=5e-7)
    r = granger_test(chickegg["egg"], chickegg["chicken"], order=3)
    assert r.f == pytest.approx(0.5916, abs=5e-5)
    assert r.p == pytest.approx(0.6238, abs=5e-5)
    # other orders, egg -> chicken (reference README)
    for order, f, p in ((1, 1.2071, 0.2772), (2, 8.8175, 0.00056), (4, 4.2568, 0.00567)):
        r = granger_test(chickegg["chicken"], chickegg["egg"], order=order)
        assert r.f == pytest.approx(f, abs=5e-5)
        assert r.p == pytest.approx(p, rel=1e-2)


def test_chickegg_through_the_frame_api(chickegg):
    """The toolkit's table carries the same F and p (levels, order 3: the lmtest setting)."""
    res = lead_lag_frame(chickegg, pairs=[("egg", "chicken"), ("chicken", "egg")], time="year",
                         transform="none", order=3, freq="A")
    row = _pooled(res, "egg", "chicken")
    assert row["granger_lags"] == row["own_lags"] == 3 and row["freq"] == "A"
    assert row["granger_f"] == pytest.approx(5.405, abs=5e-4)
    assert row["granger_p"] == pytest.approx(0.002966, abs=5e-7)
    assert row["reverse_f"] == pytest.approx(0.5916, abs=5e-5)
    assert row["reverse_p"] == pytest.approx(0.6238, abs=5e-5)
    other = _pooled(res, "chicken", "egg")
    assert other["granger_f"] == pytest.approx(0.5916, abs=5e-5)
    d = res.details("egg", "chicken")
    assert d.granger.loc[d.granger["order"] == 2, "f"].iloc[0] == pytest.approx(8.8175, abs=5e-4)


def test_chickegg_verdict_eggs_lead_chickens(chickegg):
    """Verdict: eggs lead chickens, not the reverse (Thurman & Fisher 1988), with the defaults and in the
    lmtest setting (levels, order 3).

    Defaults on 54 annual points: both series are differenced (ADF+KPSS), the largest lag is 2 (annual
    default), AIC picks one lag of eggs: egg → chicken p = 0.0023 (statsmodels: grangercausalitytests on
    the differences, order 1 with one own lag), chicken → egg p = 0.46. Out-of-sample the lead is not
    confirmed (negative skill over 1968-83): that is reported beside the verdict, it does not veto it.
    """
    pairs = [("egg", "chicken"), ("chicken", "egg")]
    classic = lead_lag_frame(chickegg, pairs=pairs, time="year", transform="none", order=3)
    ec, ce = _pooled(classic, "egg", "chicken"), _pooled(classic, "chicken", "egg")
    assert ec["verdict"] == "leads" and ec["q_value"] < 0.05 and ec["reverse_q"] > 0.5
    assert ce["verdict"] == "reverse"  # the 'leading' chicken series follows eggs
    assert classic.options["n_tests"] == 2  # the primary family: one forward test per pair
    default = _quiet(lead_lag_frame, chickegg, pairs=pairs, time="year", freq="A")
    assert default.options["max_lag"] == 2  # annual default (2), under a tenth of the 54 years
    ec, ce = _pooled(default, "egg", "chicken"), _pooled(default, "chicken", "egg")
    assert ec["transform_leading"] == ec["transform_lagging"] == "diff"
    # the primary p-value: Simes over the F tests with 1 and 2 lags of eggs (one own lag, BIC), each an
    # OLS F test of statsmodels; AIC picks one lag for the reported F
    import statsmodels.api as sm

    d = chickegg[["chicken", "egg"]].diff().dropna().to_numpy()
    ps = []
    for q in (1, 2):
        rows = np.arange(q, len(d))
        own = sm.add_constant(d[rows - 1, 0])
        lead = np.column_stack([d[rows - j, 1] for j in range(1, q + 1)])
        ps.append(sm.OLS(d[rows, 0], np.column_stack([own, lead])).fit().compare_f_test(
            sm.OLS(d[rows, 0], own).fit())[1])
    ref = sm_stattools.grangercausalitytests(d, [1])[1][0]["ssr_ftest"]
    assert ec["granger_lags"] == 1 and ec["own_lags"] == 1
    assert ec["granger_f"] == pytest.approx(ref[0], rel=1e-8) and ps[0] == pytest.approx(ref[1], rel=1e-8)
    assert ec["granger_p"] == pytest.approx(min(2 * min(ps), max(ps)), rel=1e-8)
    assert ec["verdict"] == "leads" and ce["verdict"] == "reverse"
    assert ec["oos_skill"] < 0 and not ec["oos_confirmed"]
    assert ec["sentence"].startswith(f"Egg moves first; chicken follows about {ec['lag']} year")
    assert "not confirmed on data the model had not seen" in ec["sentence"]


def test_benjamini_hochberg_paper_example():
    """Benjamini & Hochberg (1995), the paper's 15 p-values: BH at 0.05 rejects 4, Bonferroni 3 (R: tests/test_leadlag.R)."""
    from statsmodels.stats.multitest import multipletests

    p = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262, 0.5719,
         0.6528, 0.7590, 1.0000]
    q = benjamini_hochberg(p)
    assert int((q <= 0.05).sum()) == 4
    assert int(multipletests(p, alpha=0.05, method="bonferroni")[0].sum()) == 3
    assert np.isnan(benjamini_hochberg([0.01, np.nan])[1])


# =============================================================================================
# simulations with known truth
# =============================================================================================
def test_planted_lead_found_at_its_lag():
    rng = np.random.default_rng(20)
    G, T, k = 8, 130, 3
    x = _ar1(rng, (G, T + k), 0.5)
    y = 0.5 * x[:, :-k] + _ar1(rng, (G, T), 0.4)
    x = x[:, k:]
    res = _quiet(lead_lag_frame, _frame(x + 50, y + 20), pairs=[("lead", "lag")], time="t", team="team",
                 by_team=True)
    row = _pooled(res)
    assert row["verdict"] == "leads"
    assert row["lag"] == k and row["effect_lag"] == row["granger_lags"] >= k
    assert row["correlation"] > 0 and row["ci_low"] > 0
    assert row["effect"] > 0 and row["effect_p"] < 0.05 and row["oos_skill"] > 0.02 and row["oos_confirmed"]
    teams = res.table[res.table["team_id"] != POOLED]
    assert (teams["lag"] == k).mean() >= 0.75
    assert (teams["q_value"] < 0.05).mean() >= 0.75
    # teams are tested within the selected pair (Benjamini–Bogomolov): most hold on their own
    assert (teams["verdict"] == "leads").sum() >= 6
    assert teams["verdict"].isin(["leads", "no evidence"]).all()


def test_planted_lead_in_a_large_panel_is_leads_not_feedback():
    """Issue 19: 1,000 teams x 100 weeks, one lead at lag 3. The pooled estimator with team effects and
    own lags has an O(1/T) bias of one sign in every team (Nickell); pooled over 1,000 teams the reverse
    test sees it (uncorrected: `feedback`). The half-panel jackknife removes it: `leads`."""
    rng = np.random.default_rng(1)
    G, T, k = 1000, 100, 3
    x = _ar1(rng, (G, T + k), 0.5)
    y = 0.3 * x[:, :-k] + _ar1(rng, (G, T), 0.4)
    f = _frame(x[:, k:] + 50, y + 20)
    kw = dict(pairs=[("lead", "lag")], time="t", team="team")
    plain = _pooled(_quiet(lead_lag_frame, f, bias_correction="none", **kw))
    assert plain["verdict"] == "feedback" and plain["reverse_p"] < 0.01 and plain["test"] == "granger"
    row = _pooled(_quiet(lead_lag_frame, f, **kw))
    assert row["test"] == "granger, half-panel jackknife"
    assert row["verdict"] == "leads" and row["lag"] == k
    assert row["granger_p"] < 1e-10 and row["reverse_p"] > 0.1


@pytest.mark.slow
def test_planted_lead_in_a_large_panel_with_seasonal_terms_is_leads():
    """The same with three years of weekly data: each team's annual cycle is removed first (step 3), and the
    seasonal coefficients fitted on every team's whole series bias the reverse test the same way; the
    jackknife's cross-products get the fit's expected loss added back (``_season_correction``)."""
    rng = np.random.default_rng(1)
    G, T, k = 1000, 156, 3
    x = _ar1(rng, (G, T + k), 0.5)
    y = 0.3 * x[:, :-k] + _ar1(rng, (G, T), 0.4)
    row = _pooled(_quiet(lead_lag_frame, _frame(x[:, k:] + 50, y + 20), pairs=[("lead", "lag")], time="t",
                         team="team", freq="W"))
    assert row["test"] == "granger with seasonal terms, half-panel jackknife"
    assert row["verdict"] == "leads"


def test_random_walks_with_drift_not_reported_as_leads():
    """Independent random walks with drift: 'leads' in no more than alpha of the simulated studies.

    Every test is a true null, so the false-discovery rate is P(any 'leads'); also the Granger p-values
    of the transformed series are calibrated (the transform is what protects us, not only the verdict rules).
    """
    rng = np.random.default_rng(30)
    n_sim, G, T = 120, 4, 104
    any_leads = 0
    team_p = []
    for _ in range(n_sim):
        x = np.cumsum(rng.uniform(0.2, 1.0, (G, 1)) + rng.standard_normal((G, T)), axis=1) + 100
        y = np.cumsum(rng.uniform(-1.0, 1.0, (G, 1)) + rng.standard_normal((G, T)), axis=1) + 50
        res = _quiet(lead_lag_frame, _frame(x, y), pairs=[("lead", "lag")], time="t", team="team",
                     by_team=True, max_lag=6)
        t = res.table
        any_leads += bool((t["verdict"] == "leads").any())
        team_p += t.loc[t["team_id"] != POOLED, "granger_p"].tolist()
    assert any_leads / n_sim <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / n_sim)
    rate = np.mean(np.array(team_p) < 0.05)
    assert 0.02 <= rate <= 0.09, rate


def test_company_wide_shocks_do_not_make_pooled_leads():
    """Teams share strong common shocks in both metrics (independent of each other): the pooled row removes
    each period's cross-team mean, so its Granger p-values stay calibrated and no 'leads' appears."""
    rng = np.random.default_rng(1)
    n_sim, G, T = 120, 6, 100
    pvals, leads = [], 0
    for _ in range(n_sim):
        cx, cy = _ar1(rng, T, 0.6), _ar1(rng, T, 0.6)
        x = 0.8 * cx + 0.6 * _ar1(rng, (G, T), 0.5)
        y = 0.8 * cy + 0.6 * _ar1(rng, (G, T), 0.5)
        res = _quiet(lead_lag_frame, _frame(x, y), pairs=[("lead", "lag")], time="t", team="team", max_lag=4,
                     transform="none")
        row = _pooled(res)
        assert row["common_removed"]
        pvals.append(row["granger_p"])
        leads += row["verdict"] == "leads"
    se = np.sqrt(0.05 * 0.95 / n_sim)
    assert leads / n_sim <= 0.05 + 2 * se
    assert np.mean(np.array(pvals) < 0.05) <= 0.05 + 3 * se  # without removing period means: about 0.6


def test_short_gaps_filled_long_gaps_cut():
    rng = np.random.default_rng(34)
    x = _ar1(rng, (2, 120), 0.5)
    y = 0.5 * np.roll(x, 2, axis=1) + rng.standard_normal((2, 120))
    f = _frame(x, y)
    f.loc[(f["team"] == "t000") & f["t"].isin([50, 51]), "lead"] = np.nan   # 2 periods: interpolated
    f.loc[(f["team"] == "t001") & f["t"].between(30, 35), "lag"] = np.nan   # 6 periods: longest run kept
    res = _quiet(lead_lag_frame, f, pairs=[("lead", "lag")], time="t", team="team", by_team=True,
                 transform="none", max_lag=4)
    t = res.table.set_index("team_id")
    assert t.loc["t000", "n_periods"] == 120
    assert t.loc["t001", "n_periods"] == 120 - 36
    assert t.loc[POOLED, "n_teams"] == 2


def test_untransformed_trends_would_fool_a_naive_correlation():
    """The problem the method solves: two independent drifting series correlate strongly in levels."""
    rng = np.random.default_rng(31)
    x = np.cumsum(0.5 + rng.standard_normal(150))
    y = np.cumsum(0.5 + rng.standard_normal(150))
    assert abs(pd.Series(y).shift(-2).corr(pd.Series(x))) > 0.5
    res = _quiet(lead_lag_frame, _frame(x[None], y[None]), pairs=[("lead", "lag")], time="t", team="team")
    assert _pooled(res)["verdict"] != "leads"
    assert abs(_pooled(res)["correlation"]) < 0.3


def test_metric_that_follows_the_outcome_is_reverse():
    rng = np.random.default_rng(40)
    G, T, k = 6, 130, 2
    y = _ar1(rng, (G, T + k), 0.5)
    x = 0.6 * y[:, :-k] + _ar1(rng, (G, T), 0.3)  # the "leading" metric follows the outcome
    y = y[:, k:]
    res = _quiet(lead_lag_frame, _frame(x, y), pairs=[("lead", "lag")], time="t", team="team")
    row = _pooled(res)
    assert row["verdict"] == "reverse"
    assert row["reverse_q"] < 0.05 and row["reverse_p"] < row["granger_p"]
    lags = res.details("lead", "lag").ccf
    assert lags.loc[lags["correlation"].abs().idxmax(), "lag"] == -k


def test_lag0_only_relation_is_contemporaneous_not_leads():
    """y_t = b x_t + e_t (white noise): related in the same period only, neither past predicts the other.

    (With autocorrelated e_t, x's past does help predict y -- it tells how much of y's past was noise --
    and Granger rightly says so.)"""
    rng = np.random.default_rng(50)
    G, T = 6, 130
    x = rng.standard_normal((G, T))
    y = 0.8 * x + rng.standard_normal((G, T))
    res = _quiet(lead_lag_frame, _frame(x, y), pairs=[("lead", "lag")], time="t", team="team", by_team=True)
    row = _pooled(res)
    assert row["verdict"] == "contemporaneous"
    assert row["lag0_q"] < 1e-6 and abs(row["lag0_correlation"]) > 0.4
    assert (res.table["verdict"] != "leads").all()
    assert "move together in the same period" in row["sentence"]


def test_persistent_same_period_link_is_flagged_in_the_sentence():
    """With a persistent leading metric, its past does predict the outcome (Granger: leads), but the test
    given the same-period value is not significant: the reason and the sentence say so."""
    rng = np.random.default_rng(50)
    G, T = 6, 130
    x = _ar1(rng, (G, T), 0.7)
    y = 0.8 * x + rng.standard_normal((G, T))
    row = _pooled(_quiet(lead_lag_frame, _frame(x, y), pairs=[("lead", "lag")], time="t", team="team"))
    assert row["verdict"] in ("leads", "feedback")
    assert row["lag0_q"] < 1e-6 and row["granger_p_given_lag0"] > 0.05
    if row["verdict"] == "leads":
        assert "much of the link is within the same period" in row["sentence"]


def test_feedback_when_both_directions_predict():
    rng = np.random.default_rng(41)
    G, T = 8, 140
    x, y = np.zeros((G, T)), np.zeros((G, T))
    e, u = rng.standard_normal((G, T)), rng.standard_normal((G, T))
    for t in range(2, T):
        x[:, t] = 0.3 * x[:, t - 1] + 0.4 * y[:, t - 2] + e[:, t]
        y[:, t] = 0.3 * y[:, t - 1] + 0.4 * x[:, t - 1] + u[:, t]
    row = _pooled(_quiet(lead_lag_frame, _frame(x, y), pairs=[("lead", "lag")], time="t", team="team",
                         transform="none"))
    assert row["verdict"] == "feedback" and row["q_value"] < 0.05 and row["reverse_q"] < 0.05
    assert "drive each other" in row["sentence"]


def test_insufficient_data_short_and_constant_series():
    rng = np.random.default_rng(60)
    x = rng.standard_normal((3, 40))
    y = rng.standard_normal((3, 40))
    with pytest.warns(UserWarning, match="insufficient data"):
        res = lead_lag_frame(_frame(x, y), pairs=[("lead", "lag")], time="t", team="team", transform="none",
                             max_lag=8)
    assert _pooled(res)["verdict"] == "insufficient data"
    assert "max_lag=8" in _pooled(res)["reason"]
    # a lower max_lag makes 40 periods enough
    ok = _quiet(lead_lag_frame, _frame(x, y), pairs=[("lead", "lag")], time="t", team="team", max_lag=4,
                transform="none")
    assert _pooled(ok)["verdict"] != "insufficient data"
    # one constant team: its row is 'insufficient data', the others carry on
    x = rng.standard_normal((3, 80))
    y = rng.standard_normal((3, 80))
    y[1] = 7.0
    with pytest.warns(UserWarning, match="constant"):
        res = lead_lag_frame(_frame(x, y), pairs=[("lead", "lag")], time="t", team="team", by_team=True,
                             transform="none", max_lag=8)
    t = res.table.set_index("team_id")
    assert t.loc["t001", "verdict"] == "insufficient data" and "constant" in t.loc["t001", "reason"]
    assert t.loc[POOLED, "n_teams"] == 2 and t.loc[POOLED, "verdict"] != "insufficient data"


def test_stationarity_decision():
    rng = np.random.default_rng(70)
    walks = [np.cumsum(0.3 + rng.standard_normal(150)) for _ in range(6)]
    assert decide_transform(walks)["transform"] == "diff"
    noise = [_ar1(rng, 150, 0.3) for _ in range(6)]
    assert decide_transform(noise)["transform"] == "none"
    trend = [0.05 * np.arange(150) + _ar1(rng, 150, 0.3) for _ in range(6)]
    assert decide_transform(trend)["transform"] == "detrend"


# =============================================================================================
# the sample organisation
# =============================================================================================
@pytest.fixture(scope="module")
def sample_result(sample_ds):
    return _quiet(lead_lag, sample_ds, by_team=True)


def test_sample_built_in_drivers_found_at_their_lags(sample_result):
    from okr_analysis.sample import BUILT_IN_DRIVERS, UNRELATED_METRIC

    res = sample_result
    assert res.options["freq"] == "W"
    for d in BUILT_IN_DRIVERS:
        row = _pooled(res, d["leading"], d["lagging"])
        assert row["verdict"] == "leads", row["reason"]
        assert row["lag"] == d["lag_weeks"]
        assert np.sign(row["correlation"]) == d["sign"] and np.sign(row["effect"]) == d["sign"]
    pooled = res.table[res.table["team_id"] == POOLED]
    unrelated = pooled[(pooled["leading"] == UNRELATED_METRIC) | (pooled["lagging"] == UNRELATED_METRIC)]
    assert len(unrelated) > 0 and (unrelated["verdict"] != "leads").all()
    assert set(pooled.loc[pooled["verdict"] == "leads", "leading"]) <= {d["leading"] for d in BUILT_IN_DRIVERS}
    leads = pooled[pooled["verdict"] == "leads"]
    assert set(zip(leads["leading"], leads["lagging"])) == {(d["leading"], d["lagging"]) for d in BUILT_IN_DRIVERS}


def test_sample_team_rows_say_where_it_holds(sample_result):
    t = sample_result.table
    fr = t[(t["leading"] == "first_response_time") & (t["lagging"] == "csat") & (t["team_id"] != POOLED)]
    assert set(fr["team_id"]) == {"support-tier1", "support-tier2", "support-emea"}
    assert (fr["verdict"] == "leads").all() and (fr["lag"] == 2).all()
    text = sample_result.summary()
    assert "first_response_time → csat: leads" in text and "leads in 3/3 teams" in text


# =============================================================================================
# API contract
# =============================================================================================
def test_table_columns_and_dtypes(sample_result):
    t = sample_result.table
    assert list(t.columns) == TABLE_COLUMNS
    assert TABLE_COLUMNS[:12] == ["leading", "lagging", "team_id", "freq", "lag", "correlation", "ci_low", "ci_high",
                                  "granger_p", "q_value", "oos_skill", "verdict"]
    assert set(t["verdict"]) <= set(VERDICTS)
    assert str(t["lag"].dtype) == "Int64" and t["q_value"].dtype == "float64"
    assert ((t["q_value"] >= t["granger_p"]) | t["granger_p"].isna() | t["q_value"].isna()).all()
    assert str(t["oos_confirmed"].dtype) == "boolean" and t["sentence"].str.endswith(".").all()
    lags = sample_result.lags
    assert list(lags.columns) == ["leading", "lagging", "team_id", "lag", "correlation", "ci_low", "ci_high", "n",
                                  "p_value", "q_value"]
    assert lags["lag"].min() == -8 and lags["lag"].max() == 8
    # the BH family holds the primary tests only: one per pair with a pooled test
    pooled = t[t["team_id"] == POOLED]
    assert sample_result.options["n_tests"] == int(pooled["granger_p"].notna().sum()) == len(pooled)


def test_details_plots_and_summary(sample_result):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = sample_result.details("training_attendance", "engagement")
    assert d.row["lag"] == 4
    assert len(d.ccf) == 17 and list(d.granger["order"]) == list(range(1, 9))
    assert {"period", "actual", "restricted", "unrestricted"} <= set(d.forecasts.columns)
    dt = sample_result.details("training_attendance", "engagement", "eng-data")
    assert dt.row["team_id"] == "eng-data" and (dt.forecasts["team_id"] == "eng-data").all()
    fig, ax = plt.subplots()
    assert sample_result.plot_ccf("training_attendance", "engagement", ax=ax) is ax
    assert len(ax.patches) == 17
    ax2 = sample_result.plot(ax=plt.figure().gca())
    assert ax2.get_xlabel()
    plt.close("all")
    assert isinstance(sample_result.summary(), str)
    with pytest.raises(ValueError, match="pair"):
        sample_result.details("csat", "nope")


def test_lagged_correlations_frame(sample_ds):
    lc = _quiet(lagged_correlations, sample_ds, metrics=["training_attendance", "engagement", "intranet_visits"],
                max_lag=6)
    assert list(lc.columns) == ["metric_x", "metric_y", "lag", "correlation", "n", "p_value"]
    assert set(lc["lag"]) == set(range(7)) and len(lc) == 6 * 7
    r = lc.set_index(["metric_x", "metric_y", "lag"])["correlation"].sort_index()
    assert r.loc[("training_attendance", "engagement")].abs().idxmax() == 4
    one = _quiet(lagged_correlations, sample_ds, metrics=["first_response_time", "csat"], team_id="support-tier1")
    assert (one["n"] < 160).all()


def test_progress_bar_and_argument_errors(sample_ds, capsys):
    _quiet(lead_lag, sample_ds, pairs=[("first_response_time", "csat")], progress=True)
    assert "lead/lag pairs" in capsys.readouterr().err
    with pytest.raises(ValueError, match="max_lag"):
        lead_lag(sample_ds, max_lag=0)
    with pytest.raises(TypeError, match="max_lag"):
        lead_lag(sample_ds, max_lag=2.5)
    with pytest.raises(ValueError, match="alpha"):
        lead_lag(sample_ds, alpha=1.5)
    with pytest.raises(ValueError, match="freq"):
        lead_lag(sample_ds, freq="D")
    with pytest.raises(ValueError, match="not in the data"):
        lead_lag(sample_ds, pairs=[("nope", "csat")])
    with pytest.raises(ValueError, match="transform"):
        lead_lag(sample_ds, pairs=[("first_response_time", "csat")], transform="log")
    with pytest.raises(ValueError, match="require"):
        lead_lag(sample_ds, pairs=[("first_response_time", "csat")], require=("magic",))
    with pytest.raises(ValueError, match="lead_order"):
        lead_lag(sample_ds, pairs=[("first_response_time", "csat")], lead_order="smallest p")
    with pytest.raises(TypeError, match="seasonal"):
        lead_lag(sample_ds, pairs=[("first_response_time", "csat")], seasonal="yes")
    with pytest.raises(ValueError, match="order"):
        lead_lag(sample_ds, order=9, max_lag=8)
    with pytest.raises(TypeError, match="Dataset"):
        lead_lag(pd.DataFrame())
    with pytest.raises(ValueError, match="order"):
        granger_test([1.0, 2, 3, 4, 5], [1.0, 2, 3, 4, 6], order=2)


def test_degenerate_dataset_warns_not_raises(tiny_ds):
    """The tiny organisation's KPIs are exact straight lines: after the transform they are constant."""
    with pytest.warns(UserWarning):
        res = lead_lag(tiny_ds, by_team=True)
    assert (res.table["verdict"] == "insufficient data").all()
    assert "constant" in res.table["reason"].iloc[0]


def test_monthly_frequency_counts_lags_in_months(sample_ds):
    res = _quiet(lead_lag, sample_ds, pairs=[("training_attendance", "engagement")], freq="M", max_lag=3)
    row = _pooled(res, "training_attendance", "engagement")
    assert row["freq"] == "M" and row["n_periods"] <= 36
    assert row["verdict"] in VERDICTS


# =============================================================================================
# the primary family, team rows, frequencies and sentences
# =============================================================================================
def _three_pairs(seed=80, G=6, T=120):
    """A frame with one real lead (a → y at lag 2) and two unrelated metrics."""
    rng = np.random.default_rng(seed)
    a = _ar1(rng, (G, T + 2), 0.5)
    y = 0.5 * a[:, :-2] + _ar1(rng, (G, T), 0.4)
    f = _frame(a[:, 2:], y, names=("a", "y"))
    f["b"] = _ar1(rng, (G, T), 0.5).ravel()
    f["c"] = _ar1(rng, (G, T), 0.5).ravel()
    return f


def test_pooled_q_values_do_not_depend_on_by_team():
    f = _three_pairs()
    kw = dict(leading=["a", "b", "c"], lagging="y", time="t", team="team", transform="none")
    pooled = _quiet(lead_lag_frame, f, **kw)
    both = _quiet(lead_lag_frame, f, by_team=True, **kw)
    p1 = pooled.table.set_index(["leading", "lagging"])
    p2 = both.table[both.table["team_id"] == POOLED].set_index(["leading", "lagging"])
    for c in ("granger_p", "q_value", "reverse_q", "lag0_q", "ccf_q", "verdict"):
        pd.testing.assert_series_equal(p1[c], p2[c], check_exact=False, rtol=1e-12)
    assert pooled.options["n_tests"] == both.options["n_tests"] == 3
    # the q-values are BH over the three primary p-values only (statsmodels)
    from statsmodels.stats.multitest import multipletests

    np.testing.assert_allclose(p1["q_value"], multipletests(p1["granger_p"], method="fdr_bh")[1], rtol=1e-12)


def test_team_rows_benjamini_bogomolov_within_selected_pairs():
    from statsmodels.stats.multitest import multipletests

    f = _three_pairs()
    res = _quiet(lead_lag_frame, f, leading=["a", "b", "c"], lagging="y", time="t", team="team",
                 transform="none", by_team=True)
    t = res.table
    pooled = t[t["team_id"] == POOLED].set_index("leading")
    selected = pooled.index[pooled["q_value"] < 0.05].tolist()
    assert selected == ["a"]
    m, R = 3, len(selected)
    teams = t[(t["team_id"] != POOLED) & (t["leading"] == "a")]
    expected = np.minimum(1, multipletests(teams["granger_p"], method="fdr_bh")[1] * m / R)
    np.testing.assert_allclose(teams["q_value"], expected, rtol=1e-12)
    others = t[(t["team_id"] != POOLED) & (t["leading"] != "a")]
    assert others["q_value"].isna().all() and (others["verdict"] == "no evidence").all()
    assert others["reason"].str.contains("did not select").all()
    # BB q-values are larger than plain BH within the pair: the price of testing only selected pairs
    assert (teams["q_value"] >= multipletests(teams["granger_p"], method="fdr_bh")[1] - 1e-15).all()


def test_benjamini_bogomolov_by_hand():
    from okr_analysis.leadlag import benjamini_bogomolov

    p = [0.001, 0.02, 0.04, 0.5, 0.01, 0.03]
    fam = ["A", "A", "A", "B", "C", "C"]
    q = benjamini_bogomolov(p, fam, {"A"}, n_families=4)
    # family A: BH q = (0.003, 0.03, 0.04), times m/R = 4
    np.testing.assert_allclose(q[:3], [0.012, 0.12, 0.16])
    assert np.isnan(q[3:]).all()
    with pytest.raises(ValueError, match="same length"):
        benjamini_bogomolov([0.1], ["A", "B"], {"A"}, n_families=2)


@pytest.mark.parametrize("freq, n, expected", [("W", 156, 8), ("M", 36, 3), ("M", 120, 6), ("Q", 60, 4),
                                               ("Q", 12, 1), ("A", 54, 2), ("A", 12, 1), ("P", 200, 8)])
def test_default_max_lag_follows_the_frequency(freq, n, expected):
    from okr_analysis.leadlag import default_max_lag

    assert default_max_lag(freq, n) == expected


def test_monthly_sample_is_not_insufficient_with_the_default_max_lag(sample_ds):
    """The 3-year sample by month: 36 periods, default max_lag 3 (a tenth), so the pairs are tested."""
    res = _quiet(lead_lag, sample_ds, pairs=[("training_attendance", "engagement"), ("first_response_time", "csat")],
                 freq="M")
    assert res.options["max_lag"] == 3
    assert (res.table["verdict"] != "insufficient data").all()


def test_verdict_sentence_forms():
    from okr_analysis.leadlag import verdict_sentence

    row = dict(leading="coaching_hours", lagging="engagement", team_id=POOLED, freq="W", verdict="leads", lag=4,
               oos_confirmed=True)
    assert verdict_sentence(row) == ("Coaching hours move first; engagement follows about 4 weeks later across "
                                     "the organisation; confirmed on data the model had not seen.")
    named = verdict_sentence(dict(row, team_id="sales-emea", oos_confirmed=pd.NA, lag=1),
                             metric_names={"coaching_hours": "Coaching hours", "engagement": "engagement score"},
                             freq_unit="sprint")
    assert named == ("Coaching hours move first; engagement score follows about 1 sprint later in team sales-emea; "
                     "too few periods to check it on data the model had not seen.")
    assert verdict_sentence(dict(row, verdict="reverse")).startswith("Engagement moves first")
    assert verdict_sentence(dict(row, verdict="no evidence")) == (
        "No evidence that coaching hours move before engagement across the organisation.")
    assert verdict_sentence(dict(row, leading="nps", verdict="no evidence")).startswith("No evidence that nps moves")
    assert "not confirmed" in verdict_sentence(dict(row, oos_confirmed=False))
    assert verdict_sentence(dict(row, verdict="insufficient data")).startswith("Too little data")
    assert "same quarter" in verdict_sentence(dict(row, verdict="contemporaneous", freq="Q"))


def test_oos_confirmed_is_empty_with_too_few_forecasts():
    """ChickEgg with order 3 in levels: 16 forecasts, a verdict, and a True/False confirmation; a frame too
    short for MIN_FORECASTS forecasts leaves oos_confirmed empty."""
    from okr_analysis.leadlag import MIN_FORECASTS

    rng = np.random.default_rng(3)
    x = _ar1(rng, (1, 24), 0.3)
    y = 0.8 * np.roll(x, 1, axis=1) + 0.3 * rng.standard_normal((1, 24))
    row = _pooled(_quiet(lead_lag_frame, _frame(x, y), pairs=[("lead", "lag")], time="t", team="team",
                         transform="none", max_lag=1, oos_fraction=0.25, min_periods=12))
    assert row["n_forecasts"] < MIN_FORECASTS and pd.isna(row["oos_confirmed"])
    assert "too few periods" in row["sentence"] or row["verdict"] not in ("leads", "feedback")


# =============================================================================================
# seasonality and the power study
# =============================================================================================
def test_fourier_terms_are_statsmodels_fourier():
    from statsmodels.tsa.deterministic import Fourier

    from okr_analysis.leadlag import _fourier

    t = np.arange(120, dtype="float64")
    ref = Fourier(period=365.25 / 7, order=3).in_sample(pd.RangeIndex(120)).to_numpy()
    np.testing.assert_allclose(_fourier(t, 365.25 / 7, 3)[:, 1:], ref, atol=1e-12)


def _shared_cycle(rng, G=10, T=130, behind=4):
    """Two KPIs that only share their team's annual cycle (phase by team), the second `behind` weeks later."""
    t = np.arange(T)[None, :]
    phase, amp = rng.uniform(0, 52, (G, 1)), rng.uniform(1.0, 2.0, (G, 1))
    cyc = lambda s: amp * np.sin(2 * np.pi * (t - phase - s) / (365.25 / 7))  # noqa: E731
    f = _frame(cyc(0) + 0.7 * _ar1(rng, (G, T), 0.3), cyc(behind) + 0.7 * _ar1(rng, (G, T), 0.3))
    f["t"] = np.tile(pd.date_range("2024-01-01", periods=T, freq="7D").to_numpy(), G)
    return f


def test_shared_annual_cycle_is_not_a_lead():
    """The classic trap: without seasonal terms the calendar makes a 'lead'; with two years of weekly data
    each team's cycle is removed first (default) and the pair is not directional more often than two
    calibrated 5% tests (one per direction) allow: about 10% of organisations with one pair (100
    organisations: 10 with the seasonal correction of step 6, 8 without it)."""
    directional = {"leads", "feedback", "reverse"}
    naive = hits = 0
    for seed in range(12):
        f = _shared_cycle(np.random.default_rng(seed))
        kw = dict(pairs=[("lead", "lag")], time="t", team="team", transform="none")
        row = _pooled(_quiet(lead_lag_frame, f, **kw))
        assert row["test"] == "granger with seasonal terms, half-panel jackknife"
        hits += row["verdict"] in directional
        naive += _pooled(_quiet(lead_lag_frame, f, seasonal=False, **kw))["verdict"] in directional
    assert naive >= 10 and hits <= 2


def _power_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_leadlag_power.py"
    spec = importlib.util.spec_from_file_location("bench_leadlag_power", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_power_study_small():
    """A few replicates of the benchmark's power study (benchmarks/results/leadlag-power.md has the full
    grid): 10 teams x 130 weeks, a lead of 0.2 SD at lag 3, which the plain pooled F test finds in every
    replicate; the toolkit says `leads` at lag 3 +- 1 in nearly all, and (almost) never for the null pairs,
    random walks, same-week shocks or the shared annual cycle."""
    B = _power_module()
    df = B.run([(10, 130, 0.2)], 6, seed=7)
    assert df["plain_f"].all()
    assert df["leads_at_lag"].sum() >= 5
    power, false = B.summarise(df)
    f = false.set_index("pairs")
    assert f.loc["null", "leads"] <= 1 / 12 and f.loc["walk", "leads"] <= 1 / 6
    assert f.loc["shock", "leads"] <= 1 / 6 and f.loc["season", "directional"] <= 1 / 6


def test_pooled_effect_is_the_summed_lag_coefficient_with_driscoll_kraay_se():
    """Two teams (no period means removed): the pooled effect and its SE equal statsmodels OLS with team
    dummies (constant and own lags by team), common leading lags, cov_type='hac-groupsum'."""
    import statsmodels.api as sm

    rng = np.random.default_rng(14)
    G, T, q = 2, 110, 2
    x = _ar1(rng, (G, T), 0.5)
    y = 0.3 * np.roll(x, 1, axis=1) + _ar1(rng, (G, T), 0.4)
    row = _pooled(_quiet(lead_lag_frame, _frame(x, y), pairs=[("lead", "lag")], time="t", team="team",
                         transform="none", seasonal=False, order=q))
    rows = np.arange(q, T)
    blocks, lead, ys, tt = [], [], [], []
    for i in range(G):
        ys_, xs_ = S.standardise(y[i]), S.standardise(x[i])
        b = np.zeros((rows.size, G * (1 + q)))
        b[:, i * (1 + q)] = 1.0
        for j in range(1, q + 1):
            b[:, i * (1 + q) + j] = ys_[rows - j]
        blocks.append(b)
        lead.append(np.column_stack([xs_[rows - j] for j in range(1, q + 1)]))
        ys.append(ys_[rows])
        tt.append(rows - q)
    X = np.column_stack([np.vstack(blocks), np.vstack(lead)])
    lags = int(np.floor(4 * ((T - q) / 100.0) ** (2 / 9)))
    ref = sm.OLS(np.concatenate(ys), X).fit(cov_type="hac-groupsum",
                                            cov_kwds=dict(time=np.concatenate(tt), maxlags=lags))
    w = np.zeros(X.shape[1])
    w[-q:] = 1.0
    assert row["effect"] == pytest.approx(w @ ref.params, rel=1e-8)
    assert row["effect_se"] == pytest.approx(np.sqrt(w @ ref.cov_params() @ w), rel=1e-8)
    assert row["effect_lag"] == q and row["effect"] > 0 and row["effect_p"] < 0.05


def test_rolling_oos_chooses_the_own_order_inside_each_window():
    """With own_max, each origin picks the own-lag order by BIC on its own training window (statsmodels OLS
    bic on the common rows), then forecasts as before: no selection step sees the forecast period."""
    import statsmodels.api as sm

    rng = np.random.default_rng(8)
    T, K, Pmax, P = 80, 3, 4, 15
    x = _ar1(rng, (2, T), 0.5)
    y = _ar1(rng, (2, T), 0.7) + 0.5 * np.roll(x, 2, axis=1)
    actual, fr, fu, chosen = S.rolling_oos(y, x, own=1, max_lead=K, n_test=P, own_max=Pmax)
    L = max(K, Pmax)
    for b in range(2):
        for i, s in enumerate(range(T - P, T)):
            rows = np.arange(L, s)
            fits = []
            for p in range(1, Pmax + 1):
                Xr = np.column_stack([np.ones(rows.size)] + [y[b, rows - j] for j in range(1, p + 1)])
                fits.append((sm.OLS(y[b, rows], Xr).fit(), Xr, p))
            fit, Xr, p = min(fits, key=lambda f: f[0].bic)
            zr = np.r_[1.0, [y[b, s - j] for j in range(1, p + 1)]]
            assert fr[b, i] == pytest.approx(zr @ fit.params, rel=1e-8)
            ks = [sm.OLS(y[b, rows], np.column_stack([Xr, x[b, rows - k]])).fit() for k in range(1, K + 1)]
            k = int(np.argmin([f.ssr for f in ks])) + 1
            assert chosen[b, i] == k
            assert fu[b, i] == pytest.approx(np.r_[zr, x[b, s - k]] @ ks[k - 1].params, rel=1e-8)


def test_clark_west_rows_equals_clark_west_row_by_row():
    """The batched Clark–West of the team rows equals the one-series version, missing forecasts included."""
    rng = np.random.default_rng(21)
    a = rng.standard_normal((6, 30))
    fr = a + rng.standard_normal((6, 30))
    fu = a + 0.8 * rng.standard_normal((6, 30))
    fu[1, :5] = np.nan
    a[2, 3] = np.nan
    fr[4, 2:] = np.nan  # fewer than 3 forecasts
    rows = S.clark_west_rows(a, fr, fu)
    for i in range(a.shape[0]):
        one = S.clark_west(a[i], fr[i], fu[i])
        assert rows.n[i] == one.n
        for got, want in ((rows.stat[i], one.stat), (rows.p[i], one.p), (rows.skill[i], one.skill)):
            assert (np.isnan(got) and np.isnan(want)) or got == pytest.approx(want, rel=1e-10)


def test_rolling_oos_forecast_ignores_values_after_its_origin():
    """No look-ahead in the forecasting kernel: multiplying every value after a forecast origin by 10 (both
    series) leaves the forecasts made up to that origin unchanged, own-lag order and leading lag chosen
    inside each window included."""
    rng = np.random.default_rng(31)
    T, K, P = 90, 4, 30
    x = _ar1(rng, (3, T), 0.5) + 5
    y = 0.5 * np.roll(x, 2, axis=1) + _ar1(rng, (3, T), 0.6) + 20
    base = S.rolling_oos(y, x, own=1, max_lead=K, n_test=P, own_max=K)
    for origin in (T - P, T - P + 7, T - 3):  # the forecast of period `origin` uses rows < origin
        y2, x2 = y.copy(), x.copy()
        y2[:, origin:] *= 10
        x2[:, origin:] *= 10
        moved = S.rolling_oos(y2, x2, own=1, max_lead=K, n_test=P, own_max=K)
        i = origin - (T - P)
        for a, b in zip(base[1:], moved[1:]):  # restricted, unrestricted forecasts and the chosen lag
            np.testing.assert_allclose(b[:, : i + 1], a[:, : i + 1], rtol=1e-9)
        assert not np.allclose(moved[1][:, i + 1:], base[1][:, i + 1:])  # later forecasts do see the change


def test_rolling_oos_with_deterministic_terms_matches_refitted_statsmodels_ols():
    """``exog`` (a trend and the Fourier terms of an annual cycle, re-estimated at every origin: the seasonal
    fit inside each expanding window) in both models: the forecasts equal statsmodels OLS on the window
    with those columns, the leading lag is the one with the smallest window SSR, and the forecasts up to
    an origin ignore every later value (× 10)."""
    import statsmodels.api as sm

    from okr_analysis.leadlag import _fourier

    rng = np.random.default_rng(5)
    B, T, K, P, own = 3, 110, 4, 30, 2
    t = np.arange(T, dtype="float64")
    x = _ar1(rng, (B, T), 0.5) + 2 * np.sin(2 * np.pi * t / 52.18)
    y = 0.4 * np.roll(x, 2, axis=1) + _ar1(rng, (B, T), 0.3) + np.cos(2 * np.pi * t / 52.18) + 0.02 * t
    E = np.column_stack([(t - t.mean()) / T, _fourier(t, 365.25 / 7, 3)[:, 1:]])
    act, fr, fu, ch = S.rolling_oos(y, x, own=own, max_lead=K, n_test=P, exog=E)
    L = max(own, K)
    for b in range(B):
        for i, s in enumerate(range(T - P, T)):
            rows = np.arange(L, s)
            Xr = np.column_stack([np.ones(rows.size), E[rows]] + [y[b, rows - j] for j in range(1, own + 1)])
            zr = np.r_[1.0, E[s], [y[b, s - j] for j in range(1, own + 1)]]
            assert fr[b, i] == pytest.approx(sm.OLS(y[b, rows], Xr).fit().params @ zr, rel=1e-9, abs=1e-9)
            ssr = [sm.OLS(y[b, rows], np.column_stack([Xr, x[b, rows - k]])).fit().ssr for k in range(1, K + 1)]
            k = int(np.argmin(ssr)) + 1
            assert ch[b, i] == k
            fit = sm.OLS(y[b, rows], np.column_stack([Xr, x[b, rows - k]])).fit()
            assert fu[b, i] == pytest.approx(fit.params @ np.r_[zr, x[b, s - k]], rel=1e-9, abs=1e-9)
    base = S.rolling_oos(y, x, own=1, max_lead=K, n_test=P, own_max=K, exog=E)
    origin = T - P + 7
    y2, x2 = y.copy(), x.copy()
    y2[:, origin:] *= 10
    x2[:, origin:] *= 10
    moved = S.rolling_oos(y2, x2, own=1, max_lead=K, n_test=P, own_max=K, exog=E)
    for a_, b_ in zip(base[1:], moved[1:]):
        np.testing.assert_allclose(b_[:, : origin - (T - P) + 1], a_[:, : origin - (T - P) + 1], rtol=1e-9)


def _oos_panel(seed=41, G=5, T=130):
    """Teams with an annual cycle, a trend and a lead: a frame with weekly dates (seasonal terms apply)."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)[None, :]
    phase = rng.uniform(0, 52, (G, 1))
    cyc = lambda s: 2 * np.sin(2 * np.pi * (t - phase - s) / (365.25 / 7))  # noqa: E731
    x = 10 + 0.03 * t + cyc(0) + _ar1(rng, (G, T), 0.5)
    y = 40 + 0.5 * np.roll(x, 2, axis=1) + cyc(3) + _ar1(rng, (G, T), 0.4)
    f = _frame(x, y)
    f["t"] = np.tile(pd.date_range("2024-01-01", periods=T, freq="7D").to_numpy(), G)
    return f


@pytest.mark.parametrize("transform", ["none", "detrend", "diff"])
def test_oos_series_are_fitted_before_the_first_forecast_origin(transform):
    """No look-ahead in the out-of-sample series (``_oos_block``): the fixed seasonal fit, the trend line and
    the differencing use only the periods before the first forecast origin. Changing every value from
    the first forecast's period on (× 3 + 7) leaves the prepared series before the origin unchanged,
    and the part each fit subtracts (cycle, trend) is the same at every period, the forecast periods
    included."""
    from okr_analysis import leadlag as LL

    f = _oos_panel()
    opt = LL._Options(max_lag=4, alpha=0.05, by_team=True, order=None, ic="bic", skill_threshold=0.02,
                      oos_fraction=0.3, min_periods=28, freq="W")

    def prepare(frame):
        fr = LL._Frame(frame, time="t", team="team", metrics=["lead", "lag"])
        assert fr.deseason("W", True) == 6
        opt.season = fr.season
        (blk,) = LL._blocks(fr.pair("lead", "lag", transform, transform))
        ob, first, exog = LL._oos_block(blk, transform, transform, opt)
        return blk, ob, first, exog

    blk, ob, first, exog = prepare(f)
    # both forecasting models also get the cycle (and, in levels, a trend), re-fitted at every origin
    assert exog.shape == (blk.Y.shape[1], 6 if transform == "diff" else 7)
    T = blk.Y.shape[1]
    assert first == T - LL._n_test(T, 0.3)
    d = blk.RY.shape[1] - T
    cut = first + d  # raw periods before the first forecast's period
    forecast_periods = np.sort(f["t"].unique())[cut:]  # complete data: the run is the whole calendar
    g = f.copy()
    late = g["t"].isin(forecast_periods)
    g.loc[late, ["lead", "lag"]] = g.loc[late, ["lead", "lag"]] * 3 + 7
    blk2, ob2, first2, exog2 = prepare(g)
    assert first2 == first
    np.testing.assert_array_equal(exog2, exog)
    np.testing.assert_array_equal(blk2.RY[:, :cut], blk.RY[:, :cut])
    assert not np.allclose(blk2.RY[:, cut:], blk.RY[:, cut:])

    def subtracted(raw, prepared):  # what the fits took away: the transform's linear part minus the result
        lin = np.diff(raw, axis=1) if transform == "diff" else raw[:, d:]
        return lin - prepared

    for raw, raw2, o, o2 in ((blk.RX, blk2.RX, ob.X, ob2.X), (blk.RY, blk2.RY, ob.Y, ob2.Y)):
        np.testing.assert_allclose(o2[:, :first], o[:, :first], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(subtracted(raw2, o2), subtracted(raw, o), rtol=1e-9, atol=1e-9)
        if transform != "diff":  # the cycle (and trend) fitted: something was subtracted
            assert np.abs(subtracted(raw, o)).max() > 0.5
    # the primary test's series use the whole sample: there the same change moves the pre-origin values
    assert not np.allclose(blk2.Y[:, :first], blk.Y[:, :first])


@pytest.mark.parametrize("transform", ["none", "detrend", "diff"])
def test_pipeline_forecast_of_the_first_origin_ignores_the_forecast_periods(transform):
    """The whole pipeline (seasonal terms, transform, standardisation, period means, forecasts): changing
    every value of the forecast periods (all teams, both KPIs) leaves the first forecast of every team,
    pooled and per team, unchanged; with the seasonal fit on the whole sample (before issue 19 item 4) it
    moved."""
    f = _oos_panel(seed=43)
    kw = dict(pairs=[("lead", "lag")], time="t", team="team", transform=transform, seasonal=True, by_team=True,
              max_lag=4)
    res = _quiet(lead_lag_frame, f, **kw)
    fc = res.forecasts
    periods = np.sort(fc["period"].unique())
    g = f.copy()
    late = g["t"].isin(periods)
    g.loc[late, ["lead", "lag"]] = g.loc[late, ["lead", "lag"]] * 3 + 7
    fc2 = _quiet(lead_lag_frame, g, **kw).forecasts
    assert len(fc2) == len(fc)
    one, one2 = fc[fc["period"] == periods[0]], fc2[fc2["period"] == periods[0]]
    assert set(one["scope"]) == {"pooled", "team"} and len(one) == 2 * 5
    for c in ("restricted", "unrestricted"):
        np.testing.assert_allclose(one2[c].to_numpy(), one[c].to_numpy(), rtol=1e-9, atol=1e-9)
    later = fc["period"] == periods[1]
    assert not np.allclose(fc2.loc[later, "restricted"], fc.loc[later, "restricted"])


@pytest.mark.parametrize("seasonal", [False, True])
def test_oos_transform_is_decided_before_the_first_forecast_origin(seasonal):
    """The out-of-sample series' transform (ADF/KPSS vote: difference or not) is decided on the periods before
    the first forecast origin only. Two stationary KPIs (8 teams × 156 weeks, a lead at lag 2; with
    ``seasonal``, an annual cycle in both): both left in levels. Multiplying every value of the forecast
    periods by 10 (a late level shift) makes the whole-sample vote difference them (the primary test's
    transform, kept), but the out-of-sample series stay in levels (their forecasts are of the levels: the
    team rows' actual values are the data's), and the first forecast of every team, pooled and per team,
    is unchanged; with the whole-sample decision it moved."""
    from okr_analysis import leadlag as LL

    rng = np.random.default_rng(2024)
    G, T = 8, 156
    t = np.arange(T)
    phase = rng.uniform(0, 52, (G, 1))
    cyc = (lambda s: 2 * np.sin(2 * np.pi * (t - phase - s) / (365.25 / 7))) if seasonal else (lambda s: 0.0)
    x = 50 + cyc(0) + _ar1(rng, (G, T), 0.5)
    y = 40 + 0.5 * np.roll(x, 2, axis=1) + cyc(3) + _ar1(rng, (G, T), 0.4)
    f = _frame(x, y)
    f["t"] = np.tile(pd.date_range("2024-01-01", periods=T, freq="7D").to_numpy(), G)
    kw = dict(pairs=[("lead", "lag")], time="t", team="team", seasonal=seasonal, by_team=True, max_lag=4)
    res = _quiet(lead_lag_frame, f, **kw)
    assert set(res.transforms["transform"]) == {"none"}
    fc = res.forecasts
    periods = np.sort(fc["period"].unique())
    assert periods[0] == np.sort(f["t"].unique())[T - LL._n_test(T, 0.3)]
    g = f.copy()
    late = g["t"] >= periods[0]
    g.loc[late, ["lead", "lag"]] = g.loc[late, ["lead", "lag"]] * 10
    res2 = _quiet(lead_lag_frame, g, **kw)
    assert set(res2.transforms["transform"]) == {"diff"}  # the whole-sample vote: a unit root
    assert set(_pooled(res2)[["transform_leading", "transform_lagging"]]) == {"diff"}
    fc2 = res2.forecasts
    assert len(fc2) == len(fc) and (fc2["period"].to_numpy() == fc["period"].to_numpy()).all()
    one, one2 = fc[fc["period"] == periods[0]], fc2[fc2["period"] == periods[0]]
    assert set(one["scope"]) == {"pooled", "team"} and len(one) == 2 * G
    for c in ("restricted", "unrestricted"):
        np.testing.assert_allclose(one2[c].to_numpy(), one[c].to_numpy(), rtol=1e-9, atol=1e-9)
    if not seasonal:  # in levels: a team's actual values are the data's (× 10 from the first forecast on)
        team = fc2[(fc2["scope"] == "team") & (fc2["team_id"] == "t000")]
        data = g[g["team"] == "t000"].set_index("t")["lag"]
        np.testing.assert_allclose(team["actual"].to_numpy(), data.loc[team["period"]].to_numpy(), rtol=1e-12)
    # with the whole-sample decision (the primary test's transforms), the first forecasts move
    orig = LL._oos_transforms
    try:
        LL._oos_transforms = lambda *a, **k: None
        fc3 = _quiet(lead_lag_frame, g, **kw).forecasts
    finally:
        LL._oos_transforms = orig
    one3 = fc3[fc3["period"] == fc3["period"].min()]
    assert not np.allclose(one3["restricted"].to_numpy(), one["restricted"].to_numpy(), rtol=1e-3)


def test_toda_yamamoto_levels_test_equals_statsmodels_ols_f_test():
    """One team, two integrated series (differenced by the rule): ``levels_f``/``levels_p`` equal a
    hand-built lag-augmented regression in statsmodels: y_t on 1, y lags 1..p+1 and x lags 1..q+1 (levels),
    F test of x lags 1..q only (Toda & Yamamoto 1995 with d_max = 1)."""
    import statsmodels.api as sm

    rng = np.random.default_rng(17)
    T = 160
    x = np.cumsum(rng.standard_normal(T))
    y = np.cumsum(rng.standard_normal(T)) + 0.4 * np.r_[0.0, 0.0, x[:-2]]
    frame = pd.DataFrame({"t": np.arange(T), "lead": x, "lag": y})
    row = _pooled(_quiet(lead_lag_frame, frame, pairs=[("lead", "lag")], time="t", transform="diff",
                         seasonal=False))
    from statsmodels.tsa.ar_model import ar_select_order

    q = int(row["granger_lags"])
    lags = ar_select_order(y, 8, ic="bic", trend="c").ar_lags  # the own order on the levels (max_lag 8)
    p = len(lags)
    assert p >= 1 and list(lags) == list(range(1, p + 1))
    k, s = p + 1, max(p + 1, q + 1)
    rows = np.arange(s, T)
    X = np.column_stack([np.ones(rows.size)] + [y[rows - j] for j in range(1, k + 1)]
                        + [x[rows - j] for j in range(1, q + 2)])
    fit = sm.OLS(y[rows], X).fit()
    R = np.zeros((q, X.shape[1]))
    for j in range(q):
        R[j, 1 + k + j] = 1.0
    ref = fit.f_test(R)
    assert row["levels_f"] == pytest.approx(float(np.squeeze(ref.fvalue)), rel=1e-8)
    assert row["levels_p"] == pytest.approx(float(ref.pvalue), rel=1e-8)
    assert row["levels_p"] < 0.05  # the lead is there, and the levels test finds it
    # a pair analysed in levels (no differencing) has no levels test
    none = _pooled(_quiet(lead_lag_frame, frame, pairs=[("lead", "lag")], time="t", transform="none",
                          seasonal=False))
    assert np.isnan(none["levels_p"])


# ----------------------------------------------------------------------------------
# Worker processes (jobs > 1)
# ----------------------------------------------------------------------------------
def test_worker_processes_give_the_same_result_and_warnings(monkeypatch):
    """``jobs=2`` (a spawned worker and this process, dynamic scheduling) gives byte-for-byte the table,
    lags, Granger, forecast and transform tables of the in-process run, and the same warnings in the
    same order (a pair with a team too short is one)."""
    import contextlib
    from concurrent.futures import wait

    from okr_analysis import leadlag as LL

    monkeypatch.setattr(LL, "PARALLEL_MIN_SERIES", 0)  # the test panel is small: start the worker anyway
    started = LL.local_workers

    @contextlib.contextmanager
    def ready(n, *, warm=()):  # this small run would be over before the worker's imports: wait for them
        with started(n, warm=warm) as workers:
            if workers is not None:
                wait(workers.warming)
            yield workers

    monkeypatch.setattr(LL, "local_workers", ready)  # so the worker gets the first vote and the first pair
    rng = np.random.default_rng(23)
    G, T = 6, 120
    x = _ar1(rng, (G, T), 0.5)
    frame = _frame(x, 0.4 * np.roll(x, 2, axis=1) + _ar1(rng, (G, T), 0.3))
    frame["other"] = _ar1(rng, (G, T), 0.6).ravel()
    frame["short"] = frame["other"].where(frame["team"] != "t000") * 2
    frame.loc[(frame["team"] == "t001") & (frame["t"] > 30), "short"] = np.nan  # one team too short
    pairs = [("lead", "lag"), ("other", "lag"), ("short", "lag"), ("lead", "other"), ("short", "lead")]
    kw = dict(pairs=pairs, time="t", team="team", by_team=True)
    with warnings.catch_warnings(record=True) as w1:
        warnings.simplefilter("always")
        one = lead_lag_frame(frame, **kw)
    with warnings.catch_warnings(record=True) as w2:
        warnings.simplefilter("always")
        two = lead_lag_frame(frame, jobs=2, **kw)
    assert len(one.table) > 20
    for name in ("table", "lags", "granger", "forecasts", "transforms"):
        assert getattr(two, name).to_csv() == getattr(one, name).to_csv(), name
    assert two.options == one.options
    said = lambda ws: [str(x.message) for x in ws if "insufficient data" in str(x.message)]  # noqa: E731
    assert said(w1) and said(w2) == said(w1)


def test_map_local_keeps_order_and_raises_the_items_error():
    from concurrent.futures import wait

    from okr_analysis.parallel import local_workers, map_local

    with local_workers(1) as workers:
        wait(workers.warming)  # ready: the first item of each call goes to the worker
        assert map_local(divmod, [(i, 3) for i in range(7)], workers=workers) == [divmod(i, 3) for i in range(7)]
        with pytest.raises(ZeroDivisionError):
            map_local(divmod, [(2, 0), (1, 1), (3, 1), (4, 1)], workers=workers)
    assert map_local(divmod, [(5, 2)], workers=None) == [(2, 1)]


def test_map_local_raises_the_items_warnings_again_in_order_at_the_caller():
    import warnings
    from concurrent.futures import wait

    from okr_analysis.parallel import local_workers, map_local

    items = [(f"item {i}", UserWarning) for i in range(5)]
    with local_workers(1) as workers:
        wait(workers.warming)
        for w in (workers, None):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                assert map_local(warnings.warn, items, workers=w, stacklevel=1) == [None] * 5
            assert [str(c.message) for c in caught] == [f"item {i}" for i in range(5)]
            assert {c.filename for c in caught} == {__file__}  # stacklevel=1: this line


@pytest.mark.parametrize("kwargs, match", [(dict(jobs=0), "jobs must be"), (dict(jobs=1.5), "jobs must be"),
                                           (dict(jobs=2, executor="dask"), "applies to executor='local'")])
def test_bad_jobs(kwargs, match):
    rng = np.random.default_rng(1)
    frame = _frame(_ar1(rng, (2, 60), 0.5), _ar1(rng, (2, 60), 0.5))
    with pytest.raises(ValueError, match=match):
        lead_lag_frame(frame, pairs=[("lead", "lag")], time="t", team="team", **kwargs)


def test_dense_codes_are_numpy_unique_inverse():
    """_screen.dense_codes (period codes ranked by marking the values present) = np.unique's inverse."""
    rng = np.random.default_rng(3)
    for g in (rng.integers(0, 40, 500), rng.integers(100, 105, 30), np.array([7]), rng.integers(-5, 5, 50),
              rng.integers(0, 10**9, 20), rng.standard_normal(10).round(1)):
        np.testing.assert_array_equal(S.dense_codes(g), np.unique(g, return_inverse=True)[1])


def test_common_shock_means_are_the_same_with_several_blocks():
    """_demean's period means over blocks of teams with different periods: each period's mean over the
    teams observed in it, by a plain loop."""
    from okr_analysis.leadlag import _Block, _demean

    rng = np.random.default_rng(4)
    blocks = [_Block([f"t{i}" for i in range(n)], rng.standard_normal((n, T)), rng.standard_normal((n, T)),
                     np.arange(T), np.arange(T) + lo) for n, T, lo in ((3, 20, 0), (4, 15, 5), (2, 18, 1))]
    std, raw, n_common = _demean(blocks)
    assert n_common == 20
    for code in (0, 3, 7, 19):
        vals = [(b, i) for b in blocks for i in np.flatnonzero(b.period_codes == code)]
        mean_y = np.concatenate([b.Y[:, i] for b, i in vals]).mean()
        for b, r in zip(blocks, raw):
            for i in np.flatnonzero(b.period_codes == code):
                np.testing.assert_allclose(r.Y[:, i], b.Y[:, i] - mean_y, rtol=1e-12, atol=1e-12)


def test_rolling_oos_restricted_model_kept_for_the_next_pair_gives_the_same_forecasts():
    """Two pairs sharing the lagging series: the second reuses the first's restricted model (the per-process
    cache of _oos_restricted) and gets exactly the forecasts it gets from an empty cache; a different
    exog, own order or leading-lag count is a different key (no stale reuse)."""
    rng = np.random.default_rng(21)
    B, T, K, P = 6, 90, 4, 25
    y = _ar1(rng, (B, T), 0.5)
    x1, x2 = _ar1(rng, (B, T), 0.3), _ar1(rng, (B, T), 0.6)
    t = np.arange(T, dtype=float)
    E = np.column_stack([(t - t.mean()) / T, np.sin(2 * np.pi * t / 52), np.cos(2 * np.pi * t / 52)])
    for exog in (None, E):
        kw = dict(own=1, max_lead=K, n_test=P, own_max=K, exog=exog)
        S._OOS_CACHE.clear()
        cold = [S.rolling_oos(y, x, **kw) for x in (x2,)]
        S._OOS_CACHE.clear()
        S.rolling_oos(y, x1, **kw)                      # fills the cache
        n_kept = len(S._OOS_CACHE)
        warm = S.rolling_oos(y, x2, **kw)               # reuses it
        assert len(S._OOS_CACHE) == n_kept
        for a, b in zip(cold[0], warm):
            np.testing.assert_array_equal(a, b)
    # a different key computes anew: its forecasts are those of an empty cache
    for kw in (dict(own=1, max_lead=K, n_test=P, own_max=K, exog=E[:, :1]), dict(own=2, max_lead=K, n_test=P),
               dict(own=1, max_lead=K - 1, n_test=P, own_max=K, exog=E)):
        warm = S.rolling_oos(y, x2, **kw)
        S._OOS_CACHE.clear()
        cold = S.rolling_oos(y, x2, **kw)
        for a, b in zip(cold, warm):
            np.testing.assert_array_equal(a, b)


def test_forward_substitution_with_a_kept_factor_is_the_factorisations_own():
    """_forward_t with the factor from _chol_forward_t(factor=True) = the columns _chol_forward_t gives."""
    rng = np.random.default_rng(9)
    m, B = 6, 11
    X = rng.standard_normal((B, 30, m))
    A = np.ascontiguousarray(np.matmul(X.transpose(0, 2, 1), X).transpose(1, 2, 0))
    C = rng.standard_normal((m, 5, B))
    W, Lc = S._chol_forward_t(A, C, factor=True)
    np.testing.assert_array_equal(S._forward_t(Lc, np.ascontiguousarray(C[:, 2:])), W[:, 2:])
    np.testing.assert_array_equal(W, S._chol_forward_t(A, C))


def test_standardise_without_missing_values_is_the_nan_aware_one_bit_for_bit():
    """_screen.standardise skips the NaN-aware mean and std when nothing is missing: the same numbers."""
    rng = np.random.default_rng(2)
    for a in (rng.standard_normal((40, 156)) * 1e6 + 3e7, rng.standard_normal((5, 33)) * 1e-8, np.ones((2, 9))):
        ref = (a - np.nanmean(a, axis=-1, keepdims=True)) / np.where(
            np.nanstd(a, axis=-1, keepdims=True) > 0, np.nanstd(a, axis=-1, keepdims=True), 1.0)
        np.testing.assert_array_equal(S.standardise(a), ref)
    b = rng.standard_normal((3, 20))
    b[1, 4] = np.nan
    ref = (b - np.nanmean(b, axis=-1, keepdims=True)) / np.nanstd(b, axis=-1, keepdims=True)
    np.testing.assert_array_equal(S.standardise(b), ref)


def test_grangertest_form_rows_are_the_pooled_test_of_each_order_and_direction():
    """_granger_rows (both directions of an order in one batch) = _partial_test order by order, direction
    by direction, with two blocks of teams."""
    from okr_analysis.leadlag import _granger_rows, _partial_test

    rng = np.random.default_rng(17)
    L = 3
    grams = []
    for G, T in ((4, 60), (3, 45)):
        x = _ar1(rng, (G, T), 0.5)
        y = 0.3 * np.roll(x, 1, axis=1) + _ar1(rng, (G, T), 0.3)
        grams.append(S.GramCache(S.lagged_design(np.stack([S.standardise(y), S.standardise(x)], axis=-1), L), L))
    rows = _granger_rows(grams, L, n_common=2)
    for k, (gf, gr) in enumerate(rows, start=1):
        for got, (tgt, own, oth) in ((gf, (S.cur_col(0, 2, L), 0, 1)), (gr, (S.cur_col(1, 2, L), 1, 0))):
            ref = _partial_test([(g, k) for g in grams], L, target=tgt, own=own, other=oth,
                                other_lags=range(1, k + 1), n_common=2)
            assert got.f == pytest.approx(ref.f, rel=1e-12) and got.p == pytest.approx(ref.p, rel=1e-12)
            assert got.df_den == ref.df_den


def test_pairs_sharing_a_lagging_metric_give_the_same_result_with_and_without_the_kept_models(sample_ds,
                                                                                                monkeypatch):
    """Two pairs with the same lagging KPI analysed in one run (the second reuses the kept restricted
    forecasting model and AR fits) = each analysed alone after clearing the caches: the same forecasts,
    tests and effects, team rows included."""
    pairs = [("training_attendance", "engagement"), ("overtime", "engagement")]
    S.clear_caches()
    given, kept = [], S._oos_restricted

    def recording(*a, **k):
        given.append(kept(*a, **k))  # a cache hit gives the kept object itself
        return given[-1]

    monkeypatch.setattr(S, "_oos_restricted", recording)
    both = _quiet(lead_lag, sample_ds, pairs=pairs, by_team=True, jobs=1)
    assert len({id(r) for r in given}) < len(given)  # the second pair reused the first's restricted models
    assert not S._OOS_CACHE and not S._AR_CACHE  # emptied when the run ended
    cols = ["granger_f", "granger_p", "reverse_f", "reverse_p", "effect", "effect_se", "cw_stat", "cw_p",
            "oos_skill", "n_forecasts"]
    for pair in pairs:
        S.clear_caches()
        alone = _quiet(lead_lag, sample_ds, pairs=[pair], by_team=True, jobs=1)
        pick = lambda t: t[(t["leading"] == pair[0]) & (t["lagging"] == pair[1])].reset_index(drop=True)
        pd.testing.assert_frame_equal(pick(both.forecasts), pick(alone.forecasts))
        pd.testing.assert_frame_equal(pick(both.table)[cols], pick(alone.table)[cols])


def test_drivers_numbers_do_not_depend_on_the_blas_threads(tmp_path):
    """Each pair is analysed on one BLAS thread (``_pair_job``): the same numbers whatever threads the
    machine's OpenBLAS would use (its threaded products add in another order; 1,000 teams, a pair whose
    last digits moved before)."""
    import importlib.util
    import os
    import subprocess
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_leadlag.py"
    spec = importlib.util.spec_from_file_location("bench_leadlag", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.write_dataset(tmp_path, bench.make_data(1000, 156), 156)
    exe = Path(sys.executable).with_name("okr-analysis")
    out = {}
    for n in ("1", "2"):
        env = {**os.environ, "OPENBLAS_NUM_THREADS": n}
        proc = subprocess.run([str(exe), "drivers", str(tmp_path), "--pair", "lead_1:outcome_0", "-j", "1",
                               "--out", str(tmp_path / f"blas{n}.csv")], capture_output=True, text=True, env=env,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr
        out[n] = (tmp_path / f"blas{n}.csv").read_bytes()
    assert out["1"] == out["2"]
