"""How numbers read in sentences, tables and messages: one function per way of writing them.

Every function takes one value (missing values included) and returns text; none raises on a missing or
non-numeric value. This module sits at the bottom of the layer contract, so every layer may use it.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np
import pandas as pd

__all__ = [
    "MISSING",
    "number",
    "score",
    "percent",
    "status_counts",
    "as_written",
    "date",
    "p_value",
    "share",
    "significant",
    "whole",
    "step_decimals",
    "with_step",
    "with_unit",
    "chart_value",
]

#: What a missing value reads in a report table.
MISSING = "—"


def _is_missing(value: Any) -> bool:
    """None, NaN, NaT or pd.NA (a list or array is not a missing value)."""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


#: The endings of a unit's first word that are not an English plural ("gross", "bonus", "analysis").
_NOT_PLURAL = ("ss", "us", "is")


def with_unit(text: str, unit: Any) -> str:
    """A number already written as ``text`` with its unit: ``%`` attached, any other unit after a space,
    and a unit that counts things read in the singular for exactly one.

    ``("12", "%")`` → ``"12%"``, ``("3.5", "days")`` → ``"3.5 days"``, ``("1", "complaints/month")`` →
    ``"1 complaint/month"``, ``("1", "points (0–10)")`` → ``"1 point (0–10)"``. Only a first word of four or
    more lower-case letters ending in one ``s`` is made singular (``h``, ``min``, ``k€/week``, ``NPS`` and
    ``gross`` are left as they are). A unit that is not text (a missing unit) is left out.
    """
    unit = unit.strip() if isinstance(unit, str) else ""
    if not unit:
        return text
    if unit == "%":
        return f"{text}%"
    if text.lstrip("-+") in ("1", "1.0", "1.00"):
        word = re.match(r"[a-z]+", unit)
        if word and len(word.group()) >= 4 and word.group().endswith("s") and not word.group().endswith(_NOT_PLURAL):
            unit = unit[: word.end() - 1] + unit[word.end():]
    return f"{text} {unit}"


def chart_value(value: Any, unit: Any = "") -> str:
    """A value in a chart's title or message: three significant digits below 1,000, whole and thousands
    separated above, with its unit (:func:`with_unit`); ``"no value"`` when missing.

    ``(0.8234, "%")`` → ``"0.823%"``, ``(1234.5, "k€/week")`` → ``"1,234 k€/week"``, ``(1.0, "leads/week")``
    → ``"1 lead/week"``.
    """
    if _is_missing(value) or not _is_real(value):
        return "no value"
    v = float(value)
    return with_unit(f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}", unit)


def number(value: Any, unit: Any = "") -> str:
    """A value in a report table or sentence: at most two decimals, thousands separated, with its unit.

    ``1234.5`` → ``"1,234.5"``, ``(12.0, "%")`` → ``"12%"``, ``(3.25, "days")`` → ``"3.25 days"``; a missing
    value reads :data:`MISSING`; text is shown as it is (a suppression label, for instance). A unit that is
    not text (a missing unit) is left out.
    """
    if _is_missing(value):
        return MISSING
    text = f"{value:,.2f}".rstrip("0").rstrip(".") if isinstance(value, (float, np.floating)) else str(value)
    text = "0" if text == "-0" else text  # -0.004 rounds to zero, not to "-0"
    return with_unit(text, unit)


def score(value: Any) -> str:
    """A score on the index page: two decimals (``0.70``), :data:`MISSING` when there is none (or it is
    not a number)."""
    if _is_real(value) and not _is_missing(value):
        return f"{value:.2f}"
    return MISSING


def percent(value: Any) -> str:
    """A probability as a whole percentage (``0.824`` → ``"82%"``), :data:`MISSING` when missing or not a number."""
    if _is_real(value) and not _is_missing(value):
        return f"{value:.0%}"
    return MISSING


def status_counts(counts: Any) -> str:
    """Status counts on one line: ``{"on_track": 3, "at risk": 1}`` → ``"3 on track · 1 at risk"``;
    :data:`MISSING` when there are none."""
    if isinstance(counts, Mapping) and counts:
        return " · ".join(f"{v} {str(k).replace('_', ' ')}" for k, v in counts.items())
    return MISSING


def as_written(value: Any) -> Any:
    """A number as a user would have written it (``0.0`` → ``"0"``, ``2.50`` → ``"2.5"``) in a validation
    message; anything else (text, a missing or infinite value) is returned unchanged."""
    if isinstance(value, (float, np.floating)) and np.isfinite(value):
        return f"{float(value):g}"
    return value


def significant(value: Any, unit: str = "") -> str:
    """A statistic in an evidence sentence: three significant figures (whole numbers with thousands
    separators from 100,000), with its unit (``%`` attached); ``"n/a"`` when missing or infinite."""
    if value is None or not _is_real(value) or not np.isfinite(value):
        return "n/a"
    return with_unit(f"{value:.3g}" if abs(value) < 1e5 else f"{value:,.0f}", unit)


def step_decimals(step: float) -> int:
    """Decimals needed to write multiples of ``step`` (``0.1`` → 1, ``0.25`` → 2, ``5`` → 0)."""
    if step >= 1:
        return 0
    return len(f"{step:g}".split(".")[1])


def with_step(value: float, step: float) -> str:
    """``value`` written with the decimals of ``step`` (``(3.0, 0.1)`` → ``"3.0"``); ``-0`` reads ``0``."""
    return f"{value + 0.0:.{step_decimals(step)}f}"


def whole(value: Any) -> str:
    """A count: a whole number with thousands separators (``11.0`` → ``"11"``); a value that is not whole keeps
    its decimals (:func:`number`); :data:`MISSING` when missing; text as it is."""
    if _is_missing(value):
        return MISSING
    if _is_real(value) and np.isfinite(value) and float(value) == round(float(value)):
        return f"{int(round(float(value))):,}"
    return number(value)


def share(value: Any) -> str:
    """A share between 0 and 1 as a whole percentage (``0.84`` → ``"84%"``); text as it is (a suppression
    label); :data:`MISSING` when missing."""
    if _is_real(value) and not _is_missing(value):
        return f"{value:.0%}"
    return MISSING if _is_missing(value) else str(value)


def p_value(value: Any) -> str:
    """A p- or q-value: three decimals, ``"< 0.001"`` below that; :data:`MISSING` when missing."""
    if _is_real(value) and not _is_missing(value):
        return "< 0.001" if value < 0.001 else f"{value:.3f}"
    return MISSING if _is_missing(value) else str(value)


def date(value: Any) -> str:
    """A date as a reader writes it: ``"31 Dec 2025"`` (no leading zero); :data:`MISSING` when missing; text
    that is not a date as it is."""
    if _is_missing(value):
        return MISSING
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{ts.day} {ts:%b %Y}"
