"""When the window is open and when it next opens, on the callee's wall clock: Ley 2300 in
Bogotá with its holidays, a US number across DST (skipped and repeated hours), midnight
changes of offset, a skipped day, and windows that never open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ttsqueue.policy.closed_days import calendar_for
from ttsqueue.policy.opening import (
    CallingHours,
    NeverOpensError,
    closed_reason,
    is_open,
    local_day_start,
    next_local_day,
    next_opening,
    wall_instants,
)
from ttsqueue.policy.windows import WeeklyWindows, parse_windows

BOGOTA = ZoneInfo("America/Bogota")
NEW_YORK = ZoneInfo("America/New_York")
LEY_2300 = CallingHours(parse_windows("mon-fri 07:00-19:00; sat 08:00-15:00"), calendar_for("CO"))


def bogota(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BOGOTA)


def hours(spec: str) -> CallingHours:
    return CallingHours(parse_windows(spec))


@pytest.mark.parametrize(
    ("now", "opens", "reason"),
    [
        # Wednesday evening before Semana Santa: Thursday and Friday are holidays.
        ("2026-04-01 19:30", "2026-04-04 08:00", "outside_calling_window"),
        ("2026-04-02 10:00", "2026-04-04 08:00", "holiday"),
        # Saturday at 15:00 is already closed (the end is excluded); Monday is ordinary.
        ("2026-04-04 15:00", "2026-04-06 07:00", "outside_calling_window"),
        # Saturday afternoon before San José, moved by Emiliani to Monday 23 March.
        ("2026-03-21 15:00", "2026-03-24 07:00", "outside_calling_window"),
        # Sunday 1 November, then Monday 2 (Todos los Santos, moved): two closed days in a row.
        ("2026-11-01 09:00", "2026-11-03 07:00", "outside_calling_window"),
        # Across the year: 1 January 2027 is a Friday holiday.
        ("2026-12-31 23:00", "2027-01-02 08:00", "outside_calling_window"),
        ("2026-12-31 19:00", "2027-01-02 08:00", "outside_calling_window"),
        # Just before midnight on a Friday.
        ("2026-01-09 23:59:59", "2026-01-10 08:00", "outside_calling_window"),
        ("2026-01-12 06:59:59", "2026-01-13 07:00", "holiday"),  # Reyes, moved to Monday
        ("2026-01-13 06:59:59.999", "2026-01-13 07:00", "outside_calling_window"),
    ],
)
def test_ley_2300_in_bogota(now: str, opens: str, reason: str) -> None:
    at = bogota(now)
    assert closed_reason(at, LEY_2300, BOGOTA) == reason
    assert next_opening(at, LEY_2300, BOGOTA) == bogota(opens)


@pytest.mark.parametrize("now", ["2026-01-13 07:00", "2026-01-13 18:59:59", "2026-04-04 14:59"])
def test_an_open_instant_is_its_own_opening(now: str) -> None:
    at = bogota(now)
    assert closed_reason(at, LEY_2300, BOGOTA) is None
    assert next_opening(at, LEY_2300, BOGOTA) == at


def test_the_opening_is_returned_in_utc() -> None:
    opening = next_opening(bogota("2026-04-01 19:30"), LEY_2300, BOGOTA)
    assert opening.tzinfo is UTC
    assert opening == datetime(2026, 4, 4, 13, 0, tzinfo=UTC)


def test_no_rules_is_always_open() -> None:
    at = datetime(2026, 4, 5, 3, 0, tzinfo=UTC)
    assert is_open(at, CallingHours(), BOGOTA)
    assert next_opening(at, CallingHours(), BOGOTA) == at


def test_holidays_alone_close_whole_days() -> None:
    only_holidays = CallingHours(None, calendar_for("CO"))
    assert closed_reason(bogota("2026-12-25 12:00"), only_holidays, BOGOTA) == "holiday"
    assert next_opening(bogota("2026-12-25 12:00"), only_holidays, BOGOTA) == bogota(
        "2026-12-26 00:00"
    )
    assert is_open(bogota("2026-12-26 03:00"), only_holidays, BOGOTA)


# A US number across DST. 2026: clocks go 02:00 -> 03:00 on Sunday 8 March, and
# 02:00 -> 01:00 on Sunday 1 November.
def test_spring_gap_opens_at_the_end_of_the_gap() -> None:
    before = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)  # 01:00 EST
    opening = next_opening(before, hours("sun 02:30-05:00"), NEW_YORK)
    assert opening == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT, the gap's end
    assert opening.astimezone(NEW_YORK).strftime("%H:%M %Z") == "03:00 EDT"


def test_a_window_inside_the_spring_gap_does_not_open_that_day() -> None:
    before = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)
    opening = next_opening(before, hours("sun 02:00-02:59"), NEW_YORK)
    assert opening == datetime(2026, 3, 15, 6, 0, tzinfo=UTC)  # next Sunday 02:00 EDT


def test_the_repeated_autumn_hour_opens_twice() -> None:
    window = hours("sun 01:30-01:45")
    first = next_opening(datetime(2026, 11, 1, 4, 0, tzinfo=UTC), window, NEW_YORK)
    assert first == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    second = next_opening(datetime(2026, 11, 1, 5, 45, tzinfo=UTC), window, NEW_YORK)
    assert second == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST
    assert not is_open(datetime(2026, 11, 1, 6, 0, tzinfo=UTC), window, NEW_YORK)


def test_falling_back_into_a_window_reopens_it_at_the_change() -> None:
    window = hours("sun 00:00-01:30")
    after_first_pass = datetime(2026, 11, 1, 5, 45, tzinfo=UTC)  # 01:45 EDT: closed
    assert not is_open(after_first_pass, window, NEW_YORK)
    # At 06:00 UTC the clock reads 01:00 EST again: inside the window.
    assert next_opening(after_first_pass, window, NEW_YORK) == datetime(
        2026, 11, 1, 6, 0, tzinfo=UTC
    )


def test_business_hours_for_a_us_number_follow_the_offset_change() -> None:
    window = hours("mon-fri 07:00-19:00")
    saturday = datetime(2026, 3, 7, 20, 0, tzinfo=NEW_YORK)  # EST
    assert next_opening(saturday, window, NEW_YORK) == datetime(2026, 3, 9, 11, 0, tzinfo=UTC)
    friday = datetime(2026, 10, 30, 20, 0, tzinfo=NEW_YORK)  # EDT
    assert next_opening(friday, window, NEW_YORK) == datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def test_midnight_that_does_not_exist() -> None:
    # Chile moves its clocks at midnight: on 6 September 2026, 00:00 becomes 01:00.
    santiago = ZoneInfo("America/Santiago")
    day_start = local_day_start(datetime(2026, 9, 6).date(), santiago)
    local = day_start.astimezone(santiago)
    assert (local.date().isoformat(), local.strftime("%H:%M")) == ("2026-09-06", "01:00")
    assert (day_start - timedelta(seconds=1)).astimezone(santiago).day == 5
    opening = next_opening(
        datetime(2026, 9, 5, 23, 0, tzinfo=santiago), hours("sun 00:00-06:00"), santiago
    )
    assert opening == day_start


def test_a_skipped_day_has_no_window() -> None:
    # Samoa skipped Friday 30 December 2011 when it crossed the date line.
    apia = ZoneInfo("Pacific/Apia")
    thursday = datetime(2011, 12, 29, 12, 0, tzinfo=apia)
    opening = next_opening(thursday, hours("fri 09:00-10:00"), apia)
    assert opening.astimezone(apia) == datetime(2012, 1, 6, 9, 0, tzinfo=apia)


def test_wall_instants_in_gaps_and_repeats() -> None:
    assert wall_instants(datetime(2026, 3, 8, 2, 30), NEW_YORK) == [
        datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    ]
    assert wall_instants(datetime(2026, 11, 1, 1, 30), NEW_YORK) == [
        datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
        datetime(2026, 11, 1, 6, 30, tzinfo=UTC),
    ]


def test_next_local_day_is_local_midnight() -> None:
    assert next_local_day(bogota("2026-05-04 23:59"), BOGOTA) == bogota("2026-05-05 00:00")
    # On the day clocks go forward, that day is 23 hours long.
    assert next_local_day(datetime(2026, 3, 8, 12, tzinfo=NEW_YORK), NEW_YORK) == datetime(
        2026, 3, 9, 4, 0, tzinfo=UTC
    )


def test_a_window_set_that_never_opens() -> None:
    never = CallingHours(WeeklyWindows(days=((),) * 7))
    with pytest.raises(NeverOpensError, match="never open"):
        next_opening(datetime(2026, 1, 1, tzinfo=UTC), never, BOGOTA)


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_opening(datetime(2026, 1, 1), LEY_2300, BOGOTA)
