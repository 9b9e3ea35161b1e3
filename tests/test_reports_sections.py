"""Report sections: what each shows is computed from the analyses, escaped, and respects the minimum group size."""

from __future__ import annotations

import re
import warnings

import matplotlib

matplotlib.use("Agg")
import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from okr_analysis import score_key_results
from okr_analysis.privacy import suppressed_label
from okr_analysis.reports import open_report
from okr_analysis.reports import org as org_sections
from okr_analysis.reports import team as team_sections
from okr_analysis.formatting import number as _fmt
from okr_analysis.reports.common import _scored_teams


@pytest.fixture(scope="module", autouse=True)
def shell():
    """An IPython shell, so that sections' display() calls are published and can be captured."""
    return InteractiveShell.instance()


def _ctx(sample_dir, team_id, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return open_report(str(sample_dir), team_id=team_id, quarter="2026Q3", **kw)


def _run(func, ctx):
    """Run a section and return (its value, the HTML it displayed)."""
    with warnings.catch_warnings(), capture_output() as cap:
        warnings.simplefilter("ignore")
        value = func(ctx)
    html = "".join(o.data.get("text/html", "") for o in cap.outputs)
    return value, html


@pytest.fixture(scope="module")
def tier2(sample_dir):
    return _ctx(sample_dir, "support-tier2", as_of="2026-08-20")


@pytest.fixture(scope="module")
def partners(sample_dir):
    return _ctx(sample_dir, "hr-partners")  # 4 people: below the minimum group size of 5


@pytest.fixture(scope="module")
def org(sample_dir):
    return _ctx(sample_dir, "acme")


def test_summary_sentences_follow_the_scores(tier2):
    sentences = team_sections.summary_sentences(tier2)
    krs = tier2.team_table("kr_scores")
    on = int((krs["status"] == "on track").sum())
    team = tier2.team_table("team_scores").iloc[0]
    head = sentences[0]
    assert head.startswith(f"Support Tier 2 scores {team['score']:.2f} ({team['band']}) as of 20 Aug 2026"), head
    assert f"{on} of {len(krs)} key results" in head
    objs = tier2.team_table("objective_scores")
    met = int(objs["met_expectation"].fillna(False).astype(bool).sum())
    assert f"{met} of {len(objs)} objectives" in head


def test_headline_states_the_change_since_last_quarter(tier2):
    from okr_analysis import score_objectives

    prev = score_objectives(tier2.ds, "2026Q2")
    before = prev.loc[prev["team_id"] == "support-tier2", "score"].mean()
    now = tier2.team_table("team_scores").iloc[0]["score"]
    head = team_sections.summary_sentences(tier2)[0]
    change = round(now, 2) - round(before, 2)
    word = "the same as" if abs(change) < 0.005 else ("up" if change > 0 else "down")
    assert word in head and f"{before:.2f} in 2026Q2" in head, head


def test_discussion_names_the_key_result_furthest_behind_with_its_numbers(tier2):
    items = team_sections.discussion_sentences(tier2)
    assert 1 <= len(items) <= 3
    krs = tier2.team_table("kr_scores")
    worrying = krs[krs["status"].isin(["at risk", "off track"])]
    if len(worrying):
        order = worrying.assign(o=worrying["status"].map({"off track": 0, "at risk": 1}))
        worst = order.sort_values(["o", "score"]).iloc[0]
        assert items[0].startswith(f"“{worst['title']}” is {worst['status']}"), items[0]
        fc = tier2.team_table("forecasts").set_index("kr_id")["p_hit"]
        if pd.notna(fc.get(worst.kr_id)):
            assert f"{fc[worst.kr_id]:.0%} likely to reach it by 30 Sep 2026" in items[0]
    _, html = _run(team_sections.discussion, tier2)
    assert "Worth discussing" in html


def test_scorecard_rows_and_band_colours(tier2):
    table, html = _run(team_sections.scorecard, tier2)
    krs = score_key_results(tier2.ds, "2026Q3", as_of="2026-08-20")
    krs = krs[krs["team_id"] == "support-tier2"]
    assert sorted(table["kr_id"]) == sorted(krs["kr_id"])
    pd.testing.assert_series_equal(table.set_index("kr_id")["score"].sort_index(),
                                   krs.set_index("kr_id")["score"].sort_index(), check_dtype=False)
    for band in krs["band"].dropna().unique():
        assert f'okr-band-{band}' in html
    assert "Outlook" in html and "<script" not in html
    # each key result on one line: its current value against its target in its unit, a sparkline, the outlook
    fc = tier2.team_table("forecasts").set_index("kr_id")
    for r in krs[krs["direction"].isin(["increase", "decrease"])].itertuples():
        assert f"{_fmt(r.current, r.unit)} (target {_fmt(r.target, r.unit)})" in html
        p = fc.loc[r.kr_id, "p_hit"]
        if pd.notna(p):
            assert f"forecast:&nbsp;{p:.0%}&nbsp;likely" in html
    assert html.count('<svg class="okr-spark"') == int((krs["n_checkins"] >= 2).sum())
    for kind, need in (("committed", "1.0"), ("aspirational", "0.7")):
        if (table["objective_kind"] == kind).any():
            assert f"{kind}, needs {need}" in html


def test_small_team_people_metrics_are_suppressed_everywhere(partners):
    label = suppressed_label(5)
    assert label == "suppressed (minimum group size 5)"
    people = set(partners.ds.metrics.loc[partners.ds.metrics["people_metric"], "metric"])
    table, html = _run(team_sections.scorecard, partners)
    hidden = table["metric"].isin(people)
    assert hidden.any()
    assert table.loc[hidden, "score"].isna().all() and (table.loc[hidden, "status"] == label).all()
    assert "fewer than 5 people" in html and label not in html  # the reason, in words
    for r in table[hidden].itertuples():  # the suppressed current values are not in the page
        raw = partners.team_table("kr_scores").set_index("kr_id").loc[r.kr_id, "current"]
        assert f">{_fmt(raw, r.unit)}<" not in html
    sentences = team_sections.summary_sentences(partners)
    assert not any("scores" in s and "as of" in s for s in sentences), "a team score would reveal them"
    assert any("not shown" in s for s in sentences)
    panel, panel_html = _run(team_sections.kpi_panel, partners)
    assert (panel.loc[panel["metric"].isin(people), "latest"] == label).all()
    assert not (panel.loc[~panel["metric"].isin(people), "latest"] == label).any()
    # hidden KPIs are named once in a note, not shown as a wall of labelled cells
    assert label not in panel_html and panel_html.count("fewer than 5 people") == 1


def test_key_result_charts_skip_suppressed_and_draw_the_rest(partners, tier2):
    n, _ = _run(team_sections.key_result_charts, tier2)
    assert n == len(tier2.team_table("kr_scores"))
    n_small, html = _run(team_sections.key_result_charts, partners)
    krs = partners.team_table("kr_scores")
    people = set(partners.ds.metrics.loc[partners.ds.metrics["people_metric"], "metric"])
    assert n_small == int((~krs["metric"].isin(people)).sum())
    assert "are not charted" in html


def test_leading_indicators_show_the_planted_driver(tier2):
    view, html = _run(team_sections.leading_indicators, tier2)
    found = view[(view["verdict"] == "leads") & (view["scope"] == "all teams (pooled)")]
    assert {("first_response_time", "csat")} <= set(zip(found["leading"], found["lagging"]))
    assert int(found.set_index("leading").loc["first_response_time", "lag"]) == 2
    assert "First response time moves first; CSAT follows about 2 weeks later across the organisation" in html
    assert "<table" not in html, "the main pages carry the sentences; the table is in the appendix"
    appendix, html = _run(team_sections.drivers_appendix, tier2)
    pd.testing.assert_frame_equal(appendix, view)
    assert "First response time" in html and "first_response_time" not in html
    assert html.count("<tr>") - html.count("<thead>") >= len(view)


def test_hygiene_lists_this_teams_findings_only(tier2):
    (findings, cands), html = _run(team_sections.hygiene, tier2)
    assert set(findings["team_id"]) <= {"support-tier2"}
    assert set(cands["team_id"]) <= {"support-tier2"}
    assert "Candidate key results for 2026Q4" in html


def test_org_overview_sections(org):
    sentences = org_sections.org_summary(org)
    assert sentences[0].startswith("Acme Corp scores")
    depts, _ = _run(org_sections.department_scores, org)
    assert sorted(depts["department"]) == sorted(["People & HR", "Customer Support", "Sales", "Engineering"])
    heat, _ = _run(org_sections.team_kr_heatmap, org)
    assert "hr-partners" in set(heat["team_id"])
    people = set(org.ds.metrics.loc[org.ds.metrics["people_metric"], "metric"])
    small = heat[(heat["team_id"] == "hr-partners") & heat["metric"].isin(people)]
    assert small["score"].isna().all()
    risky, html = _run(org_sections.teams_at_risk, org)
    if "HR Business Partners" in set(risky["team_name"]):  # listed: then only with its score suppressed
        row = risky[risky["team_name"] == "HR Business Partners"].iloc[0]
        assert row["score"] == "suppressed (minimum group size 5)"
    # each team at risk with the key results behind it, in words
    shown = risky.iloc[0]
    krs = org.table("kr_scores")
    tid = org.ds.team_tree.set_index("team_name").loc[shown["team_name"], "team_id"]
    behind = krs[(krs["team_id"] == tid) & (krs["status"] == "off track")]["title"]
    if len(behind):
        assert f"off track: {behind.iloc[0]}" in html.replace("&#x27;", "'")
    drivers, _ = _run(org_sections.org_drivers, org)
    leads = drivers[drivers["verdict"] == "leads"]
    assert {("training_attendance", "engagement"), ("first_response_time", "csat"),
            ("qualified_leads", "revenue")} <= set(zip(leads["leading"], leads["lagging"]))
    assert "intranet_visits" not in set(leads["leading"])


def test_hostile_titles_are_escaped(sample_dir):
    import dataclasses

    ctx = _ctx(sample_dir, "support-tier2", as_of="2026-08-20")  # a context of its own: nothing shared is changed
    kr_id = ctx.team_table("kr_scores")["kr_id"].iloc[0]
    evil = '<script>window.pwned=1</script><img src=x onerror="alert(1)">'
    krs = ctx.ds.key_results.copy()
    krs.loc[krs["kr_id"] == kr_id, "title"] = evil
    ctx = dataclasses.replace(ctx, ds=dataclasses.replace(ctx.ds, key_results=krs), _tables={})
    _, html = _run(team_sections.scorecard, ctx)
    assert "<script>window.pwned" not in html and "<img src=x" not in html
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in html


def test_methods_note(tier2):
    _, html = _run(team_sections.methods, tier2)
    for word in ("Scores", "Status", "Forecasts", "Drivers", "Privacy"):
        assert f"<strong>{word}.</strong>" in html


def test_department_rollups_use_complementary_suppression(org):
    label = suppressed_label(5)
    teams = _scored_teams(org).set_index("team_id")
    # hr-partners (4 people) is suppressed; so is its next-smallest sibling, or People & HR's roll-up
    # minus the others would give hr-partners' score away
    assert teams.loc["hr-partners", "suppressed"] and teams.loc["hr-learning", "suppressed"]
    assert pd.isna(teams.loc["hr-learning", "score"]) and pd.isna(teams.loc["hr-learning", "rollup_score"])
    assert not teams.loc["hr-recruiting", "suppressed"] and pd.notna(teams.loc["hr", "rollup_score"])
    # a team report reads its own rows only (record_summary) and gets the same figures
    some = _scored_teams(org, teams=["hr-learning", "hr", "hr-recruiting"]).set_index("team_id")
    pd.testing.assert_frame_equal(some, teams.loc[some.index])
    depts, html = _run(org_sections.department_scores, org)
    assert "next-smallest team" in html and label not in set(depts["rollup_score"].astype(str))
    heat, _ = _run(org_sections.team_kr_heatmap, org)
    people = set(org.ds.metrics.loc[org.ds.metrics["people_metric"], "metric"])
    hidden = heat[heat["team_id"].isin(["hr-partners", "hr-learning"]) & heat["metric"].isin(people)]
    assert len(hidden) and hidden["score"].isna().all()
    risky, _ = _run(org_sections.teams_at_risk, org)
    hr = risky[risky["team_name"].isin(["HR Business Partners", "Learning & Development"])]
    assert (hr["score"] == label).all()


def test_complement_teams_report_hides_its_people_krs(sample_dir):
    ctx = _ctx(sample_dir, "hr-learning")  # 6 people: the complement of hr-partners
    table, html = _run(team_sections.scorecard, ctx)
    people = set(ctx.ds.metrics.loc[ctx.ds.metrics["people_metric"], "metric"])
    rows = table[table["metric"].isin(people)]
    assert len(rows) and rows["score"].isna().all() and (rows["status"] == suppressed_label(5)).all()
    sentences = team_sections.summary_sentences(ctx)
    assert any("smaller team in the same department" in s for s in sentences)
    assert "The one key result shown is not on track." in sentences  # its milestone, off track
    team = ctx.team_table("team_scores").iloc[0]
    assert not any(f"{team['score']:.2f}" in s for s in sentences)


def test_index_summary_withholds_rollups_that_suppression_hides(tmp_path):
    """t3 (3 people, an engagement key result) is the only team of department d2: d2's roll-up is t3's score,
    so the index must not receive it (nor t3's)."""
    from conftest import tiny_tables
    from test_loaders import write_csv_folder

    t = tiny_tables()
    t["teams"].loc[t["teams"]["team_id"] == "t3", "headcount"] = 3
    t["teams"].loc[t["teams"]["team_id"] == "d2", "headcount"] = 3
    folder = write_csv_folder(t, tmp_path / "org")

    def payload(team):
        ctx = _ctx(folder, team)
        with warnings.catch_warnings(), capture_output() as cap:
            warnings.simplefilter("ignore")
            team_sections.record_summary(ctx)
        return [o.data for o in cap.outputs if "application/vnd.okr-analysis.summary+json" in o.data][0][
            "application/vnd.okr-analysis.summary+json"]

    scored = _scored_teams(_ctx(folder, "co")).set_index("team_id")
    assert bool(scored.loc["t3", "suppressed"]) and bool(scored.loc["d2", "suppressed"])
    assert payload("t3")["score"] is None
    assert payload("d2")["score"] is None
    assert payload("t1")["score"] is not None  # nothing to hide there


def test_org_overview_keeps_to_the_teams_that_need_attention_in_a_large_organisation(org):
    """With thousands of teams the heat map and the at-risk list show the worst teams and say how many
    there are (the full lists would be dozens of pages)."""
    every, _ = _run(org_sections.team_kr_heatmap, org)
    heat, html = _run(lambda c: org_sections.team_kr_heatmap(c, max_teams=5), org)
    assert heat["team_id"].nunique() == 5
    means = every.groupby("team_id")["score"].mean().rename("mean").reset_index()
    worst = means.sort_values(["mean", "team_id"], na_position="last")["team_id"].head(5)
    assert set(heat["team_id"]) == set(worst)
    assert f"The 5 teams with the lowest mean key-result score, of {every['team_id'].nunique()} teams" in html
    full, _ = _run(org_sections.teams_at_risk, org)
    assert len(full) > 3
    top, html = _run(lambda c: org_sections.teams_at_risk(c, max_rows=3), org)
    assert top["team_name"].tolist() == full["team_name"].head(3).tolist()
    assert f"and {len(full) - 3} more teams" in html and "(the 3 worst)" in html


#: Headers and cells a reader should never see: raw column names, codes and the gate's bare rule.
RAW_WORDS = ("Ci low", "Oos skill", "Q value", "TEAM_OBJECTIVE_COUNT", "OBJECTIVE_NOT_ALIGNED", "Rollup n teams",
             "N peers", "N off track", "suppressed (minimum group size", "P value")


@pytest.mark.parametrize("team_id", ["support-tier2", "hr-partners", "hr-learning", "acme"])
def test_sections_speak_in_labels_and_reader_numbers(sample_dir, team_id):
    """Every section's HTML uses the one label table and the reader's number formats: no raw column name,
    no finding code, no count with decimals, ISO dates nowhere, metric ids only where a notebook names them
    (never in the main sections)."""
    ctx = _ctx(sample_dir, team_id)
    module = org_sections if ctx.is_org else team_sections
    metrics = set(ctx.ds.metrics["metric"]) - {m for m in ctx.ds.metrics["metric"] if "_" not in m}
    for name, func in _section_calls(module):
        _, html = _run(func, ctx)
        for word in RAW_WORDS:
            assert word not in html, (name, word)
        assert not re.search(r">\d+\.00<", html), (name, "a count with decimals")
        assert not re.search(r">\s*20\d\d-\d\d-\d\d", html), (name, "an ISO date")
        ids = [m for m in metrics if re.search(rf">[^<]*\b{m}\b", html)]
        assert not ids, (name, ids)


def test_table_renderer_labels_formats_and_collapses(tier2):
    from okr_analysis.reports.display import LABELS, label, table_html

    frame = pd.DataFrame({"n_peers": [3.0, 11.0], "p_hit": [0.64, 0.0], "q_value": [0.0004, 0.2],
                          "window_end": pd.to_datetime(["2025-12-31", "2026-01-05"]), "verdict": ["leads", "x"],
                          "latest": ["suppressed (minimum group size 5)", "3 h"]})
    out = table_html(frame, caption="t", replace={"suppressed (minimum group size 5)": "fewer than 5 people"},
                     classes="wide appendix")
    for col in frame.columns:
        assert f">{LABELS[col]}<" in out
    assert label("ci_low") == "95% interval, low" and label("n_things") == "Things"
    for cell in (">3<", ">11<", ">64%<", ">0%<", ">&lt; 0.001<", ">0.200<", ">31 Dec 2025<", ">5 Jan 2026<",
                 ">fewer than 5 people<"):
        assert cell in out, cell
    assert 'class="okr-table wide appendix"' in out and "suppressed (minimum" not in out
    braces = table_html(pd.DataFrame({"Team {1} {x}": [1]}))  # a name is never read as a format string
    assert "Team {1} {x}" in braces


# ---- the one gate: every report section shows nothing that suppression hides ------------------------------
def _section_calls(module):
    """Every public section of a module: the callables of its __all__ that take the report context."""
    import inspect

    calls = []
    for name in module.__all__:
        obj = getattr(module, name)
        if callable(obj) and list(inspect.signature(obj).parameters)[:1] == ["ctx"]:
            calls.append((name, obj))
    return calls


def _frames(value):
    if isinstance(value, pd.DataFrame):
        return [value]
    if isinstance(value, tuple):
        return [f for v in value for f in _frames(v)]
    return []


@pytest.mark.parametrize("team_id", ["hr-partners", "hr-learning", "hr", "acme"])
def test_report_sections_show_nothing_the_gate_hides(sample_dir, team_id):
    """Runs every section the team and organisation notebooks can call (listed from the modules, so a new
    section is checked too) and checks that neither its HTML nor its returned tables show a value the gate
    hides: hr-partners' (4 people) people-metric key results and KPIs, and those of hr-learning, hidden as its
    complement. The index's summary (record_summary) carries no hidden score either."""
    from okr_analysis.privacy import hidden_values

    ctx = _ctx(sample_dir, team_id)
    krs = score_key_results(ctx.ds, "2026Q3")
    h = hidden_values(ctx.ds, kr_scores=krs)
    assert {"hr-partners", "hr-learning"} <= h.teams and h.krs
    hidden_krs = krs[krs["kr_id"].isin(h.krs)]
    secret_cells = {f">{_fmt(v, u)}<" for v, u in zip(hidden_krs["current"], hidden_krs["unit"]) if pd.notna(v)}
    secret_cells |= {f">{_fmt(v)}<" for v in hidden_krs["score"] if pd.notna(v)}
    shown_krs = krs[~krs["kr_id"].isin(h.krs)]  # a hidden value that another, shown cell also reads proves nothing
    public = {f">{_fmt(v, u)}<" for col in ("baseline", "target", "current")
              for v, u in zip(krs[col] if col != "current" else shown_krs[col],
                              krs["unit"] if col != "current" else shown_krs["unit"])}
    public |= {f">{_fmt(v)}<" for col in ("score", "progress") for v in shown_krs[col]}
    secret_cells -= public
    assert secret_cells
    teams = ctx.table("team_scores").set_index("team_id")
    hidden_team_scores = {round(float(teams.loc[t, c]), 6) for t in ("hr-partners", "hr-learning")
                          for c in ("score", "rollup_score") if pd.notna(teams.loc[t, c])}
    module = org_sections if team_id == "acme" else team_sections
    calls = _section_calls(module)
    assert {"scorecard_table", "kpi_table", "hygiene_tables"} <= {n for n, _ in calls} or module is org_sections
    for name, func in calls:
        value, html = _run(func, ctx)
        shown = [cell for cell in secret_cells if cell in html]
        if not (name in ("kpi_panel", "kpi_table") and team_id == "hr-learning"):  # see the xfail test below
            assert not shown, f"{name} shows hidden values {shown}"
        for frame in _frames(value):
            if "kr_id" in frame.columns:
                rows = frame[frame["kr_id"].isin(h.krs)]
                for col in ("current", "score", "progress", "p_hit"):
                    if col in rows.columns:
                        assert (rows[col].isna() | (rows[col] == suppressed_label(5))).all(), (name, col)
            if "team_id" in frame.columns and "score" in frame.columns:
                rows = frame[frame["team_id"].isin({"hr-partners", "hr-learning"}) & ~frame.get("kr_id", pd.Series(
                    dtype=str)).isin(h.krs).reindex(frame.index, fill_value=False)]
                if "kr_id" not in frame.columns:
                    vals = pd.to_numeric(rows["score"], errors="coerce").dropna().round(6)
                    assert not set(vals) & hidden_team_scores, (name, "team score")
            if "metric" in frame.columns and "latest" in frame.columns and team_id == "hr-partners":
                people = frame[frame["metric"].isin(h.people_metrics)]
                assert (people["latest"] == suppressed_label(5)).all(), name
    with warnings.catch_warnings(), capture_output() as cap:
        warnings.simplefilter("ignore")
        module.record_summary(ctx)
    payload = [o.data["application/vnd.okr-analysis.summary+json"] for o in cap.outputs
               if "application/vnd.okr-analysis.summary+json" in o.data][0]
    if team_id in ("hr-partners", "hr-learning"):
        assert payload["score"] is None


def test_complement_teams_kpis_do_not_reveal_hidden_key_results(sample_dir):
    """A team hidden as a complement (hr-learning, 6 people) has its people-metric KPIs hidden too: a KPI's
    latest value is its hidden key result's current value."""
    from okr_analysis.privacy import hidden_values

    ctx = _ctx(sample_dir, "hr-learning")
    krs = score_key_results(ctx.ds, "2026Q3")
    h = hidden_values(ctx.ds, kr_scores=krs)
    hidden = krs[krs["kr_id"].isin(h.krs) & (krs["team_id"] == "hr-learning")]
    assert len(hidden)
    table = team_sections.kpi_table(ctx).set_index("metric")
    for r in hidden.itertuples():
        assert table.loc[r.metric, "latest"] != _fmt(r.current, r.unit), r.metric
    _, html = _run(team_sections.kpi_panel, ctx)  # the note gives this team's own reason (6 people: a complement)
    assert "work out the figures of a smaller team" in html and "fewer than 5 people" not in html
    assert suppressed_label(5) not in html
    _, html = _run(team_sections.scorecard, ctx)
    assert "hidden so that a smaller team&#x27;s figures cannot be worked out" in html
    assert "fewer than 5 people" not in html


def test_kpi_panel_names_the_window_in_the_datas_own_periods(sample_tables):
    """monitor's default window is 13 periods of the data's frequency: 13 months of monthly KPIs, not 13 weeks."""
    from okr_analysis.io import from_frames

    tables = {k: v.copy() for k, v in sample_tables.items()}
    k = tables["kpis"]
    k["date"] = pd.to_datetime(k["date"]).dt.to_period("M").dt.to_timestamp()
    tables["kpis"] = k.groupby(["team_id", "metric", "date"], as_index=False)["value"].mean()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = from_frames(tables, source="monthly")
        ctx = open_report(ds, team_id="support-tier2", quarter="2026Q3")
    _, html = _run(team_sections.kpi_panel, ctx)
    assert "over the 13 months to" in html and "13 weeks" not in html


def test_initiatives_section_states_the_planted_effect_and_is_absent_without_initiatives(sample_dir, tier2, shell):
    """support-emea's planted mentoring programme (engagement +6 from 4 May 2026) is reported as a rise, in a
    sentence and a chart whose alt text is that sentence; a team without initiatives shows nothing."""
    emea = _ctx(sample_dir, "support-emea")
    table, html = _run(team_sections.initiatives, emea)
    row = table.set_index("initiative_id").loc["mentoring"]
    assert row["verdict"] == "improved" and row["ci_low"] > 0 and not row["suppressed"]
    assert "Mentoring programme" in html and "rose by" in html
    from IPython.core.pylabtools import select_figure_formats

    select_figure_formats(shell, {"png"})  # figures are displayed as PNG, as in the report's kernel
    with warnings.catch_warnings(), capture_output() as cap:
        warnings.simplefilter("ignore")
        team_sections.initiatives(emea)
    charts = [o for o in cap.outputs if "image/png" in o.data]
    assert len(charts) == len(table)  # one chart per initiative, its alt text the sentence
    assert all("rose by" in c.metadata["image/png"]["alt"] or "fell by" in c.metadata["image/png"]["alt"]
               or "no detectable" in c.metadata["image/png"]["alt"].lower() for c in charts)
    table, html = _run(team_sections.initiatives, tier2)
    assert table.empty and "no initiative to evaluate" in html and "<img" not in html


def test_key_result_chart_bands_are_the_forecast_tables_ranges(tier2):
    """Issue 20: the forecast band a key-result chart draws mid-quarter is the recalibrated range the forecasts
    table states (the shared calibration's interval factors), not the model's own wider one."""
    from okr_analysis.forecasting import forecast_key_result

    fc = tier2.team_table("forecasts").dropna(subset=["lower_80"])
    cal = team_sections._chart_calibration(tier2)
    assert len(fc) >= 3 and cal is not False and cal.interval_scale != (1.0, 1.0)
    for row in fc.itertuples(index=False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            drawn = forecast_key_result(tier2.ds, row.kr_id, as_of=tier2.as_of, calibration=cal).table.iloc[-1]
            own = forecast_key_result(tier2.ds, row.kr_id, as_of=tier2.as_of, calibration=False).table.iloc[-1]
        assert drawn["lower_80"] == pytest.approx(row.lower_80) and drawn["upper_80"] == pytest.approx(row.upper_80)
        assert drawn["upper_95"] == pytest.approx(row.upper_95)
        assert (own["upper_80"] - own["lower_80"]) != pytest.approx(row.upper_80 - row.lower_80)


def test_forecasts_appendix_is_a_table_mid_quarter_and_a_note_once_the_quarter_is_over(sample_dir, tier2):
    table, html = _run(team_sections.forecasts_appendix, tier2)
    assert "<table" in html and "Where each key result lands" in html and not table["final"].all()
    over = _ctx(sample_dir, "support-tier2")  # as of the quarter's last day
    table, html = _run(team_sections.forecasts_appendix, over)
    assert table["final"].all() and "<table" not in html and "2026Q3 is over: every key result" in html
