"""Typing raw tables: text, numbers, dates and booleans as the data format defines them.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.compute as pc

from ..exceptions import Problem
from .quarters import Quarter
from .raw import _MAX_PROBLEMS_PER_RULE, _Raw
from .schemas import ColumnSpec, TableSpec

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


def _is_text_column(s: pd.Series) -> bool:
    """A column of pandas' string dtype (what the CSV readers give), not object."""
    return pd.api.types.is_string_dtype(s) and s.dtype != object


def _factorize(s: pd.Series, *, sort: bool = False) -> tuple[np.ndarray, pd.Index]:
    """``pd.factorize(s, sort=sort)`` (a missing cell is coded -1), once per run of equal adjacent cells.

    Ids in a KPI file come in long runs (a team's rows together, within them each metric's):
    factorizing the first cell of each run and repeating its code is 3× cheaper than factorizing
    every cell, and gives the same codes and uniques (the cells of a run are its first cell's value,
    and a value first appears at the start of a run). Other columns go to ``pd.factorize`` directly.
    """
    if len(s) < 1_000 or not _is_text_column(s):
        return pd.factorize(s, sort=sort)
    cells = pyarrow.array(s.array)
    change = pc.fill_null(pc.not_equal(cells[1:], cells[:-1]), True).to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, change])
    if len(starts) > len(s) // 4:
        return pd.factorize(s, sort=sort)
    codes, uniques = pd.factorize(s.iloc[starts], sort=sort)
    return np.repeat(codes, np.diff(np.r_[starts, len(s)])), uniques


def _distinct(s: pd.Series) -> tuple[np.ndarray, pd.Series] | None:
    """``(codes, values)`` of a large text column whose values repeat (ids, metrics, dates), else None.

    ``values.iloc[codes]`` is ``s`` (code -1 for a missing cell): a conversion that treats each cell on
    its own can run on ``values`` once and be spread back with :func:`_spread`.
    """
    if len(s) < 1_000 or not _is_text_column(s):
        return None
    codes, uniques = _factorize(s)
    if len(uniques) > len(s) // 2:
        return None
    return codes, pd.Series(uniques, dtype=s.dtype)


def _spread(values: pd.Series, codes: np.ndarray, like: pd.Series) -> pd.Series:
    """``values`` taken at ``codes`` (missing where the code is -1), on the index of ``like``."""
    return pd.Series(values.array.take(codes, allow_fill=True), index=like.index, dtype=values.dtype, name=like.name)


def _spread_text(text: pd.Series, values: pd.Series, codes: np.ndarray, s: pd.Series) -> pd.Series:
    """The text of column ``s`` from the text of its distinct ``values`` (see :func:`_distinct`).

    When no value changed (no blanks, no NA-like text: the usual case) that is ``s`` itself, which
    saves copying a large column.
    """
    if text.dtype == s.dtype and text.notna().all() and (text == values).all():
        return s
    return _spread(text, codes, s)


def _as_text(s: pd.Series) -> pd.Series:
    """Strings with surrounding blanks removed; empty and NA-like cells become missing.

    String columns (CSV is read as text) are converted with vectorised string methods, once per
    distinct value when they are large and repeat; other large columns of one type (numbers, object
    text) are converted once per distinct value and spread back by position (ids, metrics and dates
    repeat a lot); mixed-type columns (Excel) go cell by cell. Every path gives the result of the
    cell-by-cell one (tests/test_loaders.py checks it).
    """
    if _is_text_column(s):
        # a string column (CSV, or text in Parquet): the cell-by-cell steps, vectorised (the same result)
        spread = _distinct(s)
        if spread is not None:
            codes, values = spread
            return _spread_text(_as_text(values), values, codes, s)
        txt = s.astype("str").str.strip()
        return txt.mask(txt.str.lower().isin(_MISSING_STRINGS) | txt.isna())
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


def _parse_dates(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``(text, dates)``: the cells as text (:func:`_as_text`) and read as ISO 8601 dates (missing if not).

    A large text column of repeated dates is parsed once per distinct cell and spread back. pandas'
    own cache (``to_datetime(cache=True)``) does the same but hashes the cells as Python strings:
    0.27 s for the 1.25 million dates of a large KPI file, against 0.04 s here. ISO 8601 text is
    parsed cell by cell, so the result is the same.
    """
    spread = _distinct(s)
    if spread is None:
        text = _as_text(s)
        return text, _iso_dates(text)
    codes, values = spread
    text = _as_text(values)
    dates = _iso_dates(text)
    return _spread_text(text, values, codes, s), _spread(dates, codes, s)


def _iso_dates(text: pd.Series) -> pd.Series:
    """Text cells read as ISO 8601 dates, NaT where a cell is not one. A time-zone offset is dropped,
    keeping the date and time as written (``2026-07-06T00:00+02:00`` is 6 July); pandas refuses a column
    whose cells have different offsets, so such a column is read cell by cell."""
    try:
        dates = pd.to_datetime(text, format="ISO8601", errors="coerce")
    except ValueError:  # offsets that differ between cells
        one = [pd.to_datetime(v, format="ISO8601", errors="coerce") if isinstance(v, str) else pd.NaT for v in text]
        dates = pd.Series([pd.NaT if pd.isna(v) else v.tz_localize(None) for v in one], index=text.index,
                          dtype="datetime64[us]")
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_localize(None)
    return dates


#: A plain decimal number: digits, optionally after a minus and with a fractional part.
_PLAIN_NUMBER = r"^-?[0-9]+(\.[0-9]+)?$"


_PLAIN_NUMBER_MAX_CHARS = 15  # hence at most 15 significant digits


def _plain_numbers(s: pd.Series) -> pd.Series | None:
    """A text column whose every cell is a plain decimal number, parsed by Arrow; otherwise None.

    The fast path of numbers from a CSV file: 0.07 s for 1.25 million cells, against 0.5 s for
    :func:`_as_text` and ``pd.to_numeric`` (which go through Python strings). It gives their result:

    * a cell matching ``-?digits(.digits)?`` has no blanks and is not NA-like, so :func:`_as_text`
      would leave it as it is, and both parsers read it;
    * with at most 15 digits, the digits make an integer below 2**53 and the power of ten is exact, so
      both parsers return the correctly rounded double (Arrow's parser rounds correctly; pandas' does too,
      and its older one divided those two exact doubles once, which rounds correctly as well);
    * pandas reads a column of whole numbers as int64, which has no negative zero: there ``-0`` is 0.0.

    Anything else — an empty cell, blanks, ``+``, an exponent, a thousands separator, more digits —
    returns None: the reference path parses the column and reports each cell it cannot read.
    """
    if not _is_text_column(s) or len(s) == 0:
        return None
    cells = pyarrow.array(s.array)
    if cells.null_count or pc.max(pc.utf8_length(cells)).as_py() > _PLAIN_NUMBER_MAX_CHARS:
        return None
    if not pc.all(pc.match_substring_regex(cells, _PLAIN_NUMBER)).as_py():
        return None
    values = pc.cast(cells, pyarrow.float64()).to_numpy()
    if (np.signbit(values) & (values == 0)).any() and not pc.any(pc.match_substring(cells, ".")).as_py():
        values = values + 0.0  # -0.0 + 0.0 is 0.0: what int64's 0 becomes
    return pd.Series(values, index=s.index, dtype="float64", name=s.name)


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
            plain = None if self.raw.decimal_comma else _plain_numbers(s)  # None but for text columns
            if plain is not None:
                num = plain
            elif pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
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
            text, d = _parse_dates(s)
            # pandas holds dates of 1677-09-22 to 2262-04-11 only (nanoseconds since 1970 in 64 bits)
            far = d.notna() & ((d < pd.Timestamp.min) | (d > pd.Timestamp.max))
            if far.any():
                self.bad(far, spec.name, lambda v: f"{v!r} is outside the dates this tool can hold "
                         "(1677-09-22 to 2262-04-11)", "check the year", text)
                d = d.mask(far)
            unparsed = text.notna() & d.isna() & ~far
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
