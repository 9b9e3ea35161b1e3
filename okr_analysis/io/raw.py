"""Raw tables as read from a source, before typing (internal to :mod:`okr_analysis.io`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .schemas import TABLES

_MAX_PROBLEMS_PER_RULE = 50


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


def _pick_columns(names: list[str], table: str) -> tuple[list[str], list[str]]:
    """Columns of the table to read (the known ones, as stored) and every column's name."""
    known = set(TABLES[table].column_names)
    return [n for n in names if str(n).strip().lower().lstrip("\ufeff") in known], list(names)


def _stored_name(names: list[str], column: str) -> str | None:
    for n in names:
        if str(n).strip().lower() == column:
            return n
    return None
