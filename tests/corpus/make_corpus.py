"""Regenerate the broken-data corpus: ``python tests/corpus/make_corpus.py``.

Each case is a small folder (or file) under ``tests/corpus/`` built from the tiny valid organisation of
``tests/conftest.py`` with one thing broken. ``tests/test_corpus.py`` holds what each must produce.
The files are committed, so the corpus is what a user would hand us, not what this script means to write.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from conftest import tiny_tables  # noqa: E402


def write(tables, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False, date_format="%Y-%m-%d")
    return folder


def case(name: str):
    folder = HERE / name
    if folder.exists():
        shutil.rmtree(folder) if folder.is_dir() else folder.unlink()
    return folder


def set_cell(t, table, row, col, value):
    t[table][col] = t[table][col].astype(object)
    t[table].loc[row, col] = value


def main() -> None:
    t = tiny_tables(); t.pop("kpis"); write(t, case("missing_table"))
    t = tiny_tables(); t["key_results"] = t["key_results"].drop(columns=["direction"]); write(t, case("missing_column"))
    t = tiny_tables(); t["teams"]["employee_id"] = ["e1", "e2", "e3", "e4", "e5", "e6"]; write(t, case("extra_unknown_column"))

    f = write(tiny_tables(), case("semicolon_delimiter"))
    (f / "checkins.csv").write_text((f / "checkins.csv").read_text().replace(",", ";"))
    f = write(tiny_tables(), case("decimal_comma"))
    text = (f / "checkins.csv").read_text().replace(",", ";")
    (f / "checkins.csv").write_text(text.replace("4.75", "4,75"))
    f = write(tiny_tables(), case("tab_delimiter"))
    (f / "kpis.csv").write_text((f / "kpis.csv").read_text().replace(",", "\t"))
    f = write(tiny_tables(), case("utf8_bom"))
    (f / "teams.csv").write_bytes(b"\xef\xbb\xbf" + (f / "teams.csv").read_bytes())
    f = write(tiny_tables(), case("latin1_encoding"))
    (f / "teams.csv").write_bytes((f / "teams.csv").read_text().replace("Team One", "Équipe Numéro Un").encode("latin-1"))
    f = write(tiny_tables(), case("utf16_encoding"))
    (f / "objectives.csv").write_bytes((f / "objectives.csv").read_text().encode("utf-16"))

    t = tiny_tables(); set_cell(t, "checkins", 3, "date", "07/27/2026"); set_cell(t, "checkins", 4, "date", "3 Aug 2026")
    write(t, case("mixed_date_formats"))
    t = tiny_tables(); set_cell(t, "kpis", 2, "value", "1,250.5"); write(t, case("thousands_separator"))
    t = tiny_tables(); set_cell(t, "kpis", 2, "value", "4,5"); write(t, case("decimal_comma_in_comma_file"))
    f = write(tiny_tables(), case("empty_file")); (f / "objectives.csv").write_text("")
    f = write(tiny_tables(), case("header_only"))
    (f / "checkins.csv").write_text("kr_id,date,value,confidence,comment\n")
    (f / "teams.csv").write_text("team_id,team_name,parent_team_id,headcount\n")
    t = tiny_tables(); set_cell(t, "objectives", 3, "objective_id", "o1"); write(t, case("duplicate_ids"))
    t = tiny_tables(); t["kpis"] = pd.concat([t["kpis"], t["kpis"].iloc[[5]]], ignore_index=True)
    write(t, case("duplicate_kpi_rows"))
    t = tiny_tables(); set_cell(t, "key_results", 6, "objective_id", "o-gone"); write(t, case("dangling_reference"))
    t = tiny_tables(); set_cell(t, "teams", 1, "parent_team_id", "t2"); write(t, case("team_cycle"))
    t = tiny_tables(); set_cell(t, "objectives", 1, "parent_objective_id", "o2"); write(t, case("objective_cycle"))
    t = tiny_tables(); set_cell(t, "kpis", 7, "value", "inf"); set_cell(t, "kpis", 8, "value", "-Infinity")
    set_cell(t, "checkins", 0, "value", "NaN"); write(t, case("nan_inf_values"))
    t = tiny_tables(); set_cell(t, "key_results", 7, "target", 40); write(t, case("target_equals_baseline"))
    t = tiny_tables(); set_cell(t, "key_results", 7, "target", 20); write(t, case("direction_contradicts_target"))
    t = tiny_tables(); set_cell(t, "teams", 4, "headcount", -8); write(t, case("negative_headcount"))
    t = tiny_tables(); set_cell(t, "objectives", 2, "quarter", "2026Q5"); write(t, case("bad_quarter_label"))
    t = tiny_tables(); set_cell(t, "key_results", 1, "direction", "grow"); write(t, case("bad_enum"))
    t = tiny_tables(); set_cell(t, "checkins", 1, "comment", "very long comment " * 60_000)
    write(t, case("huge_single_cell"))
    t = tiny_tables(); set_cell(t, "teams", 2, "team_id", "x" * 500); write(t, case("huge_id"))
    f = write(tiny_tables(), case("ragged_row"))
    lines = (f / "teams.csv").read_text().splitlines()
    lines[3] = lines[3] + ",surplus,cells"
    (f / "teams.csv").write_text("\n".join(lines) + "\n")
    write(tiny_tables(), case("valid"))

    # Excel with merged header cells
    from openpyxl import Workbook

    path = case("merged_header.xlsx")
    wb = Workbook()
    wb.remove(wb.active)
    for name, frame in tiny_tables().items():
        ws = wb.create_sheet(name)
        ws.append(list(frame.columns))
        for row in frame.itertuples(index=False):
            ws.append([None if pd.isna(v) else (v.to_pydatetime() if isinstance(v, pd.Timestamp) else v) for v in row])
    ws = wb["key_results"]
    ws.merge_cells("C1:D1")  # title + direction merged: direction loses its name
    wb.save(path)

    case("not_a_database.duckdb").write_bytes(b"SQLite format 3\x00 but not really" + bytes(range(256)) * 8)
    case("not_a_workbook.xlsx").write_text("this is a CSV someone renamed to .xlsx\n1,2,3\n")


if __name__ == "__main__":
    main()
