"""The rules the analyses, charts, report sections and documentation share: one definition each.

Score bands, objective expectations, the pace behind a status, the order statuses and driver verdicts
are listed in, the monitoring window and how it is worded, the hygiene defaults that
:data:`okr_analysis.hygiene.LINT_CODES` quotes, and the number of periods a driver test needs. Analyses
compute with these values; sections, charts and docs quote them through the helpers here, so a
changed rule changes every sentence that states it.

This module sits at the bottom of the layer contract (it imports nothing from the package), so every
layer may import it.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping

__all__ = [
    "BAND_RED_BELOW",
    "BAND_GREEN_FROM",
    "BANDS",
    "BAND_COLOURS",
    "band_rule",
    "PACE_ON_TRACK",
    "PACE_AT_RISK",
    "EXPECTATION",
    "expectation_text",
    "STATUSES",
    "STATUS_ORDER",
    "VERDICTS",
    "VERDICT_ORDER",
    "MONITOR_WINDOW",
    "BASELINE_PERIODS",
    "CHART_PERIODS",
    "PERIOD_WORDS",
    "period_word",
    "window_label",
    "LINT_DEFAULTS",
    "driver_min_periods",
    "driver_min_periods_floor",
]

# ---- scores -----------------------------------------------------------------------------------------
#: Scores below this are red (Google's convention: red < 0.4 <= yellow < 0.7 <= green).
BAND_RED_BELOW = 0.4
#: Scores from this up are green.
BAND_GREEN_FROM = 0.7
#: The score bands, worst first.
BANDS = ("red", "yellow", "green")
#: Colours of the score bands in charts and in the print CSS (and of a missing band, ``none``): the Okabe–Ito
#: colour-blind-safe palette (vermillion, orange, bluish green, grey); :mod:`okr_analysis.style` adds the rest.
BAND_COLOURS: Mapping[str, str] = MappingProxyType(
    {"red": "#D55E00", "yellow": "#E69F00", "green": "#009E73", "none": "#999999"})


def band_rule(*, lt: str = "<") -> str:
    """The band rule as a reader sees it: ``"red < 0.4 ≤ yellow < 0.7 ≤ green"``.

    Parameters
    ----------
    lt : str, default "<"
        How to write "less than" (``"&lt;"`` inside HTML).
    """
    return f"red {lt} {BAND_RED_BELOW:g} ≤ yellow {lt} {BAND_GREEN_FROM:g} ≤ green"


#: Pace (progress / expected progress) from which an increase/decrease/milestone KR is on track.
PACE_ON_TRACK = 0.9
#: Pace from which it is at risk (below: off track).
PACE_AT_RISK = 0.7
#: Score an objective needs to meet expectations, by objective kind.
EXPECTATION: Mapping[str, float] = MappingProxyType({"committed": 1.0, "aspirational": 0.7})


def expectation_text(kind: str) -> str:
    """The score an objective of ``kind`` needs, as the scorecard writes it (``"1.0"``, ``"0.7"``).

    A kind missing from :data:`EXPECTATION` needs what an aspirational objective needs (as scoring treats it).
    """
    return f"{EXPECTATION.get(kind, EXPECTATION['aspirational']):.1f}"


#: Status values, best first; ``no data`` = no check-in yet, ``unmeasurable`` = the KR cannot be scored.
STATUSES = ("on track", "at risk", "off track", "no data", "unmeasurable")
#: Order in which reports list key results by status: the ones that need attention first.
STATUS_ORDER: Mapping[str, int] = MappingProxyType(
    {"off track": 0, "at risk": 1, "on track": 2, "no data": 3, "unmeasurable": 4})

# ---- drivers -----------------------------------------------------------------------------------------
#: Driver verdicts (:func:`okr_analysis.lead_lag`), in the order tables list them: evidence first.
VERDICTS = ("leads", "feedback", "reverse", "contemporaneous", "no evidence", "insufficient data")
#: Sort key of each verdict.
VERDICT_ORDER: Mapping[str, int] = MappingProxyType({v: i for i, v in enumerate(VERDICTS)})


def driver_min_periods(max_lag: int) -> int:
    """Periods a driver test needs after the transform by default: ``4 × max_lag + 12`` (44 for max_lag 8)."""
    return 4 * int(max_lag) + 12


def driver_min_periods_floor(max_lag: int) -> int:
    """The fewest periods a driver test accepts when asked (``min_periods=``): ``3 × max_lag + 6``."""
    return 3 * int(max_lag) + 6


# ---- KPI monitoring --------------------------------------------------------------------------------------
#: Default trend window of :func:`okr_analysis.monitor`: the last 13 periods of the data's own frequency
#: (13 weeks of weekly data, 13 months of monthly data).
MONITOR_WINDOW = 13
#: Default baseline of a control chart, in periods.
BASELINE_PERIODS = 26
#: Periods a report's control charts show.
CHART_PERIODS = 52
#: The word for one period of each frequency.
PERIOD_WORDS: Mapping[str, str] = MappingProxyType({"W": "week", "M": "month", "Q": "quarter"})


def period_word(freq: str, n: int = 1) -> str:
    """``"week"``/``"weeks"``, ``"month"``/``"months"``, ``"quarter"``/``"quarters"``; ``"period"`` for an
    unknown frequency."""
    word = PERIOD_WORDS.get(str(freq).upper(), "period")
    return word if n == 1 else f"{word}s"


def window_label(window: int, freq: str) -> str:
    """A window of ``window`` periods of ``freq`` in words: ``"13 weeks"``, ``"13 months"``."""
    return f"{window} {period_word(freq, window)}"


# ---- OKR hygiene ------------------------------------------------------------------------------------------
#: Default thresholds of :func:`okr_analysis.lint`; :data:`okr_analysis.hygiene.LINT_CODES` quotes them.
LINT_DEFAULTS: Mapping[str, int] = MappingProxyType({
    "min_objectives": 1,
    "max_objectives": 3,
    "min_krs": 2,
    "max_krs": 5,
    "stale_days": 14,
    "max_kpis": 7,
    "confidence_drop": 3,
})
