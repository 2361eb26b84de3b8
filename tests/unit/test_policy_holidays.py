"""Holidays from the `holidays` package (CALLING_HOLIDAYS), Colombia's Ley Emiliani included."""

from __future__ import annotations

from datetime import date

import pytest

from ttsqueue.policy.closed_days import HolidaySpecError, calendar_for, parse_holiday_codes

# Festivos computed by hand from Ley 51 de 1983 (Emiliani): these move to the next Monday.
# Easter 2026 is 5 April, Easter 2027 is 28 March.
EMILIANI_MOVED = [
    (date(2026, 1, 6), date(2026, 1, 12)),  # Reyes, Tuesday -> Monday
    (date(2026, 3, 19), date(2026, 3, 23)),  # San José, Thursday
    (date(2026, 5, 14), date(2026, 5, 18)),  # Ascensión (Easter + 39)
    (date(2026, 6, 4), date(2026, 6, 8)),  # Corpus Christi (Easter + 60)
    (date(2026, 6, 12), date(2026, 6, 15)),  # Sagrado Corazón (Easter + 68)
    (date(2026, 8, 15), date(2026, 8, 17)),  # Asunción, Saturday
    (date(2026, 11, 1), date(2026, 11, 2)),  # Todos los Santos, Sunday
    (date(2026, 11, 11), date(2026, 11, 16)),  # Independencia de Cartagena
    (date(2027, 1, 6), date(2027, 1, 11)),
    (date(2027, 3, 19), date(2027, 3, 22)),
    (date(2027, 6, 29), date(2027, 7, 5)),  # San Pedro y San Pablo, Tuesday
    (date(2027, 8, 15), date(2027, 8, 16)),
    (date(2027, 10, 12), date(2027, 10, 18)),  # Día de la Raza, Tuesday
    (date(2027, 11, 11), date(2027, 11, 15)),
]
# Festivos that never move.
FIXED = [
    date(2026, 1, 1),
    date(2026, 4, 2),  # Jueves Santo
    date(2026, 4, 3),  # Viernes Santo
    date(2026, 5, 1),
    date(2026, 7, 20),
    date(2026, 8, 7),
    date(2026, 12, 8),
    date(2026, 12, 25),
    date(2027, 3, 25),
    date(2027, 3, 26),
    date(2027, 5, 1),  # a Saturday, still a holiday
    date(2027, 12, 25),
]


@pytest.mark.parametrize(("original", "observed"), EMILIANI_MOVED)
def test_emiliani_moves_the_festivo_to_monday(original: date, observed: date) -> None:
    co = calendar_for("CO")
    assert co is not None
    assert observed.weekday() == 0
    assert co.is_holiday(observed), observed
    assert not co.is_holiday(original), original


@pytest.mark.parametrize("day", FIXED)
def test_fixed_festivos(day: date) -> None:
    co = calendar_for("CO")
    assert co is not None
    assert co.is_holiday(day)


def test_ordinary_days_are_not_holidays() -> None:
    co = calendar_for("CO")
    assert co is not None
    for day in [date(2026, 1, 13), date(2026, 4, 1), date(2026, 4, 6), date(2027, 7, 6)]:
        assert co.holiday(day) is None


def test_codes_subdivisions_and_unions() -> None:
    assert parse_holiday_codes(" co , us-ny ,CO") == ("CO", "US-NY")
    assert parse_holiday_codes("none") == ()
    both = calendar_for("CO,US")
    assert both is not None
    assert both.is_holiday(date(2026, 7, 4))  # US Independence Day
    assert both.is_holiday(date(2026, 7, 20))  # Colombian Independence Day
    new_york = calendar_for("US-NY")
    assert new_york is not None
    assert new_york.is_holiday(date(2026, 2, 12))
    us = calendar_for("US")
    assert us is not None
    assert not us.is_holiday(date(2026, 2, 12))


@pytest.mark.parametrize("text", ["XX", "US-ZZ", "Colombia", "CO;US"])
def test_unknown_codes_are_refused(text: str) -> None:
    with pytest.raises(HolidaySpecError, match="not a country"):
        parse_holiday_codes(text)
