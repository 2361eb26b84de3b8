"""When a callee's calling window is open, and when it next opens. Pure.

"Open" is judged on the callee's local wall clock: an instant is open when its local date is
not a holiday and its local time falls in one of that weekday's spans. Across DST changes this
means: in a repeated hour (autumn) both passes are judged by their wall time, so a window can
open twice; in a skipped hour (spring) a window whose start falls in the gap opens at the
first instant after the gap, and a window lying wholly inside the gap does not open that day.

`next_opening` finds the first open instant at or after a moment. Openness can only switch on
where the local wall clock reaches a span's start (once, or twice in a repeated hour) or jumps
(a UTC-offset transition), so those instants are the only candidates to test, date by date.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ttsqueue.policy.closed_days import HolidayCalendar
from ttsqueue.policy.windows import ALL_DAY, WeeklyWindows

# Consecutive closed days searched before giving up (holidays are never this many in a row).
HORIZON_DAYS = 400


class NeverOpensError(ValueError):
    """No open instant within HORIZON_DAYS: the windows and holidays leave no time at all."""


@dataclass(frozen=True, slots=True)
class CallingHours:
    """The weekly windows and the holidays that apply to one callee (zone chosen apart).

    `windows=None` is every day all day (holidays alone may close a day)."""

    windows: WeeklyWindows | None = None
    holidays: HolidayCalendar | None = None

    @property
    def unrestricted(self) -> bool:
        return self.windows is None and self.holidays is None

    @property
    def weekly(self) -> WeeklyWindows:
        return self.windows if self.windows is not None else ALL_DAY


def _require_aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("instants must be timezone-aware")
    return at.astimezone(UTC)


def closed_reason(at: datetime, hours: CallingHours, zone: ZoneInfo) -> str | None:
    """None when `at` is open; else `holiday` or `outside_calling_window`."""
    if hours.unrestricted:
        return None
    local = _require_aware(at).astimezone(zone)
    if hours.holidays is not None and hours.holidays.is_holiday(local.date()):
        return "holiday"
    seconds = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
    if not hours.weekly.contains(local.weekday(), seconds):
        return "outside_calling_window"
    return None


def is_open(at: datetime, hours: CallingHours, zone: ZoneInfo) -> bool:
    return closed_reason(at, hours, zone) is None


def _offset_s(epoch: int, zone: ZoneInfo) -> float:
    offset = datetime.fromtimestamp(epoch, zone).utcoffset()
    return offset.total_seconds() if offset is not None else 0.0


def _transition(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """The instant between `before` and `after` (different UTC offsets) where the offset
    changes; tz data changes offsets on whole seconds."""
    lo, hi = int(before.timestamp()), int(after.timestamp())
    first = _offset_s(lo, zone)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset_s(mid, zone) == first:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, UTC)


def wall_instants(wall: datetime, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants at which the local clock in `zone` reaches the naive `wall` time: one
    normally, two in a repeated hour, the end of the gap when `wall` is skipped."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second:
        return [first]
    if first < second:  # repeated: fold 0 is the first pass
        return [first, second]
    return [_transition(second, first, zone)]  # skipped: the clock jumps over it


def local_day_start(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of local date `day` in `zone` (UTC)."""
    return wall_instants(datetime.combine(day, time()), zone)[0]


def _day_transitions(day: date, zone: ZoneInfo) -> list[datetime]:
    start = local_day_start(day, zone)
    end = local_day_start(day + timedelta(days=1), zone)
    if start.astimezone(zone).utcoffset() == end.astimezone(zone).utcoffset():
        return []
    return [_transition(start, end, zone)]


def _candidates(day: date, hours: CallingHours, zone: ZoneInfo) -> Iterator[datetime]:
    """Instants of local date `day` where the window may switch on, in order."""
    if hours.holidays is not None and hours.holidays.is_holiday(day):
        return
    spans = hours.weekly.spans(day.weekday())
    if not spans:
        return
    midnight = datetime.combine(day, time())
    found = set(_day_transitions(day, zone))
    for start, _end in spans:
        found.update(wall_instants(midnight + timedelta(minutes=start), zone))
    yield from sorted(found)


def next_opening(at: datetime, hours: CallingHours, zone: ZoneInfo) -> datetime:
    """`at` itself when open, else the first open instant after it (UTC).

    Raises NeverOpensError when nothing opens within HORIZON_DAYS."""
    at = _require_aware(at)
    if is_open(at, hours, zone):
        return at
    day = at.astimezone(zone).date()
    for offset in range(HORIZON_DAYS):
        for candidate in _candidates(day + timedelta(days=offset), hours, zone):
            if candidate > at and is_open(candidate, hours, zone):
                return candidate
    raise NeverOpensError(
        f"the calling windows never open within {HORIZON_DAYS} days in {zone.key}"
    )


def local_date(at: datetime, zone: ZoneInfo) -> date:
    return _require_aware(at).astimezone(zone).date()


def next_local_day(at: datetime, zone: ZoneInfo) -> datetime:
    """The first instant of the local day after `at`'s (UTC): when a daily count starts over."""
    return local_day_start(local_date(at, zone) + timedelta(days=1), zone)
