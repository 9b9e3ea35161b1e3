"""Loaders: every source type gives the same Dataset; every validation rule gives its precise message."""

from __future__ import annotations

import sqlite3
import warnings
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from conftest import tiny_tables
from okr_analysis import Dataset, DataWarning, ValidationError, load
from okr_analysis.io import from_frames
from okr_analysis.io import TABLES


# ----------------------------------------------------------------------------------
# Writing the same tables in every source format
# ----------------------------------------------------------------------------------
def write_csv_folder(tables, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False, date_format="%Y-%m-%d")
    return folder


def write_parquet_folder(tables, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def write_excel(tables, path: Path) -> Path:
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        for name, frame in tables.items():
            frame.to_excel(xw, sheet_name=name, index=False)
    return path


def write_duckdb(tables, path: Path) -> Path:
    con = duckdb.connect(str(path))
    for name, frame in tables.items():
        con.register("frame_view", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame_view")
        con.unregister("frame_view")
    con.close()
    return path


def write_sqlite(tables, path: Path) -> str:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{path}")
    for name, frame in tables.items():
        frame.to_sql(name, engine, index=False)
    engine.dispose()
    return f"sqlite:///{path}"


def assert_same_dataset(a: Dataset, b: Dataset) -> None:
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_dtype=True, obj=name)


@pytest.fixture(scope="module")
def reference() -> Dataset:
    return from_frames(tiny_tables())


@pytest.mark.parametrize("kind", ["csv", "parquet", "excel", "duckdb", "duckdb-url", "sqlite-url"])
def test_every_source_type_gives_the_same_dataset(kind, tmp_path, reference):
    tables = tiny_tables()
    if kind == "csv":
        src = write_csv_folder(tables, tmp_path / "org")
    elif kind == "parquet":
        src = write_parquet_folder(tables, tmp_path / "org")
    elif kind == "excel":
        src = write_excel(tables, tmp_path / "org.xlsx")
    elif kind == "duckdb":
        src = write_duckdb(tables, tmp_path / "org.duckdb")
    elif kind == "duckdb-url":
        src = f"duckdb:///{write_duckdb(tables, tmp_path / 'org.duckdb')}"
    else:
        src = write_sqlite(tables, tmp_path / "org.sqlite")
    ds = load(src)
    assert_same_dataset(ds, reference)
    assert ds.warnings == ()


def test_typed_columns(reference):
    ds = reference
    assert str(ds.teams["team_id"].dtype) == "str"
    assert str(ds.teams["headcount"].dtype) == "Int64"
    assert ds.kpis["date"].dtype == "datetime64[ns]"
    assert ds.key_results["target"].dtype == "float64"
    assert ds.metrics["higher_is_better"].dtype == bool
    assert set(ds.objectives["quarter"]) == {"2026Q3"}


def test_defaults_are_filled(tmp_path):
    t = tiny_tables()
    t["objectives"] = t["objectives"].drop(columns=["kind"])
    t["key_results"] = t["key_results"].drop(columns=["weight", "unit"])
    t["metrics"] = t["metrics"][["metric"]]
    ds = from_frames(t)
    assert set(ds.objectives["kind"]) == {"aspirational"}
    assert set(ds.key_results["weight"]) == {1.0}
    assert ds.metrics["higher_is_better"].all()
    assert set(ds.metrics["kind"]) == {"other"} and set(ds.metrics["aggregation"]) == {"mean"}
    assert not ds.metrics["people_metric"].any()


def test_ids_stay_text(tmp_path):
    t = tiny_tables()
    t["teams"].loc[3, "team_id"] = "007"
    t["objectives"].loc[t["objectives"]["team_id"] == "t1", "team_id"] = "007"
    t["kpis"].loc[t["kpis"]["team_id"] == "t1", "team_id"] = "007"
    ds = load(write_csv_folder(t, tmp_path / "org"))
    assert "007" in set(ds.teams["team_id"])


def test_quarter_spellings_and_fiscal_year(tmp_path):
    t = tiny_tables()
    t["objectives"]["quarter"] = ["Q3 2026", "2026-Q3", "2026q3", "2026Q3", "FY2026Q3"]
    ds = from_frames(t)
    assert set(ds.objectives["quarter"]) == {"2026Q3"}
    with pytest.warns(DataWarning, match="outside their objective's quarter"):
        ds2 = from_frames(tiny_tables(), fiscal_year_start=2)
    q = ds2.quarter("2026Q3")
    assert (q.start, q.end) == (pd.Timestamp("2025-08-01"), pd.Timestamp("2025-10-31"))


# ----------------------------------------------------------------------------------
# Validation rules: each with its precise message (CSV rows: header = row 1)
# ----------------------------------------------------------------------------------
def _set(table, row, col, value):
    def mutate(t):
        t[table][col] = t[table][col].astype(object)
        t[table].loc[row, col] = value
    return mutate


def _drop_col(table, col):
    def mutate(t):
        t[table] = t[table].drop(columns=[col])
    return mutate


def _append(table, row_values):
    def mutate(t):
        t[table] = pd.concat([t[table], pd.DataFrame([row_values])], ignore_index=True)
    return mutate


def _initiatives(col=None, value=None, row=0):
    """Add a valid initiatives table to the tiny organisation, then set one cell."""
    def mutate(t):
        t["initiatives"] = pd.DataFrame({
            "initiative_id": ["chat", "coach"], "team_id": ["t3", "t1"], "title": ["Live chat", "Coaching"],
            "start": ["2026-03-02", "2026-04-06"], "metric": ["csat", "frt"], "end": [None, "2026-06-29"],
            "kr_id": ["k3a", None]})
        if col is not None:
            t["initiatives"][col] = t["initiatives"][col].astype(object)
            t["initiatives"].loc[row, col] = value
    return mutate


CASES = {
    "missing table": (lambda t: t.pop("kpis"), ": table is missing — add kpis.csv"),
    "missing required column": (_drop_col("key_results", "target"),
                                "key_results(key_results.csv):1: target: required column is missing — add a column named target"),
    "number is not a number": (_set("key_results", 0, "target", "sixty"),
                               "key_results(key_results.csv):2: target: 'sixty' is not a number — write plain numbers"),
    "thousands separator": (_set("kpis", 4, "value", "1,234.5"),
                            "kpis(kpis.csv):6: value: '1,234.5' is not a number"),
    "date not ISO": (_set("checkins", 2, "date", "07/20/2026"),
                     "checkins(checkins.csv):4: date: '07/20/2026' is not a date — write dates as YYYY-MM-DD"),
    "bad quarter": (_set("objectives", 1, "quarter", "2026Q7"),
                    "objectives(objectives.csv):3: quarter: '2026Q7' is not a quarter — write quarters as 2026Q3"),
    "enum direction": (_set("key_results", 3, "direction", "up"),
                       "key_results(key_results.csv):5: direction: 'up' is not allowed — use one of: increase, decrease"),
    "enum objective kind": (_set("objectives", 0, "kind", "stretch"),
                            "objectives(objectives.csv):2: kind: 'stretch' is not allowed — use one of: committed, aspirational"),
    "enum metric kind": (_set("metrics", 0, "kind", "leader"),
                         "metrics(metrics.csv):2: kind: 'leader' is not allowed — use one of: leading, lagging, other"),
    "enum aggregation": (_set("metrics", 1, "aggregation", "median"),
                         "metrics(metrics.csv):3: aggregation: 'median' is not allowed — use one of: mean, sum, last"),
    "bool": (_set("metrics", 2, "higher_is_better", "maybe"),
             "metrics(metrics.csv):4: higher_is_better: 'maybe' is not true or false — write true or false"),
    "required value empty": (_set("teams", 2, "team_name", ""),
                             "teams(teams.csv):4: team_name: required value is empty — fill in team_name on every row"),
    "duplicate id": (_set("key_results", 1, "kr_id", "kc1"),
                     "key_results(key_results.csv):3: kr_id: duplicate kr_id 'kc1' — give every row its own kr_id"),
    "duplicate kpi row": (_set("kpis", 1, "date", "2025-07-07"),
                          "kpis(kpis.csv):3: team_id, metric, date: (t1, frt, 2025-07-07) appears again (first on row 2)"),
    "date out of range": (_set("kpis", 0, "date", "3000-01-01"),
                          "kpis(kpis.csv):2: date: '3000-01-01' is outside the dates this tool can hold (1677-09-22 "
                          "to 2262-04-11) — check the year"),
    "negative headcount": (_set("teams", 3, "headcount", "-3"),
                           "teams(teams.csv):5: headcount: -3 is out of range (must be ≥ 0)"),
    "fractional headcount": (_set("teams", 3, "headcount", "2.5"),
                             "teams(teams.csv):5: headcount: 2.5 is not a whole number"),
    "weight not positive": (_set("key_results", 0, "weight", "0"),
                            "key_results(key_results.csv):2: weight: 0 is out of range (must be > 0) — use a positive weight"),
    "confidence out of range": (_set("checkins", 0, "confidence", "11"),
                                "checkins(checkins.csv):2: confidence: 11 is out of range (must be ≤ 10)"),
    "infinite value": (_set("kpis", 0, "value", "inf"),
                       "kpis(kpis.csv):2: value: inf is not a finite number"),
    "objective → team": (_set("objectives", 2, "team_id", "ghost"),
                         "objectives(objectives.csv):4: team_id: 'ghost' is not in teams.team_id"),
    "KR → objective": (_set("key_results", 4, "objective_id", "o9"),
                       "key_results(key_results.csv):6: objective_id: 'o9' is not in objectives.objective_id"),
    "check-in → KR": (_set("checkins", 5, "kr_id", "k404"),
                      "checkins(checkins.csv):7: kr_id: 'k404' is not in key_results.kr_id"),
    "KPI → team": (_set("kpis", 0, "team_id", "t9"), "kpis(kpis.csv):2: team_id: 't9' is not in teams.team_id"),
    "KPI → metric": (_set("kpis", 0, "metric", "mood"), "kpis(kpis.csv):2: metric: 'mood' is not in metrics.metric"),
    "KR metric → metrics": (_set("key_results", 2, "metric", "speed"),
                            "key_results(key_results.csv):4: metric: 'speed' is not in metrics.metric"),
    "parent team": (_set("teams", 4, "parent_team_id", "nowhere"),
                    "teams(teams.csv):6: parent_team_id: 'nowhere' is not in teams.team_id"),
    "parent objective": (_set("objectives", 2, "parent_objective_id", "oX"),
                         "objectives(objectives.csv):4: parent_objective_id: 'oX' is not in objectives.objective_id"),
    "cycle in team tree": (_set("teams", 0, "parent_team_id", "t1"), "cycle in the team tree: co → t1 → d1 → co"),
    "cycle in alignment": (_set("objectives", 0, "parent_objective_id", "o1"),
                           "cycle in the objective alignment: oc → o1 → od1 → oc"),
    "increase below baseline": (_set("key_results", 0, "target", "30"),
                                "key_results(key_results.csv):2: target: increase key result 'kc1' has its target (30) below its baseline (40)"),
    "decrease above baseline": (_set("key_results", 4, "target", "9"),
                                "key_results(key_results.csv):6: target: decrease key result 'k1a' has its target (9) above its baseline (5)"),
    "increase without baseline": (_set("key_results", 0, "baseline", ""),
                                  "key_results(key_results.csv):2: baseline: increase key result 'kc1' has no baseline"),
    "benchmark → metric": (_set("benchmarks", 0, "metric", "happiness"),
                           "benchmarks(benchmarks.csv):2: metric: 'happiness' is not in metrics.metric"),
    "initiative → team": (_initiatives("team_id", "t9"),
                          "initiatives(initiatives.csv):2: team_id: 't9' is not in teams.team_id — use a team_id"),
    "initiative → metric": (_initiatives("metric", "mood", row=1),
                            "initiatives(initiatives.csv):3: metric: 'mood' is not in metrics.metric — use a metric "
                            "from the metrics table"),
    "initiative → KR": (_initiatives("kr_id", "k404"),
                        "initiatives(initiatives.csv):2: kr_id: 'k404' is not in key_results.kr_id — use a kr_id"),
    "initiative KR of another team": (_initiatives("kr_id", "k1a"),
                                      "initiatives(initiatives.csv):2: kr_id: key result 'k1a' belongs to team 't1', "
                                      "not to the initiative's team 't3' — use a key result of the initiative's own"),
    "initiative start not a date": (_initiatives("start", "next spring"),
                                    "initiatives(initiatives.csv):2: start: 'next spring' is not a date — write dates "
                                    "as YYYY-MM-DD"),
    "initiative without start": (_initiatives("start", ""),
                                 "initiatives(initiatives.csv):2: start: required value is empty — fill in start"),
    "initiative ends before it starts": (_initiatives("end", "2026-01-05", row=1),
                                         "initiatives(initiatives.csv):3: end: initiative 'coach' ends (2026-01-05) "
                                         "before it starts (2026-04-06) — give an end on or after the start"),
    "duplicate initiative": (_initiatives("initiative_id", "chat", row=1),
                             "initiatives(initiatives.csv):3: initiative_id: duplicate initiative_id 'chat' — give "
                             "every row its own initiative_id"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_rule_gives_its_message(case, tmp_path):
    mutate, text = CASES[case]
    t = tiny_tables()
    mutate(t)
    folder = write_csv_folder(t, tmp_path / "org")
    with pytest.raises(ValidationError) as info:
        load(folder)
    lines = [str(p) for p in info.value.problems]
    assert any(text in line for line in lines), "\n".join(lines)
    assert str(info.value).startswith(f"{len(lines)} problem")


def test_initiatives_are_optional_and_typed(tmp_path):
    ds = load(write_csv_folder(tiny_tables(), tmp_path / "none"))
    assert ds.initiatives.empty and list(ds.initiatives.columns) == TABLES["initiatives"].column_names
    t = tiny_tables()
    _initiatives()(t)
    ds = load(write_csv_folder(t, tmp_path / "some"))
    assert ds.initiatives["start"].dtype == "datetime64[ns]" and ds.initiatives["end"].dtype == "datetime64[ns]"
    assert ds.initiatives["end"].isna().tolist() == [True, False]
    assert ds.initiatives["kr_id"].tolist()[0] == "k3a" and pd.isna(ds.initiatives["kr_id"].tolist()[1])
    # an initiative on a metric its team does not measure loads with a warning
    t["initiatives"].loc[0, "metric"] = "csat"
    t["kpis"] = t["kpis"][~((t["kpis"]["team_id"] == "t3") & (t["kpis"]["metric"] == "csat"))]
    with pytest.warns(DataWarning, match=r"1 initiative\(s\) on a metric their team does not measure: chat \(t3/csat\)"):
        load(write_csv_folder(t, tmp_path / "unmeasured"))


def test_every_problem_is_reported_at_once(tmp_path):
    t = tiny_tables()
    for name in ("number is not a number", "date not ISO", "enum direction", "KPI → team", "cycle in team tree",
                 "negative headcount"):
        CASES[name][0](t)
    with pytest.raises(ValidationError) as info:
        load(write_csv_folder(t, tmp_path / "org"))
    assert len(info.value.problems) >= 6


def test_header_only_and_empty_file(tmp_path):
    t = tiny_tables()
    folder = write_csv_folder(t, tmp_path / "org")
    (folder / "teams.csv").write_text("")
    (folder / "key_results.csv").write_text(",".join(TABLES["key_results"].column_names) + "\n")
    with pytest.raises(ValidationError) as info:
        load(folder)
    text = str(info.value)
    assert "teams(teams.csv): file is empty — write a header row" in text
    assert "key_results(key_results.csv): table has a header but no rows" in text


def test_missing_source_and_unknown_kind(tmp_path):
    with pytest.raises(ValidationError, match="the source does not exist"):
        load(tmp_path / "nope")
    (tmp_path / "org.txt").write_text("hello")
    with pytest.raises(ValidationError, match="unknown kind of source"):
        load(tmp_path / "org.txt")


def test_duckdb_file_that_is_not_a_database(tmp_path):
    bad = tmp_path / "org.duckdb"
    bad.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(ValidationError, match="not a DuckDB database"):
        load(bad)


def test_unreachable_database_url_is_a_message_not_a_traceback(tmp_path):
    with pytest.raises(ValidationError, match="cannot read the database"):
        load(f"sqlite:///{tmp_path}/no/such/dir/x.db")


# ----------------------------------------------------------------------------------
# Warnings, not errors
# ----------------------------------------------------------------------------------
def test_unknown_column_warns_and_is_dropped(tmp_path):
    t = tiny_tables()
    t["teams"]["employee_id"] = "e1"
    with pytest.warns(DataWarning, match=r"unknown column employee_id ignored"):
        ds = load(write_csv_folder(t, tmp_path / "org"))
    assert "employee_id" not in ds.teams.columns


def test_checkin_outside_its_quarter_warns(tmp_path):
    t = tiny_tables()
    t["checkins"].loc[0, "date"] = pd.Timestamp("2026-10-05")
    with pytest.warns(DataWarning, match=r"1 check-in\(s\) dated outside their objective's quarter, rows 2"):
        load(write_csv_folder(t, tmp_path / "org"))


def test_kpi_gaps_warn(tmp_path):
    t = tiny_tables()
    k = t["kpis"]
    t["kpis"] = k.drop(index=k.index[(k["team_id"] == "t2") & (k["metric"] == "csat")][10:13])
    with pytest.warns(DataWarning, match=r"1 KPI series have gaps \(missing periods: t2/csat: 3\)"):
        load(write_csv_folder(t, tmp_path / "org"))


def test_target_equal_to_baseline_loads_with_a_documented_warning(tmp_path):
    t = tiny_tables()
    t["key_results"].loc[0, "target"] = 40
    with pytest.warns(DataWarning, match="target equal to its baseline.*KR_UNMEASURABLE"):
        ds = load(write_csv_folder(t, tmp_path / "org"))
    assert len(ds.key_results) == 10


def test_semicolon_delimiter_and_bom_and_latin1(tmp_path):
    t = tiny_tables()
    folder = write_csv_folder(t, tmp_path / "org")
    teams = (folder / "teams.csv").read_text()
    (folder / "teams.csv").write_text(teams.replace(",", ";").replace("Team One", "Équipe Un"), encoding="cp1252")
    (folder / "metrics.csv").write_bytes(b"\xef\xbb\xbf" + (folder / "metrics.csv").read_bytes())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load(folder)
    msgs = " ".join(str(w.message) for w in caught)
    assert "not UTF-8; read as Windows-1252" in msgs and "separated by ';'" in msgs
    assert "Équipe Un" in set(ds.teams["team_name"])
    assert ds.metrics["metric"].tolist() == ["frt", "csat", "nps", "engagement"]


def test_sql_password_is_not_shown(tmp_path):
    from okr_analysis.io.readers import _redact_url

    assert _redact_url("postgresql://ana:s3cret@db:5432/hr") == "postgresql://ana:***@db:5432/hr"


# ----------------------------------------------------------------------------------
# Filters pushed down to the source (teams subtree, date range, quarter)
# ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample_sources(tmp_path_factory):
    """The sample organisation in every source type that pushes filters down, plus CSV."""
    from okr_analysis.sample import make_sample

    tables = make_sample(seed=0)
    d = tmp_path_factory.mktemp("filtered")
    return tables, {
        "csv": write_csv_folder(tables, d / "csv"),
        "parquet": write_parquet_folder(tables, d / "parquet"),
        "duckdb": write_duckdb(tables, d / "org.duckdb"),
        "sqlite-url": write_sqlite(tables, d / "org.sqlite"),
    }


def filtered_in_memory(full: Dataset, *, teams=None, start=None, end=None, quarter=None) -> dict[str, pd.DataFrame]:
    """What a filtered load must give: the whole dataset filtered with pandas."""
    roots = [teams] if isinstance(teams, str) else teams
    ds = full.filter_teams([t for r in roots for t in full.subtree(r)]) if teams else full
    from okr_analysis.io import parse_quarter

    obj = ds.objectives if quarter is None else ds.objectives[ds.objectives["quarter"] == parse_quarter(quarter).label]
    krs = ds.key_results[ds.key_results["objective_id"].isin(obj["objective_id"])]
    ci = ds.checkins[ds.checkins["kr_id"].isin(krs["kr_id"])]
    kpis = ds.kpis

    def within(f):
        keep = pd.Series(True, index=f.index)
        if start is not None:
            keep &= f["date"] >= pd.Timestamp(start)
        if end is not None:
            keep &= f["date"] <= pd.Timestamp(end)
        return f[keep]

    out = {"teams": ds.teams, "objectives": obj, "key_results": krs, "checkins": within(ci),
           "kpis": within(kpis), "metrics": ds.metrics, "benchmarks": ds.benchmarks, "initiatives": ds.initiatives}
    return {n: f.reset_index(drop=True) for n, f in out.items()}


FILTERS = [
    {"teams": ["support"]},
    {"teams": ["hr", "sales-smb"], "start": "2026-01-01", "end": "2026-06-30"},
    {"quarter": "2026Q2"},
    {"teams": "eng", "quarter": "2026-Q3", "start": "2026-07-01"},
    {"end": "2025-12-31"},
]


@pytest.mark.parametrize("kind", ["csv", "parquet", "duckdb", "sqlite-url"])
@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: ",".join(f))
def test_filtered_load_equals_the_whole_load_filtered(kind, filters, sample_sources):
    tables, sources = sample_sources
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = load(sources["csv"])
        ds = load(sources[kind], **filters)
    expected = filtered_in_memory(full, **filters)
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(ds, name), expected[name], obj=f"{kind} {name}")
    assert len(ds.kpis) < len(full.kpis) or "quarter" in filters


def test_filtered_load_of_frames_and_datasets(sample_sources):
    tables, _ = sample_sources
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = load(tables)
        a = load(tables, teams=["sales"], quarter="2026Q1")
        b = load(full, teams=["sales"], quarter="2026Q1")
    expected = filtered_in_memory(full, teams=["sales"], quarter="2026Q1")
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(a, name), expected[name], obj=name)
        pd.testing.assert_frame_equal(getattr(b, name), expected[name], obj=name)


def test_filtered_load_allows_references_that_leave_the_subset(sample_sources):
    # the subtree's root has a parent outside it, and its objectives align to the company's ones:
    # both are loaded without dangling-reference errors (documented in load())
    _, sources = sample_sources
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = load(sources["duckdb"], teams=["support"])
    assert ds.teams.loc[ds.teams["team_id"] == "support", "parent_team_id"].item() == "acme"
    outside = ds.objectives["parent_objective_id"].notna() & \
        ~ds.objectives["parent_objective_id"].isin(ds.objectives["objective_id"])
    assert outside.any()


def test_sql_filters_are_where_clauses_with_bound_parameters(sample_sources):
    import sqlalchemy as sa

    _, sources = sample_sources
    seen: list[tuple[str, object]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load(sources["sqlite-url"], teams=["support-tier2"], start="2026-01-01", quarter="2026Q1")
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)
    selects = {s.split("FROM ")[1].split()[0].strip('"'): (s, p) for s, p in seen
               if s.lstrip().upper().startswith("SELECT") and "FROM " in s and "sqlite_" not in s}
    kpis_sql, kpis_params = selects["kpis"]
    assert "WHERE" in kpis_sql and "team_id IN" in kpis_sql and "date >=" in kpis_sql
    assert "support-tier2" in str(kpis_params) and "support-tier2" not in kpis_sql  # bound, not spliced
    assert "objective_id IN" in selects["key_results"][0]
    assert "kr_id IN" in selects["checkins"][0]
    assert "WHERE" not in selects["teams"][0]


def test_duckdb_filters_are_parameterised_queries(sample_sources, monkeypatch):
    from okr_analysis.io import readers

    _, sources = sample_sources
    calls: list[tuple[str, list, int]] = []
    real = readers._duckdb_fetch

    def spy(con, sql, params):
        frame = real(con, sql, params)
        calls.append((sql, params, len(frame)))
        return frame

    monkeypatch.setattr(readers, "_duckdb_fetch", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = load(sources["duckdb"])
        calls.clear()
        ds = load(sources["duckdb"], teams=["hr"], start="2026-04-01", end="2026-06-30")
    kpis = [c for c in calls if 'FROM "kpis"' in c[0]][0]
    assert 'WHERE "team_id" IN (SELECT unnest(?))' in kpis[0] and '"date" >= ?' in kpis[0]
    assert "hr-recruiting" in kpis[1][0] and "hr-recruiting" not in kpis[0]
    assert kpis[2] < len(full.kpis) / 10  # rows fetched, not rows kept after reading everything
    assert len(ds.kpis) <= kpis[2]


def test_parquet_is_read_with_columns_and_filters(sample_sources, monkeypatch, tmp_path):
    import pyarrow.parquet as pq

    tables, _ = sample_sources
    t = {n: f.copy() for n, f in tables.items()}
    t["kpis"]["note"] = "extra column, not read"
    folder = tmp_path / "org"
    folder.mkdir()
    for name, frame in t.items():
        pq.write_table(__import__("pyarrow").Table.from_pandas(frame, preserve_index=False),
                       folder / f"{name}.parquet", row_group_size=1_000)
    calls = []
    real = pd.read_parquet

    def spy(path, *args, **kwargs):
        calls.append((Path(path).name, kwargs.get("columns"), kwargs.get("filters")))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(pd, "read_parquet", spy)
    with pytest.warns(DataWarning, match="unknown column note ignored"):
        ds = load(folder, teams=["sales"], start="2026-01-01")
    name, columns, filters = [c for c in calls if c[0] == "kpis.parquet"][0]
    assert columns == ["team_id", "metric", "date", "value"]
    assert "team_id" in str(filters) and "date" in str(filters)
    assert set(ds.kpis["team_id"]) <= set(ds.teams["team_id"]) and ds.kpis["date"].min() >= pd.Timestamp("2026-01-01")
    # row groups that cannot match are skipped: the filter is answered from the file's statistics
    meta = pq.ParquetFile(folder / "kpis.parquet").metadata
    assert meta.num_row_groups > 10


@pytest.mark.parametrize("kwargs, match", [
    ({"teams": ["no-such-team"]}, r"teams: 'no-such-team' not in the teams table"),
    ({"teams": 7}, r"teams must be a team_id or a list of team_ids, got int"),
    ({"start": "2026-07-01", "end": "2026-01-01"}, r"start=2026-07-01 is after end=2026-01-01"),
    ({"start": "last tuesday"}, r"start='last tuesday' is not a date"),
    ({"quarter": "summer"}, r"quarter='summer' is not a quarter"),
])
def test_bad_filters_name_the_argument(kwargs, match, sample_sources):
    _, sources = sample_sources
    with pytest.raises((ValueError, TypeError), match=match):
        load(sources["csv"], **kwargs)


def test_filtered_database_still_reports_an_invalid_source(tmp_path):
    t = tiny_tables()
    t["kpis"] = t["kpis"].astype({"value": str})
    t["kpis"].loc[0, "value"] = "lots"  # the first row of t1, a team under d1
    with pytest.raises(ValidationError, match=r"kpis\(org.duckdb\):1: value: 'lots' is not a number"):
        load(write_duckdb(t, tmp_path / "org.duckdb"), teams=["d1"])


# ----------------------------------------------------------------------------------
# CSV: Arrow's reader (the fast path) reads what pandas' parser reads
# ----------------------------------------------------------------------------------
def _pandas_reference(text: str, sep: str) -> pd.DataFrame:
    import io

    return pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_values=[],
                       skipinitialspace=True)


@pytest.mark.parametrize("sep, eol", [(",", "\n"), ("\t", "\n"), (",", "\r\n")])
def test_arrow_csv_reader_gives_pandas_result(sep, eol):
    """Quotes with separators and line breaks inside, a BOM, blanks around cells, empty and NA-like cells,
    accents: the fast path's frame equals pandas' (dtype=str, no NA parsing) but for the blanks before an
    unquoted cell, which pandas' ``skipinitialspace`` drops and typing strips anyway."""
    from okr_analysis.io import readers

    rows = [["team_id", "title", "value", "date"],
            ["t1", '"Launch, then ""grow"""', "1.5", "2026-01-05"],
            ["t2", '"two\nlines"', "", "2026-01-12"],
            ["t3 ", "Équipe café", "NA", " 2026-01-19"],
            ["t4", "null", "nan", "2026-01-26"]] * 50
    text = "\ufeff" + eol.join(sep.join(r) for r in rows[:1] + [r for r in rows if r[0] != "team_id"]) + eol
    raw = text.encode("utf-8")
    first = text[1:text.find("\n")]
    fast = readers._read_csv_arrow(raw, first, sep)
    assert fast is not None
    ref = _pandas_reference(text.lstrip("\ufeff"), sep)
    assert (fast != ref).any(axis=None)  # " 2026-01-19" as read
    pd.testing.assert_frame_equal(fast.apply(lambda c: c.str.strip()), ref.apply(lambda c: c.str.strip()))
    assert fast.loc[0, "title"] == 'Launch, then "grow"' and fast.loc[1, "title"] == "two\nlines"


@pytest.mark.parametrize("text", [
    "a,b\n1,2,3\n",             # a ragged row: pandas reports it with its line
    'a,b\n1, "x,y"\n',          # a quote after blanks: pandas reads it as quoting
    "a,a\n1,2\n",               # repeated header: pandas renames the second
    "a,,b\n1,2,3\n",            # an empty header name: pandas names it "Unnamed: 1"
])
def test_arrow_csv_reader_leaves_what_it_cannot_read_alike_to_pandas(text):
    from okr_analysis.io import readers

    assert readers._read_csv_arrow(text.encode(), text.splitlines()[0], ",") is None


def test_a_large_kpi_csv_loads_the_same_as_its_parquet_copy(tmp_path):
    """A KPI file big enough to matter goes through the fast path and gives the Parquet copy's tables."""
    t = tiny_tables()
    rng = np.random.default_rng(0)
    n = 30_000
    t["kpis"] = pd.DataFrame({"team_id": rng.choice(["t1", "t2", "t3"], n), "metric": "frt",
                              "date": pd.Timestamp("2020-01-06") + pd.to_timedelta(np.arange(n) // 3 * 7, "D"),
                              "value": rng.normal(50, 5, n).round(3)}).drop_duplicates(["team_id", "metric", "date"])
    for fmt in ("csv", "parquet"):
        folder = tmp_path / fmt
        folder.mkdir()
        for name, df in t.items():
            df.to_csv(folder / f"{name}.csv", index=False) if fmt == "csv" else df.to_parquet(folder / f"{name}.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b = load(tmp_path / "csv"), load(tmp_path / "parquet")
    assert len(a.kpis) > 9_000
    pd.testing.assert_frame_equal(a.kpis.reset_index(drop=True), b.kpis.reset_index(drop=True))


def test_arrow_csv_reader_leaves_utf16_to_pandas():
    """UTF-16 text is valid UTF-8 byte by byte (NUL bytes) once past its mark: only pandas' path reads it."""
    from okr_analysis.io import readers

    text = "a,b\n" + "x,1\n" * 100
    for raw in (text.encode("utf-16"), text.encode("utf-16-le")):
        assert readers._read_csv_arrow(raw, "a,b", ",") is None


# ----------------------------------------------------------------------------------
# Typing: the fast paths give the reference path's result, and leave what they cannot read to it
# ----------------------------------------------------------------------------------
def _reference_numbers(s: pd.Series) -> pd.Series:
    from okr_analysis.io.coercion import _as_text

    return pd.to_numeric(_as_text(s), errors="coerce").astype("float64")


def _same_bits(a: pd.Series, b: pd.Series) -> bool:
    """Equal bit for bit (``assert_series_equal`` takes -0.0 for 0.0)."""
    return a.dtype == b.dtype == "float64" and np.array_equal(a.to_numpy().view("i8"), b.to_numpy().view("i8"))


def test_plain_numbers_are_parsed_as_pandas_parses_them():
    """Arrow's parse of plain decimal numbers (up to 15 characters) equals ``_as_text`` + ``pd.to_numeric``,
    bit for bit: random values of every length, leading zeros, and -0 (0.0 in a column of whole numbers,
    which pandas reads as int64; -0.0 among decimals)."""
    from okr_analysis.io.coercion import _plain_numbers

    rng = np.random.default_rng(0)
    x = rng.normal(0, 10.0 ** rng.integers(-3, 12, 20_000))
    cells = [f"{v:.{d}f}"[:15].rstrip(".") for v, d in zip(x, rng.integers(0, 12, x.size))]
    cells += ["0", "-0", "007", "-0.0", "0.000", "123456789012345", "-12345678.90123", "0.1", "0.3000000000000"]
    for column in (cells, ["12", "-0", "7"], ["12", "-0", "7.5"], ["-0"], ["-0.0"]):
        s = pd.Series(column, dtype="str")
        fast = _plain_numbers(s)
        assert fast is not None
        assert _same_bits(fast, _reference_numbers(s)), column[:3]
    assert not np.signbit(_plain_numbers(pd.Series(["12", "-0"], dtype="str")).iloc[1])
    assert np.signbit(_plain_numbers(pd.Series(["1.5", "-0"], dtype="str")).iloc[1])


@pytest.mark.parametrize("cell", ["", " 4.5", "4.5 ", "1e3", "1E3", "+1", "4,5", "1,250.5", "inf", "nan", "NA", ".5",
                                  "4.", "-", "--1", "1.2.3", "1234567890123456", "0.30000000000000004", "١٢",
                                  "0x10", "1_000", "4.5\n", None])
def test_plain_numbers_leave_any_other_cell_to_the_reference_path(cell):
    from okr_analysis.io.coercion import _plain_numbers

    assert _plain_numbers(pd.Series(["1.5"] * 2_000 + [cell] + ["2"], dtype="str")) is None


@pytest.mark.parametrize("cells", [
    ["t1", " t1", "t1 ", "T1", "", "NA", "n/a", "null", "Équipe", "2026-07-06", " 2026-07-06 ", "2026-02-30",
     "07/27/2026", "2026-07-06T00:00:00", "2026-07-06T10:30", "someday", None],
    ["2026-07-06", "2026-07-13", "2026-07-20T08:00", "Équipe", "t1", None],  # no cell to change: the column itself
])
def test_text_and_dates_of_a_large_column_are_typed_once_per_distinct_cell(cells):
    """The distinct-value paths of ``_as_text`` and of dates give what the column-wide ones give."""
    from okr_analysis.io import coercion

    s = pd.Series(cells * 200, dtype="str")
    assert coercion._distinct(s) is not None
    reference = s.str.strip()
    reference = reference.mask(reference.str.lower().isin(coercion._MISSING_STRINGS) | reference.isna())
    text, dates = coercion._parse_dates(s)
    pd.testing.assert_series_equal(coercion._as_text(s), reference, check_exact=True)
    pd.testing.assert_series_equal(text, reference, check_exact=True)
    pd.testing.assert_series_equal(dates, pd.to_datetime(reference, format="ISO8601", errors="coerce"),
                                   check_exact=True)


def _large_kpis(tmp_path: Path, change=None) -> Path:
    """tiny_tables with 3,120 KPI rows written as text (enough for every fast path), changed by ``change``."""
    t = tiny_tables()
    kdates = pd.date_range("2021-07-05", periods=260, freq="7D").strftime("%Y-%m-%d")
    t["kpis"] = pd.concat([pd.DataFrame({"team_id": tm, "metric": m, "date": kdates,
                                         "value": [f"{b + 0.01 * i:.2f}" for i in range(260)]})
                           for tm in ("t1", "t2", "t3") for m, b in (("frt", 4.0), ("csat", 8.5), ("nps", 40.0),
                                                                       ("engagement", 75.0))], ignore_index=True)
    if change is not None:
        change(t["kpis"])
    return write_csv_folder(t, tmp_path / "org")


def _set(column, value, row=100):
    def change(k):
        k.loc[row, column] = value
    return change


def _append_row(row):
    def change(k):
        k.loc[len(k)] = k.loc[row].to_list()
    return change


@pytest.mark.parametrize("change, messages", [
    (_set("value", "lots"), "kpis(kpis.csv):102: value: 'lots' is not a number — write plain numbers with a dot "
                            "for decimals and no thousands separators (1234.5)"),
    (_set("value", ""), "kpis(kpis.csv):102: value: required value is empty — fill in value on every row"),
    (_set("value", "NA"), "kpis(kpis.csv):102: value: required value is empty — fill in value on every row"),
    (_set("value", "4,5"), "kpis(kpis.csv):102: value: '4,5' is not a number"),
    (_set("value", "inf"), "kpis(kpis.csv):102: value: inf is not a finite number — replace infinite values with a "
                           "real measurement or leave the cell empty"),
    (_set("date", "2026-02-30"), "kpis(kpis.csv):102: date: '2026-02-30' is not a date — write dates as YYYY-MM-DD "
                                 "(e.g. 2026-07-15)"),
    (_set("date", "07/27/2026"), "kpis(kpis.csv):102: date: '07/27/2026' is not a date"),
    (_set("date", ""), "kpis(kpis.csv):102: date: required value is empty — fill in date on every row"),
    (_set("team_id", "x" * 300), ("kpis(kpis.csv):102: team_id: id is 300 characters long — use ids of at most 200 "
                                  "characters", f"kpis(kpis.csv):102: team_id: '{'x' * 300}' is not in teams.team_id")),
    (_set("team_id", ""), "kpis(kpis.csv):102: team_id: required value is empty — fill in team_id on every row"),
    (_set("metric", "FRT"), "kpis(kpis.csv):102: metric: 'FRT' is not in metrics.metric — add the metric to the "
                            "metrics table"),
    (_set("date", "2021-07-05T00:00"), "kpis(kpis.csv):102: team_id, metric, date: (t1, frt, 2021-07-05) appears "
                                       "again (first on row 2) — keep one row per team_id, metric, date"),
    (_append_row(5), "kpis(kpis.csv):3122: team_id, metric, date: (t1, frt, 2021-08-09) appears again (first on "
                     "row 7) — keep one row per team_id, metric, date"),
    (_set("date", "2300-01-01"), "kpis(kpis.csv):102: date: '2300-01-01' is outside the dates this tool can hold "
                                 "(1677-09-22 to 2262-04-11) — check the year"),
])
def test_a_large_kpi_file_with_a_bad_cell_gives_the_precise_message(tmp_path, change, messages):
    """A cell the fast paths cannot read sends its column through the reference path: the messages of the
    reference path (file, row, column, what and how to fix it), and only those."""
    messages = (messages,) if isinstance(messages, str) else messages
    with pytest.raises(ValidationError) as info:
        load(_large_kpis(tmp_path, change))
    for message in messages:
        assert message in str(info.value)
    assert len(info.value.problems) == len(messages)


@pytest.mark.parametrize("cells", ["every cell +02:00", "two cells, +02:00 and -05:00"])
def test_dates_with_time_zone_offsets_are_the_dates_written(tmp_path, cells):
    """An offset is dropped and the written date kept, whether every cell has the same offset (pandas gives
    a zoned column) or cells differ (pandas refuses the column: read cell by cell); both once stopped the
    load with pandas' own error and no file, row or column."""
    def zoned(k):
        if cells.startswith("every"):
            k["date"] = k["date"] + "T23:30:00+02:00"
        else:
            k.loc[0, "date"] = f"{k.loc[0, 'date']}T23:30:00+02:00"
            k.loc[1, "date"] = f"{k.loc[1, 'date']}T23:30:00-05:00"
    plain = load(_large_kpis(tmp_path / "plain")).kpis
    got = load(_large_kpis(tmp_path / "zoned", zoned)).kpis
    pd.testing.assert_frame_equal(got, plain, check_exact=True)


def test_a_kpi_file_holding_every_row_twice_is_refused(tmp_path):
    """A file pasted twice (3,120 keys, then the same 3,120 again) names the first repeats, then says there
    are more: the check once stopped after 500 keys seen, before the first repeat, and loaded the file."""
    folder = _large_kpis(tmp_path)
    lines = (folder / "kpis.csv").read_text().splitlines(keepends=True)
    (folder / "kpis.csv").write_text("".join(lines + lines[1:]))
    with pytest.raises(ValidationError) as info:
        load(folder)
    problems = info.value.problems
    assert len(problems) == 51 and "… and more rows like these" in str(info.value)
    assert "kpis(kpis.csv):3122: team_id, metric, date: (t1, frt, 2021-07-05) appears again (first on row 2) — " \
           "keep one row per team_id, metric, date" in str(info.value)


@pytest.mark.parametrize("cell, value", [(" 4.5 ", 4.5), ("1e3", 1000.0), ("+4.5", 4.5), ("4.", 4.0), (".5", 0.5),
                                         ("0.30000000000000004", 0.30000000000000004)])
def test_a_large_kpi_file_reads_the_numbers_pandas_reads(tmp_path, cell, value):
    ds = load(_large_kpis(tmp_path, _set("value", cell)))
    assert ds.kpis["value"].iloc[100] == value and ds.kpis["value"].iloc[99] == 4.99


@pytest.mark.parametrize("order", ["as written", "shuffled", "reversed", "by metric, then team"])
def test_kpi_gaps_are_the_series_by_series_counts(order):
    """The vectorised gap count (with its shortcuts for rows already in series order and for evenly spaced
    series) equals ``_gap_count`` series by series: weekly, daily and monthly series, with and without
    gaps, a repeated date, and series too short to count."""
    from okr_analysis.io.validation import _gap_count, _kpi_gaps

    rng = np.random.default_rng(1)
    rows = []
    for t in range(6):
        for m in range(3):
            n, step = int(rng.integers(0, 40)), int(rng.choice([1, 7, 30]))
            days = np.arange(n) * step
            if t % 2 and n > 4:
                days = np.delete(days, rng.choice(n, 2, replace=False))
            if t == 4 and m == 0 and n:
                days = np.r_[days, days[:1]]
            rows += [(f"t{t}", f"m{m}", pd.Timestamp("2025-01-06") + pd.Timedelta(days=int(d))) for d in days]
    k = pd.DataFrame(rows, columns=["team_id", "metric", "date"]).astype({"team_id": "str", "metric": "str"})
    k = {"as written": k, "shuffled": k.sample(frac=1, random_state=0), "reversed": k.iloc[::-1],
         "by metric, then team": k.sort_values(["metric", "team_id", "date"])}[order]
    expected = {key: _gap_count(g["date"].sort_values()) for key, g in k.groupby(["team_id", "metric"])}
    expected = {key: n for key, n in sorted(expected.items()) if n > 0}
    gaps = _kpi_gaps(k)
    assert len(expected) >= 5
    assert list(gaps.items()) == list(expected.items())


def test_the_one_pass_check_of_a_compound_key_never_misses_a_repeated_key():
    """``_distinct_in_runs`` says True only where ``DataFrame.duplicated`` finds no repeated key, and says it
    for a KPI table written series by series in date order (the case it is there for)."""
    from okr_analysis.io.validation import _distinct_in_runs

    rng = np.random.default_rng(2)
    dates = pd.date_range("2026-01-05", periods=6, freq="7D")
    kpis = pd.DataFrame([(t, m, d) for t in ("t2", "t1", "t3") for m in ("nps", "csat") for d in dates],
                        columns=["team_id", "metric", "date"]).astype({"team_id": "str", "metric": "str"})
    assert _distinct_in_runs(kpis) and _distinct_in_runs(kpis.iloc[:1]) and _distinct_in_runs(kpis.iloc[:0])
    said_true = 0
    for _ in range(500):
        rows = kpis.iloc[rng.integers(0, len(kpis), rng.integers(2, 40))]
        if rng.random() < 0.5:
            rows = rows.drop_duplicates().sort_values(["team_id", "metric", "date"])
        if rng.random() < 0.3:
            rows = pd.concat([rows.iloc[len(rows) // 2:], rows.iloc[:len(rows) // 2]])  # a series in two runs
        if _distinct_in_runs(rows):
            said_true += 1
            assert not rows.duplicated().any()
    assert said_true > 100


@pytest.mark.parametrize("data, note", [
    ("team_id,metric,date,value\nt1,fr\u00e9,2026-01-05,1\n".encode("cp1252"), "not UTF-8; read as Windows-1252"),
    ("team_id,metric,date,value,\u00e9quipe\nt1,frt,2026-01-05,1,x\n".encode("cp1252"),
     "not UTF-8; read as Windows-1252"),
    ("team_id,metric,date,value\nt1,frt,2026-01-05,1\n".encode("utf-16"), "UTF-16 text; read as such"),
    (b'team_id,metric,date,"value\n\xe9"\nt1,frt,2026-01-05,1\n', "not UTF-8; read as Windows-1252"),
    (b"\xef\xbb\xbfteam_id,metric,date,value\nt1,fr\xc3\xa9,2026-01-05,1\n", None),
])
def test_a_csv_file_is_decoded_whole_unless_arrow_reads_it_as_utf8(tmp_path, data, note):
    """Arrow's reader is tried before the file is decoded; a file it cannot read as UTF-8 (a cell or the
    header in another encoding, UTF-16, a quoted header running onto a line that is not UTF-8) is decoded
    whole and gets its note, as before."""
    from okr_analysis.io import readers

    path = tmp_path / "kpis.csv"
    path.write_bytes(data)
    notes: list[str] = []
    raw = readers._read_csv(path, "kpis", notes, [])
    if note is None:
        assert notes == []
    else:
        assert any(note in n for n in notes)
    assert raw is not None and len(raw.frame) == 1


@pytest.mark.parametrize("data", [b"", b" \n\t\r\n", "\u00a0\n".encode()])
def test_a_blank_csv_file_is_empty(tmp_path, data):
    from okr_analysis.io import readers

    (tmp_path / "teams.csv").write_bytes(data)
    raw = readers._read_csv(tmp_path / "teams.csv", "teams", [], [])
    assert raw is not None and raw.frame.shape == (0, 0)


@pytest.mark.parametrize("sort", [False, True])
def test_factorizing_runs_of_equal_cells_is_pd_factorize(sort):
    """``_factorize`` (the first cell of each run of equal cells) gives ``pd.factorize``'s codes and uniques:
    ids in runs, with missing cells alone and in runs, and a column without runs."""
    from okr_analysis.io.coercion import _factorize

    rng = np.random.default_rng(3)
    runs = pd.Series(np.repeat(rng.choice(["t2", "t10", "t1", " t1", "Équipe", None], 300), rng.integers(1, 30, 300)),
                     dtype="str")
    for s in (runs, runs.iloc[::-1], pd.Series(rng.choice(["a", "b", None], 5_000), dtype="str")):
        codes, uniques = _factorize(s, sort=sort)
        ref_codes, ref_uniques = pd.factorize(s, sort=sort)
        assert np.array_equal(codes, ref_codes) and codes.dtype == ref_codes.dtype
        pd.testing.assert_index_equal(uniques, ref_uniques, exact=True)


@pytest.mark.parametrize("text", ['a,b\n"x","y"\n', 'a,b\n"x", "y"\n', 'a,b\n"x",\t"y"\n', 'a,b\nx y,"z"\n',
                                  'a,b\n"x y","z"\n', ' "a",b\n1,2\n', 'a,b\n"x",  \t "y"\n', 'a,b\n1,2\n',
                                  'a\tb\n"x"\t "y"\n', 'a,b\nx,y "z"\n'])
def test_the_blank_before_quote_check_is_the_regular_expression(text):
    from okr_analysis.io import readers

    data = text.encode()
    assert readers._blank_before_quote(data) == (readers._BLANK_BEFORE_QUOTE.search(data) is not None)
