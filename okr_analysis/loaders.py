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
from .quarters import Quarter, _check_fiscal_year_start, quarter_of, to_day
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

    def __reduce__(self):  # pickled with its problems (a batch loads its data in a child process)
        return (type(self), (self.source, self.problems))


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
    all_columns: tuple | None = None  # every column of the source table when only some were read


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


@dataclass(frozen=True)
class _Where:
    """Rows to read from one table: ``ids`` maps a column to the values to keep; ``dates``
    bounds the ``date`` column (inclusive). Readers may return more rows (a superset) but never
    fewer: the exact filter is applied again after typing."""

    ids: tuple[tuple[str, frozenset], ...] = ()
    dates: tuple[pd.Timestamp | None, pd.Timestamp | None] | None = None

    def widened(self) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        # a day either side: stored timestamps may carry a time or a zone; typing normalises them
        lo, hi = self.dates or (None, None)
        return (None if lo is None else lo - pd.Timedelta(days=1),
                None if hi is None else hi + pd.Timedelta(days=2))


_IN_CHUNK = 10_000  # values per IN (...) list: databases limit the number of bound parameters


def _chunks(values: frozenset) -> list[list[str]]:
    ordered = sorted(values)
    return [ordered[i:i + _IN_CHUNK] for i in range(0, len(ordered), _IN_CHUNK)] or [[]]


def _pick_columns(names: list[str], table: str) -> tuple[list[str], list[str]]:
    """Columns of the table to read (the known ones, as stored) and every column's name."""
    known = set(TABLES[table].column_names)
    return [n for n in names if str(n).strip().lower().lstrip("\ufeff") in known], list(names)


def _stored_name(names: list[str], column: str) -> str | None:
    for n in names:
        if str(n).strip().lower() == column:
            return n
    return None


class _Reader:
    """One open source: which tables it has, and reading one table (optionally filtered)."""

    shown: str = ""
    names: set[str] = set()

    def read(self, name: str, where: _Where | None) -> _Raw | None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass


class _FolderReader(_Reader):
    def __init__(self, folder: Path, notes: list[str], problems: list[Problem]):
        self.folder, self.notes, self.problems = folder, notes, problems
        self.shown = str(folder)
        self.paths: dict[str, Path] = {}
        for name in TABLES:
            candidates = [folder / f"{name}{s}" for s in _TABLE_SUFFIXES if (folder / f"{name}{s}").exists()]
            if not candidates:
                continue
            if len(candidates) > 1:
                notes.append(
                    f"{name}: several files ({', '.join(c.name for c in candidates)}); using {candidates[0].name}."
                )
            self.paths[name] = candidates[0]
        self.names = set(self.paths)
        known = {f"{n}{s}" for n in TABLES for s in _TABLE_SUFFIXES}
        self.ignored = [p.name for p in sorted(folder.iterdir())
                        if p.is_file() and p.suffix in _TABLE_SUFFIXES and p.name not in known]

    def read(self, name: str, where: _Where | None) -> _Raw | None:
        path = self.paths[name]
        if path.suffix in (".parquet", ".pq"):
            try:
                return self._read_parquet(path, name, where)
            except Exception as exc:  # pyarrow raises several types for a damaged file
                self.problems.append(Problem(name, path.name, None, None,
                                             f"not a readable Parquet file ({exc.__class__.__name__})",
                                             "write the table again as Parquet, or as CSV"))
                return None
        return _read_csv(path, name, self.notes, self.problems)  # filtered in memory after typing

    @staticmethod
    def _read_parquet(path: Path, name: str, where: _Where | None) -> _Raw:
        """Only the table's columns; with ``where``, only the row groups and rows that can match."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        schema = pq.read_schema(path)
        columns, all_names = _pick_columns(schema.names, name)
        expr = None
        if where is not None:
            conds = []
            for col, values in where.ids:
                stored = _stored_name(schema.names, col)
                if stored is not None and (pa.types.is_string(schema.field(stored).type)
                                           or pa.types.is_large_string(schema.field(stored).type)):
                    conds.append(pc.field(stored).isin(sorted(values)))
            stored = _stored_name(schema.names, "date")
            if where.dates is not None and stored is not None:
                ftype = schema.field(stored).type
                lo, hi = where.widened()
                if pa.types.is_date(ftype) or (pa.types.is_timestamp(ftype) and ftype.tz is None):
                    if lo is not None:
                        conds.append(pc.field(stored) >= pa.scalar(lo.to_pydatetime()).cast(ftype))
                    if hi is not None:
                        conds.append(pc.field(stored) < pa.scalar(hi.to_pydatetime()).cast(ftype))
            for c in conds:
                expr = c if expr is None else expr & c
        frame = pd.read_parquet(path, columns=columns, filters=expr)
        return _Raw(name, frame, path.name, 1, all_columns=tuple(all_names))

    def close(self) -> None:
        for name in self.ignored:
            self.notes.append(f"{name}: not one of the tables ({', '.join(TABLES)}); ignored.")


class _ExcelReader(_Reader):
    def __init__(self, path: Path, notes: list[str], problems: list[Problem]):
        self.shown = str(path)
        self.raws: dict[str, _Raw] = {}
        try:
            sheets = pd.read_excel(path, sheet_name=None, dtype=object)
        except Exception as exc:  # openpyxl/zipfile raise several types for a damaged workbook
            problems.append(Problem("*", path.name, None, None,
                                    f"not a readable Excel workbook ({exc.__class__.__name__})",
                                    "save it again from Excel as .xlsx, or export each sheet as CSV"))
            sheets = {}
        for sheet, frame in sheets.items():
            name = str(sheet).strip().lower()
            if name in TABLES:
                self.raws[name] = _Raw(name, frame, f"{path.name}, sheet {sheet}", 2)
            else:
                notes.append(f"{path.name}: sheet {sheet!r} is not one of the tables; ignored.")
        self.names = set(self.raws)

    def read(self, name: str, where: _Where | None) -> _Raw | None:
        return self.raws[name]  # a workbook is read whole; filtered in memory after typing


def _duckdb_fetch(con: Any, sql: str, params: list) -> pd.DataFrame:
    """Run one parameterised query on a DuckDB connection (a seam for tests to watch the SQL)."""
    return con.execute(sql, params).df()


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class _DuckDBReader(_Reader):
    def __init__(self, path: Path, notes: list[str], problems: list[Problem]):
        import duckdb

        self.shown = str(path)
        self.path = path
        self.con = None
        self.names = set()
        try:
            self.con = duckdb.connect(str(path), read_only=True)
        except Exception as exc:  # duckdb raises several types for a non-database file
            problems.append(Problem("*", path.name, None, None, f"not a DuckDB database ({exc.__class__.__name__})",
                                    "point to a file written by DuckDB, or to a folder of CSV files"))
            return
        self.stored = {r[0].lower(): r[0] for r in self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
        self.names = {n for n in TABLES if n in self.stored}

    def read(self, name: str, where: _Where | None) -> _Raw | None:
        table = self.stored[name]
        cols = self.con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position", [table]).fetchall()
        types = dict(cols)
        columns, all_names = _pick_columns([c for c, _ in cols], name)
        select = f"SELECT {', '.join(_quote(c) for c in columns)} FROM {_quote(table)}" if columns else \
            f"SELECT * FROM {_quote(table)}"
        conds: list[str] = []
        params: list = []
        if where is not None:
            for col, values in where.ids:
                stored = _stored_name(list(types), col)
                if stored is not None and types[stored].upper() in ("VARCHAR", "TEXT", "STRING"):
                    conds.append(f"{_quote(stored)} IN (SELECT unnest(?))")
                    params.append(sorted(values))
            stored = _stored_name(list(types), "date")
            if where.dates is not None and stored is not None and (
                    types[stored].upper() == "DATE" or types[stored].upper().startswith("TIMESTAMP")):
                lo, hi = where.widened()
                if lo is not None:
                    conds.append(f"{_quote(stored)} >= ?")
                    params.append(lo.to_pydatetime())
                if hi is not None:
                    conds.append(f"{_quote(stored)} < ?")
                    params.append(hi.to_pydatetime())
        # a filtered scan runs in parallel: order by rowid to keep the table's order
        sql = select + (" WHERE " + " AND ".join(conds) + " ORDER BY rowid" if conds else "")
        frame = _duckdb_fetch(self.con, sql, params)
        return _Raw(name, frame, self.path.name, 1, all_columns=tuple(all_names))

    def close(self) -> None:
        if self.con is not None:
            self.con.close()


class _SQLReader(_Reader):
    def __init__(self, url: str, notes: list[str], problems: list[Problem]):
        import sqlalchemy as sa

        self.sa = sa
        self.shown = _redact_url(url)
        self.problems = problems
        self.engine = self.conn = None
        self.names = set()
        try:
            self.engine = sa.create_engine(url)
            self.conn = self.engine.connect()
            self.stored = {n.lower(): n for n in sa.inspect(self.conn).get_table_names()}
            self.names = {n for n in TABLES if n in self.stored}
        except (sa.exc.SQLAlchemyError, ImportError) as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        self.problems.append(Problem("*", self.shown, None, None,
                                     f"cannot read the database ({exc.__class__.__name__}: {first_line})",
                                     "check the URL, the server and the credentials"))
        self.names = set()

    def read(self, name: str, where: _Where | None) -> _Raw | None:
        sa = self.sa
        try:
            table = sa.Table(self.stored[name], sa.MetaData(), autoload_with=self.conn)
            columns, all_names = _pick_columns([c.name for c in table.columns], name)
            stmt = sa.select(*[table.c[c] for c in columns]) if columns else sa.select(table)
            chunked: tuple[sa.Column, list[list[str]]] | None = None
            if where is not None:
                for col, values in where.ids:
                    stored = _stored_name(list(table.c.keys()), col)
                    if stored is None or not isinstance(table.c[stored].type, sa.String):
                        continue
                    if chunked is None and len(values) > _IN_CHUNK:
                        chunked = (table.c[stored], _chunks(values))
                    else:
                        stmt = stmt.where(table.c[stored].in_(sorted(values)))
                stored = _stored_name(list(table.c.keys()), "date")
                if where.dates is not None and stored is not None and \
                        isinstance(table.c[stored].type, (sa.Date, sa.DateTime)):
                    lo, hi = where.widened()
                    if lo is not None:
                        stmt = stmt.where(table.c[stored] >= lo.to_pydatetime())
                    if hi is not None:
                        stmt = stmt.where(table.c[stored] < hi.to_pydatetime())
            if chunked is None:
                frame = pd.read_sql(stmt, self.conn)
            else:
                col, parts = chunked
                frame = pd.concat([pd.read_sql(stmt.where(col.in_(part)), self.conn) for part in parts],
                                  ignore_index=True)
            return _Raw(name, frame, self.shown, 1, all_columns=tuple(all_names))
        except (sa.exc.SQLAlchemyError, ImportError) as exc:
            self._fail(exc)
            return None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        if self.engine is not None:
            self.engine.dispose()


def _open_source(source: Any, notes: list[str], problems: list[Problem]) -> _Reader | None:
    if isinstance(source, str) and "://" in source:
        if source.startswith("duckdb:///"):
            return _DuckDBReader(Path(source[len("duckdb:///"):]), notes, problems)
        return _SQLReader(source, notes, problems)
    path = Path(source)
    shown = str(path)
    if not path.exists():
        problems.append(Problem("*", shown, None, None, "the source does not exist", _UNREADABLE_FIX))
        return None
    if path.is_dir():
        return _FolderReader(path, notes, problems)
    suffix = path.suffix.lower()
    if suffix in _EXCEL_SUFFIXES:
        return _ExcelReader(path, notes, problems)
    if suffix in _DUCKDB_SUFFIXES:
        return _DuckDBReader(path, notes, problems)
    problems.append(Problem("*", path.name, None, None, f"unknown kind of source ({suffix or 'no extension'})",
                            _UNREADABLE_FIX))
    return None


def _source_name(source: Any) -> str:
    if isinstance(source, str) and "://" in source:
        if source.startswith("duckdb:///"):
            return str(Path(source[len("duckdb:///"):]))
        return _redact_url(source)
    return str(Path(source))


def _raw_ids(raw: _Raw | None, column: str) -> frozenset | None:
    """The distinct ids of a raw column as typing will read them, or None when it is absent."""
    if raw is None:
        return None
    stored = _stored_name(list(raw.frame.columns), column)
    if stored is None or isinstance(raw.frame[stored], pd.DataFrame):
        return None
    return frozenset(_as_text(raw.frame[stored]).dropna().unique())


def _read_source(source: Any, notes: list[str], problems: list[Problem],
                 scope: "_Scope | None" = None) -> tuple[str, dict[str, _Raw]]:
    """Read every table of the source; with a scope, push its filters down table by table."""
    shown = _source_name(source)
    reader = _open_source(source, notes, problems)
    if reader is None:
        return shown, {}
    out: dict[str, _Raw] = {}
    try:
        def read(name: str, where: _Where | None) -> None:
            if name in reader.names:
                raw = reader.read(name, where)
                if raw is not None:
                    out[name] = raw

        if scope is None or not scope.active:
            for name in TABLES:
                read(name, None)
            return shown, out
        for name in ("teams", "metrics", "benchmarks"):  # small: read whole
            read(name, None)
        team_ids = scope.resolve_teams(out.get("teams"))
        dates = (scope.start, scope.end) if scope.start is not None or scope.end is not None else None
        by_team = (("team_id", team_ids),) if team_ids is not None else ()
        read("objectives", _Where(by_team) if by_team else None)
        obj_ids = scope.objective_ids(out.get("objectives"))
        read("key_results", _Where((("objective_id", obj_ids),)) if obj_ids is not None else None)
        kr_ids = _raw_ids(out.get("key_results"), "kr_id") if obj_ids is not None else None
        read("checkins", _Where((("kr_id", kr_ids),) if kr_ids is not None else (), dates))
        read("kpis", _Where(by_team, dates))
        return shown, out
    finally:
        reader.close()


# ----------------------------------------------------------------------------------
# Filters (pushed down to the source where it can filter)
# ----------------------------------------------------------------------------------
def _descendants(ids: Iterable, parents: Iterable, roots: Iterable[str]) -> frozenset:
    kids: dict[str, list[str]] = {}
    for tid, p in zip(ids, parents):
        if isinstance(tid, str) and isinstance(p, str):
            kids.setdefault(p, []).append(tid)
    out: set[str] = set()
    stack = list(roots)
    while stack:
        t = stack.pop()
        if t not in out:
            out.add(t)
            stack.extend(kids.get(t, []))
    return frozenset(out)


@dataclass(frozen=True)
class _Scope:
    """The part of the organisation a load keeps (see :func:`load`: teams, start, end, quarter)."""

    teams: tuple[str, ...] | None = None
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    quarter: str | None = None
    fiscal_year_start: int = 1

    @property
    def active(self) -> bool:
        return self.teams is not None or self.start is not None or self.end is not None or self.quarter is not None

    @classmethod
    def make(cls, *, teams: Any, start: Any, end: Any, quarter: Any, fiscal_year_start: int) -> "_Scope":
        if teams is not None:
            if isinstance(teams, str):
                teams = (teams,)
            try:
                teams = tuple(teams)
            except TypeError:
                raise TypeError(f"teams must be a team_id or a list of team_ids, got {type(teams).__name__}") from None
            if not teams or not all(isinstance(t, str) for t in teams):
                raise TypeError(f"teams must be a non-empty list of team_id strings, got {list(teams)!r}")

        def day(value: Any, arg: str) -> pd.Timestamp | None:
            if value is None:
                return None
            ts = to_day(value)
            if ts is None:
                raise ValueError(f"{arg}={value!r} is not a date; give a date such as '2026-07-01'")
            return ts

        lo, hi = day(start, "start"), day(end, "end")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"start={lo.date()} is after end={hi.date()}; give start on or before end")
        label = None
        if quarter is not None:
            try:
                label = Quarter.parse(quarter, fiscal_year_start=fiscal_year_start).label
            except ValueError:
                raise ValueError(f"quarter={quarter!r} is not a quarter; write it as 2026Q3, 2026-Q3 or Q3 2026") \
                    from None
        return cls(teams, lo, hi, label, fiscal_year_start)

    def subtree(self, ids: pd.Series, parents: pd.Series, source: str) -> frozenset:
        known = set(ids.dropna())
        unknown = [t for t in self.teams if t not in known]
        if unknown:
            raise ValueError(f"teams: {', '.join(map(repr, unknown))} not in the teams table of {source}; "
                             "give team_ids from that table")
        return _descendants(ids, parents, self.teams)

    def resolve_teams(self, raw: _Raw | None) -> frozenset | None:
        """The team ids of the kept subtrees, from the raw teams table (None: cannot tell yet)."""
        if self.teams is None or raw is None:
            return None
        names = list(raw.frame.columns)
        id_col, parent_col = _stored_name(names, "team_id"), _stored_name(names, "parent_team_id")
        if id_col is None or isinstance(raw.frame[id_col], pd.DataFrame):
            return None
        ids = _as_text(raw.frame[id_col])
        parents = (_as_text(raw.frame[parent_col]) if parent_col is not None
                   and not isinstance(raw.frame[parent_col], pd.DataFrame) else pd.Series([None] * len(ids)))
        return self.subtree(ids, parents, raw.file)

    def objective_ids(self, raw: _Raw | None) -> frozenset | None:
        """Ids of the kept objectives in the raw objectives table (None: keep every key result)."""
        if raw is None or (self.teams is None and self.quarter is None):
            return None
        names = list(raw.frame.columns)
        cols = {c: _stored_name(names, c) for c in ("objective_id", "team_id", "quarter")}
        if any(v is None or isinstance(raw.frame[v], pd.DataFrame) for v in cols.values()):
            return None
        ids = _as_text(raw.frame[cols["objective_id"]])
        keep = ids.notna()
        if self.quarter is not None:
            text = _as_text(raw.frame[cols["quarter"]])
            labels = {}
            for v in text.dropna().unique():
                try:
                    labels[v] = Quarter.parse(v, fiscal_year_start=self.fiscal_year_start).label
                except ValueError:
                    labels[v] = None
            keep &= text.map(labels).eq(self.quarter).fillna(False).astype(bool)
        return frozenset(ids[keep])

    def apply(self, typed: dict[str, pd.DataFrame], source: str) -> dict[str, pd.DataFrame]:
        """The typed tables restricted to the scope (row labels kept, so messages give source rows)."""
        out = dict(typed)

        def within(frame: pd.DataFrame) -> pd.Series:
            keep = pd.Series(True, index=frame.index)
            if self.start is not None:
                keep &= frame["date"] >= self.start
            if self.end is not None:
                keep &= frame["date"] <= self.end
            return keep

        sub = None
        if self.teams is not None and "teams" in typed:
            t = typed["teams"]
            sub = self.subtree(t["team_id"], t["parent_team_id"], source)
            out["teams"] = t[t["team_id"].isin(sub)]
        if "objectives" in out:
            o = out["objectives"]
            keep = pd.Series(True, index=o.index)
            if sub is not None:
                keep &= o["team_id"].isin(sub)
            if self.quarter is not None:
                keep &= o["quarter"] == self.quarter
            out["objectives"] = o[keep]
        if "key_results" in out and "objectives" in out and (self.teams is not None or self.quarter is not None):
            kr = out["key_results"]
            out["key_results"] = kr[kr["objective_id"].isin(set(out["objectives"]["objective_id"]))]
        if "checkins" in out:
            c = out["checkins"]
            keep = within(c)
            if "key_results" in out and (self.teams is not None or self.quarter is not None):
                keep &= c["kr_id"].isin(set(out["key_results"]["kr_id"]))
            out["checkins"] = c[keep]
        if "kpis" in out:
            k = out["kpis"]
            keep = within(k)
            if sub is not None:
                keep &= k["team_id"].isin(sub)
            out["kpis"] = k[keep]
        return out


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
    names = (frame.columns if raw.all_columns is None
             else [str(c).strip().lower().lstrip("\ufeff") for c in raw.all_columns])
    unknown = [c for c in names if c not in spec.column_names]
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
    labels = mask.index[idx]  # row labels: positions in the table as read, also after filtering
    return [(int(i), int(label) + raw.row_offset) for i, label in zip(idx, labels)]


def _check_references(t: dict[str, pd.DataFrame], raws: dict[str, _Raw], problems: list[Problem],
                       skip: frozenset = frozenset()) -> None:
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
        if table not in t or target not in t or (table, col) in skip:
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
           problems: list[Problem] | None = None, scope: _Scope | None = None) -> Dataset:
    problems = [] if problems is None else problems
    scoped = scope is not None and scope.active
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
        if len(frame) == 0 and len(problems) == before and name in REQUIRED_TABLES and \
                not (scoped and name in _SCOPED_TABLES):  # a filter may match no rows
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
    skip: frozenset = frozenset()
    if scoped and not problems:
        # The teams table is kept whole for the checks (parent_team_id of a subtree's root points
        # outside it); parent_objective_id may point to an objective outside the subset (another
        # team's or quarter's), which a filtered read cannot see: that reference is not checked.
        typed = scope.apply(typed, source)
        complete = {n: (f if n == "teams" else typed[n]) for n, f in complete.items()}
        complete = {n: f for n, f in complete.items() if len(f)}
        skip = frozenset({("objectives", "parent_objective_id")})
    _check_references(complete, raws, problems, skip)
    _check_cycles(complete, raws, problems)
    _check_key_results(complete, raws, problems, notes)
    if problems:
        raise ValidationError(source, problems)
    if scoped and "teams" in complete:
        complete["teams"] = typed["teams"]
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


_SCOPED_TABLES = ("objectives", "key_results", "checkins", "kpis")


def from_frames(tables: Mapping[str, pd.DataFrame], *, fiscal_year_start: int = 1,
                source: str = "<frames>", _scope: _Scope | None = None) -> Dataset:
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
    return _build(raws, fiscal_year_start=fiscal_year_start, source=source, notes=notes, scope=_scope)


def load(source: "str | os.PathLike | Mapping[str, pd.DataFrame] | Dataset", *,
         fiscal_year_start: int = 1, teams: "str | Iterable[str] | None" = None,
         start: Any = None, end: Any = None, quarter: "str | Quarter | None" = None) -> Dataset:
    """Load and validate a data source, optionally only part of it.

    Parameters
    ----------
    source : path, URL, mapping or Dataset
        A folder of CSV or Parquet files named after the tables (``teams.csv``,
        ``objectives.csv`` …), an Excel workbook (``.xlsx``) with one sheet per
        table, a DuckDB database file (``.duckdb``), a SQLAlchemy URL such as
        ``postgresql+psycopg://user@host/db`` (tables by name), or a mapping of
        table names to DataFrames. A ``Dataset`` is returned as it is (filtered
        when a filter is given).
    fiscal_year_start : int, default 1
        Calendar month in which the fiscal year starts; quarters in the data
        are read in that calendar (``fiscal_year_start=2``: FY2027Q1 = Feb–Apr 2026).
    teams : str or list of str, optional
        Keep these teams and every team below them (their subtrees): the
        ``teams`` rows of those teams, their objectives and KPIs, the key results
        of those objectives and their check-ins. ``metrics`` and ``benchmarks``
        are kept whole.
    start, end : date-like, optional
        Keep KPI values and check-ins dated from ``start`` to ``end`` (both
        included). Objectives and key results are not filtered by date.
    quarter : str or Quarter, optional
        Keep the objectives of this quarter (in the fiscal calendar of
        ``fiscal_year_start``) and their key results and check-ins. KPIs are
        not filtered by quarter (use ``start``/``end``).

    Filters are pushed down to the source: SQL databases and DuckDB files are
    queried with ``WHERE`` clauses (bound parameters), Parquet files are read
    with pyarrow filters (only the row groups that can match, only the
    table's columns); CSV files and Excel workbooks are read whole, validated,
    then filtered. With a filter, rules that need rows outside the subset are
    not checked: a ``parent_objective_id`` may point to an objective that was
    not loaded, and tables other than ``teams``/``metrics`` may be empty. In
    messages about a filtered database or Parquet table, row numbers count the
    rows read.

    Returns
    -------
    Dataset

    Raises
    ------
    ValidationError
        When the source cannot be read or breaks a rule of the data format; its
        message lists every problem as ``table(file):row: column: what — fix``.
    ValueError, TypeError
        When a filter is malformed, or ``teams`` names a team that is not in the
        teams table.

    Warns
    -----
    DataWarning
        For problems that do not stop loading: unknown columns (ignored),
        non-UTF-8 encodings, check-ins outside their quarter, gaps in KPI series.
    """
    filtered = not (teams is None and start is None and end is None and quarter is None)
    if isinstance(source, Dataset) and not filtered:
        return source
    _check_fiscal_year_start(fiscal_year_start)
    scope = _Scope.make(teams=teams, start=start, end=end, quarter=quarter, fiscal_year_start=fiscal_year_start)
    if isinstance(source, Dataset):
        return from_frames({n: getattr(source, n) for n in TABLES}, fiscal_year_start=fiscal_year_start,
                           source=source.source, _scope=scope)
    if isinstance(source, Mapping):
        return from_frames(source, fiscal_year_start=fiscal_year_start, _scope=scope)
    notes: list[str] = []
    problems: list[Problem] = []
    shown, raws = _read_source(source, notes, problems, scope)
    return _build(raws, fiscal_year_start=fiscal_year_start, source=shown, notes=notes, problems=problems,
                  scope=scope)


def iter_problems(err: ValidationError) -> Iterable[str]:
    """The problem lines of a validation error (for printing)."""
    return (str(p) for p in err.problems)
