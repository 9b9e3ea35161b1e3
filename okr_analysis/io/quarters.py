"""Fiscal quarters: parsing labels, calendar boundaries and elapsed fractions.

A fiscal year is named after the calendar year in which it *ends*. With the
default ``fiscal_year_start=1`` fiscal and calendar years coincide
(``2026Q1`` = Jan–Mar 2026). With ``fiscal_year_start=2`` the fiscal year
2027 runs from February 2026 to January 2027, so ``2027Q1`` = Feb–Apr 2026.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = ["Quarter", "parse_quarter", "quarter_of"]

_PATTERNS = [
    re.compile(r"^\s*(?:FY)?(?P<year>\d{4})\s*-?\s*Q(?P<q>[1-4])\s*$", re.IGNORECASE),
    re.compile(r"^\s*Q(?P<q>[1-4])\s*[-/ ]?\s*(?:FY)?(?P<year>\d{4})\s*$", re.IGNORECASE),
]


def _check_fiscal_year_start(fiscal_year_start: Any) -> int:
    if isinstance(fiscal_year_start, bool) or not isinstance(fiscal_year_start, int) or not 1 <= fiscal_year_start <= 12:
        raise ValueError(
            f"fiscal_year_start must be a month number from 1 to 12, got {fiscal_year_start!r}."
        )
    return fiscal_year_start


@dataclass(frozen=True, order=True)
class Quarter:
    """A fiscal quarter.

    Parameters
    ----------
    year : int
        Fiscal year, named after the calendar year in which it ends.
    q : int
        Quarter number, 1 to 4.
    fiscal_year_start : int, default 1
        Calendar month (1–12) in which the fiscal year starts.

    Examples
    --------
    >>> Quarter.parse("2027Q1", fiscal_year_start=2).start
    Timestamp('2026-02-01 00:00:00')
    """

    year: int
    q: int
    fiscal_year_start: int = 1

    def __post_init__(self) -> None:
        _check_fiscal_year_start(self.fiscal_year_start)
        if not 1 <= int(self.q) <= 4:
            raise ValueError(f"q must be 1, 2, 3 or 4, got {self.q!r}.")

    # -- construction -----------------------------------------------------------
    @classmethod
    def parse(cls, label: "str | Quarter", *, fiscal_year_start: int = 1) -> "Quarter":
        """Parse ``2026Q3``, ``2026-Q3``, ``Q3 2026`` or ``FY2026Q3`` (case-insensitive)."""
        if isinstance(label, Quarter):
            if label.fiscal_year_start != fiscal_year_start:
                return cls(label.year, label.q, fiscal_year_start)
            return label
        if not isinstance(label, str):
            raise TypeError(f"quarter must be a string such as '2026Q3', got {type(label).__name__}.")
        for pattern in _PATTERNS:
            m = pattern.match(label)
            if m:
                return cls(int(m["year"]), int(m["q"]), fiscal_year_start)
        raise ValueError(
            f"{label!r} is not a quarter: write it as '2026Q3', '2026-Q3' or 'Q3 2026'."
        )

    @classmethod
    def containing(cls, date: Any, *, fiscal_year_start: int = 1) -> "Quarter":
        """The fiscal quarter that contains ``date``."""
        _check_fiscal_year_start(fiscal_year_start)
        ts = pd.Timestamp(date)
        months_into_fy = (ts.month - fiscal_year_start) % 12
        q = months_into_fy // 3 + 1
        # Fiscal year = calendar year in which the fiscal year ends.
        fy = ts.year if (fiscal_year_start == 1 or ts.month < fiscal_year_start) else ts.year + 1
        return cls(fy, q, fiscal_year_start)

    # -- calendar ---------------------------------------------------------------
    @property
    def label(self) -> str:
        """Canonical label, e.g. ``'2026Q3'``."""
        return f"{self.year}Q{self.q}"

    def __str__(self) -> str:
        return self.label

    @property
    def start(self) -> pd.Timestamp:
        """First day of the quarter (midnight)."""
        offset = 1 if self.fiscal_year_start > 1 else 0
        m0 = self.fiscal_year_start - 1 + 3 * (self.q - 1)
        return pd.Timestamp(year=self.year - offset + m0 // 12, month=m0 % 12 + 1, day=1)

    @property
    def end(self) -> pd.Timestamp:
        """Last day of the quarter (midnight of that day)."""
        return self.start + pd.DateOffset(months=3) - pd.Timedelta(days=1)

    @property
    def days(self) -> int:
        """Number of calendar days in the quarter."""
        return int((self.end - self.start).days) + 1

    def contains(self, date: Any) -> bool:
        """Whether ``date`` falls on a day of this quarter."""
        ts = pd.Timestamp(date).normalize()
        return bool(self.start <= ts <= self.end)

    def elapsed(self, as_of: Any) -> float:
        """Fraction of the quarter elapsed at the end of day ``as_of``, clipped to [0, 1].

        The quarter's first day counts as one day elapsed; its last day as 1.0.
        """
        ts = pd.Timestamp(as_of).normalize()
        frac = ((ts - self.start).days + 1) / self.days
        return float(min(max(frac, 0.0), 1.0))

    def next(self) -> "Quarter":
        """The following quarter."""
        return Quarter(self.year + (self.q == 4), self.q % 4 + 1, self.fiscal_year_start)

    def previous(self) -> "Quarter":
        """The preceding quarter."""
        return Quarter(self.year - (self.q == 1), (self.q - 2) % 4 + 1, self.fiscal_year_start)


def to_day(value: Any) -> pd.Timestamp | None:
    """A date-like value as a naive midnight Timestamp; None when it is not a date (NaT, text that is
    not a date, a wrong type). Callers turn None into a message that names their argument."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    if pd.isna(ts):
        return None
    return (ts.tz_localize(None) if ts.tzinfo is not None else ts).normalize()


def parse_quarter(label: "str | Quarter", *, fiscal_year_start: int = 1) -> Quarter:
    """Parse a quarter label; see :meth:`Quarter.parse`."""
    return Quarter.parse(label, fiscal_year_start=fiscal_year_start)


def quarter_of(dates: pd.Series, *, fiscal_year_start: int = 1) -> pd.Series:
    """Canonical fiscal-quarter label (``'2026Q3'``) of every date in ``dates``.

    Vectorised; missing dates give missing labels.
    """
    _check_fiscal_year_start(fiscal_year_start)
    d = pd.to_datetime(dates)
    months_into_fy = (d.dt.month - fiscal_year_start) % 12
    q = months_into_fy // 3 + 1
    fy = d.dt.year + ((fiscal_year_start > 1) & (d.dt.month >= fiscal_year_start)).astype("Int64")
    out = fy.astype("Int64").astype("str") + "Q" + q.astype("Int64").astype("str")
    return out.where(d.notna()).astype("str")
