"""The callee's time zone: from the request, else from the number (phonenumbers)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.hostile import hostile_text
from ttsqueue.policy.zones import TimeZoneError, callee_zone, zone_for_number, zone_named


@pytest.mark.parametrize(
    ("e164", "zone"),
    [
        ("+573005050149", "America/Bogota"),
        ("+576015550100", "America/Bogota"),
        ("+12125551234", "America/New_York"),
        ("+13105551234", "America/Los_Angeles"),
        ("+18085551234", "Pacific/Honolulu"),
        ("+525512345678", "America/Mexico_City"),
        ("+34912345678", "Europe/Madrid"),
    ],
)
def test_zone_from_the_number(e164: str, zone: str) -> None:
    choice = zone_for_number(e164, "CO")
    assert (choice.name, choice.source, choice.ambiguous) == (zone, "number", False)


def test_an_ambiguous_number_takes_the_first_listed_zone() -> None:
    # A Spanish mobile may be on the mainland or in the Canary Islands.
    choice = zone_for_number("+34612345678", "CO")
    assert choice.ambiguous
    assert choice.name == "Atlantic/Canary"  # first of ('Atlantic/Canary', 'Europe/Madrid')


@pytest.mark.parametrize("number", ["1234", "+80012345678", "+999"])
def test_numbers_without_a_zone_fall_back_to_the_default_region(number: str) -> None:
    assert zone_for_number(number, "CO").name == "America/Bogota"
    assert zone_for_number(number, "US").name == "America/New_York"


def test_the_request_zone_wins() -> None:
    choice = callee_zone("+573005050149", "Europe/Madrid", "CO")
    assert (choice.name, choice.source) == ("Europe/Madrid", "request")
    assert callee_zone("+573005050149", None, "CO").name == "America/Bogota"


@pytest.mark.parametrize(
    "name",
    [
        "Mars/Olympus",
        "",
        "../../etc/passwd",
        "/usr/share/zoneinfo/UTC",
        "America/Bogota\n",
        "america/bogota",
        "posix/America/Bogota",
        "x" * 200,
    ],
)
def test_only_iana_names_are_accepted(name: str) -> None:
    with pytest.raises(TimeZoneError, match="not an IANA time-zone name"):
        zone_named(name)


@given(hostile_text())
def test_hostile_zone_names_never_reach_the_filesystem(name: str) -> None:
    try:
        zone = zone_named(name)
    except TimeZoneError:
        return
    assert zone.key == name
    assert "/." not in name
    assert not name.startswith("/")


@given(st.sampled_from(["America/Bogota", "UTC", "Asia/Kathmandu", "Pacific/Chatham"]))
def test_known_names_resolve(name: str) -> None:
    assert zone_named(name).key == name
