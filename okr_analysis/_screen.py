"""Vectorised kernels of the lead/lag screen (private; :mod:`okr_analysis.leadlag` is the public door).

Every kernel works on a *batch* of equal-length, complete series: arrays of shape ``(B, T)``
where ``B`` runs over teams (and, in the benchmark, over pairs × teams). Nothing loops over
teams in Python; the loops are over lag orders and forecast origins only.

How least squares is done: one lagged design ``Z`` per batch holds, for every period ``t``,
``[1, y[t-1..t-L], x[t-1..t-L], y[t], x[t]]`` (lags before the first period are 0 and are never
used). Cross-product matrices ``Z'Z`` over the rows ``t >= p`` are a sum of a common tail and a
few head rows, so every lag order costs one small batched solve. Coefficients come from the
normal equations, but residual sums of squares are computed from the explicit residuals
``Z c``, which makes them accurate to rounding (an error in the coefficients only enters to
second order). Series are centred and scaled per team first (F, p, correlations and
information-criterion choices are invariant to that), which keeps the systems well conditioned.

Each kernel is tested against statsmodels / pandas in ``tests/test_leadlag.py`` to 1e-8.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from ._distributions import f_sf, kpss_pvalue, mackinnonp, norm_sf

__all__ = [
    "standardise",
    "lagged_design",
    "GramCache",
    "ols_fit",
    "ols_coef",
    "GrangerScreen",
    "granger_screen",
    "adl_ic",
    "var_ic",
    "ar_ic",
    "ar_select",
    "prewhiten",
    "ccf",
    "rolling_oos",
    "clark_west",
    "clark_west_rows",
    "screen",
    "adf",
    "kpss",
]


# ---------------------------------------------------------------------------------------------
# basics
# ---------------------------------------------------------------------------------------------
def standardise(a: np.ndarray) -> np.ndarray:
    """Centre and scale each row (NaN-aware); constant rows are only centred."""
    a = np.asarray(a, dtype="float64")
    if np.isnan(a).any():
        mu = np.nanmean(a, axis=-1, keepdims=True)
        sd = np.nanstd(a, axis=-1, keepdims=True)
    else:  # the same sums and divisions as the NaN-aware versions, without their masking copies
        mu = a.mean(axis=-1, keepdims=True)
        sd = a.std(axis=-1, keepdims=True)
    sd = np.where(sd > 0, sd, 1.0)
    return (a - mu) / sd


def lagged_design(series: np.ndarray, max_lag: int) -> np.ndarray:
    """The lagged design of ``k`` series: ``series`` ``(B, T, k)`` → ``Z`` ``(B, T, 1 + k*L + k)``.

    Columns: ``0`` the constant; ``1 + v*L + (j-1)`` lag ``j`` of series ``v``; ``1 + k*L + v``
    the current value of series ``v``. Lags reaching before the first period are 0.
    """
    s = np.asarray(series, dtype="float64")
    B, T, k = s.shape
    L = int(max_lag)
    # built column by column with the columns first (each column a contiguous (B, T) block), then laid out
    # teams, periods, columns in one copy: the same entries, about half the time of strided column writes
    Zc = np.zeros((1 + k * L + k, B, T))
    Zc[0] = 1.0
    for v in range(k):
        for j in range(1, L + 1):
            Zc[1 + v * L + (j - 1), :, j:] = s[:, : T - j, v]
        Zc[1 + k * L + v] = s[:, :, v]
    return np.ascontiguousarray(Zc.transpose(1, 2, 0))


def lag_col(v: int, j: int, L: int) -> int:
    """Column of lag ``j`` of series ``v`` in :func:`lagged_design`."""
    return 1 + v * L + (j - 1)


def cur_col(v: int, k: int, L: int) -> int:
    """Column of the current value of series ``v``."""
    return 1 + k * L + v


class GramCache:
    """Cross-product matrices ``sum_{t >= p} z_t z_t'`` of a lagged design for every ``p <= L``."""

    def __init__(self, Z: np.ndarray, max_lag: int):
        self.Z = Z
        self.L = L = int(max_lag)
        tail = Z[:, L:, :]
        self.tail = np.matmul(tail.transpose(0, 2, 1), tail)
        # the head rows' outer products, row first: each row's (B, K, K) block is contiguous for from_row's
        # additions (measured alone at 1,000 teams: 0.8 ms an addition instead of 1.9 ms)
        head = np.ascontiguousarray(Z[:, :L, :].transpose(1, 0, 2))
        self._head = head[:, :, :, None] * head[:, :, None, :]  # (L, B, K, K)
        self._cache: dict[int, np.ndarray] = {L: self.tail}

    def subset(self, sel) -> "GramCache":
        """The same cache for a subset of the batch (no recomputation)."""
        out = GramCache.__new__(GramCache)
        out.Z, out.L, out.tail, out._head = self.Z[sel], self.L, self.tail[sel], self._head[:, sel]
        out._cache = {k: v[sel] for k, v in self._cache.items()}
        return out

    def halves(self, mid: int) -> tuple["GramCache", "GramCache"]:
        """The caches of the design's rows ``0 .. mid - 1`` and ``mid .. T - 1``, as if each were a design of
        its own (``from_row(p)`` of the second counts from ``mid``; its lags reach back to ``mid`` at most),
        from this cache without recomputing it: the first half shares the head rows ``0 .. L - 1``, and the
        second half's tail is the whole tail less the rows ``L .. mid + L - 1``."""
        L, Z = self.L, self.Z
        first = GramCache.__new__(GramCache)
        mid_rows = Z[:, L:mid, :]
        first.Z, first.L, first._head = Z[:, :mid, :], L, self._head
        first.tail = np.matmul(mid_rows.transpose(0, 2, 1), mid_rows)
        first._cache = {L: first.tail}
        second = GramCache.__new__(GramCache)
        head = np.ascontiguousarray(Z[:, mid:mid + L, :].transpose(1, 0, 2))
        second.Z, second.L = Z[:, mid:, :], L
        second._head = head[:, :, :, None] * head[:, :, None, :]
        second.tail = self.tail - first.tail - second._head.sum(axis=0)
        second._cache = {L: second.tail}
        return first, second

    def block(self, p: int, r: np.ndarray, c: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """``from_row(p)[:, r][:, :, c]`` (of the teams ``idx`` only, when given), without a copy of the
        whole matrices."""
        G = self.from_row(p)
        B, K, _ = G.shape
        flat = (r[:, None] * K + c[None, :]).ravel()
        if idx is None:
            return G.reshape(B, K * K)[:, flat].reshape(B, r.size, c.size)
        # one gather of the wanted teams' wanted entries only (a group is often a few of many teams), by
        # their positions in the flat array (a 1-d take is about twice as fast as 2-d fancy indexing)
        return np.take(G.reshape(-1), (idx[:, None] * (K * K) + flat[None, :])).reshape(-1, r.size, c.size)

    def from_row(self, p: int) -> np.ndarray:
        """``sum_{t >= p} z_t z_t'`` (B, K, K)."""
        p = min(int(p), self.L)  # rows before L are the head; from L on, the tail
        if p not in self._cache:
            r = min(k for k in self._cache if k > p)  # add the head rows p .. r-1, one at a time
            for j in range(r - 1, p - 1, -1):
                self._cache[j] = self._cache[j + 1] + self._head[j]
        return self._cache[p]


def _solve(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched solve of ``A x = b`` (``b`` (B, k, m)); singular systems give NaN rows."""
    try:
        x = np.linalg.solve(A, b)
    except np.linalg.LinAlgError:
        x = np.full(b.shape, np.nan)
        for i in range(A.shape[0]):
            try:
                x[i] = np.linalg.solve(A[i], b[i])
            except np.linalg.LinAlgError:
                pass
    return x


def ols_coef(gram: GramCache, p_from: int, regressors: list[int], targets: list[int]) -> np.ndarray:
    """The coefficients of :func:`ols_fit` (the same solve), without the residuals: ``(B, len(regressors), m)``."""
    G = gram.from_row(p_from)
    reg = np.asarray(regressors, dtype=int)
    tgt = np.asarray(targets, dtype=int)
    A = G[:, reg][:, :, reg]
    c = G[:, reg][:, :, tgt]
    return _solve(A, c)


def ols_fit(gram: GramCache, p_from: int, regressors: list[int], targets: list[int],
            *, start: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """OLS of the ``targets`` columns on the ``regressors`` columns over rows ``t >= p_from``.

    Returns ``(coef (B, len(regressors), m), resid (B, n, m), n)``; residuals are explicit
    (``Z[:, t, :] @ c``), so their sums of squares are accurate to rounding.
    """
    G = gram.from_row(p_from)
    reg = np.asarray(regressors, dtype=int)
    tgt = np.asarray(targets, dtype=int)
    b = ols_coef(gram, p_from, regressors, targets)
    K = G.shape[1]
    C = np.zeros((G.shape[0], K, len(tgt)))
    C[:, tgt, np.arange(len(tgt))] = 1.0
    C[:, reg, :] -= b
    rows = gram.Z[:, p_from:, :]
    resid = np.matmul(rows, C)
    return b, resid, rows.shape[1]


# ---------------------------------------------------------------------------------------------
# Granger causality (SSR F test, as statsmodels' grangercausalitytests 'ssr_ftest' and R's grangertest)
# ---------------------------------------------------------------------------------------------
class GrangerScreen(NamedTuple):
    """Granger F tests of ``x → y`` (and ``y → x``) for every order, per series in the batch.

    Arrays are ``(B, len(orders))``; ``df_num`` equals the order.
    """

    orders: np.ndarray
    f: np.ndarray
    p: np.ndarray
    df_den: np.ndarray
    f_rev: np.ndarray
    p_rev: np.ndarray


def _granger_from_design(gram: GramCache, orders, reverse: bool = True) -> GrangerScreen:
    L = gram.L
    k = 2
    B = gram.Z.shape[0]
    orders = np.asarray(list(orders), dtype=int)
    out = {name: np.full((B, len(orders)), np.nan) for name in ("f", "p", "df", "fr", "pr")}
    for i, p in enumerate(orders):
        ylags = [lag_col(0, j, L) for j in range(1, p + 1)]
        xlags = [lag_col(1, j, L) for j in range(1, p + 1)]
        joint = [0] + ylags + xlags
        _, e_u, n = ols_fit(gram, p, joint, [cur_col(0, k, L), cur_col(1, k, L)])
        ssr_u = (e_u ** 2).sum(axis=1)  # (B, 2): y equation, x equation
        df_den = n - (2 * p + 1)
        _, e_r, _ = ols_fit(gram, p, [0] + ylags, [cur_col(0, k, L)])
        ssr_r = (e_r ** 2).sum(axis=1)[:, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            f = (ssr_r - ssr_u[:, 0]) / ssr_u[:, 0] / p * df_den
        out["f"][:, i] = f
        out["p"][:, i] = f_sf(f, p, df_den)
        out["df"][:, i] = df_den
        if reverse:
            _, e_rr, _ = ols_fit(gram, p, [0] + xlags, [cur_col(1, k, L)])
            ssr_rr = (e_rr ** 2).sum(axis=1)[:, 0]
            with np.errstate(divide="ignore", invalid="ignore"):
                fr = (ssr_rr - ssr_u[:, 1]) / ssr_u[:, 1] / p * df_den
            out["fr"][:, i] = fr
            out["pr"][:, i] = f_sf(fr, p, df_den)
    return GrangerScreen(orders, out["f"], out["p"], out["df"], out["fr"], out["pr"])


def granger_screen(y: np.ndarray, x: np.ndarray, *, max_lag: int, orders=None,
                   reverse: bool = True) -> GrangerScreen:
    """Granger SSR F tests of ``x → y`` (and ``y → x``) at every order in ``orders`` (default 1..L).

    Each order uses its own sample ``t = p .. T-1`` (as ``grangercausalitytests`` and ``grangertest``).
    ``y``, ``x``: ``(B, T)`` complete series.
    """
    y = standardise(np.atleast_2d(y))
    x = standardise(np.atleast_2d(x))
    L = int(max_lag)
    gram = GramCache(lagged_design(np.stack([y, x], axis=-1), L), L)
    return _granger_from_design(gram, range(1, L + 1) if orders is None else orders, reverse)


def adl_ic(gram: GramCache, *, target: int = 0, ic: str = "bic") -> np.ndarray:
    """Information criterion of the Granger regression ``s_t ~ 1 + y lags 1..p + x lags 1..p``, p = 1..L.

    ``target`` 0 is the forward regression (``y_t``), 1 the reverse one (``x_t``). All orders use the
    common sample ``t = L .. T-1``; the criterion is statsmodels' OLS ``aic``/``bic``
    (``-2 llf + 2k`` / ``-2 llf + log(n) k``, ``k = 2p + 1``). Returns ``(B, L)``.
    """
    L = gram.L
    B = gram.Z.shape[0]
    out = np.full((B, L), np.nan)
    for p in range(1, L + 1):
        reg = [0] + [lag_col(0, j, L) for j in range(1, p + 1)] + [lag_col(1, j, L) for j in range(1, p + 1)]
        _, e, n = ols_fit(gram, L, reg, [cur_col(target, 2, L)])
        ssr = (e[:, :, 0] ** 2).sum(axis=1)
        llf = -n / 2.0 * (np.log(2 * np.pi) + np.log(ssr / n) + 1)
        kp = 2 * p + 1
        out[:, p - 1] = -2 * llf + (2.0 * kp if ic == "aic" else np.log(n) * kp)
    return out


def var_ic(gram: GramCache, k: int, *, ic: str = "bic") -> np.ndarray:
    """Information criterion of the VAR(p) with a constant of ``k`` series, for p = 1..L (``(B, L)``).

    The semantics of statsmodels' ``VAR(data).select_order(L)``: every order is fitted on the common
    sample ``t = L .. T-1``; with ``ld = log det(Sigma_mle)``, ``n`` observations and ``m = p k^2 + k``
    free parameters: ``aic = ld + 2m/n``, ``bic = ld + log(n) m/n``, ``hqic = ld + 2 log(log n) m/n``,
    ``fpe = ((n + kp + 1)/(n - kp - 1))^k exp(ld)``. (Order 0 is left out: a Granger test needs a lag.)
    """
    L = gram.L
    B = gram.Z.shape[0]
    out = np.full((B, L), np.nan)
    targets = [cur_col(v, k, L) for v in range(k)]
    for p in range(1, L + 1):
        reg = [0] + [lag_col(v, j, L) for v in range(k) for j in range(1, p + 1)]
        _, e, n = ols_fit(gram, L, reg, targets)
        sigma = np.matmul(e.transpose(0, 2, 1), e) / n
        sign, ld = np.linalg.slogdet(sigma)
        ld = np.where(sign > 0, ld, np.nan)
        m = p * k * k + k
        if ic == "aic":
            v = ld + 2.0 * m / n
        elif ic == "bic":
            v = ld + np.log(n) * m / n
        elif ic == "hqic":
            v = ld + 2.0 * np.log(np.log(n)) * m / n
        elif ic == "fpe":
            dfm = k * p + 1
            v = ((n + dfm) / (n - dfm)) ** k * np.exp(ld)
        else:
            raise ValueError(f"ic must be 'aic', 'bic', 'hqic' or 'fpe', got {ic!r}.")
        out[:, p - 1] = v
    return out


# ---------------------------------------------------------------------------------------------
# Prewhitening: AR order by AIC (statsmodels ar_select_order semantics), then filter both series
# ---------------------------------------------------------------------------------------------
_AR_CACHE: "OrderedDict[tuple, tuple[np.ndarray, int, np.ndarray]]" = OrderedDict()
_AR_CACHE_SIZE = 32


def _ar_core(x: np.ndarray, P: int) -> tuple[np.ndarray, int, np.ndarray]:
    """AR(p) fits with a constant of the standardised rows of ``x``, p = 0..P: residual sums of squares on
    the common sample ``t >= P`` ``(B, P + 1)``, its size, and the coefficients of each order fitted on its
    own sample ``t >= p`` ``(B, P + 1, P + 1)`` (row ``p``: ``[const, phi_1..phi_p, 0...]``).

    Kept in a small cache keyed by the data: pairs that share a metric (and its transform and teams) share
    its AR fits, the lagging metric's own-lag order and the leading metric's prewhitening filter.
    """
    key = (x.shape, int(P), hashlib.blake2b(np.ascontiguousarray(x).tobytes(), digest_size=16).digest())
    hit = _AR_CACHE.get(key)
    if hit is not None:
        _AR_CACHE.move_to_end(key)
        return hit
    B, T = x.shape
    gram = GramCache(lagged_design(standardise(x)[:, :, None], max(P, 1)), max(P, 1))
    Lg = gram.L
    cur = cur_col(0, 1, Lg)
    ssr = np.full((B, P + 1), np.nan)
    coefs = np.zeros((B, P + 1, P + 1))
    n = T - P
    for p in range(P + 1):
        reg = [0] + [lag_col(0, j, Lg) for j in range(1, p + 1)]
        _, e, n = ols_fit(gram, P, reg, [cur])
        ssr[:, p] = (e[:, :, 0] ** 2).sum(axis=1)
        b = ols_coef(gram, p, reg, [cur])  # the coefficients only (ols_fit's, without its residuals)
        coefs[:, p, : p + 1] = b[:, :, 0]
    out = (ssr, int(n), coefs)
    _AR_CACHE[key] = out
    if len(_AR_CACHE) > _AR_CACHE_SIZE:
        _AR_CACHE.popitem(last=False)
    return out


def ar_ic(x: np.ndarray, *, max_order: int, ic: str = "aic") -> np.ndarray:
    """Information criteria of AR(p) models with a constant, p = 0..max_order, per row of ``x`` (B, T).

    statsmodels ``ar_select_order(x, max_order, ic=ic, trend="c")`` semantics: every order on the common
    sample ``t >= max_order``; ``llf = -n/2 (log(2 pi ssr/n) + 1)``, ``aic = -2 llf + 2(p+1)``,
    ``bic = -2 llf + log(n)(p+1)``, ``hqic = -2 llf + 2 log(log n)(p+1)``. Returns ``(B, max_order + 1)``.
    """
    x = np.atleast_2d(np.asarray(x, dtype="float64"))
    P = int(max_order)
    ssr, n, _ = _ar_core(x, P)
    llf = -n * (np.log(2 * np.pi * ssr / n) + 1) / 2
    pen = {"aic": 2.0, "bic": np.log(n), "hqic": 2.0 * np.log(np.log(n))}[ic]
    return -2 * llf + pen * (np.arange(P + 1) + 1)[None, :]


def ar_select(x: np.ndarray, *, max_order: int, ic: str = "aic", min_order: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """AR order by an information criterion and the AR fit at that order, per row of ``x`` (B, T).

    Matches ``ar_select_order(x, max_order, ic=ic, trend="c")`` (orders ``min_order..max_order`` on the
    common sample ``t >= max_order``) followed by ``AutoReg(x, p, trend="c").fit()`` (sample ``t >= p``).
    Returns ``(orders (B,), params (B, 1 + max_order))`` with params ``[const, phi_1..phi_p, 0...]``.
    """
    x = np.atleast_2d(np.asarray(x, dtype="float64"))
    B, T = x.shape
    P = int(max_order)
    crit = ar_ic(x, max_order=P, ic=ic)
    crit[:, :min_order] = np.inf
    orders = np.argmin(np.where(np.isnan(crit), np.inf, crit), axis=1)
    _, _, coefs = _ar_core(x, P)
    mu = x.mean(axis=1)
    sd = x.std(axis=1)
    sd = np.where(sd > 0, sd, 1.0)
    b = coefs[np.arange(B), orders]  # (B, P + 1), standardised scale
    # back to the original scale: x = mu + sd * xs
    phi = b[:, 1:]
    params = np.zeros((B, P + 1))
    params[:, 0] = sd * b[:, 0] + mu * (1 - phi.sum(axis=1))
    params[:, 1:] = phi
    return orders, params


def prewhiten(x: np.ndarray, y: np.ndarray, orders: np.ndarray, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Filter both series with the leading series' AR filter (Box–Jenkins prewhitening).

    ``x~_t = x_t - c - sum phi_i x_{t-i}``, ``y~_t = y_t - sum phi_i y_{t-i}`` for ``t >= p``;
    earlier periods are NaN.
    """
    x = np.atleast_2d(np.asarray(x, dtype="float64"))
    y = np.atleast_2d(np.asarray(y, dtype="float64"))
    T = x.shape[1]
    xt = x - params[:, :1]
    yt = y.copy()
    for i in range(1, params.shape[1]):
        phi = params[:, i: i + 1]
        xt[:, i:] -= phi * x[:, : T - i]
        yt[:, i:] -= phi * y[:, : T - i]
    keep = np.arange(T)[None, :] >= np.asarray(orders)[:, None]
    return np.where(keep, xt, np.nan), np.where(keep, yt, np.nan)


# ---------------------------------------------------------------------------------------------
# Cross-correlation, Pearson over overlapping pairs (pandas: y.shift(-k).corr(x))
# ---------------------------------------------------------------------------------------------
def ccf(x: np.ndarray, y: np.ndarray, lags) -> tuple[np.ndarray, np.ndarray]:
    """``corr(x_t, y_{t+k})`` for each lag ``k`` (positive: ``x`` moves first), per row.

    Pearson correlation over the overlapping, jointly finite pairs, exactly pandas'
    ``y.shift(-k).corr(x)``. Returns ``(r (B, n_lags), n (B, n_lags))``.
    """
    x = np.atleast_2d(np.asarray(x, dtype="float64"))
    y = np.atleast_2d(np.asarray(y, dtype="float64"))
    B, T = x.shape
    lags = list(lags)
    r = np.full((B, len(lags)), np.nan)
    n = np.zeros((B, len(lags)), dtype="int64")
    for i, k in enumerate(lags):
        if abs(k) >= T:
            continue
        a = x[:, : T - k] if k >= 0 else x[:, -k:]
        b = y[:, k:] if k >= 0 else y[:, : T + k]
        m = np.isfinite(a) & np.isfinite(b)
        nk = m.sum(axis=1)
        a0 = np.where(m, a, 0.0)
        b0 = np.where(m, b, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            ma = a0.sum(axis=1, keepdims=True) / nk[:, None]
            mb = b0.sum(axis=1, keepdims=True) / nk[:, None]
            da = np.where(m, a - ma, 0.0)
            db = np.where(m, b - mb, 0.0)
            num = (da * db).sum(axis=1)
            den = np.sqrt((da * da).sum(axis=1) * (db * db).sum(axis=1))
            rk = num / den
        rk = np.where((nk >= 2) & (den > 0), np.clip(rk, -1.0, 1.0), np.nan)
        r[:, i] = rk
        n[:, i] = nk
    return r, n


# ---------------------------------------------------------------------------------------------
# Out-of-sample: rolling-origin (expanding window) one-step forecasts, nested models
# ---------------------------------------------------------------------------------------------
def _chol_forward(A: np.ndarray, C: np.ndarray) -> np.ndarray:
    """``L^-1 C`` with ``L`` the lower Cholesky factor of each ``A`` (``A`` (B, m, m), ``C`` (B, m, r)),
    by explicit loops over the (few) columns, vectorised over the batch (kept as the last, contiguous
    axis): no per-matrix LAPACK call, which dominates for thousands of 9 × 9 systems. A matrix that is
    not positive definite gives NaN rows.

    The leading ``j × j`` block of ``L`` is the Cholesky factor of the leading block of ``A``, so row ``j``
    of the result serves every nested regression on the first ``j + 1`` columns at once.
    """
    At = np.ascontiguousarray(A.transpose(1, 2, 0))  # (m, m, B)
    Ct = np.ascontiguousarray(C.transpose(1, 2, 0))  # (m, r, B)
    return _chol_forward_t(At, Ct).transpose(2, 0, 1)


def _chol_forward_t(At: np.ndarray, Ct: np.ndarray, *, factor: bool = False):
    """:func:`_chol_forward` of arrays with the batch as the last axis: ``At`` (m, m, B), ``Ct`` (m, r, B)
    (views are fine: only the last axis should be contiguous); returns ``W`` (m, r, B), and with ``factor``
    also ``L`` (m, m, B). The same operations in the same order, so the same numbers."""
    m = At.shape[0]
    B = At.shape[-1]
    Lc = np.zeros((m, m, B))
    W = np.empty(Ct.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        for j in range(m):
            lj = Lc[j, :j]                                   # (j, B)
            d = np.sqrt(At[j, j] - (lj * lj).sum(axis=0))
            Lc[j, j] = d
            if j + 1 < m:
                Lc[j + 1:, j] = (At[j + 1:, j] - (Lc[j + 1:, :j] * lj[None]).sum(axis=1)) / d
            W[j] = (Ct[j] - (lj[:, None, :] * W[:j]).sum(axis=0)) / d
    return (W, Lc) if factor else W


def _forward_t(Lc: np.ndarray, Ct: np.ndarray) -> np.ndarray:
    """``L^-1 C`` for a factor ``Lc`` (m, m, B) from :func:`_chol_forward_t` (``factor=True``), teams last.
    The forward substitution works column by column, so these are the numbers :func:`_chol_forward_t`
    gives for the same columns among its right-hand sides."""
    m = Lc.shape[0]
    W = np.empty(Ct.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        for j in range(m):
            W[j] = (Ct[j] - (Lc[j, :j][:, None, :] * W[:j]).sum(axis=0)) / Lc[j, j]
    return W


def rolling_oos(y: np.ndarray, x: np.ndarray, *, own: int, max_lead: int, n_test: int,
                own_max: int | None = None, ic: str = "bic", exog: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One-step forecasts of ``y`` at each of the last ``n_test`` periods from two nested models.

    Restricted: ``y_t ~ 1 + y_{t-1..t-own}``. Unrestricted: the same plus one lag ``x_{t-k}`` of the leading
    series, ``k`` in ``1..max_lead`` chosen at each origin by the smallest in-sample residual sum of squares
    *of the training window* (no look-ahead; one extra coefficient keeps short windows usable). Each
    forecast of period ``s`` uses OLS on the rows ``max(own, max_lead) <= t < s`` only (expanding window,
    re-estimated at every origin).

    With ``own_max``, the own-lag order is chosen inside each training window too (``own`` is ignored):
    ``1..own_max`` by ``ic`` (``'bic'``, ``'aic'`` or ``'hqic'``, statsmodels' OLS criteria) on the window's rows
    ``t >= max(own_max, max_lead)``, so no selection step sees the period it forecasts.

    How: the regressions of one origin are nested (constant, own lag 1, 2, ...), so one Cholesky
    factorisation of the window's cross-products, with the target, every leading lag and the forecast row
    as right-hand sides (:func:`_chol_forward`), gives every own order's fit by cumulative sums; each
    one-column extension by a leading lag follows from the partitioned (Schur complement) formulas,
    ``ssr_k = ssr_r - e_k^2 / s_k`` and ``yhat_k = yhat_r + (e_k / s_k)(x_k - z' G^-1 g_k)``.

    With ``exog`` (periods × q, shared by the rows: deterministic terms such as a trend and the Fourier
    terms of an annual cycle), both models also have these columns, after the constant and before the own
    lags, re-estimated at every origin with the rest (the seasonal fit inside each expanding window).

    The restricted model at every origin (its factorisation, own-order choice and forecasts) depends on
    ``y`` alone and is kept per process (:func:`_oos_restricted`): pairs sharing a lagging series compute
    only the leading lags' columns (:func:`_forward_t` with the kept factor) and their rank-one updates.

    Returns ``(actual, forecast_restricted, forecast_unrestricted, chosen_lag)``, each ``(B, n_test)``,
    forecasts in the scale of the inputs.
    """
    y = np.atleast_2d(np.asarray(y, dtype="float64"))
    x = np.atleast_2d(np.asarray(x, dtype="float64"))
    B, T = y.shape
    K = int(max_lead)
    orders = (int(own),) if own_max is None else tuple(range(1, int(own_max) + 1))
    E = None if exog is None else np.asarray(exog, dtype="float64").reshape(T, -1)
    R = _oos_restricted(y, E, orders, K, int(n_test), ic)
    L, first, q, na = R.L, R.first, R.q, R.na
    # the leading series, scaled by its periods before the first origin; its lags 1..K
    xm, xsd = x[:, :first].mean(axis=1, keepdims=True), x[:, :first].std(axis=1, keepdims=True)
    xs = (x - xm) / np.where(xsd > 0, xsd, 1.0)
    Dx = np.zeros((B, T, K))
    for k in range(1, K + 1):
        Dx[:, k:, k - 1] = xs[:, : T - k]
    rows_x = Dx[:, L:first, :]                                                        # (B, n, K)
    # the first origin's cross-products of the leading lags with the restricted model's columns (own lags
    # [and the constant without exog], target) and with themselves; with exog, partialled for [1, exog]
    # as in the restricted model (M = Gre Lg, Lg Lg' = Gee^-1: G - M M')
    rows_a, rows_t = R.rows_y[:, :, :na], R.rows_y[:, :, na]                           # (B, n, na), (B, n)
    Gal = np.matmul(rows_a.transpose(0, 2, 1), rows_x)                                # (B, na, K)
    Glt = np.matmul(rows_x.transpose(0, 2, 1), rows_t[:, :, None])[:, :, 0]           # (B, K)
    Gll = np.diagonal(np.matmul(rows_x.transpose(0, 2, 1), rows_x), axis1=1, axis2=2).copy()  # (B, K)
    if q:
        Gre = np.matmul(rows_x.transpose(0, 2, 1), R.rows_e[None])                   # (B, K, q + 1)
        Mx = Gre @ R.Lg
        Gal = Gal - np.matmul(R.My[:, :na], Mx.transpose(0, 2, 1))
        Glt = Glt - np.matmul(Mx, R.My[:, na, :, None])[:, :, 0]
        Gll = Gll - (Mx * Mx).sum(axis=2)
        Gre = np.ascontiguousarray(Gre.transpose(1, 2, 0))                           # (K, q + 1, B)
    # teams last from here on (see _oos_restricted)
    Gal = np.ascontiguousarray(Gal.transpose(1, 2, 0))                                # (na, K, B)
    Glt, Gll = np.ascontiguousarray(Glt.T), np.ascontiguousarray(Gll.T)               # (K, B)
    Xt = np.ascontiguousarray(Dx[:, first:, :].transpose(1, 2, 0))                    # (n_test, K, B)
    fu = np.empty((n_test, B))
    chosen = np.empty((n_test, B), dtype=int)
    ar = np.arange(B)
    outer = np.empty_like(Gal)
    step = np.empty_like(Gre) if q else None
    for i in range(n_test):
        zl = Xt[i]
        if q:
            zw = zl - (Gre * R.ws[i][None, :, None]).sum(axis=1)  # the row's residual on [1, exog]
            scaled = zw / R.dens[i]
        else:
            zw = scaled = zl
        # the leading lags' columns of the factorisation of the restricted model's window (its factor kept)
        Wk = _forward_t(R.Lc[i], Gal)                                                 # (na, K, B)
        # sums over the rows up to the chosen own order p (the leading block of the factorisation)
        upto = R.upto[i].astype("float64")                                            # (na, B)
        cs_kk = (upto[:, None, :] * Wk * Wk).sum(axis=0)                              # (K, B)
        cs_kt = ((upto * R.wt[i])[:, None, :] * Wk).sum(axis=0)
        zu = ((upto * R.v[i])[:, None, :] * Wk).sum(axis=0)
        s_k = Gll - cs_kk
        e_k = Glt - cs_kt
        ssr_p, f_p = R.ssr_p[i], R.fr[i]
        with np.errstate(invalid="ignore", divide="ignore"):
            ssr_k = ssr_p[None, :] - e_k ** 2 / s_k
            f_k = f_p[None, :] + e_k / s_k * (zw - zu)
        ssr_k = np.where(np.isfinite(ssr_k) & (s_k > 0), ssr_k, np.inf)
        kb = np.argmin(ssr_k, axis=0)
        fu[i] = f_k[kb, ar]
        chosen[i] = kb + 1
        # the row joins the window: the rank-one update of the entries above (as the whole matrix's update)
        Gal += np.multiply(R.zw_a[i][:, None, :], scaled[None, :, :], out=outer)
        Glt += zw * R.scaled_t[i]
        Gll += zw * scaled
        if q:
            Gre += np.multiply(zl[:, None, :], R.rows_e_test[i][None, :, None], out=step)
    mu, sd = R.mu, R.sd
    actual = y[:, first:]
    return actual, mu + sd * R.fr.T, mu + sd * fu.T, chosen.T


class _Restricted(NamedTuple):
    """The restricted model of :func:`rolling_oos` at every origin (:func:`_oos_restricted`); per-origin
    arrays have the origin first and the teams last."""

    P: int
    L: int
    first: int
    q: int
    na: int                  # columns of the factorisation: own lags (and the constant without exog)
    mu: np.ndarray           # (B, 1) the lagging series' scale before the first origin
    sd: np.ndarray
    rows_y: np.ndarray       # (B, n, na + 1): the first window's rows of [(1), y_{t-1..t-P}, y_t], scaled
    rows_e: np.ndarray | None       # (n, q + 1) [1, exog] of the first window's rows
    rows_e_test: np.ndarray | None  # (n_test, q + 1) [1, exog] of each origin's row
    Lg: np.ndarray | None    # (q + 1, q + 1) Cholesky factor of the first window's ([1, exog]'[1, exog])^-1
    My: np.ndarray | None    # (B, na + 1, q + 1) the working columns' M = Gre Lg of the first window
    ws: np.ndarray | None    # (n_test, q + 1) Gee^-1 z_e of each origin (Gee: the rows before it)
    dens: np.ndarray | None  # (n_test,) 1 + z_e' Gee^-1 z_e
    Lc: np.ndarray           # (n_test, na, na, B) the factor of the own-lag block of each window
    wt: np.ndarray           # (n_test, na, B) L^-1 of the target's column
    v: np.ndarray            # (n_test, na, B) L^-1 of the forecast row
    upto: np.ndarray         # (n_test, na, B) bool: rows up to the chosen own order
    zw_a: np.ndarray         # (n_test, na, B) the forecast row's own-lag entries (partialled with exog)
    scaled_t: np.ndarray     # (n_test, B) its target entry / (1 + z_e' Gee^-1 z_e)
    ssr_p: np.ndarray        # (n_test, B) the restricted model's in-window SSR at the chosen order
    fr: np.ndarray           # (n_test, B) its forecast (scaled)


_OOS_CACHE: "OrderedDict[tuple, _Restricted]" = OrderedDict()
_OOS_CACHE_SIZE = 3


def clear_caches() -> None:
    """Empty the per-process caches of the kernels (AR fits, restricted forecasting models): they are
    keyed by their inputs' content, so clearing only frees memory (e.g. when a run ends)."""
    _AR_CACHE.clear()
    _OOS_CACHE.clear()


def _digest(a: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(a).tobytes(), digest_size=16).digest()


def _oos_restricted(y: np.ndarray, E: np.ndarray | None, orders: tuple[int, ...], K: int, n_test: int,
                    ic: str) -> _Restricted:
    """The restricted model of :func:`rolling_oos` (``y_t`` on the constant, ``exog`` and its own lags, the
    own order chosen by ``ic`` in each window) at every origin: everything of the forecasts that depends on
    the lagging series alone, which pairs sharing it (the same values, ``exog``, orders, leading lags and
    origins) share. Kept in a small per-process cache keyed by exactly those inputs (the arrays by a hash
    of their bytes); the leading series enters only through :func:`rolling_oos`'s own loop.

    The factorisation of each window's own-lag block and its target and forecast columns are the first
    columns of the full factorisation (column by column, so the same numbers); the leading lags' columns
    are added by :func:`_forward_t` with the kept factor.
    """
    key = (y.shape, orders, K, n_test, ic, _digest(y), None if E is None else (E.shape, _digest(E)))
    hit = _OOS_CACHE.get(key)
    if hit is not None:
        _OOS_CACHE.move_to_end(key)
        return hit
    B, T = y.shape
    P = max(orders)
    L = max(P, K)
    first = T - n_test
    # scaled by the periods before the first origin (an affine map, which the OLS forecasts undo exactly)
    mu = y[:, :first].mean(axis=1, keepdims=True)
    sd = y[:, :first].std(axis=1, keepdims=True)
    sd = np.where(sd > 0, sd, 1.0)
    ys = (y - mu) / sd
    q = 0 if E is None else E.shape[1]
    # a compact design, columns [1, exog, y_{t-1..t-P}, y_t]; rolling_oos adds the leading lags x_{t-1..t-K}
    m = q + P + 2
    D = np.zeros((B, T, m))
    D[:, :, 0] = 1.0
    if q:
        D[:, :, 1:q + 1] = E[None, :, :]
    for j in range(1, P + 1):
        D[:, j:, q + j] = ys[:, : T - j]
    D[:, :, m - 1] = ys
    rows = D[:, L:first, :]
    ords = np.asarray(orders)
    if q:
        # the constant and exog (the same columns for every row) are partialled out first (Frisch-Waugh-
        # Lovell, one shared (q+1)-square inverse per origin); the factorisation below then covers the own
        # lags only, as small as without exog. Working columns: [y_{t-1..t-P}, y_t].
        e_, r_ = slice(0, q + 1), slice(q + 1, m)
        Grr = np.matmul(rows[:, :, r_].transpose(0, 2, 1), rows[:, :, r_])
        Gre = np.matmul(rows[:, :, r_].transpose(0, 2, 1), rows[:, :, e_])
        Gee = rows[0, :, e_].T @ rows[0, :, e_]
        na = P
        rows_o = ords - 1  # the cumulative-sum row of own order p
        # the partialled cross-products of the first origin; from then on updated by one rank-one term per
        # origin (recursive least squares: adding the row (z_r, z_e) adds zw zw' / (1 + z_e' Gee^-1 z_e),
        # zw = z_r - Gre Gee^-1 z_e its residual on [1, exog] over the window), not recomputed from Grr
        Lg = np.linalg.cholesky(np.linalg.inv(Gee))
        My = Gre @ Lg                                                                 # (B, P + 1, q + 1)
        Gw = np.ascontiguousarray((Grr - np.matmul(My, My.transpose(0, 2, 1))).transpose(1, 2, 0))
        Gre = np.ascontiguousarray(Gre.transpose(1, 2, 0))                           # (P + 1, q + 1, B)
        rows_y = np.ascontiguousarray(rows[:, :, r_])
        rows_e, rows_e_test = rows[0, :, e_].copy(), D[0, first:, e_].copy()
    else:
        na = P + 1
        rows_o = ords  # row p: the constant and own lags 1..p
        Gw = np.ascontiguousarray(np.matmul(rows.transpose(0, 2, 1), rows).transpose(1, 2, 0))
        Lg = My = rows_e = rows_e_test = None
        rows_y = np.ascontiguousarray(rows)
    a, tgt = slice(0, na), na
    Dt = np.ascontiguousarray(D[:, first:, :].transpose(1, 2, 0))                     # (n_test, m, B)
    out = {k: np.empty((n_test, na, B)) for k in ("wt", "v", "zw_a")}
    out.update({k: np.empty((n_test, B)) for k in ("scaled_t", "ssr_p", "fr")})
    Lcs = np.empty((n_test, na, na, B))
    uptos = np.empty((n_test, na, B), dtype=bool)
    ws = np.empty((n_test, q + 1)) if q else None
    dens = np.empty(n_test) if q else None
    ar = np.arange(B)
    rank = np.arange(na)[:, None]
    C = np.empty((na, 2, B))
    outer = np.empty_like(Gw)
    for i, s in enumerate(range(first, T)):
        z = Dt[i]                                                                     # (m, B)
        n = s - L
        if q:
            w = np.linalg.inv(Gee) @ z[e_, 0]
            ze = z[e_, 0]
            zr = z[r_]
            zw = zr - (Gre * w[None, :, None]).sum(axis=1)
            base = (Gre[tgt] * w[:, None]).sum(axis=0)  # the forecast on [1, exog] alone
            d = 1.0 + ze @ w
            ws[i], dens[i] = w, d
            scaled = zw / d
        else:
            zw = scaled = z
            base = 0.0
        C[:, 0] = Gw[a, tgt]
        C[:, 1] = zw[a]
        W, Lcs[i] = _chol_forward_t(Gw[a, a], C, factor=True)
        wt, v = W[:, 0], W[:, 1]                                                      # (na, B)
        # row p of each cumulative sum: the regression on the constant (exog) and own lags 1..p
        ssr_r = (Gw[tgt, tgt][None, :] - np.cumsum(wt * wt, axis=0))[rows_o]          # (n_orders, B)
        f_r = base + np.cumsum(v * wt, axis=0)[rows_o]
        if len(orders) > 1:
            pen = {"bic": np.log(n), "aic": 2.0, "hqic": 2.0 * np.log(np.log(n))}[ic]
            with np.errstate(invalid="ignore", divide="ignore"):
                llf = -n / 2.0 * (np.log(2 * np.pi) + np.log(ssr_r / n) + 1)
            crit = np.where(np.isfinite(llf), -2 * llf + pen * (ords + 1 + q)[:, None], np.inf)
            pick = np.argmin(crit, axis=0)
        else:
            pick = np.zeros(B, dtype=int)
        uptos[i] = rank <= rows_o[pick][None, :]
        out["wt"][i], out["v"][i], out["zw_a"][i] = wt, v, zw[a]
        out["scaled_t"][i] = scaled[tgt]
        out["ssr_p"][i] = ssr_r[pick, ar]
        out["fr"][i] = f_r[pick, ar]
        # the row joins the window
        Gw += np.multiply(zw[:, None, :], scaled[None, :, :], out=outer)
        if q:
            Gre += zr[:, None, :] * ze[None, :, None]
            Gee += np.outer(ze, ze)
    res = _Restricted(P, L, first, q, na, mu, sd, rows_y, rows_e, rows_e_test, Lg, My, ws, dens, Lcs,
                      out["wt"], out["v"], uptos, out["zw_a"], out["scaled_t"], out["ssr_p"], out["fr"])
    for arr in res:  # shared by the pairs that hit the cache: nobody may write into them
        if isinstance(arr, np.ndarray):
            arr.flags.writeable = False
    _OOS_CACHE[key] = res
    if len(_OOS_CACHE) > _OOS_CACHE_SIZE:
        _OOS_CACHE.popitem(last=False)
    return res


def dense_codes(g: np.ndarray) -> np.ndarray:
    """``np.unique(g, return_inverse=True)[1]``: each value's rank among the distinct values. For
    non-negative integers (period codes), by marking the values present and counting them (no sort of the
    ``g.size`` values); the same ranks."""
    g = np.asarray(g)
    if g.size and g.dtype.kind in "iu" and g.min() >= 0 and g.max() <= 4 * g.size + 1024:
        present = np.zeros(int(g.max()) + 1, dtype=bool)
        present[g] = True
        return (np.cumsum(present) - 1)[g]
    return np.unique(g, return_inverse=True)[1].reshape(g.shape)


class ClarkWest(NamedTuple):
    """Clark–West (2007) test of equal predictive accuracy of nested models."""

    stat: float
    p: float
    skill: float
    n: int


def clark_west(actual: np.ndarray, f_restricted: np.ndarray, f_unrestricted: np.ndarray,
               clusters: np.ndarray | None = None) -> ClarkWest:
    """Skill ``1 - MSE_u / MSE_r`` and the Clark–West adjusted-MSPE t statistic (one-sided p).

    ``f_t = e_r^2 - (e_u^2 - (yhat_r - yhat_u)^2)``; the statistic is ``mean(f) / se(mean(f))``
    compared with the standard normal (one-sided: the larger model forecasts better). With
    ``clusters`` (e.g. the forecast period of stacked teams), the standard error is clustered.
    """
    a = np.ravel(actual)
    fr = np.ravel(f_restricted)
    fu = np.ravel(f_unrestricted)
    ok = np.isfinite(a) & np.isfinite(fr) & np.isfinite(fu)
    a, fr, fu = a[ok], fr[ok], fu[ok]
    n = int(a.size)
    if n < 3:
        return ClarkWest(np.nan, np.nan, np.nan, n)
    er, eu = a - fr, a - fu
    mse_r, mse_u = np.mean(er ** 2), np.mean(eu ** 2)
    skill = 1.0 - mse_u / mse_r if mse_r > 0 else np.nan
    f = er ** 2 - (eu ** 2 - (fr - fu) ** 2)
    fbar = f.mean()
    if clusters is None:
        se = f.std(ddof=1) / np.sqrt(n)
    else:
        g = np.ravel(clusters)[ok]
        idx = dense_codes(g)
        sums = np.bincount(idx, weights=f - fbar)
        G = sums.size
        se = np.sqrt((sums ** 2).sum() * G / max(G - 1, 1)) / n
    stat = fbar / se if se > 0 else np.nan
    pval = float(norm_sf(stat)) if np.isfinite(stat) else np.nan
    return ClarkWest(float(stat), pval, float(skill), n)


def clark_west_rows(actual: np.ndarray, f_restricted: np.ndarray, f_unrestricted: np.ndarray) -> ClarkWest:
    """:func:`clark_west` (no clusters) of every row at once: a :class:`ClarkWest` of ``(B,)`` arrays, row
    ``i`` equal to ``clark_west(actual[i], f_restricted[i], f_unrestricted[i])``."""
    a = np.atleast_2d(np.asarray(actual, dtype="float64"))
    fr = np.atleast_2d(np.asarray(f_restricted, dtype="float64"))
    fu = np.atleast_2d(np.asarray(f_unrestricted, dtype="float64"))
    ok = np.isfinite(a) & np.isfinite(fr) & np.isfinite(fu)
    n = ok.sum(axis=1)
    er = np.where(ok, a - fr, 0.0)
    eu = np.where(ok, a - fu, 0.0)
    d = np.where(ok, fr - fu, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mse_r = (er ** 2).sum(axis=1) / n
        mse_u = (eu ** 2).sum(axis=1) / n
        skill = np.where(mse_r > 0, 1.0 - mse_u / mse_r, np.nan)
        f = er ** 2 - (eu ** 2 - d ** 2)
        fbar = f.sum(axis=1) / n
        var = (np.where(ok, f - fbar[:, None], 0.0) ** 2).sum(axis=1) / (n - 1)
        se = np.sqrt(var) / np.sqrt(n)
        stat = np.where(se > 0, fbar / se, np.nan)
    few = n < 3
    stat = np.where(few, np.nan, stat)
    skill = np.where(few, np.nan, skill)
    p = np.where(np.isfinite(stat), norm_sf(np.where(np.isfinite(stat), stat, 0.0)), np.nan)
    return ClarkWest(stat, p, skill, n)


# ---------------------------------------------------------------------------------------------
# the screen the benchmark times
# ---------------------------------------------------------------------------------------------
class Screen(NamedTuple):
    """Granger tests at every order (both directions) and raw cross-correlations at lags -L..L."""

    granger: GrangerScreen
    lags: np.ndarray
    r: np.ndarray
    n: np.ndarray


def screen(y: np.ndarray, x: np.ndarray, *, max_lag: int, chunk: int = 2048) -> Screen:
    """Screen a batch of (y, x) series: Granger ``x → y`` and ``y → x`` at orders 1..L, and
    ``corr(x_t, y_{t+k})`` for k = -L..L. Works in chunks of ``chunk`` series to bound memory."""
    y = np.atleast_2d(np.asarray(y, dtype="float64"))
    x = np.atleast_2d(np.asarray(x, dtype="float64"))
    L = int(max_lag)
    lags = np.arange(-L, L + 1)
    parts = []
    for s in range(0, y.shape[0], chunk):
        g = granger_screen(y[s: s + chunk], x[s: s + chunk], max_lag=L)
        r, n = ccf(x[s: s + chunk], y[s: s + chunk], lags)
        parts.append((g, r, n))
    g = GrangerScreen(parts[0][0].orders, *(np.concatenate([pt[0][i] for pt in parts]) for i in range(1, 6)))
    return Screen(g, lags, np.concatenate([pt[1] for pt in parts]), np.concatenate([pt[2] for pt in parts]))


# ---------------------------------------------------------------------------------------------
# unit-root test, batched (the stationarity vote)
# ---------------------------------------------------------------------------------------------
class ADF(NamedTuple):
    """Augmented Dickey–Fuller tests of a batch of series (statsmodels ``adfuller(x, regression,
    autolag="AIC")``): t statistics, MacKinnon p-values and the lags used."""

    stat: np.ndarray
    p: np.ndarray
    lags: np.ndarray


def _adf_design(x: np.ndarray, lags: int, ntrend: int, level_last: bool) -> np.ndarray:
    """``(B, rows, k + 1)``: adfuller's regression of ``diff(x)`` on the deterministic terms (constant, and
    the trend 1..rows for ``ct``), the lagged level and ``lags`` lagged differences, rows ``t >= lags``;
    the dependent variable last (a QR of it gives every nested regression's residual sum of squares)."""
    B, n = x.shape
    dx = np.diff(x, axis=1)
    m = n - 1 - lags
    cols = [np.ones((B, m))]
    if ntrend == 2:
        cols.append(np.broadcast_to(np.arange(1.0, m + 1.0), (B, m)))
    level = x[:, lags:n - 1]
    if not level_last:
        cols.append(level)
    cols += [dx[:, lags - j:n - 1 - j] for j in range(1, lags + 1)]
    if level_last:
        cols.append(level)
    cols.append(dx[:, lags:])
    return np.stack(cols, axis=-1)


def _unit_root_batch(x: np.ndarray, regression: str) -> np.ndarray:
    """``x`` as a float (series, periods) array, and ``regression`` checked: the arguments of :func:`adf`
    and :func:`kpss`."""
    x = np.asarray(x, dtype="float64")
    if x.ndim != 2:
        raise ValueError(f"x must be a (series, periods) array, got shape {x.shape}.")
    if regression not in ("c", "ct"):
        raise ValueError(f"regression must be 'c' or 'ct', got {regression!r}.")
    return x


def adf(x: np.ndarray, *, regression: str = "c") -> ADF:
    """statsmodels' ``adfuller(x, regression=regression, autolag="AIC")`` for every row of ``x`` (equal
    lengths, no NaN, not constant), batched: the same regressions (statsmodels' default largest lag
    ``ceil(12 (n/100)^(1/4))``, at most ``n // 2 - ntrend - 1``; AIC over the lag orders on the common
    sample, the smallest order on a tie; the chosen order re-fitted on all its rows), solved by one
    batched QR per step instead of one ``OLS`` fit per order and series, and the same p-values
    (MacKinnon's, :func:`_distributions.mackinnonp`, equal to statsmodels'). Tested equal to ``adfuller`` to 1e-10
    (``tests/test_leadlag.py``); the stationarity vote's ADF calls were most of its time (4 ms each).
    """
    x = _unit_root_batch(x, regression)
    B, n = x.shape
    ntrend = len(regression)
    maxlag = min(n // 2 - ntrend - 1, int(np.ceil(12.0 * np.power(n / 100.0, 1 / 4.0))))
    if maxlag < 0:
        raise ValueError(f"series of {n} periods are too short for adfuller with regression={regression!r}.")
    # 1. the lag order by AIC: nested regressions (deterministic terms, level, lags 1..p) on rows t >= maxlag
    R = np.linalg.qr(_adf_design(x, maxlag, ntrend, False), mode="r")
    K = R.shape[-1] - 1
    m = n - 1 - maxlag
    tail = np.cumsum((R[:, ::-1, K] ** 2), axis=1)[:, ::-1]  # tail[:, j] = sum_{i >= j} R[i, K]^2
    k = np.arange(ntrend + 1, K + 1)  # regressors of each nested model
    ssr = tail[:, k]
    aic = m * (np.log(2 * np.pi) + np.log(ssr / m) + 1) + 2 * k
    used = np.argmin(aic, axis=1)  # the first minimum: the smallest order on a tie, as adfuller
    # 2. the chosen order re-fitted on all its rows; the level's t statistic from the QR (level last)
    stat = np.empty(B)
    for p in np.unique(used):
        sel = np.flatnonzero(used == p)
        R = np.linalg.qr(_adf_design(x[sel], int(p), ntrend, True), mode="r")
        c = R.shape[-1] - 1  # the level's column; the dependent variable is column c
        rows = n - 1 - int(p)
        s = np.abs(R[:, c, c]) / np.sqrt(rows - c)  # c regressors
        stat[sel] = np.sign(R[:, c - 1, c - 1]) * R[:, c - 1, c] / s
    return ADF(stat, mackinnonp(stat, regression=regression), used)


class KPSS(NamedTuple):
    """KPSS tests of a batch of series (statsmodels ``kpss(x, regression, nlags="auto")``): statistics,
    p-values (interpolated in Kwiatkowski et al.'s table, within [0.01, 0.10]) and the lags used."""

    stat: np.ndarray
    p: np.ndarray
    lags: np.ndarray


def kpss(x: np.ndarray, *, regression: str = "c") -> KPSS:
    """statsmodels' ``kpss(x, regression=regression, nlags="auto")`` for every row of ``x`` (equal lengths,
    no NaN), batched: residuals from the mean (``c``) or from an OLS line on ``1..n`` (``ct``); the
    Newey–West bandwidth of Hobijn, Franses & Ooms (1998) from ``int(n^(2/9))`` autocovariances, at most
    ``n - 1``; the Bartlett-weighted long-run variance; ``eta / s^2``. Tested equal to statsmodels'
    ``kpss`` to 1e-10 (``tests/test_leadlag.py``); one call per series was the stationarity vote's other
    cost, and its import (statsmodels.tsa.stattools, 0.5 s) was paid by every ``drivers`` run."""
    x = _unit_root_batch(x, regression)
    B, n = x.shape
    if regression == "ct":  # residuals of the OLS line a + b t, t = 1..n
        t = np.arange(1.0, n + 1.0)
        tc = t - t.mean()
        b = (x - x.mean(axis=1, keepdims=True)) @ tc / (tc @ tc)
        resid = x - x.mean(axis=1, keepdims=True) - b[:, None] * tc
    else:
        resid = x - x.mean(axis=1, keepdims=True)

    def autocov(i: int) -> np.ndarray:  # sum_t e[t] e[t-i], per row (statsmodels: np.dot(e[i:], e[:n-i]))
        return np.einsum("bt,bt->b", resid[:, i:], resid[:, : n - i])

    # the bandwidth (statsmodels' _kpss_autolag)
    covlags = int(np.power(n, 2.0 / 9.0))
    s0 = autocov(0) / n
    s1 = np.zeros(B)
    for i in range(1, covlags + 1):
        prod = autocov(i) / (n / 2.0)
        s0 = s0 + prod
        s1 = s1 + i * prod
    with np.errstate(divide="ignore", invalid="ignore"):
        s_hat = s1 / s0
        gamma = 1.1447 * np.power(s_hat * s_hat, 1.0 / 3.0)
        lags = np.minimum(np.nan_to_num(gamma * np.power(n, 1.0 / 3.0), nan=0.0, posinf=n - 1.0).astype(int),
                          n - 1)
    # the long-run variance with Bartlett weights 1 - i / (lags + 1) (statsmodels' _sigma_est_kpss)
    lrv = autocov(0).copy()
    for i in range(1, int(lags.max(initial=0)) + 1):
        w = np.where(i <= lags, 2.0 * (1.0 - i / (lags + 1.0)), 0.0)
        lrv = lrv + w * autocov(i)
    lrv = lrv / n
    eta = np.sum(np.cumsum(resid, axis=1) ** 2, axis=1) / (n ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = eta / lrv
    return KPSS(stat, kpss_pvalue(stat, regression=regression), lags)

