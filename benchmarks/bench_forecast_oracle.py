"""Oracle for issue 20: how good can ``p_hit`` be on the simulated organisation, and where is the information?

The simulated organisation of ``bench_forecast_calibration.py`` is ``make_sample(n_teams=150, seed=11)``
with a yearly swing added to every KPI and check-ins rebuilt from it. Its leaf key results are generated as

    KPI_t = base_t (level, trend, the generator's seasonality)  + driver term (a lagged leading KPI)
            + ramps_t (every key result's planned move × its effect, profile u ** shape, kept afterwards)
            + AR(1) noise (φ and σ per metric)          → rounded, then + the simulation's yearly swing,

and a key result hits when its last check-in (the KPI of the quarter's last Monday, of the week before
for "late" check-ins, ×100 for "scaled" ones) reaches the target. Per key result the unknowns are the
effect (uniform 0.4–1.6) and the shape (0.45, 1 or 2.2, equally likely), and the noise.

This script scores, on the backtest's own rows (1/3, 1/2, 2/3 of each past quarter), three oracles
against the same calibrated pace status:

* **clairvoyant**: the true process, parameters *and* the key result's own effect and shape; only the
  future noise is unknown (an upper bound nobody can reach from data);
* **Bayes (true parameters)**: the true process and parameters, the effect and shape integrated over
  their posterior given the KPI up to the as-of date (prior: the generator's) — the best probability
  the data allow when the generator's parameters are known;
* **model class, estimated**: the same family (stationary AR(1) noise around a level with a yearly
  swing and a linear trend, plus the key result's push towards its target, ``move`` = |target −
  baseline|, effect and shape integrated with the generator's prior), its parameters estimated by least
  squares from the KPI history up to the as-of date only (no drivers).

Also reported: ablations of the Bayes oracle (each component replaced by what p_model assumes), to see
which part carries the information. Results: ``benchmarks/results/forecast-oracle.md`` (and ``.json``).

Run on demand (reads the backtest predictions, or runs the backtest once)::

    .venv/bin/python benchmarks/bench_forecast_oracle.py [--predictions pred.parquet]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
RESULTS = REPO / "benchmarks" / "results"

# the generator's _ar1 calls, in the order _generate_kpis makes them (an organisation with support and sales)
AR_ORDER = ("turnover", "absenteeism", "training_attendance", "engagement", "overtime", "pdp_completion",
            "tickets_per_customer", "first_response_time", "time_to_resolve", "csat", "qualified_leads",
            "conversion", "revenue", "nps")
# metric: (leading metric, lag) for the planted drivers
DRIVER = {"engagement": ("training_attendance", 4), "csat": ("first_response_time", 2),
          "revenue": ("qualified_leads", 6)}
EFFECTS = np.linspace(0.4, 1.6, 121)
SHAPES = (0.45, 1.0, 2.2)


class Truth:
    """The generator's state for one simulated organisation: noise, parameters, plans, dates."""

    def __init__(self, n_teams: int, seed: int = 11):
        import okr_analysis.sample as S
        from bench_forecast_calibration import simulated_tables

        rec: list = []
        orig = S._ar1

        def recording(rng, n, length, phi, sd):
            out = orig(rng, n, length, phi, sd)
            rec.append((float(phi), np.broadcast_to(np.asarray(sd, dtype="float64"), (n,)).copy(), out))
            return out

        S._ar1 = recording
        try:
            b = S._Builder(seed, n_teams, 156, pd.Timestamp(S._DEFAULT_END))
            tables = b.build()
        finally:
            S._ar1 = orig
        self.S, self.b = S, b
        self.noise = {m: r for m, r in zip(AR_ORDER, rec)}
        sim = simulated_tables(n_teams, seed)
        # the simulation's swing, per (team, metric, date): simulated KPI minus the generator's
        k0 = tables["kpis"].set_index(["team_id", "metric", "date"])["value"]
        k1 = sim["kpis"].set_index(["team_id", "metric", "date"])["value"]
        self.swing = (k1 - k0.reindex(k1.index)).rename("swing")
        self.sim = sim
        self.kr0 = tables["key_results"].set_index("kr_id")
        self.kr_plan = {kr.kr_id: kr for kr in b.krs}
        self.P = S._PRE

    def base(self, m: str, row: int) -> np.ndarray:
        """Level, trend and the generator's seasonality (extended weekly axis), no ramps, no drivers, no noise."""
        S, p, b = self.S, self.b.params[m], self.b
        yrs, doy = b.years, b.doy
        if m in ("training_attendance", "first_response_time", "qualified_leads", "csat", "conversion", "nps"):
            return np.full(len(yrs), p["level"][row])
        if m == "engagement":
            return p["level"][row] + p["trend"][row] * yrs
        if m == "overtime":
            return p["level"][row] + p["amp"][row] * S._seasonal(doy, 340)
        if m == "revenue":
            lvl = p["level"][row]
            return lvl * (1 + p["growth"][row] * yrs) + 0.05 * lvl * S._seasonal(doy, 350)
        raise KeyError(m)

    def driver_coef(self, m: str, row: int, lead_row: int) -> float:
        p = self.b.params
        if m == "engagement":
            return float(p["engagement"]["b"][row])
        if m == "csat":
            return float(p["csat"]["b"][row])
        return float(p["revenue"]["beta"][row] * p["revenue"]["level"][row] / p["qualified_leads"]["level"][lead_row])


def _round_threshold(g: float, d: int, direction: str) -> tuple[float, bool]:
    """round(X, d) reaches g  ⟺  X ≥ thr (at least) or X < thr (at most)."""
    f = 10.0 ** d
    if direction in ("increase", "maintain_at_least"):
        return (np.ceil(g * f - 1e-7) - 0.5) / f, True
    return (np.floor(g * f + 1e-7) + 0.5) / f, False


def _p_meets(mean: np.ndarray, sd: np.ndarray, thr: float, at_least: bool) -> np.ndarray:
    z = (mean - thr) / np.maximum(sd, 1e-12)
    return norm.cdf(z) if at_least else norm.cdf(-z)


def oracle_rows(truth: Truth, pred: pd.DataFrame) -> pd.DataFrame:
    """Oracle probabilities for every backtest row of a leaf key result on a KPI."""
    b, S, P = truth.b, truth.S, truth.P
    dates = b.dates
    kr_tab = truth.sim["key_results"].set_index("kr_id")
    ci = truth.sim["checkins"]
    last_ci = ci.groupby("kr_id")["date"].max()
    kpi_sim = truth.sim["kpis"].set_index(["team_id", "metric", "date"])["value"]
    out = []
    for r in pred.itertuples(index=False):
        kr = truth.kr_plan.get(r.kr_id)
        if kr is None or kr.kind != "m" or r.kr_id not in last_ci.index:
            continue
        m = kr.metric
        team_id = b.leaves[kr.team].team_id
        row = int(b.metric_row[m][kr.team])
        t0_ = truth.kr0.loc[r.kr_id, "target"]
        target = float(kr_tab.loc[r.kr_id, "target"])
        scale = 100.0 if t0_ != 0 and abs(target / t0_ - 100) < 1e-6 else 1.0
        d = S._METRICS[m][6]
        # the outcome's week: the last check-in's (the week before for late check-ins)
        tl = pd.Timestamp(last_ci[r.kr_id])
        late = _is_late(truth, r.kr_id, team_id, m, scale, kpi_sim)
        T = int((tl - dates[0]).days // 7) - (1 if late else 0)
        as_of = pd.Timestamp(r.as_of)
        t0 = int(dates.searchsorted(as_of, side="right")) - 1   # last week observed
        q = b.quarters[kr.qi]
        qs = q.start                                        # quarter's first Monday (data axis)
        swing = truth.swing.xs((team_id, m), level=(0, 1)).reindex(dates).to_numpy()
        y_sim = kpi_sim.xs((team_id, m), level=(0, 1)).reindex(dates).to_numpy()
        y = y_sim - swing                                   # the generator's rounded KPI
        phi, sds, N = truth.noise[m]
        sd = float(sds[row])
        n = N[row, P:]
        base = truth.base(m, row)[P:]
        ramps = b.ramps[m][row, P:]
        sign = 1.0 if kr.direction == "increase" else -1.0
        prof = {s: b._profile(kr.qi, s)[P:] for s in SHAPES}
        own_true = sign * kr.effect * kr.move * prof[kr.shape] if kr.direction in ("increase", "decrease") else 0 * base
        other = ramps - own_true
        # driver term, observed series of the leading KPI (rounded, as the generator uses it)
        drv = np.zeros(len(dates))
        drv_mean_T, drv_var_T = 0.0, 0.0
        if m in DRIVER:
            lead, lag = DRIVER[m]
            lrow = int(b.metric_row[lead][kr.team])
            c = truth.driver_coef(m, row, lrow)
            lser = b.ext[lead][lrow]                          # extended axis
            llvl = float(b.params[lead]["level"][lrow])
            drv = c * (lser[P - lag: P - lag + len(dates)] - llvl)
            tl_ = T - lag
            if tl_ > t0:   # the leading KPI of that week is still to come: its AR(1) given its last value
                lphi, lsds, lN = truth.noise[lead]
                h = tl_ - t0
                ln = lN[lrow, P:]
                lmean = lser[P + tl_] - ln[tl_] + lphi ** h * ln[t0]
                drv_mean_T = c * (lmean - llvl)
                drv_var_T = c ** 2 * float(lsds[lrow]) ** 2 * (1 - lphi ** (2 * h))
            else:
                drv_mean_T = drv[T]
        check = np.round(np.clip(base + ramps + drv + n, S._METRICS[m][7], S._METRICS[m][8]), d)
        g = target / scale - swing[T]
        thr, at_least = _round_threshold(g, d, r.direction)
        final_true = y[T]
        hit_true = (final_true >= thr) if at_least else (final_true < thr)
        rec = {"kr_id": r.kr_id, "at": r.at, "quarter": r.quarter, "metric": m, "late": late, "scaled": scale != 1,
               "gen_ok": bool(np.allclose(check[:t0 + 1], y[:t0 + 1], atol=10.0 ** -d * 0.51)),
               "hit_check": float(hit_true) == r.hit, "effect": kr.effect, "shape": kr.shape}
        if T <= t0:
            for k in ("clairvoyant", "bayes", "bayes_no_swing", "bayes_rw_noise", "bayes_effect1", "bayes_no_drv",
                      "bayes_prior_only", "known_shape"):
                rec[k] = float(hit_true)
            out.append(rec)
            continue
        h = T - t0
        var_T = sd ** 2 * (1 - phi ** (2 * h)) + drv_var_T
        obs = np.arange(qs, t0 + 1)
        # residuals of the quarter for each (effect, shape); the AR(1) likelihood of the quarter's weeks
        r_pre = y[qs - 1] - base[qs - 1] - other[qs - 1] - drv[qs - 1]
        sig_e = sd * np.sqrt(1 - phi ** 2)
        mean_parts = base[T] + other[T] + drv_mean_T

        def posterior_p(effects, shapes, *, swing_known=True, ar=True, drv_known=True):
            ll, pm = [], []
            for s in shapes:
                own = sign * np.outer(effects, prof[s]) * kr.move if kr.direction in ("increase", "decrease") \
                    else np.zeros((len(effects), len(dates)))
                res = y[obs][None, :] - base[obs] - other[obs] - (drv[obs] if drv_known else 0) - own[:, obs]
                prev = np.concatenate([np.full((len(effects), 1), r_pre), res[:, :-1]], axis=1)
                if ar:
                    e = res - phi * prev
                    ll.append(norm.logpdf(e, scale=sig_e).sum(axis=1))
                    mu = mean_parts + own[:, T] + phi ** h * res[:, -1]
                    v = var_T
                else:  # a random walk from the last value (what an integrated model assumes)
                    e = res - prev
                    ll.append(norm.logpdf(e, scale=sd * np.sqrt(2 * (1 - phi))).sum(axis=1))
                    mu = mean_parts + own[:, T] + res[:, -1]
                    v = 2 * (1 - phi) * sd ** 2 * h + drv_var_T
                if not drv_known:
                    mu = mu - drv_mean_T
                    v = v + (np.var(drv[:t0 + 1]) if m in DRIVER else 0.0)
                gg = g if swing_known else target / scale
                th, al = _round_threshold(gg, d, r.direction)
                if not swing_known:  # swing treated as unknown: observed values keep it, so does the forecast
                    mu = mu + swing[t0]
                pm.append(_p_meets(mu, np.full_like(mu, np.sqrt(v)), th, al))
            ll = np.concatenate(ll)
            w = np.exp(ll - ll.max())
            return float(np.sum(w * np.concatenate(pm)) / w.sum())

        rec["clairvoyant"] = posterior_p(np.array([kr.effect]), (kr.shape,))
        rec["bayes"] = posterior_p(EFFECTS, SHAPES)
        rec["known_shape"] = posterior_p(EFFECTS, (kr.shape,))
        rec["bayes_effect1"] = posterior_p(np.array([1.0]), SHAPES)
        rec["bayes_no_swing"] = posterior_p(EFFECTS, SHAPES, swing_known=False)
        rec["bayes_rw_noise"] = posterior_p(EFFECTS, SHAPES, ar=False)
        rec["bayes_no_drv"] = posterior_p(EFFECTS, SHAPES, drv_known=False)
        # prior only: no likelihood from the quarter (the effect and shape not learnt from progress)
        rec["bayes_prior_only"] = float(np.mean([posterior_p(np.array([e]), (s,)) for e in EFFECTS[::10]
                                                 for s in SHAPES]))
        out.append(rec)
    return pd.DataFrame(out)


def _is_late(truth: Truth, kr_id: str, team_id: str, m: str, scale: float, kpi_sim: pd.Series) -> bool:
    ci = truth.sim["checkins"]
    c = ci.loc[ci["kr_id"] == kr_id].sort_values("date")
    k = kpi_sim.xs((team_id, m), level=(0, 1))
    same = k.reindex(c["date"]).to_numpy() * scale
    prev = k.reindex(c["date"] - pd.Timedelta(days=7)).to_numpy() * scale
    v = c["value"].to_numpy()
    return bool(np.nanmean(np.isclose(prev, v)) > np.nanmean(np.isclose(same, v)))


def _ramp(n: int, start: int, n_mondays: int, shape: float = 1.0) -> np.ndarray:
    """A push over a quarter: 0 before its first Monday, u ** shape during it, 1 afterwards (the generator's profile)."""
    t = (np.arange(n) - start).astype("float64")
    return np.clip(t / max(n_mondays - 2, 1), 0.0, 1.0) ** shape


def model_class_rows(truth: Truth, pred: pd.DataFrame, *, effects=EFFECTS[::6], shapes=SHAPES, earlier_ramps=True,
                     fourier=True, name="model_class") -> pd.DataFrame:
    """Model-class oracles: the generator's family with its parameters estimated from the KPI up to as-of.

    y_t = c + a·t + yearly sine/cosine + Σ_j b_j·ramp_j(t) (earlier quarters with a key result of the team on
    the metric: linear push, then kept) + push of the current quarter + AR(1) noise, by least squares. The
    current quarter's push is either (``model_class``) sign·e·move·u**s with move = |target − baseline| and
    (e, s) integrated over the generator's prior, or (``model_class_ols``) a linear ramp whose slope is
    estimated by least squares from the quarter's weeks so far, without the target.
    """
    b = truth.b
    dates = b.dates
    kr_tab = truth.sim["key_results"].set_index("kr_id")
    obj = truth.sim["objectives"].set_index("objective_id")
    kr_tab = kr_tab.assign(team_id=kr_tab["objective_id"].map(obj["team_id"]), quarter=kr_tab["objective_id"].map(obj["quarter"]))
    ci = truth.sim["checkins"]
    last_ci = ci.groupby("kr_id")["date"].max()
    kpi_sim = truth.sim["kpis"].set_index(["team_id", "metric", "date"])["value"]
    qinfo = {qi.quarter.label: qi for qi in b.quarters}
    tt = (dates.asi8 - dates.asi8[0]) / (7 * 86_400 * 10 ** (9 if dates.asi8[1] - dates.asi8[0] > 10 ** 12 else 6))
    ang = 2 * np.pi * dates.dayofyear.to_numpy() / 365.25
    out = []
    for r in pred.itertuples(index=False):
        kr = truth.kr_plan.get(r.kr_id)
        if kr is None or kr.kind != "m" or r.kr_id not in last_ci.index:
            continue
        m, team_id = kr.metric, b.leaves[kr.team].team_id
        info = kr_tab.loc[r.kr_id]
        t0_ = truth.kr0.loc[r.kr_id, "target"]
        scale = 100.0 if t0_ != 0 and abs(info["target"] / t0_ - 100) < 1e-6 else 1.0
        late = _is_late(truth, r.kr_id, team_id, m, scale, kpi_sim)
        T = int((pd.Timestamp(last_ci[r.kr_id]) - dates[0]).days // 7) - (1 if late else 0)
        t0 = int(dates.searchsorted(pd.Timestamp(r.as_of), side="right")) - 1
        y = kpi_sim.xs((team_id, m), level=(0, 1)).reindex(dates).to_numpy()
        target = info["target"] / scale
        at_least = r.direction in ("increase", "maintain_at_least")
        rec = {"kr_id": r.kr_id, "at": r.at, "quarter": r.quarter}
        if T <= t0:
            hit = float(y[T] >= target - 1e-9 if at_least else y[T] <= target + 1e-9)
            rec[name] = rec["model_class_ols"] = rec["model_class_rw"] = hit
            out.append(rec)
            continue
        q = qinfo[r.quarter]
        earlier = kr_tab.loc[(kr_tab["team_id"] == team_id) & (kr_tab["metric"] == m) & (kr_tab["quarter"] < r.quarter)]
        cols = [np.ones(len(dates)), tt / 52] + ([np.sin(ang), np.cos(ang)] if fourier else [])
        for lab in (sorted(set(earlier["quarter"])) if earlier_ramps else []):
            qq = qinfo[lab]
            cols.append(_ramp(len(dates), qq.start, qq.n_mondays))
        X = np.column_stack(cols)
        n_obs = t0 + 1
        sign = 1.0 if r.direction in ("increase",) else -1.0
        move = abs(info["target"] - info["baseline"]) / scale if pd.notna(info["baseline"]) else 0.0
        h = T - t0

        def fit(yy, XX):
            beta, *_ = np.linalg.lstsq(XX[:n_obs], yy[:n_obs], rcond=None)
            res = yy[:n_obs] - XX[:n_obs] @ beta
            phi = float(np.clip(res[1:] @ res[:-1] / max(res[:-1] @ res[:-1], 1e-12), -0.99, 0.99))
            e = res[1:] - phi * res[:-1]
            s2 = float(e @ e / max(len(e) - XX.shape[1] - 1, 1))
            return beta, res, phi, s2, float(e @ e)

        def p_of(mu, var):
            z = (mu - target) / np.sqrt(var)
            return norm.cdf(z) if at_least else norm.cdf(-z)

        # (a) the push towards the target, effect and shape integrated over the prior
        lls, ps = [], []
        for s in shapes:
            prof = _ramp(len(dates), q.start, q.n_mondays, s)
            for e in effects:
                own = sign * e * move * prof
                beta, res, phi, s2, sse = fit(y - own, X)
                lls.append(-0.5 * (n_obs - 1) * np.log(sse / (n_obs - 1)))
                mu = X[T] @ beta + own[T] + phi ** h * res[-1]
                var = s2 * (1 - phi ** (2 * h)) / (1 - phi ** 2)
                ps.append(p_of(mu, var))
        lls = np.array(lls)
        w = np.exp(lls - lls.max())
        rec[name] = float(np.sum(w * np.array(ps)) / w.sum())
        if name != "model_class":
            out.append(rec)
            continue
        # (b) the current quarter's push as a linear ramp estimated by least squares (no target)
        ramp_now = np.clip(np.arange(len(dates)) - q.start, 0, None).astype("float64")
        if t0 - q.start >= 2:
            XX = np.column_stack([X, ramp_now])
        else:
            XX = X
        beta, res, phi, s2, _ = fit(y, XX)
        mu = XX[T] @ beta + phi ** h * res[-1]
        var = s2 * (1 - phi ** (2 * h)) / (1 - phi ** 2)
        rec["model_class_ols"] = float(p_of(mu, var))
        # (c) as (b) with the push held at its level at as-of (no further push)
        XX2 = XX.copy()
        if XX.shape[1] > X.shape[1]:
            XX2[t0 + 1:, -1] = XX2[t0, -1]
        mu = XX2[T] @ beta + phi ** h * res[-1]
        rec["model_class_rw"] = float(p_of(mu, var))
        out.append(rec)
    return pd.DataFrame(out)


def _brier(p, y) -> float:
    p, y = np.asarray(p, dtype="float64"), np.asarray(y, dtype="float64")
    return float(np.mean((p - y) ** 2))


def score(pred: pd.DataFrame, orc: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """Brier ratio against the calibrated pace status, per point and over all three."""
    m = pred.merge(orc, on=["kr_id", "at", "quarter"], how="left")
    m = m.loc[m["hit"].notna() & m["p_hit"].notna()]
    rows = []
    for sub_name, sub in (("key results on a KPI", m.loc[m["bayes"].notna()]),
                          ("all (p_hit where no oracle)", m)):
        for at, g in list(sub.groupby("at")) + [("all", sub)]:
            pc = _brier(g["pace_calibrated"], g["hit"])
            r = {"rows": sub_name, "at": at if at == "all" else f"{at:.3f}", "n": len(g),
                 "brier_pace_calibrated": pc}
            own = [c for c in ("p_hit_before", "p_model_before", "p_hit", "p_model") if c in g.columns]
            for c in own + cols:
                p = g[c].fillna(g["p_hit"]) if c not in own else g[c]
                r[f"ratio_{c}"] = _brier(p, g["hit"]) / pc
            rows.append(r)
    return pd.DataFrame(rows)


LABELS = {
    "p_hit_before": "p_hit before this change (published, calibrated)",
    "p_model_before": "p_model before this change",
    "p_hit": "p_hit (published, calibrated)", "p_model": "p_model (before calibration)",
    "clairvoyant": "clairvoyant: true process, parameters, effect and shape",
    "known_shape": "Bayes, shape known (effect integrated)",
    "bayes": "**Bayes oracle**: true process and parameters, effect and shape integrated over their posterior",
    "bayes_prior_only": "Bayes, effect and shape from the prior only (not learnt from the quarter)",
    "bayes_effect1": "Bayes, effect fixed at 1 (the plan)",
    "bayes_no_swing": "Bayes without the simulation's yearly swing (kept at its as-of value)",
    "bayes_no_drv": "Bayes without the driver term (leading KPI unknown: its spread as noise)",
    "bayes_rw_noise": "Bayes with random-walk noise (what an integrated model assumes)",
    "model_class": "**model class, estimated** (least squares up to as-of; effect and shape over the prior)",
    "mc_plan_linear": "model class, the plan followed (effect 1, linear push)",
    "mc_no_fourier": "model class without the yearly terms",
    "mc_no_earlier_ramps": "model class without the earlier quarters' pushes",
    "model_class_rw": "model class, push estimated by least squares and held at its as-of level",
    "model_class_ols": "model class, push estimated by least squares (no target) and extrapolated",
}


def render(sc: pd.DataFrame, orc: pd.DataFrame) -> str:
    """The results as Markdown: ratio to the calibrated pace status by point, per forecaster."""
    k = sc.loc[sc["rows"] == "all (p_hit where no oracle)"].set_index("at")
    cols = [c[len("ratio_"):] for c in sc.columns if c.startswith("ratio_")]
    lines = ["# Oracle for p_hit on the simulated organisation (issue 20)", "",
             "Produced by `benchmarks/bench_forecast_oracle.py` on " + time.strftime("%Y-%m-%d %H:%M") + ". "
             "Rows: the backtest's (`bench_forecast_calibration.py`'s simulated organisation, 150 leaf teams, "
             "1/3, 1/2 and 2/3 of each of its four quarters); the oracles cover its "
             f"{int(orc['bayes'].notna().sum())} rows of leaf key results on a KPI; in every oracle's row the others keep "
             "the p_hit of the predictions scored. "
             f"The generator is reproduced exactly from its recorded noise ({orc['gen_ok'].mean():.0%} of the rows) "
             f"and so is every outcome ({orc['hit_check'].mean():.0%}).", "",
             "Brier score ÷ Brier score of the calibrated pace status on the same rows (target ≤ 0.90):", "",
             "| forecaster | 1/3 | 1/2 | 2/3 | all three |", "|---|---:|---:|---:|---:|"]
    for c in cols:
        v = [k.loc[a, f"ratio_{c}"] for a in ("0.333", "0.500", "0.667", "all")]
        lines.append(f"| {LABELS.get(c, c)} | " + " | ".join(f"{x:.3f}" for x in v) + " |")
    lines += ["", f"n = {int(k.loc['all', 'n'])} rows; Brier score of the calibrated pace status "
              f"{k.loc['all', 'brier_pace_calibrated']:.4f}.", ""]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teams", type=int, default=150)
    ap.add_argument("--predictions", help="the simulated organisation's backtest predictions (parquet); "
                    "default: run the backtest")
    ap.add_argument("--before", help="an earlier backtest's predictions (parquet) whose p_hit and p_model are "
                    "scored too, as p_hit_before and p_model_before")
    ap.add_argument("--out", default=str(RESULTS / "forecast-oracle"))
    args = ap.parse_args(argv)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        truth = Truth(args.teams)
        if args.predictions:
            pred = pd.read_parquet(args.predictions)
        else:
            from okr_analysis.forecasting import backtest
            from okr_analysis.io import from_frames
            pred = backtest(from_frames(truth.sim, source="simulated"), n_boot=0).predictions
        if args.before:
            bef = pd.read_parquet(args.before)[["kr_id", "at", "quarter", "p_hit", "p_model"]]
            pred = pred.merge(bef.rename(columns={"p_hit": "p_hit_before", "p_model": "p_model_before"}),
                              on=["kr_id", "at", "quarter"], how="left")
        orc = oracle_rows(truth, pred)
        mc = model_class_rows(truth, pred)
        orc = orc.merge(mc, on=["kr_id", "at", "quarter"], how="left")
        for name, kw in (("mc_plan_linear", dict(effects=np.array([1.0]), shapes=(1.0,))),
                         ("mc_no_earlier_ramps", dict(earlier_ramps=False)),
                         ("mc_no_fourier", dict(fourier=False))):
            v = model_class_rows(truth, pred, name=name, **kw)[["kr_id", "at", "quarter", name]]
            orc = orc.merge(v, on=["kr_id", "at", "quarter"], how="left")
    print(f"{len(orc)} oracle rows in {time.perf_counter() - t:.0f} s; generator reproduced: "
          f"{orc['gen_ok'].mean():.3f}; outcome reproduced: {orc['hit_check'].mean():.3f}", flush=True)
    cols = [c for c in orc.columns if c in ("clairvoyant", "known_shape", "bayes", "bayes_no_swing", "bayes_rw_noise",
                                              "bayes_effect1", "bayes_no_drv", "bayes_prior_only", "model_class",
                                              "model_class_ols", "model_class_rw", "mc_plan_linear",
                                              "mc_no_earlier_ramps", "mc_no_fourier")]
    sc = score(pred, orc, cols)
    pd.set_option("display.width", 250)
    print(sc.round(3).to_string())
    Path(args.out + ".json").write_text(json.dumps({"scores": sc.to_dict("records")}, indent=2, default=str))
    Path(args.out + ".md").write_text(render(sc, orc))
    orc.to_parquet("/tmp/phit/oracle_rows.parquet")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
