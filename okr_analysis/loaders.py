"""Loading data sources into a validated :class:`~okr_analysis.Dataset`.

Sources: a folder of CSV or Parquet files named after the tables, an Excel
workbook with one sheet per table, a DuckDB database file, or any SQLAlchemy
URL. Whatever the source, the same data gives the same ``Dataset``.

Validation reports **every** problem at once, each as
``table(file):row: column: what is wrong — how to fix``, with row numbers as the
user sees them (the header is row 1 of a CSV file or sheet).
"""

from __future__ import annotations

import codecs
import io
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera import Check

from .dataset import Dataset
from .quarters import Quarter, _check_fiscal_year_start, quarter_of
from .schemas import REQUIRED_TABLES, TABLES, ColumnSpec, TableSpec

__all__ = ["load", "from_frames", "Problem", "ValidationError", "DataWarning"]

_EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls"}
_DUCKDB_SUFFIXES = {".duckdb", ".ddb", ".db"}
_TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")
_MAX_PROBLEMS_PER_RULE = 50


class DataWarning(UserWarning):
    """A non-fatal problem in a data source (the data loaded, but look at this)."""


@dataclass(frozen=True)
class Problem:
    """One validation problem, located as precisely as the source allows."""

    table: str
    file: str
    row: int | None
    column: str | None
    message: str
    fix: str

    def __str__(self) -> str:
        where = self.file if self.table == "*" else f"{self.table}({self.file})"
        if self.row is not None:
            where += f":{self.row}"
        col = f" {self.column}:" if self.column else ""
        fix = f" — {self.fix}" if self.fix else ""
        return f"{where}:{col} {self.message}{fix}"


class ValidationError(ValueError):
    """A data source failed validation; ``problems`` lists every problem found."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = list(problems)
        n = len(self.problems)
        lines = [f"{n} problem{'s' if n != 1 else ''} in {source}:"]
        lines += [f"  {p}" for p in self.problems]
        super().__init__("\n".join(lines))


# ----------------------------------------------------------------------------------
# Reading raw tables
# ----------------------------------------------------------------------------------
@dataclass
class _Raw:
    """A raw table as read from the source, before typing."""

    name: str
    frame: pd.DataFrame
    file: str
    row_offset: int  # add to a 0-based position to get the row the user sees
    decimal_comma: bool = False  # numbers such as 4,5 (semicolon-separated files)


_UNREADABLE_FIX = "give a folder of CSV/Parquet files, an .xlsx workbook, a .duckdb file or a database URL"


def _redact_url(url: str) -> str:
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _sniff_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0 else ","


def _decode(raw: bytes, name: str, notes: list[str]) -> str:
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        notes.append(f"{name}: UTF-16 text; read as such. Save the file as UTF-8 (CSV UTF-8 in Excel) to be sure.")
        return raw.decode("utf-16")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text, encoding = raw.decode("cp1252"), "Windows-1252"
    except UnicodeDecodeError:
        text, encoding = raw.decode("latin-1"), "Latin-1"
    notes.append(f"{name}: not UTF-8; read as {encoding}. Save the file as UTF-8 to be sure of accents.")
    return text


def _read_csv(path: Path, table: str, notes: list[str], problems: list[Problem]) -> _Raw | None:
    raw = path.read_bytes()
    text = _decode(raw, path.name, notes) if raw.strip() else ""
    if not text.strip():
        return _Raw(table, pd.DataFrame(), path.name, 2)
    first = text.splitlines()[0]
    sep = "\t" if path.suffix == ".tsv" else _sniff_delimiter(first)
    if sep not in (",", "\t"):
        notes.append(f"{path.name}: columns are separated by {sep!r}; read that way (comma is the standard)"
                     + ("; numbers with a decimal comma (4,5) are read as 4.5." if sep == ";" else "."))
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, na_values=[],
                            skipinitialspace=True)
    except pd.errors.ParserError as exc:
        m = re.search(r"line (\d+)", str(exc))
        row = int(m.group(1)) if m else None
        detail = str(exc).strip().splitlines()[-1]
        problems.append(Problem(table, path.name, row, None, f"the row cannot be read ({detail})",
                                f"quote text that contains {sep!r}, or remove the extra {sep!r}"))
        return None
    return _Raw(table, frame, path.name, 2, decimal_comma=(sep == ";"))


def _read_folder(folder: Path, notes: list[str], problems: list[Problem]) -> dict[str, _Raw]:
    out: dict[str, _Raw] = {}
    for name in TABLES:
        candidates = [folder / f"{name}{s}" for s in _TABLE_SUFFIXES if (folder / f"{name}{s}").exists()]
        if not candidates:
            continue
        if len(candidates) > 1:
            notes.append(
                f"{name}: several files ({', '.join(c.name for c in candidates)}); using {candidates[0].name}."
            )
        path = candidates[0]
        if path.suffix in (".parquet", ".pq"):
            try:
                out[name] = _Raw(name, pd.read_parquet(path), path.name, 1)
            except Exception as exc:  # pyarrow raises several types for a damaged file
                problems.append(Problem(name, path.name, None, None,
                                        f"not a readable Parquet file ({exc.__class__.__name__})",
                                        "write the table again as Parquet, or as CSV"))
        else:
            raw = _read_csv(path, name, notes, problems)
            if raw is not None:
                out[name] = raw
    known = {f"{n}{s}" for n in TABLES for s in _TABLE_SUFFIXES}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix in _TABLE_SUFFIXES and p.name not in known:
            notes.append(f"{p.name}: not one of the tables ({', '.join(TABLES)}); ignored.")
    return out


def _read_excel(path: Path, notes: list[str], problems: list[Problem]) -> dict[str, _Raw]:
    try:
        sheets = pd.read_excel(path, sheet_name=None, dtype=object)
    except Exception as exc:  # openpyxl/zipfile raise several types for a damaged workbook
        problems.append(Problem("*", path.name, None, None, f"not a readable Excel workbook ({exc.__class__.__name__})",
                                "save it again from Excel as .xlsx, or export each sheet as CSV"))
        return {}
    out: dict[str, _Raw] = {}
    for sheet, frame in sheets.items():
        name = str(sheet).strip().lower()
        if name in TABLES:
            out[name] = _Raw(name, frame, f"{path.name}, sheet {sheet}", 2)
        else:
            notes.append(f"{path.name}: sheet {sheet!r} is not one of the tables; ignored.")
    return out


def _read_duckdb(path: Path, notes: list[str], problems: list[Problem]) -> dict[str, _Raw]:
    import duckdb

    try:
        con = duckdb.connect(str(path), read_only=True)
    except Exception as exc:  # duckdb raises several types for a non-database file
        problems.append(Problem("*", path.name, None, None, f"not a DuckDB database ({exc.__class__.__name__})",
                                "point to a file written by DuckDB, or to a folder of CSV files"))
        return {}
    try:
        names = {r[0].lower(): r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
        out = {}
        for name in TABLES:
            if name in names:
                frame = con.execute(f'SELECT * FROM "{names[name]}"').df()
                out[name] = _Raw(name, frame, path.name, 1)
        return out
    finally:
        con.close()


def _read_sql(url: str, notes: list[str], problems: list[Problem]) -> dict[str, _Raw]:
    import sqlalchemy as sa

    shown = _redact_url(url)
    try:
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            existing = {n.lower(): n for n in sa.inspect(conn).get_table_names()}
            out = {}
            for name in TABLES:
                if name in existing:
                    frame = pd.read_sql_table(existing[name], conn)
                    out[name] = _Raw(name, frame, shown, 1)
        engine.dispose()
        return out
    except (sa.exc.SQLAlchemyError, ImportError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        problems.append(Problem("*", shown, None, None,
                                f"cannot read the database ({exc.__class__.__name__}: {first_line})",
                                "check the URL, the server and the credentials"))
        return {}


def _read_source(source: Any, notes: list[str], problems: list[Problem]) -> tuple[str, dict[str, _Raw]]:
    if isinstance(source, str) and "://" in source:
        if source.startswith("duckdb:///"):
            path = Path(source[len("duckdb:///"):])
            return str(path), _read_duckdb(path, notes, problems)
        return _redact_url(source), _read_sql(source, notes, problems)
    path = Path(source)
    shown = str(path)
    if not path.exists():
        problems.append(Problem("*", shown, None, None, "the source does not exist", _UNREADABLE_FIX))
        return shown, {}
    if path.is_dir():
        return shown, _read_folder(path, notes, problems)
    suffix = path.suffix.lower()
    if suffix in _EXCEL_SUFFIXES:
        return shown, _read_excel(path, notes, problems)
    if suffix in _DUCKDB_SUFFIXES:
        return shown, _read_duckdb(path, notes, problems)
    problems.append(Problem("*", path.name, None, None, f"unknown kind of source ({suffix or 'no extension'})",
                            _UNREADABLE_FIX))
    return shown, {}


# ----------------------------------------------------------------------------------
# Typing
# ----------------------------------------------------------------------------------
_MISSING_STRINGS = {"", "na", "n/a", "nan", "none", "null", "<na>", "nat"}
_TRUE = {"true", "t", "yes", "y", "1", "1.0"}
_FALSE = {"false", "f", "no", "n", "0", "0.0"}


def _as_text_each(s: pd.Series) -> pd.Series:
    """:func:`_as_text` cell by cell (the reference path; used for mixed-type columns)."""
    if pd.api.types.is_float_dtype(s):
        # ids stored as numbers (Parquet, Excel): 7.0 -> "7"
        txt = s.map(lambda v: None if pd.isna(v) else (str(int(v)) if float(v).is_integer() else repr(float(v))))
    else:
        txt = s.map(lambda v: None if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v))
    txt = txt.astype("str").str.strip()
    return txt.mask(txt.str.lower().isin(_MISSING_STRINGS) | txt.isna())


def _as_text(s: pd.Series) -> pd.Series:
    """Strings with surrounding blanks removed; empty and NA-like cells become missing.

    Large columns of one type (text, or numbers) are converted once per distinct value and
    spread back by position (ids, metrics and dates repeat a lot); mixed-type columns
    (Excel) go cell by cell. Both give the same result.
    """
    if len(s) < 1_000:
        return _as_text_each(s)
    if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) not in ("string", "empty"):
        return _as_text_each(s)
    if not (s.dtype == object or pd.api.types.is_string_dtype(s) or pd.api.types.is_float_dtype(s)):
        return _as_text_each(s)
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    if len(uniques) > len(s) // 2:
        return _as_text_each(s)
    text = _as_text_each(pd.Series(uniques, dtype=s.dtype if s.dtype != object else object))
    out = text.array.take(codes, allow_fill=True)
    return pd.Series(out, index=s.index, dtype=text.dtype)


_MAX_TEXT = 2_000  # characters kept of a text cell (titles, comments, names)
_MAX_ID = 200  # characters allowed in an id


class _Typer:
    """Converts raw columns to their documented types, collecting problems."""

    def __init__(self, raw: _Raw, problems: list[Problem], notes: list[str]):
        self.raw = raw
        self.problems = problems
        self.notes = notes

    def bad(self, mask: pd.Series, column: str, message: Callable[[Any], str], fix: str, values: pd.Series) -> None:
        idx = np.flatnonzero(mask.to_numpy())
        for i in idx[:_MAX_PROBLEMS_PER_RULE]:
            self.problems.append(
                Problem(self.raw.name, self.raw.file, int(i) + self.raw.row_offset, column, message(values.iloc[i]), fix)
            )
        if len(idx) > _MAX_PROBLEMS_PER_RULE:
            self.problems.append(Problem(self.raw.name, self.raw.file, None, column,
                                         f"… and {len(idx) - _MAX_PROBLEMS_PER_RULE} more rows like these", ""))

    def convert(self, spec: ColumnSpec, s: pd.Series, fiscal_year_start: int) -> pd.Series:
        kind = spec.kind
        if kind == "id":
            text = _as_text(s)
            long = text.str.len() > _MAX_ID
            if long.any():
                self.bad(long.fillna(False), spec.name,
                         lambda v: f"id is {len(v):,} characters long", f"use ids of at most {_MAX_ID} characters",
                         text)
            return text
        if kind == "text":
            text = _as_text(s)
            long = (text.str.len() > _MAX_TEXT).fillna(False)
            if long.any():
                rows = ", ".join(str(int(i) + self.raw.row_offset) for i in np.flatnonzero(long.to_numpy())[:5])
                self.notes.append(f"{self.raw.name}({self.raw.file}): {spec.name}: {int(long.sum())} cell(s) longer "
                                  f"than {_MAX_TEXT:,} characters (rows {rows}) were cut to {_MAX_TEXT:,} characters.")
                text = text.where(~long, text.str.slice(0, _MAX_TEXT - 1) + "…")
            return text
        if kind == "enum":
            return _as_text(s).str.lower()
        if kind in ("float", "int"):
            if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
                num = s.astype("float64")
            else:
                text = _as_text(s)
                if self.raw.decimal_comma:
                    text = text.str.replace(r"^([-+]?\d+),(\d+)$", r"\1.\2", regex=True)
                num = pd.to_numeric(text, errors="coerce").astype("float64")
                unparsed = text.notna() & num.isna()
                if unparsed.any():
                    self.bad(unparsed, spec.name, lambda v: f"{v!r} is not a number",
                             "write plain numbers with a dot for decimals and no thousands separators (1234.5)",
                             text)
            nonfinite = num.notna() & ~np.isfinite(num.to_numpy(dtype="float64", na_value=np.nan))
            if nonfinite.any():
                self.bad(nonfinite, spec.name, lambda v: f"{v} is not a finite number",
                         "replace infinite values with a real measurement or leave the cell empty", num)
                num = num.mask(nonfinite)
            if kind == "int":
                frac = num.notna() & (num != np.floor(num.fillna(0)))
                if frac.any():
                    self.bad(frac, spec.name, lambda v: f"{v} is not a whole number", "use a whole number", num)
                return num.where(~frac).round().astype("Int64")
            return num
        if kind == "date":
            if pd.api.types.is_datetime64_any_dtype(s):
                d = s
                if getattr(d.dt, "tz", None) is not None:
                    d = d.dt.tz_localize(None)
                return d.dt.normalize().astype("datetime64[ns]")
            text = _as_text(s)
            d = pd.to_datetime(text, format="ISO8601", errors="coerce")
            unparsed = text.notna() & d.isna()
            if unparsed.any():
                self.bad(unparsed, spec.name, lambda v: f"{v!r} is not a date",
                         "write dates as YYYY-MM-DD (e.g. 2026-07-15)", text)
            return d.dt.normalize().astype("datetime64[ns]")
        if kind == "bool":
            if pd.api.types.is_bool_dtype(s):
                return s.astype("boolean")
            text = _as_text(s).str.lower()
            out = pd.Series(pd.NA, index=s.index, dtype="boolean")
            out[text.isin(_TRUE)] = True
            out[text.isin(_FALSE)] = False
            unparsed = text.notna() & out.isna()
            if unparsed.any():
                self.bad(unparsed, spec.name, lambda v: f"{v!r} is not true or false", "write true or false", text)
            return out
        if kind == "quarter":
            text = _as_text(s)
            labels: dict[str, str | None] = {}
            for v in text.dropna().unique():
                try:
                    labels[v] = Quarter.parse(v, fiscal_year_start=fiscal_year_start).label
                except ValueError:
                    labels[v] = None
            q = text.map(labels).astype("str")
            unparsed = text.notna() & q.isna()
            if unparsed.any():
                self.bad(unparsed, spec.name, lambda v: f"{v!r} is not a quarter",
                         "write quarters as 2026Q3, 2026-Q3 or Q3 2026", text)
            return q
        raise AssertionError(f"unknown column kind {kind}")  # pragma: no cover


def _type_table(raw: _Raw, spec: TableSpec, problems: list[Problem], notes: list[str],
                fiscal_year_start: int) -> pd.DataFrame:
    frame = raw.frame
    frame = frame.rename(columns=lambda c: str(c).strip().lower().lstrip("\ufeff"))
    if frame.columns.duplicated().any():
        dups = sorted(set(frame.columns[frame.columns.duplicated()]))
        problems.append(Problem(raw.name, raw.file, 1 if raw.row_offset == 2 else None, ", ".join(dups),
                                "column appears more than once", "keep one column of each name"))
        frame = frame.loc[:, ~frame.columns.duplicated()]
    unknown = [c for c in frame.columns if c not in spec.column_names]
    if unknown:
        notes.append(
            f"{raw.name}({raw.file}): unknown column{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(unknown)} ignored (expected: {', '.join(spec.column_names)})."
        )
    missing = [c.name for c in spec.columns if c.required and c.name not in frame.columns]
    merged = any(str(c).startswith("unnamed:") for c in frame.columns)
    for c in missing:
        fix = (f"add a column named {c} (the table needs: "
               f"{', '.join(x.name for x in spec.columns if x.required)})")
        if merged:
            fix += "; some header cells are empty or merged: unmerge them so every column has its own name in row 1"
        problems.append(Problem(raw.name, raw.file, 1 if raw.row_offset == 2 else None, c,
                                "required column is missing", fix))
    if missing:
        return pd.DataFrame(columns=spec.column_names)
    frame = frame.reset_index(drop=True)
    typer = _Typer(raw, problems, notes)
    out = {}
    for col in spec.columns:
        if col.name in frame.columns:
            out[col.name] = typer.convert(col, frame[col.name], fiscal_year_start)
        else:
            out[col.name] = typer.convert(col, pd.Series([None] * len(frame), dtype=object), fiscal_year_start)
        if col.default is not None:
            out[col.name] = out[col.name].fillna(col.default)
    typed = pd.DataFrame(out, index=frame.index)
    for col in spec.columns:
        if col.kind == "bool":
            typed[col.name] = typed[col.name].fillna(bool(col.default)).astype("bool")
    return typed


def _empty_table(spec: TableSpec) -> pd.DataFrame:
    dtypes = {"id": "str", "text": "str", "enum": "str", "quarter": "str", "float": "float64",
              "int": "Int64", "date": "datetime64[ns]", "bool": "bool"}
    return pd.DataFrame({c.name: pd.Series([], dtype=dtypes[c.kind]) for c in spec.columns})


# ----------------------------------------------------------------------------------
# Rules within a table (pandera)
# ----------------------------------------------------------------------------------
def _pandera_schema(spec: TableSpec) -> tuple[pa.DataFrameSchema, dict[tuple[str, int], tuple[str, str]]]:
    """Schema for the typed table plus a map (column, check_number) -> (message, fix)."""
    columns = {}
    hints: dict[tuple[str, int], tuple[str, str]] = {}
    for c in spec.columns:
        checks = []
        if c.choices:
            checks.append(Check.isin(list(c.choices)))
            hints[(c.name, len(checks) - 1)] = ("{v!r} is not allowed", f"use one of: {', '.join(c.choices)}")
        if c.min is not None:
            checks.append(Check.gt(c.min) if c.min_exclusive else Check.ge(c.min))
            op = ">" if c.min_exclusive else "≥"
            hints[(c.name, len(checks) - 1)] = (f"{{v}} is out of range (must be {op} {c.min:g})", c.fix)
        if c.max is not None:
            checks.append(Check.le(c.max))
            hints[(c.name, len(checks) - 1)] = (f"{{v}} is out of range (must be ≤ {c.max:g})", c.fix)
        columns[c.name] = pa.Column(
            None, checks=checks, nullable=not c.required,
            unique=(spec.key == (c.name,)),
        )
    return pa.DataFrameSchema(columns, report_duplicates="all"), hints


def _fmt(value: Any) -> Any:
    """Numbers as the user wrote them (0 rather than 0.0); other values unchanged."""
    if isinstance(value, (float, np.floating)) and np.isfinite(value):
        return f"{float(value):g}"
    return value


def _check_compound_key(raw: _Raw, spec: TableSpec, typed: pd.DataFrame, problems: list[Problem]) -> None:
    key = list(spec.key)
    complete = typed[key].notna().all(axis=1)
    dup = complete & typed.duplicated(subset=key, keep=False)
    if not dup.any():
        return
    first_row = {}
    for i, row in _rows(raw, dup):
        values = tuple(typed[c].iloc[i] for c in key)
        shown = ", ".join(v.date().isoformat() if isinstance(v, pd.Timestamp) else str(v) for v in values)
        if values not in first_row:
            first_row[values] = row
            continue
        if len(first_row) + len(problems) > 10 * _MAX_PROBLEMS_PER_RULE:
            break
        problems.append(Problem(raw.name, raw.file, row, ", ".join(key),
                                f"({shown}) appears again (first on row {first_row[values]})",
                                f"keep one row per {', '.join(key)}"))


def _check_table_rules(raw: _Raw, spec: TableSpec, typed: pd.DataFrame, problems: list[Problem]) -> None:
    if len(spec.key) > 1:
        _check_compound_key(raw, spec, typed, problems)
    schema, hints = _pandera_schema(spec)
    try:
        schema.validate(typed, lazy=True)
        return
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
    per_rule: dict[tuple, int] = {}
    for case in cases.itertuples(index=False):
        col, check, idx = case.column, str(case.check), case.index
        row = None if pd.isna(idx) else int(idx) + raw.row_offset
        if check == "not_nullable":
            msg, fix = "required value is empty", f"fill in {col} on every row"
            if col in (c.name for c in spec.columns if c.kind in ("date", "float", "int", "quarter")):
                # unparseable values were already reported with their text
                if any(p.table == raw.name and p.row == row and p.column == col for p in problems):
                    continue
        elif check == "field_uniqueness":
            msg, fix = f"duplicate {col} {case.failure_case!r}", f"give every row its own {col}"
        else:
            num = case.check_number
            template, fix = hints.get((col, int(num)) if num is not None and not pd.isna(num) else (col, -1),
                                      ("{v!r} failed " + check, ""))
            msg = template.format(v=_fmt(case.failure_case))
        key = (col, check)
        per_rule[key] = per_rule.get(key, 0) + 1
        if per_rule[key] == _MAX_PROBLEMS_PER_RULE + 1:
            problems.append(Problem(raw.name, raw.file, None, col, "… and more rows like these", ""))
        if per_rule[key] > _MAX_PROBLEMS_PER_RULE:
            continue
        problems.append(Problem(raw.name, raw.file, row, col, msg, fix))


# ----------------------------------------------------------------------------------
# Rules across tables
# ----------------------------------------------------------------------------------
def _rows(raw: _Raw, mask: pd.Series) -> list[tuple[int, int]]:
    idx = np.flatnonzero(mask.to_numpy())
    return [(int(i), int(i) + raw.row_offset) for i in idx]


def _check_references(t: dict[str, pd.DataFrame], raws: dict[str, _Raw], problems: list[Problem]) -> None:
    refs = [
        ("teams", "parent_team_id", "teams", "team_id", "use a team_id from the teams table, or leave it empty for the root"),
        ("objectives", "team_id", "teams", "team_id", "use a team_id from the teams table"),
        ("objectives", "parent_objective_id", "objectives", "objective_id", "use an objective_id from the objectives table, or leave it empty"),
        ("key_results", "objective_id", "objectives", "objective_id", "use an objective_id from the objectives table"),
        ("key_results", "metric", "metrics", "metric", "add the metric to the metrics table, or leave it empty"),
        ("checkins", "kr_id", "key_results", "kr_id", "use a kr_id from the key_results table"),
        ("kpis", "team_id", "teams", "team_id", "use a team_id from the teams table"),
        ("kpis", "metric", "metrics", "metric", "add the metric to the metrics table"),
        ("benchmarks", "metric", "metrics", "metric", "add the metric to the metrics table"),
    ]
    for table, col, target, tcol, fix in refs:
        if table not in t or target not in t:
            continue
        values = t[table][col]
        known = set(t[target][tcol].dropna())
        dangling = values.notna() & ~values.isin(known)
        if not dangling.any():
            continue
        raw = raws[table]
        shown = 0
        # one problem per distinct missing value per row, but cap the listing
        for i, row in _rows(raw, dangling):
            if shown == _MAX_PROBLEMS_PER_RULE:
                problems.append(Problem(table, raw.file, None, col,
                                        f"… and {int(dangling.sum()) - shown} more rows like these", ""))
                break
            problems.append(Problem(table, raw.file, row, col,
                                    f"{values.iloc[i]!r} is not in {target}.{tcol}", fix))
            shown += 1


def _find_cycles(ids: pd.Series, parents: pd.Series) -> list[list[str]]:
    parent = {i: p for i, p in zip(ids, parents) if isinstance(i, str) and isinstance(p, str)}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []
    for start in parent:
        path, node = [], start
        while node in parent and state.get(node, 0) == 0:
            state[node] = 1
            path.append(node)
            node = parent[node]
        if node in parent and state.get(node) == 1 and node in path:
            cycles.append(path[path.index(node):])
        for n in path:
            state[n] = 2
    return cycles


def _check_cycles(t: dict[str, pd.DataFrame], raws: dict[str, _Raw], problems: list[Problem]) -> None:
    for table, id_col, parent_col, what in (
        ("teams", "team_id", "parent_team_id", "team tree"),
        ("objectives", "objective_id", "parent_objective_id", "objective alignment"),
    ):
        if table not in t:
            continue
        frame = t[table]
        for cycle in _find_cycles(frame[id_col], frame[parent_col]):
            first = frame.index[frame[id_col] == cycle[0]][0]
            chain = " → ".join(cycle + [cycle[0]])
            problems.append(Problem(table, raws[table].file, int(first) + raws[table].row_offset, parent_col,
                                    f"cycle in the {what}: {chain}",
                                    f"make one of these point to a {'higher-level team' if table == 'teams' else 'parent objective'} "
                                    "outside the loop, or leave it empty"))


def _check_key_results(t: dict[str, pd.DataFrame], raws: dict[str, _Raw], problems: list[Problem],
                       notes: list[str]) -> None:
    if "key_results" not in t:
        return
    kr, raw = t["key_results"], raws["key_results"]
    moving = kr["direction"].isin(["increase", "decrease"])
    for i, row in _rows(raw, moving & kr["baseline"].isna()):
        problems.append(Problem("key_results", raw.file, row, "baseline",
                                f"{kr['direction'].iloc[i]} key result {kr['kr_id'].iloc[i]!r} has no baseline",
                                "give the value the key result starts from"))
    wrong_inc = (kr["direction"] == "increase") & (kr["target"] < kr["baseline"])
    wrong_dec = (kr["direction"] == "decrease") & (kr["target"] > kr["baseline"])
    for mask, word, fix in ((wrong_inc, "below", "use direction decrease, or swap baseline and target"),
                            (wrong_dec, "above", "use direction increase, or swap baseline and target")):
        for i, row in _rows(raw, mask):
            problems.append(Problem("key_results", raw.file, row, "target",
                                    f"{kr['direction'].iloc[i]} key result {kr['kr_id'].iloc[i]!r} has its target "
                                    f"({kr['target'].iloc[i]:g}) {word} its baseline ({kr['baseline'].iloc[i]:g})", fix))
    same = moving & (kr["target"] == kr["baseline"])
    for i, row in _rows(raw, same):
        notes.append(f"key_results({raw.file}):{row}: target: key result {kr['kr_id'].iloc[i]!r} has target equal to "
                     "its baseline, so progress cannot be measured; it is loaded, left unscored and flagged by "
                     "`okr-analysis lint` (KR_UNMEASURABLE). Set a target different from the baseline.")


def _check_warnings(t: dict[str, pd.DataFrame], raws: dict[str, _Raw], notes: list[str], fiscal_year_start: int) -> None:
    if {"checkins", "key_results", "objectives"} <= t.keys():
        ci = t["checkins"].reset_index().merge(
            t["key_results"][["kr_id", "objective_id"]], on="kr_id", how="left"
        ).merge(t["objectives"][["objective_id", "quarter"]], on="objective_id", how="left")
        ci = ci[ci["date"].notna() & ci["quarter"].notna()]
        outside = quarter_of(ci["date"], fiscal_year_start=fiscal_year_start) != ci["quarter"]
        if outside.any():
            bad = ci[outside.to_numpy()]
            raw = raws["checkins"]
            rows = ", ".join(str(int(i) + raw.row_offset) for i in bad["index"].head(10))
            more = f" (and {len(bad) - 10} more)" if len(bad) > 10 else ""
            notes.append(f"checkins({raw.file}): {len(bad)} check-in(s) dated outside their objective's quarter, "
                         f"rows {rows}{more}; they are ignored when scoring that quarter.")
    if "kpis" in t and len(t["kpis"]):
        gaps = _kpi_gaps(t["kpis"])
        if len(gaps):
            sample = "; ".join(f"{tm}/{m}: {n}" for (tm, m), n in gaps.head(5).items())
            more = f" and {len(gaps) - 5} more series" if len(gaps) > 5 else ""
            notes.append(f"kpis({raws['kpis'].file}): {len(gaps)} KPI series have gaps (missing periods: "
                         f"{sample}{more}); analyses resample and treat gaps as missing.")


def _kpi_gaps(kpis: pd.DataFrame) -> pd.Series:
    """Missing periods per (team_id, metric) series with any, in team/metric order.

    A series' period is the median step between its dates; a step of k periods counts k - 1
    missing ones. Vectorised over all series at once (the same numbers as :func:`_gap_count`
    applied series by series).
    """
    k = kpis[["team_id", "metric", "date"]].dropna()
    if not len(k):
        return pd.Series([], dtype="int64")
    tc, teams = pd.factorize(k["team_id"], sort=True)
    mc, metrics = pd.factorize(k["metric"], sort=True)
    key = tc.astype("int64") * len(metrics) + mc
    days = k["date"].to_numpy().astype("datetime64[D]").astype("int64")
    order = np.lexsort((days, key))
    key, days = key[order], days[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    sizes = np.diff(np.r_[starts, len(key)])
    d = np.diff(days)
    same = key[1:] == key[:-1]
    dkey = key[1:][same]
    d = d[same]
    step = pd.Series(d).groupby(dkey, sort=True).median()
    ok = step.index[(step.to_numpy() > 0)]
    group_size = pd.Series(sizes, index=key[starts])
    ok = ok[group_size.reindex(ok).to_numpy() >= 3]
    stepd = step.reindex(dkey).to_numpy()
    use = np.isin(dkey, ok.to_numpy())
    missing = np.maximum(np.round(d[use] / stepd[use]) - 1, 0)
    per = pd.Series(missing, dtype="float64").groupby(dkey[use], sort=True).sum().astype("int64")
    per = per[per > 0]
    idx = per.index.to_numpy()
    return pd.Series(per.to_numpy(), index=pd.MultiIndex.from_arrays(
        [teams.take(idx // len(metrics)), metrics.take(idx % len(metrics))]))


def _gap_count(dates: pd.Series) -> int:
    if len(dates) < 3:
        return 0
    d = np.diff(dates.to_numpy().astype("datetime64[D]").astype("int64"))
    step = np.median(d)
    if step <= 0:
        return 0
    return int(np.sum(np.maximum(np.round(d / step) - 1, 0)))


# ----------------------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------------------
def _build(raws: dict[str, _Raw], *, fiscal_year_start: int, source: str, notes: list[str],
           problems: list[Problem] | None = None) -> Dataset:
    problems = [] if problems is None else problems
    if any(p.table == "*" for p in problems):  # the source itself could not be read
        raise ValidationError(source, problems)
    unreadable = {p.table for p in problems}
    for name in REQUIRED_TABLES:
        if name not in raws and name not in unreadable:
            problems.append(Problem(name, source, None, None, "table is missing",
                                    f"add {name}.csv (or a sheet/table named {name}) with columns "
                                    f"{', '.join(TABLES[name].column_names)}"))
    typed: dict[str, pd.DataFrame] = {}
    for name, raw in raws.items():
        spec = TABLES[name]
        if raw.frame.shape[1] == 0:
            problems.append(Problem(name, raw.file, None, None, "file is empty",
                                    f"write a header row ({', '.join(spec.column_names)}) and the data"))
            continue
        before = len(problems)
        frame = _type_table(raw, spec, problems, notes, fiscal_year_start)
        if len(frame) == 0 and len(problems) == before and name in REQUIRED_TABLES:
            problems.append(Problem(name, raw.file, None, None, "table has a header but no rows",
                                    f"add at least one row of {name}"))
        if len(problems) == before or not any(p.column in spec.column_names and p.row is None and p.message ==
                                              "required column is missing" for p in problems[before:]):
            _check_table_rules(raw, spec, frame, problems)
        typed[name] = frame
    # a table that is missing, unreadable, empty or lacks a required column would make every reference
    # to it look dangling: leave it out of the cross-table rules (its own problem is already listed)
    broken = {p.table for p in problems if p.column is None or p.message == "required column is missing"}
    complete = {n: f for n, f in typed.items()
                if n not in broken and len(f) and all(c in f.columns for c in TABLES[n].column_names)}
    _check_references(complete, raws, problems)
    _check_cycles(complete, raws, problems)
    _check_key_results(complete, raws, problems, notes)
    if problems:
        raise ValidationError(source, problems)
    _check_warnings(complete, raws, notes, fiscal_year_start)
    for note in notes:
        warnings.warn(note, DataWarning, stacklevel=3)
    tables = {n: (typed[n] if n in typed else _empty_table(TABLES[n])).reset_index(drop=True) for n in TABLES}
    return Dataset(
        **{n: tables[n] for n in TABLES},
        fiscal_year_start=fiscal_year_start,
        source=source,
        warnings=tuple(notes),
    )


def from_frames(tables: Mapping[str, pd.DataFrame], *, fiscal_year_start: int = 1,
                source: str = "<frames>") -> Dataset:
    """Validate and type in-memory tables (a mapping of table name to DataFrame).

    Row numbers in messages count the first data row as 1.

    Raises
    ------
    ValidationError
        Listing every problem found.
    """
    _check_fiscal_year_start(fiscal_year_start)
    unknown = set(tables) - set(TABLES)
    notes: list[str] = [f"table {n!r} is not part of the data format; ignored." for n in sorted(unknown)]
    raws = {n: _Raw(n, f.copy(), n, 1) for n, f in tables.items() if n in TABLES}
    return _build(raws, fiscal_year_start=fiscal_year_start, source=source, notes=notes)


def load(source: "str | os.PathLike | Mapping[str, pd.DataFrame] | Dataset", *,
         fiscal_year_start: int = 1) -> Dataset:
    """Load and validate a data source.

    Parameters
    ----------
    source : path, URL, mapping or Dataset
        A folder of CSV or Parquet files named after the tables (``teams.csv``,
        ``objectives.csv`` …), an Excel workbook (``.xlsx``) with one sheet per
        table, a DuckDB database file (``.duckdb``), a SQLAlchemy URL such as
        ``postgresql+psycopg://user@host/db`` (tables by name), or a mapping of
        table names to DataFrames. A ``Dataset`` is returned as it is.
    fiscal_year_start : int, default 1
        Calendar month in which the fiscal year starts; quarters in the data
        are read in that calendar (``fiscal_year_start=2``: FY2027Q1 = Feb–Apr 2026).

    Returns
    -------
    Dataset

    Raises
    ------
    ValidationError
        When the source cannot be read or breaks a rule of the data format; its
        message lists every problem as ``table(file):row: column: what — fix``.

    Warns
    -----
    DataWarning
        For problems that do not stop loading: unknown columns (ignored),
        non-UTF-8 encodings, check-ins outside their quarter, gaps in KPI series.
    """
    if isinstance(source, Dataset):
        return source
    if isinstance(source, Mapping):
        return from_frames(source, fiscal_year_start=fiscal_year_start)
    _check_fiscal_year_start(fiscal_year_start)
    notes: list[str] = []
    problems: list[Problem] = []
    shown, raws = _read_source(source, notes, problems)
    return _build(raws, fiscal_year_start=fiscal_year_start, source=shown, notes=notes, problems=problems)


def iter_problems(err: ValidationError) -> Iterable[str]:
    """The problem lines of a validation error (for printing)."""
    return (str(p) for p in err.problems)
