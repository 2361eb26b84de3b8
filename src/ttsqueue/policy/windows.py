"""Weekly calling windows, written as `mon-fri 07:00-19:00; sat 08:00-15:00`. Pure.

Grammar (case and spaces free): entries separated by `;`, each `<days> <ranges>`.
- days: a comma-separated list of days or day ranges (`mon-fri`, `sat,sun`, `fri-mon` wraps);
  English or Spanish names, short or long (`mon`/`monday`, `lun`/`lunes`, `sáb`/`sabado`).
- ranges: a comma-separated list of `HH:MM-HH:MM`, start included, end excluded; `24:00` is
  the end of the day. A range never crosses midnight: write `mon 22:00-24:00; tue 00:00-06:00`.
Several entries may name the same day; overlapping ranges are merged. Times are the callee's
local wall-clock time (see `opening` for what that means across DST changes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

MINUTES_PER_DAY = 24 * 60
# A spec can arrive in a request: bounded, so that parsing it costs nothing.
MAX_SPEC_LENGTH = 500
NO_WINDOWS = frozenset({"", "none"})
DAY_SHORT = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# [start, end) in minutes after local midnight; end may be 1440 (24:00).
Span = tuple[int, int]

_DAYS: dict[str, int] = {}
for _index, _names in enumerate(
    (
        "mon monday lun lunes",
        "tue tuesday mar martes",
        "wed wednesday mie mié miercoles miércoles",
        "thu thursday jue jueves",
        "fri friday vie viernes",
        "sat saturday sab sáb sabado sábado",
        "sun sunday dom domingo",
    )
):
    for _name in _names.split():
        _DAYS[_name] = _index

# Everything before the first digit names the days; the rest are the ranges.
_ENTRY = re.compile(r"\s*(?P<days>[^0-9]*?)\s*(?P<ranges>[0-9].*?)\s*", re.ASCII | re.DOTALL)
_RANGE = re.compile(r"([0-9]{1,2}):([0-9]{2})\s*-\s*([0-9]{1,2}):([0-9]{2})", re.ASCII)


class WindowSpecError(ValueError):
    """A calling-window spec that cannot be used; the message names the part at fault."""


@dataclass(frozen=True, slots=True)
class WeeklyWindows:
    """For each weekday (Monday first), the sorted, disjoint spans during which calls may start."""

    days: tuple[tuple[Span, ...], ...]

    def spans(self, weekday: int) -> tuple[Span, ...]:
        return self.days[weekday]

    def contains(self, weekday: int, second_of_day: float) -> bool:
        minute = second_of_day / 60
        return any(start <= minute < end for start, end in self.days[weekday])

    def __str__(self) -> str:
        parts = []
        day = 0
        while day < 7:
            last = day
            while last + 1 < 7 and self.days[last + 1] == self.days[day]:
                last += 1
            if self.days[day]:
                ranges = ", ".join(f"{_hhmm(s)}-{_hhmm(e)}" for s, e in self.days[day])
                parts.append(f"{_day_run(day, last)} {ranges}")
            day = last + 1
        return "; ".join(parts)


# Every day, all day: what holidays alone close (no CALLING_WINDOWS, CALLING_HOLIDAYS set).
ALL_DAY = WeeklyWindows(days=tuple(((0, MINUTES_PER_DAY),) for _ in range(7)))


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _day_run(first: int, last: int) -> str:
    if first == last:
        return DAY_SHORT[first]
    return f"{DAY_SHORT[first]}-{DAY_SHORT[last]}"


def _day(name: str, entry: str) -> int:
    try:
        return _DAYS[name]
    except KeyError:
        raise WindowSpecError(
            f"unknown day {name!r} in {entry!r} (use mon, tue, wed, thu, fri, sat, sun)"
        ) from None


def _parse_days(text: str, entry: str) -> list[int]:
    if not text:
        raise WindowSpecError(f"no day before the times in {entry!r} (e.g. 'mon-fri 07:00-19:00')")
    days: list[int] = []
    text = re.sub(r"\s*-\s*", "-", text.lower())
    for item in re.split(r"[,\s]+", text.strip(", ")):
        first, dash, last = item.partition("-")
        start = _day(first, entry)
        if not dash:
            days.append(start)
            continue
        end = _day(last, entry)
        days.extend((start + step) % 7 for step in range((end - start) % 7 + 1))
    return days


def _minute(hours: str, minutes: str, entry: str, *, is_end: bool) -> int:
    h, m = int(hours), int(minutes)
    if m > 59 or h > 24 or (h == 24 and (m or not is_end)):
        limit = "24:00" if is_end else "23:59"
        raise WindowSpecError(
            f"time {hours}:{minutes} in {entry!r} is not between 00:00 and {limit}"
        )
    return h * 60 + m


def _parse_ranges(text: str, entry: str) -> list[Span]:
    spans = []
    for item in text.split(","):
        match = _RANGE.fullmatch(item.strip())
        if match is None:
            raise WindowSpecError(
                f"{item.strip()!r} in {entry!r} is not a time range like 07:00-19:00"
            )
        start = _minute(match[1], match[2], entry, is_end=False)
        end = _minute(match[3], match[4], entry, is_end=True)
        if end <= start:
            raise WindowSpecError(
                f"range {item.strip()} in {entry!r} ends before it starts; a range that "
                "crosses midnight is written as two ('mon 22:00-24:00; tue 00:00-06:00')"
            )
        spans.append((start, end))
    return spans


def _merge(spans: list[Span]) -> tuple[Span, ...]:
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)


def _check_text(text: str) -> str:
    if len(text) > MAX_SPEC_LENGTH:
        raise WindowSpecError(f"calling windows longer than {MAX_SPEC_LENGTH} characters")
    if any(ord(ch) < 0x20 and ch not in "\t\n" for ch in text) or "\x7f" in text:
        raise WindowSpecError("calling windows contain a control character")
    return text.strip()


@lru_cache(maxsize=256)
def parse_windows(text: str) -> WeeklyWindows | None:
    """The windows a spec describes; None for no restriction (`""` or `none`)."""
    text = _check_text(text)
    if text.lower() in NO_WINDOWS:
        return None
    per_day: list[list[Span]] = [[] for _ in range(7)]
    entries = [part.strip() for part in text.split(";") if part.strip()]
    if not entries:
        raise WindowSpecError(f"no calling window in {text!r} (e.g. 'mon-fri 07:00-19:00')")
    for entry in entries:
        match = _ENTRY.fullmatch(entry)
        if match is None:
            raise WindowSpecError(f"no times in {entry!r} (e.g. 'mon-fri 07:00-19:00')")
        spans = _parse_ranges(match["ranges"], entry)
        for day in _parse_days(match["days"], entry):
            per_day[day].extend(spans)
    return WeeklyWindows(days=tuple(_merge(spans) for spans in per_day))
