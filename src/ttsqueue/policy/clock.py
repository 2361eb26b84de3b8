"""Where "now" comes from, so that tests (and end-to-end runs) can put a process at any moment.

Every policy decision reads the time through a `Clock`; production uses `SystemClock`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a clock instant must be timezone-aware")
    return moment.astimezone(UTC)


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """Stands still at one instant until told to move (unit and integration tests)."""

    def __init__(self, at: datetime) -> None:
        self._at = _utc(at)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = _utc(at)

    def advance(self, delta: timedelta) -> None:
        self._at += delta


class OffsetClock:
    """The system clock shifted to start at `at`: time flows normally from there. Lets a real
    process live, say, on a Colombian Sunday at 10:00 while its timers keep working."""

    def __init__(self, at: datetime) -> None:
        self._offset = _utc(at) - datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset
