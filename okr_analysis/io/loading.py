"""The entry points: :func:`load` a source, :func:`from_frames` in-memory tables.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping

import pandas as pd

from ..exceptions import Problem
from .dataset import Dataset
from .quarters import Quarter, _check_fiscal_year_start
from .readers import _read_source
from .schemas import TABLES
from .scope import _Scope
from .validation import build_tables, tables_from_frames

__all__ = ["from_frames", "load"]



def from_frames(tables: Mapping[str, pd.DataFrame], *, fiscal_year_start: int = 1,
                source: str = "<frames>", _scope: _Scope | None = None) -> Dataset:
    """Validate and type in-memory tables (a mapping of table name to DataFrame).

    Row numbers in messages count the first data row as 1.

    Raises
    ------
    ValidationError
        Listing every problem found.
    """
    typed, notes = tables_from_frames(tables, fiscal_year_start=fiscal_year_start, source=source, scope=_scope)
    return Dataset(**typed, fiscal_year_start=fiscal_year_start, source=source, warnings=tuple(notes))


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

    Notes
    -----
    Filters are pushed down to the source: SQL databases and DuckDB files are
    queried with ``WHERE`` clauses (bound parameters), Parquet files are read
    with pyarrow filters (only the row groups that can match, only the
    table's columns); CSV files and Excel workbooks are read whole, validated,
    then filtered. With a filter, rules that need rows outside the subset are
    not checked: a ``parent_objective_id`` may point to an objective that was
    not loaded, and tables other than ``teams``/``metrics`` may be empty. In
    messages about a filtered database or Parquet table, row numbers count the
    rows read.
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
    typed = build_tables(raws, fiscal_year_start=fiscal_year_start, source=shown, notes=notes, problems=problems,
                         scope=scope)
    return Dataset(**typed, fiscal_year_start=fiscal_year_start, source=shown, warnings=tuple(notes))
