"""Public holidays on which no call is placed (`CALLING_HOLIDAYS`), from the `holidays` package.

`CO` follows Colombian law, festivos moved to Monday by Ley Emiliani (Ley 51 de 1983) included:
the package computes the observed dates (e.g. Epiphany 2026 on Monday 12 January). A code may
name a subdivision (`US-NY`, `ES-MD`) and several codes may be combined (`CO,US`).
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

NO_HOLIDAYS = frozenset({"", "none"})


class HolidaySpecError(ValueError):
    """A holiday country code the `holidays` package does not know."""


# `holidays` is imported where it is used: loading it takes about a tenth of a second, which
# every process would pay at start, and only settings that name holidays need it.


@lru_cache(maxsize=1)
def _supported() -> dict[str, list[str]]:
    import holidays

    return {
        code.upper(): [s.upper() for s in subs]
        for code, subs in holidays.list_supported_countries().items()
    }


def parse_holiday_codes(text: str) -> tuple[str, ...]:
    """`CO`, `us-ny`, `CO,US` -> normalized codes; () for none. Raises HolidaySpecError."""
    codes = []
    for raw in text.split(","):
        code = raw.strip().upper()
        if code.lower() in NO_HOLIDAYS:
            continue
        country, _, subdivision = code.partition("-")
        known = _supported()
        if country not in known or (subdivision and subdivision not in known[country]):
            raise HolidaySpecError(
                f"{raw.strip()!r} is not a country (or country-subdivision) code that the "
                "holidays package knows, e.g. CO, US, US-NY, ES-MD"
            )
        codes.append(code)
    return tuple(dict.fromkeys(codes))


@lru_cache(maxsize=512)
def _closed_in(code: str, year: int) -> dict[date, str]:
    import holidays

    country, _, subdivision = code.partition("-")
    days = holidays.country_holidays(country, subdiv=subdivision or None, years=year)
    return {day: str(name) for day, name in days.items()}


class HolidayCalendar:
    """The union of the public holidays of one or more countries; years computed once each."""

    def __init__(self, codes: tuple[str, ...]) -> None:
        if not codes:
            raise ValueError("a holiday calendar needs at least one country code")
        self.codes = codes

    def holiday(self, day: date) -> str | None:
        """The holiday's name, or None for a working day."""
        for code in self.codes:
            name = _closed_in(code, day.year).get(day)
            if name is not None:
                return name
        return None

    def is_holiday(self, day: date) -> bool:
        return self.holiday(day) is not None

    def __str__(self) -> str:
        return ",".join(self.codes)

    def __repr__(self) -> str:
        return f"HolidayCalendar({self.codes!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HolidayCalendar) and other.codes == self.codes

    def __hash__(self) -> int:
        return hash(self.codes)


def calendar_for(text: str) -> HolidayCalendar | None:
    codes = parse_holiday_codes(text)
    return HolidayCalendar(codes) if codes else None
