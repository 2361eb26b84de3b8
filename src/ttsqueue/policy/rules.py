"""The calling rules in force: from the settings, a preset, and a job's own overrides. Pure.

Settings: `CALLING_WINDOWS` (a spec, a preset name, or empty for any time), `CALLING_HOLIDAYS`
(country codes), `MAX_CONTACTS_PER_DAY` (unset: off, or the preset's value). A preset brings
all three; an explicitly set `CALLING_HOLIDAYS` or `MAX_CONTACTS_PER_DAY` still wins.

A job (or campaign) may carry `calling_windows` (a spec or a preset name, replacing the
windows; a preset replaces holidays and cap as well), `timezone` (an IANA name for the
callee), and `ignore_calling_windows` (emergencies: no windows, no holidays, no cap; the
do-not-call list still applies).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ttsqueue.policy.closed_days import HolidayCalendar, calendar_for
from ttsqueue.policy.opening import CallingHours
from ttsqueue.policy.presets import check_calling_windows, preset_named
from ttsqueue.policy.windows import WeeklyWindows, WindowSpecError, parse_windows
from ttsqueue.policy.zones import TimeZoneError, zone_named

ANY_TIME = CallingHours()


@dataclass(frozen=True, slots=True)
class CallingRules:
    """Everything that limits when one callee may be contacted (the zone is chosen apart)."""

    hours: CallingHours = ANY_TIME
    # Answered contacts per number per local day; 0: no cap.
    max_contacts_per_day: int = 0
    preset: str | None = None

    @property
    def windows(self) -> WeeklyWindows | None:
        return self.hours.windows

    @property
    def holidays(self) -> HolidayCalendar | None:
        return self.hours.holidays

    @property
    def unrestricted(self) -> bool:
        return self.hours.unrestricted and self.max_contacts_per_day == 0


NO_RULES = CallingRules()


def rules_from_settings(
    calling_windows: str, calling_holidays: str | None, max_contacts_per_day: int | None
) -> CallingRules:
    """The global rules. `None` means "not set" (the preset's value, else off).
    Raises ValueError (WindowSpecError, HolidaySpecError) naming the problem."""
    found = preset_named(calling_windows)
    if found is not None:
        name, preset = found
        windows = parse_windows(preset.windows)
        holidays = preset.holidays if calling_holidays is None else calling_holidays
        cap = preset.max_contacts_per_day if max_contacts_per_day is None else max_contacts_per_day
        hours = CallingHours(windows, calendar_for(holidays))
        return CallingRules(hours, cap, preset=name)
    hours = CallingHours(parse_windows(calling_windows), calendar_for(calling_holidays or ""))
    return CallingRules(hours, max_contacts_per_day or 0)


class PolicyFieldError(ValueError):
    """A job's policy field is invalid; `field` names it (for a 422 at submission)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True, slots=True)
class JobPolicy:
    """A job's own policy fields, validated (stored with the job, read back by the worker)."""

    calling_windows: str | None = None
    timezone: str | None = None
    ignore_calling_windows: bool = False


DEFAULT_JOB_POLICY = JobPolicy()


def validate_job_policy(
    calling_windows: str | None, timezone: str | None, ignore_calling_windows: bool = False
) -> JobPolicy:
    """Check a request's policy fields; PolicyFieldError names the bad one."""
    if calling_windows is not None:
        try:
            check_calling_windows(calling_windows)
        except WindowSpecError as exc:
            raise PolicyFieldError("calling_windows", str(exc)) from None
    if timezone is not None:
        try:
            zone_named(timezone)
        except TimeZoneError as exc:
            raise PolicyFieldError("timezone", str(exc)) from None
    return JobPolicy(calling_windows, timezone, ignore_calling_windows)


def rules_for_job(base: CallingRules, job: JobPolicy) -> CallingRules:
    """The rules one job obeys: the global ones with its overrides applied."""
    if job.ignore_calling_windows:
        return NO_RULES
    if job.calling_windows is None:
        return base
    found = preset_named(job.calling_windows)
    if found is not None:
        name, preset = found
        hours = CallingHours(parse_windows(preset.windows), calendar_for(preset.holidays))
        return CallingRules(hours, preset.max_contacts_per_day, preset=name)
    windows = parse_windows(job.calling_windows)
    return replace(base, hours=replace(base.hours, windows=windows), preset=None)
