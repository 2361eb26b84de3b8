"""Properties of phone parsing and dial-string rendering, whatever the input (Hypothesis):
what comes out is rebuilt digits, never a CR, LF, NUL or separator."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.figures import record
from tests.hostile import FORBIDDEN_IN_CHANNEL, NUMBERS, hostile_text
from ttsqueue.phone import (
    InvalidPhoneNumber,
    PhoneNumber,
    parse_phone,
    render_channel,
    sanitize_caller_id,
)

PROPERTY = settings(
    max_examples=1500,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
REGIONS = st.sampled_from(["CO", "co", "ES", "US", "MX", "GB", "IT"])
DIGITS = re.compile(r"[0-9]{1,17}")
CALLER_ID = re.compile(r"""<\+?[0-9]{2,15}>|"[^"<>\x00-\x1f\x7f&,|;]{1,40}" <\+?[0-9]{2,15}>""")
TEMPLATE_PARTS = ["PJSIP/", "SIP/", "@trunk", "Local/", "/n", "{number}", "{e164}", "{e164_digits}"]
TRIED: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    record("hostile_phone", **TRIED)


def tried(name: str) -> None:
    TRIED[name] = TRIED.get(name, 0) + 1


def safe_phone(phone: PhoneNumber) -> None:
    assert DIGITS.fullmatch(phone.national)
    assert DIGITS.fullmatch(phone.e164_digits)
    assert phone.e164 == phone.e164_digits if phone.is_extension else "+" + phone.e164_digits


@PROPERTY
@given(raw=hostile_text(), region=REGIONS, extensions=st.booleans())
def test_a_parsed_number_is_only_digits(raw: str, region: str, extensions: bool) -> None:
    tried("parse_phone")
    try:
        phone = parse_phone(raw, region, allow_extensions=extensions)
    except InvalidPhoneNumber:
        return
    tried("parse_phone_accepted")
    safe_phone(phone)
    assert set(raw) <= set("0123456789+ -().")


@PROPERTY
@given(
    template=st.lists(
        st.one_of(st.sampled_from(TEMPLATE_PARTS), hostile_text(12)), min_size=1, max_size=5
    ).map("".join),
    raw=st.sampled_from([n for n in NUMBERS if n != "+1"]),
)
def test_a_rendered_channel_never_holds_a_separator(template: str, raw: str) -> None:
    tried("render_channel")
    phone = parse_phone(raw, "CO", allow_extensions=True)
    try:
        channel = render_channel(template, phone)
    except ValueError:
        return
    tried("render_channel_accepted")
    assert not FORBIDDEN_IN_CHANNEL & set(channel)
    assert all(ord(ch) >= 0x20 for ch in channel)


@PROPERTY
@given(
    national=st.text(max_size=20),
    e164=st.text(max_size=20),
    template=st.sampled_from(["PJSIP/{number}@trunk", "SIP/{e164}", "Local/{e164_digits}@out"]),
)
def test_a_forged_phone_record_is_refused(national: str, e164: str, template: str) -> None:
    """A PhoneNumber built from anything but the parser (a tampered record) cannot smuggle
    characters into the channel either."""
    tried("render_channel_forged")
    forged = PhoneNumber(national, e164, e164.removeprefix("+"), "CO")
    try:
        channel = render_channel(template, forged)
    except ValueError:
        return
    assert not FORBIDDEN_IN_CHANNEL & set(channel)
    assert re.fullmatch(r"[A-Za-z/@{}_+0-9]+", channel)


@PROPERTY
@given(raw=hostile_text(64), region=REGIONS)
def test_a_sanitized_caller_id_is_rebuilt(raw: str, region: str) -> None:
    tried("sanitize_caller_id")
    try:
        caller_id = sanitize_caller_id(raw, region)
    except ValueError:
        return
    tried("sanitize_caller_id_accepted")
    assert CALLER_ID.fullmatch(caller_id), caller_id
