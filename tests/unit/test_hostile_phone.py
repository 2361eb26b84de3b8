"""Properties of phone parsing and dial-string rendering, whatever the input (Hypothesis):
what comes out is rebuilt digits, never a CR, LF, NUL or separator."""

from __future__ import annotations

import re
from collections.abc import Iterator

import phonenumbers
import pytest
from hypothesis import HealthCheck, assume, given, settings
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


# What must be accepted ---------------------------------------------------------------------
# The properties above hold trivially for a parser that refuses everything: these generate
# valid input, which must be accepted and rendered exactly.
KINDS = [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]
STYLES = [
    phonenumbers.PhoneNumberFormat.NATIONAL,
    phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    phonenumbers.PhoneNumberFormat.E164,
]
ACCEPT = settings(PROPERTY, max_examples=400)


@st.composite
def valid_numbers(draw: st.DrawFn) -> phonenumbers.PhoneNumber:
    """A number valid in its region: an example number with its last three digits redrawn."""
    region = draw(st.sampled_from(["CO", "ES", "US", "MX", "GB", "IT"]))
    example = phonenumbers.example_number_for_type(region, draw(st.sampled_from(KINDS)))
    assert example is not None
    assert example.national_number is not None
    tail = draw(st.integers(0, 999))
    number = phonenumbers.PhoneNumber(
        country_code=example.country_code,
        national_number=example.national_number // 1000 * 1000 + tail,
        italian_leading_zero=example.italian_leading_zero,
    )
    assume(phonenumbers.is_valid_number(number))
    return number


@st.composite
def written(draw: st.DrawFn, number: phonenumbers.PhoneNumber) -> tuple[str, str]:
    """(how a person might type `number`, the region to parse it in)."""
    own_region = str(phonenumbers.region_code_for_number(number))
    style = draw(st.sampled_from(STYLES))
    text = phonenumbers.format_number(number, style)
    text = text.replace(" ", draw(st.sampled_from([" ", "-", ".", "", " - "])))
    text = draw(st.sampled_from(["", " "])) + text + draw(st.sampled_from(["", " "]))
    national = style is phonenumbers.PhoneNumberFormat.NATIONAL
    region: str = own_region if national else draw(REGIONS)
    return text, draw(st.sampled_from([region, region.lower()]))


@ACCEPT
@given(data=st.data(), number=valid_numbers(), extensions=st.booleans())
def test_a_valid_number_however_written_is_accepted_and_rebuilt(
    data: st.DataObject, number: phonenumbers.PhoneNumber, extensions: bool
) -> None:
    raw, region = data.draw(written(number))
    assume(len(raw) <= 32)
    phone = parse_phone(raw, region, allow_extensions=extensions)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    assert (phone.e164, phone.e164_digits, phone.is_extension) == (e164, e164[1:], False)
    assert phone.e164_digits == str(number.country_code) + phone.national
    assert phone.region == phonenumbers.region_code_for_number(number)
    safe_phone(phone)
    assert render_channel("PJSIP/{number}@trunk", phone) == f"PJSIP/{phone.national}@trunk"
    assert render_channel("SIP/{e164}", phone) == f"SIP/{e164}"
    assert render_channel("Local/{e164_digits}@out/n", phone) == f"Local/{e164[1:]}@out/n"


@ACCEPT
@given(digits=st.from_regex(r"[0-9]{2,6}", fullmatch=True), pad=st.sampled_from(["", " "]))
def test_an_extension_is_accepted_when_allowed(digits: str, pad: str) -> None:
    phone = parse_phone(pad + digits + pad, "CO", allow_extensions=True)
    assert (phone.national, phone.e164, phone.is_extension) == (digits, digits, True)
    assert render_channel("PJSIP/{number}@pbx", phone) == f"PJSIP/{digits}@pbx"


def test_the_sample_number_is_accepted_in_every_usual_form() -> None:
    for raw in ("3005050149", "300 505 0149", "300-505-0149", "(300) 505.0149", "+57 300 505 0149"):
        phone = parse_phone(raw, "CO", allow_extensions=False)
        assert (phone.national, phone.e164) == ("3005050149", "+573005050149"), raw


@ACCEPT
@given(
    literal=st.lists(
        st.one_of(
            st.sampled_from(TEMPLATE_PARTS),
            st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_/@"),
        ),
        min_size=1,
        max_size=5,
    ),
    raw=st.sampled_from([n for n in NUMBERS if n != "+1"]),
)
def test_a_clean_template_is_rendered_exactly(literal: list[str], raw: str) -> None:
    phone = parse_phone(raw, "CO", allow_extensions=True)
    template = "".join(literal)
    expected = (
        template.replace("{number}", phone.national)
        .replace("{e164}", phone.e164)
        .replace("{e164_digits}", phone.e164_digits)
    )
    assert render_channel(template, phone) == expected


@ACCEPT
@given(
    name=st.text(
        alphabet=st.one_of(st.characters(categories=["Lu", "Ll"]), st.sampled_from(" .-'")),
        max_size=40,
    ),
    number=valid_numbers(),
)
def test_a_clean_caller_id_is_accepted(name: str, number: phonenumbers.PhoneNumber) -> None:
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    region = phonenumbers.region_code_for_number(number) or "CO"
    expected = f'"{name.strip(" ")}" <{e164}>' if name.strip(" ") else f"<{e164}>"
    assert sanitize_caller_id(f'"{name}" <{e164}>', region) == expected
    assert sanitize_caller_id(e164, region) == f"<{e164}>"
