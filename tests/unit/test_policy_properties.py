"""Properties of `next_opening` over every time zone, random windows, holidays and instants,
with extra weight on the days clocks change: the opening is open, never earlier than now, and
nothing before it is open.

The last property is checked against a brute-force oracle, exact rather than sampled: since
1980 every zone's UTC offset is a whole number of minutes and windows are written in whole
minutes, so openness is constant within each UTC minute, and the first open instant is the
first open minute boundary.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ttsqueue.policy.closed_days import calendar_for
from ttsqueue.policy.opening import CallingHours, is_open, next_opening
from ttsqueue.policy.windows import DAY_SHORT, WeeklyWindows, parse_windows

pytestmark = pytest.mark.timeout(600)

ZONES = sorted(z for z in available_timezones() if not z.startswith(("Factory", "localtime")))
# Zones whose clocks change in unusual ways: half-hour DST, DST at midnight, 45-minute
# offsets, a skipped day, big jumps, "negative" DST (Dublin).
ODD_ZONES = [
    "America/New_York",
    "America/Santiago",
    "America/Havana",
    "Australia/Lord_Howe",
    "Europe/Dublin",
    "Pacific/Chatham",
    "Pacific/Apia",
    "Antarctica/Troll",
    "Europe/London",
    "Asia/Tehran",
]
MINUTE = timedelta(minutes=1)


def instants(low: int = 1980, high: int = 2037) -> st.SearchStrategy[datetime]:
    return st.datetimes(
        min_value=datetime(low, 1, 1), max_value=datetime(high, 12, 31), timezones=st.just(UTC)
    )


@st.composite
def window_specs(draw: st.DrawFn) -> str:
    """1..3 entries, each some days and one or two ranges (minute precision)."""
    entries = []
    for _ in range(draw(st.integers(1, 3))):
        first = draw(st.integers(0, 6))
        days = DAY_SHORT[first]
        if draw(st.booleans()):
            days += "-" + DAY_SHORT[draw(st.integers(0, 6))]
        ranges = []
        for _ in range(draw(st.integers(1, 2))):
            start = draw(st.integers(0, 1439))
            end = draw(st.integers(start + 1, 1440))
            ranges.append(f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}")
        entries.append(f"{days} {', '.join(ranges)}")
    return "; ".join(entries)


@st.composite
def calling_hours(draw: st.DrawFn) -> CallingHours:
    windows = draw(st.one_of(st.none(), window_specs().map(parse_windows)))
    holidays = draw(st.sampled_from(["", "CO", "US", "CO,US"]))
    return CallingHours(windows, calendar_for(holidays))


@cache
def transitions(zone_name: str) -> list[datetime]:
    """Offset changes of a zone in 2000..2036, found independently by hourly scanning."""
    zone = ZoneInfo(zone_name)
    found: list[datetime] = []
    at = datetime(2000, 1, 1, tzinfo=UTC)
    previous = at.astimezone(zone).utcoffset()
    while at.year < 2037:
        step = at + timedelta(days=1)
        offset = step.astimezone(zone).utcoffset()
        if offset != previous:
            hour = at
            while hour.astimezone(zone).utcoffset() == previous:
                hour += timedelta(hours=1)
            found.append(hour)
            previous = offset
        at = step
    return found


@st.composite
def near_a_clock_change(draw: st.DrawFn) -> tuple[str, datetime]:
    zone = draw(st.sampled_from(ODD_ZONES))
    changes = transitions(zone)
    change = draw(st.sampled_from(changes))
    delta = draw(st.integers(-36 * 3600, 36 * 3600))
    return zone, change + timedelta(seconds=delta)


@st.composite
def windows_at_a_clock_change(draw: st.DrawFn) -> tuple[str, datetime, CallingHours]:
    """A window starting or ending within 90 minutes (wall clock) of a clock change, on that
    day, and an instant up to a day and a half before the change: the skipped and repeated
    wall times are where an opening is easy to get wrong."""
    zone_name = draw(st.sampled_from(ODD_ZONES))
    change = draw(st.sampled_from(transitions(zone_name)))
    wall = (change - timedelta(seconds=1)).astimezone(ZoneInfo(zone_name))
    around = wall.hour * 60 + wall.minute + draw(st.integers(-90, 90))
    start = min(max(around, 0), 1439)
    end = min(start + draw(st.integers(1, 180)), 1440)
    if draw(st.booleans()):  # the change inside the window, near its end instead
        start, end = max(end - 180, 0), max(start, 1)
        start = min(start, end - 1)
    days: list[tuple[tuple[int, int], ...]] = [()] * 7
    days[wall.weekday()] = ((start, end),)
    at = change - timedelta(seconds=draw(st.integers(0, 36 * 3600)))
    return zone_name, at, CallingHours(WeeklyWindows(days=tuple(days)))


def first_open_minute(at: datetime, hours: CallingHours, zone: ZoneInfo) -> datetime:
    """The oracle: step through minute boundaries until one is open."""
    minute = at.replace(second=0, microsecond=0)
    if minute < at:
        minute += MINUTE
    while not is_open(minute, hours, zone):
        minute += MINUTE
    return minute


def check(at: datetime, hours: CallingHours, zone: ZoneInfo) -> None:
    opening = next_opening(at, hours, zone)
    assert opening >= at
    assert is_open(opening, hours, zone)
    assert opening.tzinfo is UTC
    if is_open(at, hours, zone):
        assert opening == at
    else:
        assert opening == first_open_minute(at, hours, zone)


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(zone=st.sampled_from(ZONES), at=instants(), hours=calling_hours())
def test_any_zone_any_instant(zone: str, at: datetime, hours: CallingHours) -> None:
    check(at, hours, ZoneInfo(zone))


@PROPERTY
@given(where=near_a_clock_change(), hours=calling_hours())
def test_around_clock_changes(where: tuple[str, datetime], hours: CallingHours) -> None:
    zone, at = where
    check(at, hours, ZoneInfo(zone))


@PROPERTY
@given(case=windows_at_a_clock_change())
def test_windows_that_meet_a_clock_change(case: tuple[str, datetime, CallingHours]) -> None:
    zone, at, hours = case
    check(at, hours, ZoneInfo(zone))


@PROPERTY
@given(
    at=st.datetimes(
        min_value=datetime(2025, 12, 24), max_value=datetime(2027, 1, 10), timezones=st.just(UTC)
    )
)
def test_ley_2300_around_the_year_end_and_holidays(at: datetime) -> None:
    hours = CallingHours(parse_windows("mon-fri 07:00-19:00; sat 08:00-15:00"), calendar_for("CO"))
    check(at, hours, ZoneInfo("America/Bogota"))
    opening = next_opening(at, hours, ZoneInfo("America/Bogota")).astimezone(
        ZoneInfo("America/Bogota")
    )
    assert opening.weekday() != 6
    assert calendar_for("CO") is not None


@settings(max_examples=60, deadline=None)
@given(zone=st.sampled_from(ZONES), at=instants(2000, 2030))
def test_a_single_minute_a_week_is_found(zone: str, at: datetime) -> None:
    # The sparsest useful window: one minute on Sundays.
    windows = WeeklyWindows(days=((),) * 6 + (((600, 601),),))
    check(at, CallingHours(windows), ZoneInfo(zone))
