"""The trading-hours parser (preferences/trading_hours.py): pure, so no database."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from preferences.trading_hours import TradingHours, TradingHoursError, Window, trading_hours_parse

MONDAY = datetime(2026, 12, 7, tzinfo=UTC)  # 00:00 UTC on a Monday


def at(day: int, clock: str, *, second: int = 0) -> datetime:
    """Day 0 is Monday 2026-12-07; clock is HH:MM, UTC."""
    hour, minute = map(int, clock.split(":"))
    return MONDAY + timedelta(days=day, hours=hour, minutes=minute, seconds=second)


def test_it_reads_windows_into_a_frozen_value():
    hours = trading_hours_parse("mon-fri 07:00-21:00, sun 18:00-24:00")
    assert hours == TradingHours((Window(frozenset({0, 1, 2, 3, 4}), 420, 1260), Window(frozenset({6}), 1080, 1440)))
    with pytest.raises(AttributeError):
        hours.windows = ()  # type: ignore[misc]


def test_it_allows_from_exactly_the_start_and_refuses_from_exactly_the_end():
    hours = trading_hours_parse("mon-fri 07:00-21:00")
    assert not hours.allows(at(0, "06:59", second=59))
    assert hours.allows(at(0, "07:00"))
    assert hours.allows(at(0, "20:59", second=59))
    assert not hours.allows(at(0, "21:00"))
    assert not hours.allows(at(5, "12:00"))  # Saturday


def test_it_ends_at_midnight_with_24_00_and_stops_a_minute_early_with_23_59():
    assert trading_hours_parse("sun 18:00-24:00").allows(at(6, "23:59", second=59))
    assert not trading_hours_parse("sun 18:00-24:00").allows(at(7, "00:00"))  # Monday
    assert not trading_hours_parse("sun 18:00-23:59").allows(at(6, "23:59"))
    assert trading_hours_parse("00:00-24:00").allows(at(3, "00:00"))


def test_it_runs_an_overnight_window_into_the_next_day():
    hours = trading_hours_parse("fri 22:00-02:00")
    assert not hours.allows(at(4, "21:59"))
    assert hours.allows(at(4, "22:00"))
    assert hours.allows(at(5, "01:59"))  # Saturday morning: Friday's window
    assert not hours.allows(at(5, "02:00"))
    assert not hours.allows(at(4, "01:00"))  # Friday morning belongs to a Thursday window, and there is none
    assert not hours.allows(at(5, "22:00"))


def test_it_wraps_a_day_range_over_the_weeks_end():
    hours = trading_hours_parse("sat-mon 10:00-11:00")
    assert [hours.allows(at(day, "10:30")) for day in range(7)] == [True, False, False, False, False, True, True]
    assert trading_hours_parse("wed 10:00-11:00").windows[0].days == frozenset({2})


def test_it_allows_any_of_several_windows_and_every_day_without_days():
    hours = trading_hours_parse("mon 01:00-02:00, 12:00-13:00")
    assert hours.allows(at(0, "01:30")) and hours.allows(at(3, "12:30"))
    assert not hours.allows(at(3, "01:30"))


def test_it_reads_any_case_spacing_and_full_day_names():
    assert trading_hours_parse("  MON - Fri   7:00 - 21:00 ,Sunday 18:00-24:00 ") == trading_hours_parse(
        "mon-fri 07:00-21:00, sun 18:00-24:00")
    assert trading_hours_parse("") == TradingHours(()) == trading_hours_parse("   ")
    assert trading_hours_parse("").allows(at(0, "03:00"))


def test_it_reads_a_moment_in_any_zone_as_utc():
    hours = trading_hours_parse("mon 07:00-08:00")
    assert hours.allows(datetime(2026, 12, 7, 9, 30, tzinfo=timezone(timedelta(hours=2))))


def test_it_says_when_opens_are_next_allowed():
    hours = trading_hours_parse("mon-fri 07:00-21:00, sun 18:00-24:00")
    assert hours.next_open(at(0, "21:00")) == at(1, "07:00")
    assert hours.next_open(at(5, "12:00")) == at(6, "18:00")  # Saturday → Sunday evening
    assert hours.next_open(at(0, "06:59")) == at(0, "07:00")


@pytest.mark.parametrize(("text", "problem"), [
    ("mon-fry 07:00-21:00", '"mon-fry 07:00-21:00": "fry" is not a day'),
    ("mon 7-21", '"mon 7-21": "7" is not a time'),
    ("mon 07:00", '"mon 07:00" is not a window'),
    ("25:00-26:00", '"25:00-26:00": "25:00" is not a time of day'),
    ("07:60-08:00", '"07:60-08:00": "07:60" is not a time of day'),
    ("24:00-02:00", "24:00 only as an end"),
    ("07:00-07:00", "the window starts and ends at the same time"),
    ("mon 07:00-08:00,", "an empty window"),
    ("mon 07:00-08:00,, tue 07:00-08:00", "an empty window"),
    ("mon-fri-sat 07:00-08:00", "is not a window"),
])
def test_it_names_the_problem_of_a_malformed_value(text, problem):
    with pytest.raises(TradingHoursError, match=problem.replace("(", r"\(")):
        trading_hours_parse(text)
