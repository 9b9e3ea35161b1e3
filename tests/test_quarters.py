"""Quarter parsing, fiscal calendars and elapsed fractions."""

import pandas as pd
import pytest

from okr_analysis.io import Quarter, parse_quarter, quarter_of


@pytest.mark.parametrize("label", ["2026Q3", "2026-Q3", "Q3 2026", "q3 2026", " 2026 q3 ", "FY2026Q3", "Q3-2026"])
def test_all_spellings_parse_to_the_same_quarter(label):
    q = parse_quarter(label)
    assert (q.year, q.q, q.label) == (2026, 3, "2026Q3")


@pytest.mark.parametrize("bad", ["2026Q5", "Q0 2026", "2026", "third quarter", "", "26Q3"])
def test_bad_labels_say_how_to_write_a_quarter(bad):
    with pytest.raises(ValueError, match="2026Q3"):
        parse_quarter(bad)


def test_non_string_label_is_a_type_error():
    with pytest.raises(TypeError, match="quarter must be a string"):
        parse_quarter(20263)


def test_calendar_quarter_boundaries():
    q = Quarter.parse("2026Q3")
    assert q.start == pd.Timestamp("2026-07-01")
    assert q.end == pd.Timestamp("2026-09-30")
    assert q.days == 92
    q4 = Quarter.parse("2026Q4")
    assert (q4.start, q4.end) == (pd.Timestamp("2026-10-01"), pd.Timestamp("2026-12-31"))


def test_fiscal_year_starting_in_february():
    # The example: fiscal_year_start=2 makes FY2027Q1 = Feb–Apr 2026.
    q = Quarter.parse("2027Q1", fiscal_year_start=2)
    assert q.start == pd.Timestamp("2026-02-01")
    assert q.end == pd.Timestamp("2026-04-30")
    q4 = Quarter.parse("2027Q4", fiscal_year_start=2)
    assert (q4.start, q4.end) == (pd.Timestamp("2026-11-01"), pd.Timestamp("2027-01-31"))


@pytest.mark.parametrize("start", range(1, 13))
def test_containing_round_trips_for_every_fiscal_start(start):
    for day in pd.date_range("2025-01-01", "2027-12-31", freq="11D"):
        q = Quarter.containing(day, fiscal_year_start=start)
        assert q.start <= day <= q.end
        assert Quarter.parse(q.label, fiscal_year_start=start) == q


def test_fiscal_year_named_after_the_year_it_ends():
    # A July fiscal year: July 2025 – June 2026 is FY2026.
    assert Quarter.containing("2025-07-15", fiscal_year_start=7).label == "2026Q1"
    assert Quarter.containing("2026-06-30", fiscal_year_start=7).label == "2026Q4"


def test_quarter_of_is_vectorised_and_matches_containing():
    dates = pd.Series(pd.date_range("2025-01-01", periods=40, freq="17D"))
    for start in (1, 2, 4, 10):
        labels = quarter_of(dates, fiscal_year_start=start)
        assert labels.tolist() == [Quarter.containing(d, fiscal_year_start=start).label for d in dates]
    assert quarter_of(pd.Series([pd.NaT, pd.Timestamp("2026-08-01")])).isna().tolist() == [True, False]


def test_elapsed_fraction():
    q = Quarter.parse("2026Q3")  # 92 days
    assert q.elapsed("2026-06-15") == 0.0
    assert q.elapsed("2026-07-01") == pytest.approx(1 / 92)
    assert q.elapsed("2026-08-15") == pytest.approx(46 / 92)
    assert q.elapsed("2026-09-30") == 1.0
    assert q.elapsed("2026-12-01") == 1.0


def test_next_previous_contains():
    q = Quarter.parse("2026Q4")
    assert q.next().label == "2027Q1" and q.previous().label == "2026Q3"
    assert Quarter.parse("2026Q1").previous().label == "2025Q4"
    assert q.contains("2026-11-23") and not q.contains("2026-09-30")


def test_bad_fiscal_year_start_names_the_argument():
    with pytest.raises(ValueError, match="fiscal_year_start must be a month number from 1 to 12"):
        Quarter.parse("2026Q1", fiscal_year_start=13)


def test_to_day_gives_naive_midnight_or_none():
    from okr_analysis.io import to_day

    assert to_day("2026-08-15 13:45") == pd.Timestamp("2026-08-15")
    assert to_day(pd.Timestamp("2026-08-15 23:30", tz="Europe/Berlin")) == pd.Timestamp("2026-08-15")
    assert to_day("not a date") is None and to_day(pd.NaT) is None and to_day([1, 2]) is None
