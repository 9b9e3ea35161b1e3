"""The data format contract: the documented table and column names never change by accident."""

from okr_analysis.io import REQUIRED_TABLES, TABLES

CONTRACT = {
    "teams": ["team_id", "team_name", "parent_team_id", "headcount"],
    "objectives": ["objective_id", "team_id", "quarter", "title", "parent_objective_id", "kind"],
    "key_results": ["kr_id", "objective_id", "title", "direction", "baseline", "target", "unit", "weight", "metric"],
    "checkins": ["kr_id", "date", "value", "confidence", "comment"],
    "kpis": ["team_id", "metric", "date", "value"],
    "metrics": ["metric", "description", "unit", "higher_is_better", "kind", "aggregation", "people_metric"],
    "benchmarks": ["metric", "value", "source"],
    "initiatives": ["initiative_id", "team_id", "title", "start", "metric", "end", "kr_id"],
}


def test_tables_and_columns_match_the_public_contract():
    assert {n: TABLES[n].column_names for n in TABLES} == CONTRACT
    assert set(REQUIRED_TABLES) == set(CONTRACT) - {"benchmarks", "initiatives"}


def test_required_columns():
    required = {n: [c.name for c in s.columns if c.required] for n, s in TABLES.items()}
    assert required["key_results"] == ["kr_id", "objective_id", "title", "direction", "target"]
    assert required["checkins"] == ["kr_id", "date", "value"]
    assert required["kpis"] == ["team_id", "metric", "date", "value"]
