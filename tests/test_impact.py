"""Initiative impact: the sample's planted initiatives, the estimators against statsmodels, verdicts, privacy,
and a simulation study of organisations with known steps, null initiatives and traps.

``simulate`` is also used by benchmarks/bench_impact.py (the larger study and the speed benchmark).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from okr_analysis import impact
from okr_analysis.impact import (IMPACT_COLUMNS, SERIES_COLUMNS, estimate_impact, initiative_impact,
                                 initiatives_from_milestones, sentence)
from okr_analysis.io import from_frames
from okr_analysis.sample import BUILT_IN_INITIATIVES
from okr_analysis.style import figure_alt_text

# ----------------------------------------------------------------------------------
# A simulated organisation with known answers
# ----------------------------------------------------------------------------------
START = pd.Timestamp("2026-03-02")  # a Monday: week 26 of 52


def simulate(seed: int, *, n_teams: int = 31, weeks: int = 52, step: float = 1.0, trend: float = 0.1,
             shift: float = 2.0, phi: float = 0.0) -> tuple[dict[str, pd.DataFrame], dict[str, dict]]:
    """Tables of one simulated organisation and the truth about its initiatives.

    Two weekly metrics, noise of standard deviation 1 (AR(1) with ``phi``), team levels and a common
    seasonal path. On ``m1`` (higher is better): ``up`` steps by +``step`` at the start, ``down`` by
    −``step``, ``nothing`` does nothing, ``trend`` is a team already rising by ``trend`` per week before and
    after the start. On ``m2``: every team shifts by ``shift`` in the start week (an organisation-wide change)
    and ``shift`` is a team with an initiative that week and nothing else.
    """
    rng = np.random.default_rng(seed)
    dates = pd.date_range(START - pd.Timedelta(weeks=weeks // 2), periods=weeks, freq="7D")
    t = np.arange(weeks)
    post = dates >= START
    teams = [f"t{i:03d}" for i in range(n_teams)]
    frames = []
    for metric in ("m1", "m2"):
        common = 0.8 * np.sin(2 * np.pi * t / 52) + np.cumsum(rng.normal(0, 0.1, weeks))
        eps = rng.normal(0, np.sqrt(1 - phi ** 2), (n_teams, weeks))
        noise = np.empty_like(eps)
        noise[:, 0] = rng.normal(0, 1, n_teams)
        for k in range(1, weeks):
            noise[:, k] = phi * noise[:, k - 1] + eps[:, k]
        y = rng.uniform(40, 60, (n_teams, 1)) + common + noise
        if metric == "m1":
            y[0] += step * post
            y[1] -= step * post
            y[3] += trend * (t - weeks / 2)
        else:
            y += shift * post
        frames.append(pd.DataFrame({"team_id": np.repeat(teams, weeks), "metric": metric,
                                    "date": np.tile(dates, n_teams), "value": y.ravel()}))
    tables = {
        "teams": pd.DataFrame({"team_id": ["org"] + teams, "team_name": ["Org"] + teams,
                               "parent_team_id": [None] + ["org"] * n_teams, "headcount": [10 * n_teams] + [10] * n_teams}),
        "objectives": pd.DataFrame({"objective_id": ["o1"], "team_id": ["org"], "quarter": ["2026Q1"],
                                    "title": ["Grow"], "parent_objective_id": [None], "kind": ["committed"]}),
        "key_results": pd.DataFrame({"kr_id": ["k1"], "objective_id": ["o1"], "title": ["Launch"],
                                     "direction": ["milestone"], "baseline": [None], "target": [1.0], "unit": [None],
                                     "weight": [1.0], "metric": [None]}),
        "checkins": pd.DataFrame({"kr_id": ["k1"], "date": [START], "value": [0.0], "confidence": [5.0],
                                  "comment": [None]}),
        "kpis": pd.concat(frames, ignore_index=True),
        "metrics": pd.DataFrame({"metric": ["m1", "m2"], "unit": ["points", "points"], "higher_is_better": [True, True],
                                 "people_metric": [False, False]}),
        "initiatives": pd.DataFrame({
            "initiative_id": ["up", "down", "nothing", "trend", "shift"],
            "team_id": [teams[0], teams[1], teams[2], teams[3], teams[4]],
            "title": ["Up", "Down", "Nothing", "Already rising", "Same week as everyone"],
            "start": [START] * 5, "metric": ["m1", "m1", "m1", "m1", "m2"]}),
    }
    truth = {"up": {"effect": step, "verdict": "improved"}, "down": {"effect": -step, "verdict": "worsened"},
             "nothing": {"effect": 0.0}, "trend": {"effect": 0.0}, "shift": {"effect": 0.0}}
    return tables, truth


def study(replicates: int, *, seed0: int = 0, **kwargs) -> pd.DataFrame:
    """One row per replicate and initiative: the estimate and whether it is right."""
    rows = []
    for r in range(replicates):
        tables, truth = simulate(seed0 + r, **kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = initiative_impact(from_frames(tables))
        for row in table.itertuples(index=False):
            want = truth[row.initiative_id]
            rows.append({"replicate": r, "initiative_id": row.initiative_id, "effect": row.effect,
                         "verdict": row.verdict, "method": row.method, "true": want["effect"],
                         "covers": row.ci_low <= want["effect"] <= row.ci_high,
                         "right": row.verdict == want.get("verdict", "no detectable effect"),
                         "called": row.verdict in ("improved", "worsened")})
    return pd.DataFrame(rows)


#: Monte Carlo margin of the 40-replicate test (about 1.5 standard errors of a rate near 0.9): the targets
#: themselves (0.90 / 0.10) are checked on 400 replicates by benchmarks/bench_impact.py.
MARGIN = 0.08


@pytest.mark.slow
def test_simulation_study_meets_its_targets():
    """Steps of one noise SD found in the right direction ≥ 90% with intervals covering ≥ 90%; null initiatives,
    an organisation-wide shift in the start week and a team already rising called improved/worsened ≤ 10%
    (here on 40 replicates, with a Monte Carlo margin)."""
    res = study(40)
    by = res.groupby("initiative_id")
    steps = res[res["initiative_id"].isin(["up", "down"])]
    assert steps["right"].mean() >= 0.90 - MARGIN, by["right"].mean()
    assert steps["covers"].mean() >= 0.90 - MARGIN, by["covers"].mean()
    for trap in ("nothing", "shift", "trend"):
        assert by["called"].mean()[trap] <= 0.10 + MARGIN, (trap, by["called"].mean())
    # the trap is real: the rising team is caught by the pre-trend check and its estimate trend-adjusted
    assert (res.loc[res["initiative_id"] == "trend", "method"] == impact.DID_TREND).mean() >= 0.85


# ----------------------------------------------------------------------------------
# The estimators against statsmodels with dummies
# ----------------------------------------------------------------------------------
def _panel(seed=1, T=30, N=8, n_pre=18):
    rng = np.random.default_rng(seed)
    Y = rng.normal(0, 1, (T, N)) + rng.normal(0, 3, N) + rng.normal(0, 1, (T, 1))
    post = np.arange(T) >= n_pre
    Y[post, 0] += 1.5
    return Y, post


def _dummy_fit(Y, columns):
    """The same regression with explicit team and period dummies (statsmodels does everything)."""
    T, N = Y.shape
    team = np.repeat(np.arange(N), T)
    period = np.tile(np.arange(T), N)
    D = np.column_stack([columns, (period[:, None] == np.arange(T)).astype(float),
                         (team[:, None] == np.arange(1, N)).astype(float)])
    return sm.OLS(Y.T.ravel(), D).fit(cov_type="hac-groupsum",
                                      cov_kwds={"time": period, "maxlags": impact._dk_lags(T)}, use_t=True)


@pytest.mark.parametrize("trend", [False, True])
def test_did_equals_the_dummy_regression(trend):
    Y, post = _panel()
    T, N = Y.shape
    effect, lo, hi, p, _ = impact._did_fit(Y, post, trend)
    assert 0 < p < 1
    treated = np.repeat(np.arange(N), T) == 0
    cols = [(treated & np.tile(post, N)).astype(float)]
    if trend:
        cols.append(np.where(treated, np.tile(np.arange(T) - (T - 1) / 2, N), 0.0))
    ref = _dummy_fit(Y, np.column_stack(cols))
    ref_effect, ref_se = ref.params[0], ref.bse[0]
    assert effect == pytest.approx(ref_effect, rel=1e-8)
    # the same Driscoll–Kraay standard error as statsmodels' hac-groupsum on the dummy regression; the interval
    # uses t with (periods − 1) degrees of freedom (statsmodels' df_correction gives teams − 1 here)
    q = stats.t.ppf(0.975, T - 1)
    assert (lo, hi) == pytest.approx((ref_effect - q * ref_se, ref_effect + q * ref_se), rel=1e-6)
    assert p == pytest.approx(2 * stats.t.sf(abs(ref_effect / ref_se), T - 1), rel=1e-6)


def test_pretrend_wald_test_equals_statsmodels():
    Y, _ = _panel(seed=5)
    n_pre = 16
    T, N = Y[:n_pre].shape
    bins = np.minimum((np.arange(T) * impact.PRETREND_BINS) // T, impact.PRETREND_BINS - 1)
    team0 = np.repeat(np.arange(N), T) == 0
    leads = np.column_stack([(team0 & np.tile(bins == b, N)).astype(float) for b in range(impact.PRETREND_BINS - 1)])
    ref = _dummy_fit(Y[:n_pre], leads)
    k = impact.PRETREND_BINS - 1
    R = np.zeros((k, ref.params.size))
    R[np.arange(k), np.arange(k)] = 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wald = float(np.asarray(ref.wald_test(R, scalar=True, use_f=True).statistic))
    assert impact._pretrend_dk(Y, n_pre) == pytest.approx(stats.f.sf(wald, k, T - 1), rel=1e-6)


@pytest.mark.parametrize("trend", [False, True])
def test_placebo_statistic_is_the_t_of_the_gap_regression(trend):
    """The placebo statistic of a column is |t| of OLS of its gap on [1, post, (t)] (statsmodels, iid SEs)."""
    Y, post = _panel(seed=2)
    gap = Y[:, 0] - Y[:, 1:].mean(axis=1)
    X = np.column_stack([np.ones(len(gap)), post.astype(float)] + ([np.arange(len(gap))] if trend else []))
    res = sm.OLS(gap, X).fit()
    assert impact._shift_stat(gap[:, None], post, trend)[0] == pytest.approx(abs(res.tvalues[1]), rel=1e-9)
    if not trend:  # and its coefficient is the DiD estimate
        assert res.params[1] == pytest.approx(impact._did_fit(Y, post, False)[0], rel=1e-9)


def test_trend_statistic_is_the_t_of_the_trend_in_the_gap_regression():
    """The whole-window trend test's statistic is |t| of the trend in OLS of the gap on [1, post, t] (statsmodels)."""
    Y, post = _panel(seed=3)
    gap = Y[:, 0] - Y[:, 1:].mean(axis=1)
    res = sm.OLS(gap, np.column_stack([np.ones(len(gap)), post.astype(float), np.arange(len(gap))])).fit()
    assert impact._shift_stat(gap[:, None], post, True, coef=2)[0] == pytest.approx(abs(res.tvalues[2]), rel=1e-9)


def test_calibrated_placebo_p_is_a_scaled_t_test():
    """real / s with s² the placebos' mean square is Student's t with as many df as placebos: on placebos of
    scale 1 it is the plain t test; doubling every statistic leaves it unchanged (persistent KPIs inflate
    real and placebo statistics alike); a typical placebo-sized statistic is far from significant."""
    rng = np.random.default_rng(0)
    z = np.abs(rng.normal(0, 1, 40))
    s = np.sqrt(np.mean(z ** 2))
    assert impact._calibrated_p(2.5, z) == pytest.approx(2 * stats.t.sf(2.5 / s, 40), rel=1e-12)
    assert impact._calibrated_p(5.0, 2 * z) == pytest.approx(impact._calibrated_p(2.5, z), rel=1e-12)
    assert impact._calibrated_p(float(np.median(z)), z) > 0.4
    assert np.isnan(impact._calibrated_p(2.0, np.array([1.0])))
    # the |t| -> |z| conversion keeps the tail probability
    assert 2 * stats.norm.sf(impact._as_z(np.array([2.3]), 12)[0]) == pytest.approx(2 * stats.t.sf(2.3, 12))


def test_calibrated_placebo_p_is_uniform_under_the_null():
    """With nothing happening, placebo_p < 0.05 about 5% of the time (independent normal statistics)."""
    rng = np.random.default_rng(1)
    ps = np.array([impact._calibrated_p(abs(rng.normal()), np.abs(rng.normal(0, 1, 45))) for _ in range(4000)])
    assert (ps < 0.05).mean() == pytest.approx(0.05, abs=0.012)
    assert (ps < 0.5).mean() == pytest.approx(0.5, abs=0.03)


def test_report_shared_analyses_estimate_once(sample_ds, monkeypatch):
    """The report batch's ``impact`` and ``impact_series`` tables come from one estimate."""
    from okr_analysis.reports import shared

    calls = []
    real = shared.estimate_impact

    def counting(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(shared, "estimate_impact", counting)
    monkeypatch.setattr(shared, "_IMPACT_RESULTS", shared.weakref.WeakKeyDictionary())
    q, as_of = sample_ds.quarter(sample_ds.latest_quarter), pd.Timestamp("2026-09-30")
    kw = {"quarter": q, "as_of": as_of, "min_group_size": 5}
    table = shared.SHARED_ANALYSES["impact"](sample_ds, **kw)
    series = shared.SHARED_ANALYSES["impact_series"](sample_ds, **kw)
    assert len(calls) == 1
    direct = estimate_impact(sample_ds, as_of=as_of, min_group_size=5)
    pd.testing.assert_frame_equal(table, direct.table)
    pd.testing.assert_frame_equal(series, direct.series)
    shared.SHARED_ANALYSES["impact"](sample_ds, **{**kw, "min_group_size": 3})  # other arguments: estimated anew
    assert len(calls) == 2


# ----------------------------------------------------------------------------------
# The sample organisation's planted initiatives
# ----------------------------------------------------------------------------------
def test_sample_initiatives_come_out_as_planted(sample_ds):
    res = estimate_impact(sample_ds)
    table = res.table.set_index("initiative_id")
    assert list(res.table.columns) == IMPACT_COLUMNS
    for planted in BUILT_IN_INITIATIVES:
        row = table.loc[planted["initiative_id"]]
        assert row["team_id"] == planted["team_id"] and row["metric"] == planted["metric"]
        assert row["start"] == pd.Timestamp(planted["start"])
        assert row["method"] == impact.DID and row["n_controls"] == 11
        assert row["ci_low"] <= planted["effect"] <= row["ci_high"], row
        higher = bool(sample_ds.metric_info(planted["metric"])["higher_is_better"])
        if planted["effect"] == 0:
            assert row["verdict"] == "no detectable effect"
        else:
            assert row["verdict"] == ("improved" if (planted["effect"] > 0) == higher else "worsened")
    text = res.sentence("mentoring")
    assert text.startswith("Engagement rose by ") and "after Mentoring programme launched on 4 May 2026" in text
    assert "compared with 11 similar teams; by chance alone a change this large would turn up about once in " in text
    once = int(re.search(r"about once in ([\d,]+) tries", text).group(1).replace(",", ""))
    p = float(table.loc["mentoring", "placebo_p"])
    assert 0.5 / p <= once <= 2 / p and f"(placebo p = {p:.2g})" in text  # the words say the p-value
    k, m = res.placebo_counts["mentoring"]
    assert f"appeared in {k} of {m} placebo runs" in impact.sentence(table.loc["mentoring"].to_dict() | {"initiative_id": "mentoring"},
                                                                      placebo_counts=(k, m))
    assert res.sentence("flex-hours").startswith("Absenteeism fell by ")
    assert list(res.series.columns) == SERIES_COLUMNS
    s = res.series[res.series["initiative_id"] == "mentoring"]
    assert s["post"].sum() == table.loc["mentoring", "n_post"] and (~s["post"]).sum() == 26
    # the observed post mean minus the counterfactual's is the effect (difference-in-differences)
    assert (s.loc[s["post"], "observed"] - s.loc[s["post"], "counterfactual"]).mean() == pytest.approx(
        table.loc["mentoring", "effect"])


def test_plot_draws_observed_and_counterfactual(sample_ds):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = estimate_impact(sample_ds, initiatives=["mentoring"])
    fig, ax = plt.subplots()
    assert res.plot("mentoring", ax=ax) is ax
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[:2] == ["observed", "without the initiative (comparison teams)"]
    assert len(ax.collections) == 1  # the interval
    assert ax.get_title(loc="left").replace("\n", " ") == res.sentence("mentoring")  # default title: the sentence
    plt.close(fig)
    fig, ax = plt.subplots()
    res.plot("mentoring", ax=ax, title="Mentoring programme: engagement")
    assert ax.get_title(loc="left") == "Mentoring programme: engagement"
    assert figure_alt_text(fig) == res.sentence("mentoring")  # the alt text keeps the message
    plt.close(fig)


def test_as_of_and_insufficient_data_say_which_side(sample_ds):
    table = initiative_impact(sample_ds, initiatives=["mentoring"], as_of="2026-05-18")
    row = table.iloc[0]
    assert row["verdict"] == "insufficient data" and row["n_post"] == 3
    assert row["reason"] == "only 3 period(s) after the start (4 needed)"
    early = pd.DataFrame({"initiative_id": ["early"], "team_id": ["support-emea"], "start": ["2023-11-06"],
                          "metric": ["engagement"], "title": ["Too early"]})
    row = initiative_impact(sample_ds, initiatives=early).iloc[0]
    assert row["verdict"] == "insufficient data" and "before the start (8 needed)" in row["reason"]
    assert "insufficient data" != sentence(row) and sentence(row).startswith("Too little data to tell whether")


def test_small_teams_people_metrics_are_suppressed(sample_ds):
    ini = pd.DataFrame({"initiative_id": ["small"], "team_id": ["hr-partners"], "start": ["2026-04-06"],
                        "metric": ["engagement"], "title": ["Coffee"]})
    row = initiative_impact(sample_ds, initiatives=ini).iloc[0]
    assert row["verdict"] == row["effect"] == "suppressed (minimum group size 5)"
    assert row["team_id"] == "hr-partners" and row["metric"] == "engagement"
    shown = initiative_impact(sample_ds, initiatives=ini, min_group_size=None).iloc[0]
    assert isinstance(shown["effect"], float)
    assert sentence(row).endswith("is not shown: suppressed (minimum group size 5).")


def test_without_comparison_teams_an_interrupted_time_series():
    tables, _ = simulate(3, n_teams=5, step=3.0)
    k = tables["kpis"]
    k = k[(k["metric"] == "m2") | (k["team_id"] == "t000")].copy()  # nobody else measures m1
    alone = k["metric"] == "m1"
    rng = np.random.default_rng(0)
    k.loc[alone, "value"] = 50 + rng.normal(0, 1, alone.sum()) + 3.0 * (k.loc[alone, "date"] >= START)
    tables["kpis"] = k
    tables["initiatives"] = tables["initiatives"].iloc[[0]]
    row = initiative_impact(from_frames(tables)).iloc[0]
    assert row["n_controls"] == 0 and row["method"] == impact.ITS and np.isnan(row["placebo_p"])
    assert row["verdict"] == "improved" and row["ci_low"] <= 3.0 <= row["ci_high"]
    assert "no comparison teams" in row["reason"]


def test_polarity_lower_is_better():
    tables, _ = simulate(4)
    tables["metrics"]["higher_is_better"] = [False, True]
    table = initiative_impact(from_frames(tables)).set_index("initiative_id")
    assert table.loc["up", "verdict"] == "worsened" and table.loc["down", "verdict"] == "improved"


def test_from_milestones(sample_ds):
    made = initiatives_from_milestones(sample_ds)
    krs = sample_ds.key_results_in()
    assert len(made) and set(made["kr_id"]) <= set(krs.loc[krs["direction"] == "milestone", "kr_id"])
    first = made.iloc[0]
    done = sample_ds.checkins[(sample_ds.checkins["kr_id"] == first["kr_id"]) & (sample_ds.checkins["value"] >= 1)]
    assert first["start"] == done["date"].min()
    siblings = krs[(krs["objective_id"] == krs.loc[krs["kr_id"] == first["kr_id"], "objective_id"].iloc[0])]
    assert set(made.loc[made["kr_id"] == first["kr_id"], "metric"]) == set(siblings["metric"].dropna())
    table = initiative_impact(sample_ds, from_milestones=True)
    assert set(made["initiative_id"]) | {"mentoring", "flex-hours", "stay-interviews"} == set(table["initiative_id"])


def test_bad_arguments_name_the_argument(sample_ds):
    with pytest.raises(ValueError, match="initiatives: 'nope' not found; known initiatives: mentoring"):
        initiative_impact(sample_ds, initiatives=["nope"])
    with pytest.raises(ValueError, match="as_of must be a date"):
        initiative_impact(sample_ds, as_of="soon")
    with pytest.raises(TypeError, match="ds must be an okr_analysis Dataset"):
        initiative_impact({"teams": None})
    with pytest.raises(ValueError, match="initiatives is missing the column"):
        initiative_impact(sample_ds, initiatives=pd.DataFrame({"initiative_id": ["x"]}))


def test_cli_impact_prints_and_writes_the_planted_answers(sample_dir, tmp_path):
    from click.testing import CliRunner

    from okr_analysis.cli import cli

    r = CliRunner().invoke(cli, ["impact", str(sample_dir)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    lines = {line.split()[0]: line for line in r.stdout.splitlines()[1:]}
    assert lines["mentoring"].endswith(" improved") and lines["flex-hours"].endswith(" improved")
    assert lines["stay-interviews"].endswith("no detectable effect")
    out = tmp_path / "impact.csv"
    r = CliRunner().invoke(cli, ["impact", str(sample_dir), "--initiative", "mentoring", "--out", str(out)],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    got = pd.read_csv(out)
    assert list(got.columns) == IMPACT_COLUMNS + ["suppressed"] and got["initiative_id"].tolist() == ["mentoring"]
    r = CliRunner().invoke(cli, ["impact", str(sample_dir), "--initiative", "nope"])
    assert r.exit_code == 1 and "'nope' not found" in r.output
