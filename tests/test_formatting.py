"""okr_analysis.formatting: how numbers read in reports, messages and sentences; okr_analysis.rules: the
shared rules and the words that quote them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from okr_analysis import formatting as fmt
from okr_analysis import rules


@pytest.mark.parametrize("value, unit, text", [
    (1234.5, "", "1,234.5"),
    (0.7, None, "0.7"),
    (2.0, "", "2"),
    (12.0, "%", "12%"),
    (3.256, "days", "3.26 days"),
    (3.25, " days ", "3.25 days"),
    (7, "people", "7 people"),
    (float("nan"), "%", "—"),
    (None, "", "—"),
    (pd.NA, "", "—"),
    (np.float64(0.125), "", "0.12"),
    (-0.004, "", "0"),               # rounds to zero: no "-0"
    (np.float64(-0.004), "%", "0%"),
    (-0.006, "", "-0.01"),
    ("suppressed (minimum group size 5)", "", "suppressed (minimum group size 5)"),
])
def test_number(value, unit, text):
    assert fmt.number(value, unit) == text


def test_score_percent_and_counts():
    assert fmt.score(0.7) == "0.70" and fmt.score(1) == "1.00" and fmt.score(np.float64(0.255)) == "0.26"
    for missing in (None, float("nan"), True, "0.7"):
        assert fmt.score(missing) == fmt.MISSING
    assert fmt.percent(0.824) == "82%" and fmt.percent(1.0) == "100%"
    assert fmt.percent(None) == fmt.percent(float("nan")) == fmt.percent("x") == "—"
    assert fmt.status_counts({"on_track": 3, "at risk": 1, "suppressed": 2}) == "3 on track · 1 at risk · 2 suppressed"
    assert fmt.status_counts({}) == fmt.status_counts(None) == "—"


def test_as_written_significant_and_steps():
    assert fmt.as_written(0.0) == "0" and fmt.as_written(2.50) == "2.5" and fmt.as_written(np.float32(1e6)) == "1e+06"
    assert fmt.as_written("abc") == "abc" and fmt.as_written(7) == 7
    assert math.isinf(fmt.as_written(float("inf")))
    assert fmt.significant(0.012345) == "0.0123" and fmt.significant(123.45, "h") == "123 h"
    assert fmt.significant(123456.0) == "123,456" and fmt.significant(4.2, "%") == "4.2%"
    assert fmt.significant(None) == fmt.significant(float("nan")) == fmt.significant(np.inf) == "n/a"
    assert [fmt.step_decimals(s) for s in (5, 1, 0.5, 0.1, 0.25, 0.01)] == [0, 0, 1, 1, 2, 2]
    assert fmt.with_step(3.0, 0.1) == "3.0" and fmt.with_step(72.456, 0.5) == "72.5" and fmt.with_step(-0.0, 1) == "0"


def test_rules_are_the_ones_the_analyses_use(sample_ds):
    from okr_analysis import hygiene, plots, score_objectives
    from okr_analysis.scoring import score_band
    from okr_analysis.hygiene import LINT_CODES, lint

    bands = score_band(pd.Series([rules.BAND_RED_BELOW - 0.01, rules.BAND_RED_BELOW, rules.BAND_GREEN_FROM]))
    assert list(bands) == ["red", "yellow", "green"] == list(rules.BANDS)
    assert rules.band_rule() == "red < 0.4 ≤ yellow < 0.7 ≤ green"
    assert rules.band_rule(lt="&lt;") == "red &lt; 0.4 ≤ yellow &lt; 0.7 ≤ green"
    assert plots.BAND_COLOURS is rules.BAND_COLOURS
    objs = score_objectives(sample_ds, "2026Q3").dropna(subset=["score"])
    need = objs["objective_kind"].map(rules.EXPECTATION)
    assert (objs["met_expectation"].astype(bool) == (objs["score"] >= need - 1e-9)).all()
    assert rules.expectation_text("committed") == "1.0" and rules.expectation_text("aspirational") == "0.7"
    # LINT_CODES quotes lint's defaults, which are LINT_DEFAULTS
    import inspect
    defaults = {k: p.default for k, p in inspect.signature(lint).parameters.items() if k in rules.LINT_DEFAULTS}
    assert defaults == dict(rules.LINT_DEFAULTS)
    assert f"{rules.LINT_DEFAULTS['stale_days']} days" in LINT_CODES["KR_STALE"][1]
    assert f"more than {rules.LINT_DEFAULTS['max_kpis']} KPIs" in LINT_CODES["TEAM_TOO_MANY_KPIS"][1]
    assert hygiene.LINT_CODES is LINT_CODES
    assert list(rules.VERDICT_ORDER) == list(rules.VERDICTS) and rules.VERDICT_ORDER["leads"] == 0
    from okr_analysis.leadlag import VERDICTS  # leadlag re-exports the one definition
    assert tuple(VERDICTS) == rules.VERDICTS
    assert set(rules.STATUS_ORDER) == set(rules.STATUSES)
    assert rules.driver_min_periods(8) == 44


def test_window_words_follow_the_datas_frequency():
    assert rules.window_label(13, "W") == "13 weeks" and rules.window_label(13, "M") == "13 months"
    assert rules.window_label(1, "Q") == "1 quarter" and rules.period_word("x") == "period"


def test_monitor_window_label_of_monthly_data(sample_ds):
    """The KPI panel's caption names the window in the data's own periods (13 months of monthly data)."""
    from okr_analysis.monitoring import _resolve_window

    assert _resolve_window(sample_ds, rules.MONITOR_WINDOW, None, "M").label == "13 months"
    assert _resolve_window(sample_ds, rules.MONITOR_WINDOW, None, None).label == "13 weeks"


def test_the_documentation_quotes_the_rules():
    """The methods pages state the rules in words; they must say what rules.py defines."""
    from pathlib import Path

    docs = Path(__file__).resolve().parents[1] / "docs" / "methods"
    scoring = (docs / "scoring.md").read_text(encoding="utf-8")
    assert (f"`red` < {rules.BAND_RED_BELOW:g} ≤ `yellow` < {rules.BAND_GREEN_FROM:g} ≤ `green`") in scoring
    hygiene = (docs / "hygiene.md").read_text(encoding="utf-8")
    assert f"more than {rules.LINT_DEFAULTS['stale_days']} days before `as_of`" in hygiene
    drivers = (docs / "drivers.md").read_text(encoding="utf-8")
    assert f"`4 × max_lag + 12` periods after the transform ({rules.driver_min_periods(8)} for max_lag 8)" in drivers
    assert "last 13 weeks" not in (docs / "monitoring.md").read_text(encoding="utf-8")


def test_whole_share_p_value_and_date():
    assert fmt.whole(11.0) == "11" and fmt.whole(np.float64(1234.0)) == "1,234" and fmt.whole(2.5) == "2.5"
    assert fmt.whole(None) == fmt.whole(float("nan")) == "—" and fmt.whole("hidden") == "hidden"
    assert fmt.share(0.84) == "84%" and fmt.share(1) == "100%" and fmt.share(None) == "—"
    assert fmt.share("fewer than 5 people") == "fewer than 5 people"
    assert fmt.p_value(0.0004) == "< 0.001" and fmt.p_value(0.0123) == "0.012" and fmt.p_value(np.nan) == "—"
    assert fmt.date(pd.Timestamp("2025-12-31")) == "31 Dec 2025" and fmt.date("2026-07-01") == "1 Jul 2026"
    assert fmt.date(pd.NaT) == fmt.date(None) == "—" and fmt.date("not a date") == "not a date"


@pytest.mark.parametrize("text, unit, expected", [
    ("1", "complaints/month", "1 complaint/month"),
    ("1", "points (0–10)", "1 point (0–10)"),
    ("-1", "leads/week", "-1 lead/week"),
    ("1.5", "complaints/month", "1.5 complaints/month"),
    ("2", "complaints/month", "2 complaints/month"),
    ("1", "h", "1 h"),
    ("1", "min", "1 min"),
    ("1", "k€/week", "1 k€/week"),
    ("1", "gross", "1 gross"),
    ("1", "NPS", "1 NPS"),
    ("12", "%", "12%"),
    ("3", "", "3"),
    ("3", None, "3"),
])
def test_a_unit_agrees_with_its_number(text, unit, expected):
    """A counting unit reads singular for exactly one ("1 complaints/month" was in key-result chart titles);
    abbreviations and words that are not plurals are left alone."""
    assert fmt.with_unit(text, unit) == expected


def test_number_significant_and_chart_value_share_the_unit_rule():
    assert fmt.number(1.0, "complaints/month") == "1 complaint/month"
    assert fmt.number(2.0, "complaints/month") == "2 complaints/month"
    assert fmt.significant(1.0, "points") == "1 point" and fmt.significant(12.3, "%") == "12.3%"
    assert fmt.chart_value(1.0, "leads/week") == "1 lead/week"
    assert fmt.chart_value(1234.5, "k€/week") == "1,234 k€/week" and fmt.chart_value(0.8234, "%") == "0.823%"
    assert fmt.chart_value(np.nan, "%") == fmt.chart_value(None) == "no value"
