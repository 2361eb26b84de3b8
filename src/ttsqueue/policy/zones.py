"""The callee's time zone: from the request's `timezone` (an IANA name), else from the number.

`phonenumbers` maps a number to the zones its prefix covers. Most numbers have one (Colombia:
America/Bogota; a US number: its area code's zone). When a prefix covers several (mobile
numbers in Russia, Australia, Spain...), the first zone the library lists for it is used
(SPEC §13: the region's first zone) and the choice is marked `ambiguous`; a request's
`timezone` is the way to be exact. A number the library cannot place (an internal extension,
an unknown prefix) gets the first zone of `fallback_region` (DEFAULT_REGION), else UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

import phonenumbers
from phonenumbers import timezone as number_zones

UNKNOWN_ZONE = "Etc/Unknown"
MAX_ZONE_NAME = 64


class TimeZoneError(ValueError):
    """Not an IANA time-zone name this host knows."""


@dataclass(frozen=True, slots=True)
class ZoneChoice:
    zone: ZoneInfo
    # "request" (given), "number" (from the prefix), "region" (fallback region) or "utc".
    source: str
    ambiguous: bool = False

    @property
    def name(self) -> str:
        return self.zone.key


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


@lru_cache(maxsize=1024)
def zone_named(name: str) -> ZoneInfo:
    """The zone called `name` (e.g. `America/Bogota`); TimeZoneError otherwise. Only names of
    the IANA database are accepted, never a path."""
    if not isinstance(name, str) or len(name) > MAX_ZONE_NAME or name not in _known_zones():
        shown = name[:MAX_ZONE_NAME] if isinstance(name, str) else type(name).__name__
        raise TimeZoneError(
            f"{shown!r} is not an IANA time-zone name (e.g. America/Bogota, America/New_York)"
        )
    return ZoneInfo(name)


def _zones_of(number: phonenumbers.PhoneNumber) -> tuple[str, ...]:
    zones = tuple(z for z in number_zones.time_zones_for_number(number) if z != UNKNOWN_ZONE)
    return tuple(z for z in zones if z in _known_zones())


@lru_cache(maxsize=64)
def region_zone(region: str) -> ZoneInfo | None:
    """The first zone of a region's example number (`CO` -> America/Bogota)."""
    example = phonenumbers.example_number(region.upper())
    zones = _zones_of(example) if example is not None else ()
    return ZoneInfo(zones[0]) if zones else None


@lru_cache(maxsize=65536)
def zone_for_number(e164: str, fallback_region: str) -> ZoneChoice:
    """The callee's zone for a normalized number (`+573005050149`, or extension digits)."""
    zones: tuple[str, ...] = ()
    if e164.startswith("+"):
        try:
            zones = _zones_of(phonenumbers.parse(e164, None))
        except phonenumbers.NumberParseException:
            zones = ()
    if zones:
        return ZoneChoice(ZoneInfo(zones[0]), "number", ambiguous=len(zones) > 1)
    fallback = region_zone(fallback_region)
    if fallback is not None:
        return ZoneChoice(fallback, "region")
    return ZoneChoice(ZoneInfo("UTC"), "utc")


def callee_zone(e164: str, requested: str | None, fallback_region: str) -> ZoneChoice:
    """The request's zone when it names one, else the number's."""
    if requested:
        return ZoneChoice(zone_named(requested), "request")
    return zone_for_number(e164, fallback_region)
