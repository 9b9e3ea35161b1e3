"""The broken-data corpus (tests/corpus/): every case gives exit 1 with its precise message, or a documented
recovery (exit 0 with a warning); never a traceback; nothing written.

Regenerate the corpus with ``python tests/corpus/make_corpus.py``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from okr_analysis.cli import cli

CORPUS = Path(__file__).resolve().parent / "corpus"

# case -> (exit code, [substrings that must appear in the output, in this order of importance])
CASES: dict[str, tuple[int, list[str]]] = {
    "missing_table": (1, ["missing_table): table is missing — add kpis.csv (or a sheet/table named kpis) "
                          "with columns team_id, metric, date, value"]),
    "missing_column": (1, ["key_results(key_results.csv):1: direction: required column is missing — add a column "
                           "named direction", "1 problem in"]),
    "extra_unknown_column": (0, ["warning: teams(teams.csv): unknown column employee_id ignored"]),
    "semicolon_delimiter": (0, ["warning: checkins.csv: columns are separated by ';'; read that way"]),
    "decimal_comma": (0, ["numbers with a decimal comma (4,5) are read as 4.5"]),
    "tab_delimiter": (0, ["valid"]),
    "utf8_bom": (0, ["valid"]),
    "latin1_encoding": (0, ["warning: teams.csv: not UTF-8; read as Windows-1252. Save the file as UTF-8"]),
    "utf16_encoding": (0, ["warning: objectives.csv: UTF-16 text; read as such"]),
    "mixed_date_formats": (1, ["checkins(checkins.csv):5: date: '07/27/2026' is not a date — write dates as "
                               "YYYY-MM-DD", "checkins(checkins.csv):6: date: '3 Aug 2026' is not a date"]),
    "thousands_separator": (1, ["kpis(kpis.csv):4: value: '1,250.5' is not a number — write plain numbers with a "
                                "dot for decimals and no thousands separators"]),
    "decimal_comma_in_comma_file": (1, ["kpis(kpis.csv):4: value: '4,5' is not a number"]),
    "empty_file": (1, ["objectives(objectives.csv): file is empty — write a header row (objective_id, team_id, "
                       "quarter, title, parent_objective_id, kind)", "1 problem in"]),
    "header_only": (1, ["teams(teams.csv): table has a header but no rows",
                        "checkins(checkins.csv): table has a header but no rows", "2 problems in"]),
    "duplicate_ids": (1, ["objectives(objectives.csv):5: objective_id: duplicate objective_id 'o1' — give every "
                          "row its own objective_id"]),
    "duplicate_kpi_rows": (1, ["kpis(kpis.csv):782: team_id, metric, date: (t1, frt, 2025-08-11) appears again "
                               "(first on row 7) — keep one row per team_id, metric, date"]),
    "dangling_reference": (1, ["key_results(key_results.csv):8: objective_id: 'o-gone' is not in "
                               "objectives.objective_id — use an objective_id from the objectives table"]),
    "team_cycle": (1, ["parent_team_id: cycle in the team tree: d1 → t2 → d1"]),
    "objective_cycle": (1, ["objectives(objectives.csv):3: parent_objective_id: cycle in the objective alignment: "
                            "od1 → o2 → od1"]),
    "nan_inf_values": (1, ["kpis(kpis.csv):9: value: inf is not a finite number",
                           "kpis(kpis.csv):10: value: -inf is not a finite number",
                           "checkins(checkins.csv):2: value: required value is empty"]),
    "target_equals_baseline": (0, ["warning: key_results(key_results.csv):9: target: key result 'k2b' has target "
                                   "equal to its baseline", "KR_UNMEASURABLE"]),
    "direction_contradicts_target": (1, ["key_results(key_results.csv):9: target: increase key result 'k2b' has "
                                         "its target (20) below its baseline (40) — use direction decrease"]),
    "negative_headcount": (1, ["teams(teams.csv):6: headcount: -8 is out of range (must be ≥ 0)"]),
    "bad_quarter_label": (1, ["objectives(objectives.csv):4: quarter: '2026Q5' is not a quarter — write quarters "
                              "as 2026Q3, 2026-Q3 or Q3 2026"]),
    "bad_enum": (1, ["key_results(key_results.csv):3: direction: 'grow' is not allowed — use one of: increase, "
                     "decrease, maintain_at_least, maintain_at_most, milestone"]),
    "huge_single_cell": (0, ["warning: checkins(checkins.csv): comment: 1 cell(s) longer than 2,000 characters "
                             "(rows 3) were cut to 2,000 characters"]),
    "huge_id": (1, ["teams(teams.csv):4: team_id: id is 500 characters long — use ids of at most 200 characters"]),
    "ragged_row": (1, ["teams(teams.csv):4: the row cannot be read", "Expected 4 fields in line 4, saw 6"]),
    "merged_header.xlsx": (1, ["key_results(merged_header.xlsx, sheet key_results):1: direction: required column "
                               "is missing", "unmerge them so every column has its own name in row 1"]),
    "not_a_database.duckdb": (1, ["not_a_database.duckdb: not a DuckDB database", "point to a file written by "
                                  "DuckDB"]),
    "not_a_workbook.xlsx": (1, ["not_a_workbook.xlsx: not a readable Excel workbook"]),
    "valid": (0, ["valid"]),
}


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")) if path.is_dir() else [path]:
        if p.is_file():
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def test_the_corpus_has_at_least_25_broken_sources():
    broken = [c for c in CASES if c != "valid"]
    assert len(broken) >= 25
    on_disk = {p.name for p in CORPUS.iterdir() if p.name != "make_corpus.py" and not p.name.startswith(("_", "."))}
    assert on_disk == set(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_case(case, tmp_path, monkeypatch):
    exit_code, expected = CASES[case]
    source = CORPUS / case
    before = _digest(source)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["validate", str(source)], catch_exceptions=False)
    out = result.output
    assert result.exit_code == exit_code, out
    for text in expected:
        assert text in out, out
    assert "Traceback" not in out
    if exit_code == 1:
        assert "Fix the" in out and "run the command again" in out
    assert list(tmp_path.iterdir()) == [], "validate wrote something"
    assert _digest(source) == before, "the source was modified"
