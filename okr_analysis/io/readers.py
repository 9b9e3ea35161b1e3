"""Reading raw tables from a source: CSV/Parquet folders, Excel, DuckDB, SQL databases.

Filters of a scoped load are pushed down to the source (SQL ``WHERE``, Parquet row groups).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..exceptions import Problem
from .coercion import _as_text
from .raw import _pick_columns, _Raw, _stored_name
from .schemas import TABLES
from .scope import _Scope

_EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls"}


_DUCKDB_SUFFIXES = {".duckdb", ".ddb", ".db"}


_TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")


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


#: A quote after a separator and blanks: pandas (``skipinitialspace``) reads it as quoting, Arrow as text.
_BLANK_BEFORE_QUOTE = re.compile(rb'(^|[,\t\n])[ \t]+"')


def _blank_before_quote(data: bytes) -> bool:
    """Whether ``_BLANK_BEFORE_QUOTE`` matches ``data``, searching for the regular expression only when
    a blank comes right before a quote somewhere (which it needs): Python's engine tries it at every
    byte, 0.75 s for a 44 MB file whose cells are all quoted, where the byte searches take 0.01 s."""
    for blank in (b" ", b"\t"):
        if blank in data and blank + b'"' in data:
            return _BLANK_BEFORE_QUOTE.search(data) is not None
    return False


def _read_csv_arrow(raw: bytes, first: str, sep: str) -> pd.DataFrame | None:
    """The fast path of :func:`_read_csv`: Arrow's multi-threaded CSV reader, every column as text.

    Used for UTF-8 files separated by commas or tabs whose header names are distinct and non-empty;
    it returns what the pandas path returns for them, but for blanks before an unquoted cell, which
    pandas' ``skipinitialspace`` drops and typing strips anyway.
    Anything else — another encoding, a semicolon file (decimal commas), a ragged or unreadable row,
    a quote after blanks, an empty or repeated header name — returns None, and pandas' parser reads
    the file (and reports a bad row with its line). 2.5–3× faster than pandas' parser on the 46 MB
    KPI file of ``benchmarks/bench_leadlag.py`` (0.3 s against 0.8–1.0 s on 2 cores).
    """
    if sep not in (",", "\t"):
        return None
    data = raw[len(codecs.BOM_UTF8):] if raw.startswith(codecs.BOM_UTF8) else raw
    if b"\x00" in data:  # UTF-16 (with or without its mark): NUL bytes are valid UTF-8 to Arrow
        return None
    names = next(csv.reader([first.lstrip("\ufeff")], delimiter=sep, skipinitialspace=True), [])
    if not names or any(not n for n in names) or len(set(names)) != len(names):
        return None
    quoted = b'"' in data
    if quoted and _blank_before_quote(data):
        return None
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
            parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=quoted),
            # large_string: the storage of pandas' str dtype, so to_pandas() does not copy every cell into it
            convert_options=pacsv.ConvertOptions(column_types={n: pyarrow.large_string() for n in names},
                                                 null_values=[], strings_can_be_null=False,
                                                 quoted_strings_can_be_null=False),
        )
    except (pyarrow.ArrowInvalid, pyarrow.ArrowNotImplementedError, pyarrow.ArrowTypeError):
        return None
    frame = table.to_pandas()
    return frame if all(pd.api.types.is_string_dtype(d) and d != object for d in frame.dtypes) else None


def _first_line(text: str) -> str:
    end = text.find("\n")
    head = (text if end < 0 else text[:end + 1]).splitlines()
    return head[0] if head else ""


def _utf8_head(raw: bytes) -> str | None:
    """The first line of a file (up to its first ``\\n``) when it is UTF-8, not blank and without quotes.

    Only that line is decoded. None for anything else: UTF-16 (with its mark), a line that is not
    UTF-8, a blank one (:func:`_read_csv` calls the file empty), or a quote (a quoted header cell may
    run onto the next line, which Arrow would skip without checking it).
    """
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None
    end = raw.find(b"\n")
    try:
        head = (raw if end < 0 else raw[:end + 1]).decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    return None if not head or head.isspace() or '"' in head else head


def _read_csv(path: Path, table: str, notes: list[str], problems: list[Problem]) -> _Raw | None:
    raw = path.read_bytes()
    # The usual file is UTF-8: Arrow's reader is tried before the whole file is decoded (0.03–0.05 s
    # for 46 MB). Arrow checks that every cell is UTF-8, the header line (the row Arrow skips) is
    # decoded here, and separators, quotes and line ends are ASCII: a file Arrow reads is UTF-8
    # throughout, so decoding it below would add no note and find this same first line and separator,
    # and Arrow would read it the same way. Otherwise the file is decoded and read as before.
    head = _utf8_head(raw)
    tried = None
    if head is not None:
        first = _first_line(head)
        sep = "\t" if path.suffix == ".tsv" else _sniff_delimiter(first)
        frame = _read_csv_arrow(raw, first, sep)
        if frame is not None:
            return _Raw(table, frame, path.name, 2)
        tried = (first, sep)
    # isspace() tests the whitespace strip() removes (for bytes and for str alike) without copying
    # the file twice (0.05–0.5 s for a 46 MB KPI file)
    text = _decode(raw, path.name, notes) if raw and not raw.isspace() else ""
    if not text or text.isspace():
        return _Raw(table, pd.DataFrame(), path.name, 2)
    first = _first_line(text)
    sep = "\t" if path.suffix == ".tsv" else _sniff_delimiter(first)
    if sep not in (",", "\t"):
        notes.append(f"{path.name}: columns are separated by {sep!r}; read that way (comma is the standard)"
                     + ("; numbers with a decimal comma (4,5) are read as 4.5." if sep == ";" else "."))
    frame = None if (first, sep) == tried else _read_csv_arrow(raw, first, sep)  # else: None again
    if frame is not None:
        return _Raw(table, frame, path.name, 2)
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

        schema = pq.read_schema(path)
        columns, all_names = _pick_columns(schema.names, name)
        expr = None
        if where is not None:
            conds = []
            for col, values in where.ids:
                stored = _stored_name(schema.names, col)
                if stored is not None and (pyarrow.types.is_string(schema.field(stored).type)
                                           or pyarrow.types.is_large_string(schema.field(stored).type)):
                    conds.append(pc.field(stored).isin(sorted(values)))
            stored = _stored_name(schema.names, "date")
            if where.dates is not None and stored is not None:
                ftype = schema.field(stored).type
                lo, hi = where.widened()
                if pyarrow.types.is_date(ftype) or (pyarrow.types.is_timestamp(ftype) and ftype.tz is None):
                    if lo is not None:
                        conds.append(pc.field(stored) >= pyarrow.scalar(lo.to_pydatetime()).cast(ftype))
                    if hi is not None:
                        conds.append(pc.field(stored) < pyarrow.scalar(hi.to_pydatetime()).cast(ftype))
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
        # lazy import: source driver, needed only for .duckdb sources (~0.2 s)
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
        # lazy import: source driver, needed only for database URLs (~0.2 s)
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
        for name in ("teams", "metrics", "benchmarks", "initiatives"):  # small: read whole
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
