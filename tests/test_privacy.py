"""The minimum group size: primary and complementary suppression, on hand-built trees and through the CLI."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from okr_analysis.cli import cli
from okr_analysis.privacy import complementary_suppression, suppressed_label

LABEL = suppressed_label(5)


def tree(rows):
    return pd.DataFrame(rows, columns=["team_id", "parent_team_id", "headcount"])


def hidden(result):
    return dict(zip(result.loc[result["suppressed"], "team_id"], result.loc[result["suppressed"], "reason"]))


def test_next_smallest_sibling_is_suppressed_too():
    t = tree([("co", None, 60), ("d", "co", 30), ("a", "d", 3), ("b", "d", 12), ("c", "d", 8), ("e", "d", 7),
              ("d2", "co", 30)])
    assert hidden(complementary_suppression(t, ["a"])) == {"a": "small group", "e": "complementary"}


def test_ties_are_broken_by_id_and_result_is_stable():
    t = tree([("d", None, 30), ("a", "d", 2), ("y", "d", 9), ("x", "d", 9), ("z", "d", 10)])
    assert hidden(complementary_suppression(t, ["a"])) == {"a": "small group", "x": "complementary"}


def test_two_small_siblings_together_below_the_minimum_pull_in_a_third():
    t = tree([("d", None, 30), ("a", "d", 2), ("b", "d", 2), ("c", "d", 9), ("e", "d", 17)])
    assert hidden(complementary_suppression(t, ["a", "b"])) == {"a": "small group", "b": "small group",
                                                               "c": "complementary"}


def test_two_suppressed_siblings_with_enough_people_need_nothing_more():
    t = tree([("d", None, 30), ("a", "d", 3), ("b", "d", 3), ("c", "d", 24)])
    assert set(hidden(complementary_suppression(t, ["a", "b"]))) == {"a", "b"}


def test_only_child_suppresses_the_parent_and_the_rule_climbs():
    # d has one child (a, small): d's roll-up is a's value, so d goes; then at co, d needs a complement
    t = tree([("co", None, 50), ("d", "co", 3), ("a", "d", 3), ("d2", "co", 20), ("d3", "co", 27)])
    assert hidden(complementary_suppression(t, ["a"])) == {"a": "small group", "d": "parent of suppressed",
                                                          "d2": "complementary"}


def test_ineligible_siblings_are_skipped_and_parent_goes_when_none_left():
    t = tree([("co", None, 40), ("d", "co", 20), ("a", "d", 4), ("b", "d", 16), ("d2", "co", 10),
              ("d3", "co", 10)])
    result = hidden(complementary_suppression(t, ["a"], eligible={"a", "d2"}))
    assert result == {"a": "small group", "d": "parent of suppressed", "d2": "complementary"}


def test_three_levels_and_bad_size():
    t = tree([("co", None, 100), ("d1", "co", 50), ("d2", "co", 50), ("t1", "d1", 4), ("t2", "d1", 46),
              ("t3", "d2", 25), ("t4", "d2", 25)])
    assert hidden(complementary_suppression(t, ["t1"])) == {"t1": "small group", "t2": "complementary"}
    with pytest.raises(ValueError, match="min_group_size"):
        complementary_suppression(t, [], min_group_size=0)


# ---- through the CLI on the sample organisation (hr-partners: 4 people; People & HR: 19) ------------------
def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def people(sample_ds):
    return set(sample_ds.metrics.loc[sample_ds.metrics["people_metric"], "metric"])


def test_score_csvs_hide_small_teams_people_metrics_with_complements(sample_dir, tmp_path, people):
    out = {}
    for level in ("kr", "objective", "team"):
        r = run("score", sample_dir, "-q", "2026Q3", "--level", level, "-o", tmp_path / f"{level}.csv")
        assert r.exit_code == 0, r.output
        out[level] = pd.read_csv(tmp_path / f"{level}.csv", dtype=str)
    kr = out["kr"]
    partners = kr[(kr["team_id"] == "hr-partners") & kr["metric"].isin(people)]
    assert len(partners) and (partners["score"] == LABEL).all() and (partners["current"] == LABEL).all()
    learning = kr[(kr["team_id"] == "hr-learning") & kr["metric"].isin(people)]
    assert (learning["score"] == LABEL).all()  # the complement of hr-partners in People & HR
    assert (kr.loc[kr["team_id"] == "hr-recruiting", "score"] != LABEL).all()
    teams = out["team"].set_index("team_id")
    for tid in ("hr-partners", "hr-learning"):
        assert teams.loc[tid, "score"] == LABEL and teams.loc[tid, "rollup_score"] == LABEL
    assert teams.loc["hr", "rollup_score"] != LABEL  # 19 people, two teams hidden inside it
    assert teams.loc["hr-recruiting", "score"] != LABEL
    objs = out["objective"]
    assert (objs.loc[objs["team_id"] == "hr-partners", "score"] == LABEL).all()


def test_min_group_size_option_changes_what_is_hidden(sample_dir, tmp_path):
    r = run("score", sample_dir, "-q", "2026Q3", "--level", "team", "--min-group-size", "1", "-o", tmp_path / "t.csv")
    assert r.exit_code == 0, r.output
    assert not pd.read_csv(tmp_path / "t.csv")["suppressed"].any()
    r = run("score", sample_dir, "-q", "2026Q3", "--level", "team", "--min-group-size", "10", "-o", tmp_path / "t.csv")
    t = pd.read_csv(tmp_path / "t.csv", dtype=str).set_index("team_id")
    assert t.loc["hr-learning", "score"] == suppressed_label(10)


def test_monitor_csv_hides_people_kpis_of_small_teams(sample_dir, tmp_path, people):
    r = run("monitor", sample_dir, "-o", tmp_path / "m.csv")
    assert r.exit_code == 0, r.output
    m = pd.read_csv(tmp_path / "m.csv", dtype=str)
    rows = m[(m["team_id"] == "hr-partners") & m["metric"].isin(people)]
    assert len(rows)
    for col in ("latest", "slope", "peer_percentile", "peer_rank", "trend", "signals"):
        assert (rows[col] == LABEL).all(), col
    other = m[(m["team_id"] == "hr-partners") & ~m["metric"].isin(people)]
    assert (other["latest"] != LABEL).all()
    printed = run("monitor", sample_dir)
    assert "suppressed" in printed.stdout


def test_forecast_csv_hides_people_krs_of_small_teams(sample_dir, tmp_path, people):
    r = run("forecast", sample_dir, "-q", "2026Q3", "--as-of", "2026-08-15", "-o", tmp_path / "f.csv")
    assert r.exit_code == 0, r.output
    f = pd.read_csv(tmp_path / "f.csv", dtype=str)
    rows = f[(f["team_id"] == "hr-partners") & f["metric"].isin(people)]
    assert len(rows) and (rows["p_hit"] == LABEL).all() and (rows["forecast"] == LABEL).all()


def test_drivers_csv_keeps_pooled_rows_and_hides_small_teams_own(sample_dir, tmp_path):
    r = run("drivers", sample_dir, "--by-team", "--pair", "training_attendance:engagement", "-o", tmp_path / "d.csv")
    assert r.exit_code == 0, r.output
    d = pd.read_csv(tmp_path / "d.csv", dtype=str)
    assert (d.loc[d["team_id"] == "hr-partners", "correlation"] == LABEL).all()
    assert len(d[d["team_id"] == "hr-partners"]) == 1
    pooled = d[d["team_id"] == "*"]
    assert len(pooled) == 1 and pooled["correlation"].iloc[0] != LABEL


def test_individual_level_columns_never_reach_an_output(tmp_path):
    from conftest import tiny_tables
    from test_loaders import write_csv_folder

    t = tiny_tables()
    t["kpis"]["employee_id"] = "e-001"
    t["checkins"]["employee_id"] = "e-002"
    folder = write_csv_folder(t, tmp_path / "org")
    for args in (["score", "-q", "2026Q3"], ["monitor"]):
        r = run(args[0], folder, *args[1:], "-o", tmp_path / "x.csv")
        assert r.exit_code == 0, r.output
        text = (tmp_path / "x.csv").read_text()
        assert "employee_id" not in text and "e-00" not in text
        assert "unknown column employee_id ignored" in r.stderr


def test_aligned_score_of_a_parent_does_not_reveal_a_suppressed_child(sample_ds):
    """A parent objective's aligned_score is the mean of its aligned children's scores: with one child
    suppressed and the others shown, it would let a reader work the suppressed score out."""
    from okr_analysis import score_key_results, score_objectives
    from okr_analysis.privacy import suppress_scores

    q = sample_ds.latest_quarter
    krs = score_key_results(sample_ds, q)
    objs = score_objectives(sample_ds, q)
    out = suppress_scores(objs, sample_ds, level="objective", kr_scores=krs)
    hidden = set(out.loc[out["suppressed"], "objective_id"])
    assert hidden, "the sample has a small team with people-metric key results"
    parents = set(sample_ds.objectives.loc[sample_ds.objectives["objective_id"].isin(hidden),
                                           "parent_objective_id"].dropna())
    assert parents
    shown = out[out["objective_id"].isin(parents)]["aligned_score"]
    assert (shown == "suppressed (minimum group size 5)").all()
    others = out[~out["objective_id"].isin(parents) & objs["aligned_score"].notna()]
    assert not (others["aligned_score"] == "suppressed (minimum group size 5)").any()


def test_backtest_predictions_hide_small_teams_people_key_results(sample_dir, tmp_path):
    """okr-analysis backtest --out writes per-KR predictions: hr-partners' people-metric KRs read the label."""
    from click.testing import CliRunner

    from okr_analysis.cli import cli

    out = tmp_path / "bt"
    r = CliRunner().invoke(cli, ["backtest", str(sample_dir), "--out", str(out)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    preds = pd.read_csv(out / "predictions.csv", dtype=str)
    label = "suppressed (minimum group size 5)"
    people = {"turnover", "absenteeism", "engagement", "overtime", "training_attendance", "pdp_completion"}
    small = preds[(preds["team_id"] == "hr-partners") & preds["metric"].isin(people)]
    assert len(small) > 0
    for col in ("p_hit", "final_value", "forecast", "hit"):
        assert (small[col] == label).all(), col
    visible = preds[~preds["team_id"].isin(["hr-partners", "hr-learning"])]
    assert not (visible["p_hit"] == label).any()


def test_lint_does_not_quote_check_in_dates_or_confidences_of_hidden_key_results(sample_tables, sample_ds,
                                                                                   sample_dir, tmp_path):
    """A hidden KR's last check-in date and confidence are suppressed in the score tables; its hygiene
    findings must not quote them (KR_STALE keeps the advice without dates, CONFIDENCE_DROP goes)."""
    import warnings

    from okr_analysis import lint, score_key_results
    from okr_analysis.io import from_frames
    from okr_analysis.privacy import score_suppression, suppress_lint

    q = "2026Q3"
    krs = score_key_results(sample_ds, q)
    hidden_ids = set(krs.loc[score_suppression(sample_ds, krs)[0], "kr_id"])
    shown_ids = set(krs["kr_id"]) - hidden_ids
    # make one hidden and one shown KR lose confidence between two check-ins
    tables = {k: v.copy() for k, v in sample_tables.items()}
    ci = tables["checkins"]
    in_q = ci["date"].astype(str) >= "2026-07-01"
    targets = [sorted(hidden_ids)[0], sorted(shown_ids)[0]]
    for kr in targets:
        rows = ci.index[(ci["kr_id"] == kr) & in_q]
        ci.loc[rows[:2], "confidence"] = [9, 4]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = from_frames(tables, source="sample")
    raw = lint(ds, q)
    assert set(raw.loc[raw["code"] == "CONFIDENCE_DROP", "kr_id"]) >= set(targets)
    out = suppress_lint(raw, ds, kr_scores=score_key_results(ds, q))
    drops = set(out.loc[out["code"] == "CONFIDENCE_DROP", "kr_id"])
    assert targets[0] not in drops and targets[1] in drops
    stale = out[(out["code"] == "KR_STALE") & out["kr_id"].isin(hidden_ids)]
    assert len(stale) and stale["suppressed"].all()
    assert not stale["message"].str.contains(r"\d{4}-\d\d-\d\d").any()
    assert set(out.loc[out["suppressed"], "kr_id"]) <= hidden_ids
    # the CLI prints and writes the suppressed findings
    r = run("lint", sample_dir, "-q", q, "-o", tmp_path / "lint.csv")
    assert r.exit_code == 0, r.output
    written = pd.read_csv(tmp_path / "lint.csv", dtype=str)
    partners = written[(written["team_id"] == "hr-partners") & (written["code"] == "KR_STALE")]
    assert len(partners) and not partners["message"].str.contains("2026-08-31").any()
    assert "2026-08-31" in lint(sample_ds, q).to_string(max_colwidth=400)  # … which the raw finding quotes


# ---- the one gate: every public output path goes through privacy.gate -------------------------------------
def _csv_text(frame):
    import io
    return pd.read_csv(io.StringIO(frame.to_csv(index=False)), dtype=str)


def _raw_tables(ds, q):
    """Each CLI command's table as the library computes it, before the gate, with the gate call it needs."""
    from okr_analysis import (
        backtest,
        forecast_key_results,
        initiative_impact,
        lead_lag,
        lint,
        monitor,
        score,
        score_key_results,
    )

    krs = score_key_results(ds, q)
    fc = forecast_key_results(ds, q, as_of="2026-08-15")
    fc = fc.drop(columns=[c for c in ("history",) if c in fc.columns])
    preds = backtest(ds).predictions
    bt_scores = pd.concat([score_key_results(ds, x) for x in dict.fromkeys(preds["quarter"])], ignore_index=True)
    drivers = lead_lag(ds, pairs=[("training_attendance", "engagement")], by_team=True).table
    return {
        "score-kr": (score(ds, q, level="kr"), dict(kind="kr_scores", kr_scores=krs)),
        "score-objective": (score(ds, q, level="objective"), dict(kind="objective_scores", kr_scores=krs)),
        "score-team": (score(ds, q, level="team"), dict(kind="team_scores", kr_scores=krs)),
        "lint": (lint(ds, q), dict(kind="lint", kr_scores=krs)),
        "monitor": (monitor(ds), dict(kind="kpis", kr_scores=krs)),
        "drivers": (drivers, dict(kind="drivers")),
        "forecast": (fc, dict(kind="forecasts", kr_scores=score_key_results(ds, q, as_of="2026-08-15"))),
        "backtest": (preds, dict(kind="backtest", kr_scores=bt_scores)),
        "impact": (initiative_impact(ds, min_group_size=None), dict(kind="impact")),
    }


def test_every_cli_output_is_the_gate_applied_to_the_library_table(sample_dir, sample_ds, tmp_path):
    """Lists every command that writes a table for a person (an ``--out`` option) and checks that what it
    writes is exactly ``privacy.gate`` of the library's table; a new command with ``--out`` fails this test
    until it is listed here (and goes through the gate)."""
    from okr_analysis.privacy import gate

    q = "2026Q3"
    cases = {
        "score-kr": (["score", sample_dir, "-q", q, "--level", "kr"], "x.csv"),
        "score-objective": (["score", sample_dir, "-q", q, "--level", "objective"], "x.csv"),
        "score-team": (["score", sample_dir, "-q", q, "--level", "team"], "x.csv"),
        "lint": (["lint", sample_dir, "-q", q], "x.csv"),
        "monitor": (["monitor", sample_dir], "x.csv"),
        "drivers": (["drivers", sample_dir, "--by-team", "--pair", "training_attendance:engagement"], "x.csv"),
        "forecast": (["forecast", sample_dir, "-q", q, "--as-of", "2026-08-15"], "x.csv"),
        "backtest": (["backtest", sample_dir], "bt"),
        "impact": (["impact", sample_dir], "x.csv"),
    }
    with_out = {name for name, cmd in cli.commands.items() if any(p.name == "out" for p in cmd.params)}
    # `report` writes the report sections and the index: test_report_sections_show_nothing_the_gate_hides
    assert with_out == {c[0][0] for c in cases.values()} | {"report"}, "list the new command's output here"
    raw = _raw_tables(sample_ds, q)
    assert set(raw) == set(cases)
    for name, (args, target) in cases.items():
        r = run(*args, "--out", tmp_path / target)
        assert r.exit_code == 0, (name, r.output)
        written = pd.read_csv(tmp_path / target / "predictions.csv" if name == "backtest" else tmp_path / target,
                              dtype=str)
        table, how = raw[name]
        expected = _csv_text(gate(table, sample_ds, **how))
        pd.testing.assert_frame_equal(written, expected, obj=name)
        if name == "impact":  # the sample's initiatives are on teams of 5 or more: nothing to hide (tested below)
            continue
        assert expected["suppressed"].isin(["True"]).any(), f"{name}: the sample hides nothing here"
        # and the gate did hide something the raw table shows
        assert not _csv_text(table).equals(expected.drop(columns=["suppressed"])), name


def test_gate_kinds_hide_what_the_suppress_functions_hide(sample_ds):
    from okr_analysis import (
        lint,
        monitor,
        score_key_results,
        score_objectives,
        score_teams,
    )
    from okr_analysis.privacy import (
        GATE_KINDS,
        gate,
        hidden_values,
        suppress_kpis,
        suppress_lint,
        suppress_scores,
    )

    q = "2026Q3"
    krs = score_key_results(sample_ds, q)
    h = hidden_values(sample_ds, kr_scores=krs)
    assert "hr-partners" in h.small_teams and h.krs and {"hr-partners", "hr-learning"} <= h.teams
    for level, table in (("kr", krs), ("objective", score_objectives(sample_ds, q)), ("team", score_teams(sample_ds, q))):
        pd.testing.assert_frame_equal(gate(table, sample_ds, kind=f"{level}_scores", hidden=h),
                                      suppress_scores(table, sample_ds, level=level, kr_scores=krs))
    mon = monitor(sample_ds)
    pd.testing.assert_frame_equal(gate(mon, sample_ds, kind="kpis"), suppress_kpis(mon, sample_ds))
    findings = lint(sample_ds, q)
    pd.testing.assert_frame_equal(gate(findings, sample_ds, kind="lint", hidden=h),
                                  suppress_lint(findings, sample_ds, kr_scores=krs))
    # blank: hidden cells empty instead of the label
    blanked = gate(krs, sample_ds, kind="kr_scores", hidden=h, blank=("score",))
    assert blanked.loc[blanked["suppressed"], "score"].isna().all()
    assert (blanked.loc[blanked["suppressed"], "status"] == LABEL).all()
    # the rows a "peers"/"candidates" table may not show are left out
    peers = gate(mon, sample_ds, kind="peers")
    assert len(peers) == int((~gate(mon, sample_ds, kind="kpis")["suppressed"]).sum())
    with pytest.raises(ValueError, match="kind must be one of"):
        gate(krs, sample_ds, kind="scores")
    with pytest.raises(ValueError, match="lacks column"):
        gate(mon, sample_ds, kind="kr_scores")
    assert set(GATE_KINDS) >= {"kr_scores", "objective_scores", "team_scores", "kpis", "forecasts", "backtest",
                               "drivers", "lint"}


def test_the_impact_gate_hides_a_small_teams_people_metric_estimate(sample_ds):
    """An initiative on a people metric of a team below the minimum size keeps its id, team, metric and start;
    its estimate, interval, p-values, verdict and reason read the suppression label."""
    from okr_analysis import initiative_impact
    from okr_analysis.privacy import gate

    table = initiative_impact(sample_ds, min_group_size=None)
    people = set(sample_ds.metrics.loc[sample_ds.metrics["people_metric"], "metric"])
    row = table[table["metric"].isin(people)].iloc[[0]].copy()
    row["team_id"] = "hr-partners"  # 4 people
    out = gate(row, sample_ds, kind="impact")
    assert bool(out["suppressed"].iloc[0])
    assert out[["initiative_id", "team_id", "metric"]].equals(row[["initiative_id", "team_id", "metric"]])
    for col in ("effect", "ci_low", "ci_high", "p_value", "verdict", "reason"):
        assert str(out[col].iloc[0]).startswith("suppressed"), col
    assert not gate(table, sample_ds, kind="impact")["suppressed"].any()
