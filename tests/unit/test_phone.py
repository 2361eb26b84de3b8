"""Phone parsing, dial-string rendering and caller id: the input never reaches Asterisk as is."""

from __future__ import annotations

import phonenumbers
import pytest

from ttsqueue.phone import (
    InvalidPhoneNumber,
    PhoneNumber,
    parse_phone,
    render_channel,
    sanitize_caller_id,
)

SAMPLE = PhoneNumber("3005050149", "+573005050149", "573005050149", "CO")


@pytest.mark.parametrize(
    "raw",
    [
        "3005050149",
        "300 505 0149",
        "300-505-0149",
        "(300) 505.0149",
        " 300 505 0149 ",
        "+57 300 505 0149",
        "+573005050149",
        "+57 (300) 505-0149",
    ],
)
def test_colombian_mobile_in_its_usual_spellings(raw: str) -> None:
    assert parse_phone(raw, "CO", allow_extensions=False) == SAMPLE


def test_region_is_case_insensitive() -> None:
    assert parse_phone("3005050149", "co", allow_extensions=False) == SAMPLE


def test_international_number_keeps_its_own_region() -> None:
    phone = parse_phone("+1 650 253 0000", "CO", allow_extensions=False)
    assert phone == PhoneNumber("6502530000", "+16502530000", "16502530000", "US")


def test_italian_leading_zero_is_kept() -> None:
    phone = parse_phone("+39 06 6988 1234", "CO", allow_extensions=False)
    assert phone.national == "0669881234"
    assert phone.e164 == "+390669881234"


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "+", "300505014", "12345", "0000000000", "3" * 33, "+57 300 505 01490"],
)
def test_invalid_numbers_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        parse_phone(raw, "CO", allow_extensions=False)


def test_invalid_phone_number_is_a_value_error_with_a_message() -> None:
    with pytest.raises(ValueError, match="valid number"):
        parse_phone("300505014", "CO", allow_extensions=False)


HOSTILE = [
    "3005050149\r\nAction: Originate",
    "3005050149\r",
    "3005050149\n",
    "3005050149&PJSIP/666@trunk",
    "3005050149,1",
    "3005050149/x",
    "3005050149@evil",
    "300|5050149",
    "3005050149;x",
    "3005050149\x00",
    "３００５０５０１４９",
    "٣٠٠٥٠٥٠١٤٩",
    "300505O149",
    "3005050149 ext 12",
    "+57\u00a0300 505 0149",
    "\t3005050149",
    "3005050149+",
    "++573005050149",
    "tel:3005050149",
    "{number}",
]


@pytest.mark.parametrize("raw", HOSTILE)
def test_characters_outside_the_allow_list_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumber, match="only digits"):
        parse_phone(raw, "CO", allow_extensions=True)


def test_allow_list_is_what_stops_inputs_the_library_accepts() -> None:
    # phonenumbers alone normalizes these into the sample number.
    for raw in ("３００５０５０１４９", "3005050149\n", "3005050149\x00", "3005050149/x"):
        assert phonenumbers.is_valid_number(phonenumbers.parse(raw, "CO"))


@pytest.mark.parametrize("raw", ["12", "1234", "123456", "0123", " 1234 "])
def test_extensions_when_allowed(raw: str) -> None:
    phone = parse_phone(raw, "CO", allow_extensions=True)
    digits = raw.strip()
    assert phone == PhoneNumber(digits, digits, digits, "CO", is_extension=True)


@pytest.mark.parametrize("raw", ["1", "1234567", "12-34", "+1234", "12 34"])
def test_extension_rules_are_narrow(raw: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        parse_phone(raw, "CO", allow_extensions=True)


def test_extensions_rejected_when_not_allowed() -> None:
    with pytest.raises(InvalidPhoneNumber):
        parse_phone("1234", "CO", allow_extensions=False)


def test_full_numbers_still_parse_with_extensions_allowed() -> None:
    assert parse_phone("3005050149", "CO", allow_extensions=True) == SAMPLE


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("PJSIP/{number}@trunk", "PJSIP/3005050149@trunk"),
        ("SIP/trunk/{e164}", "SIP/trunk/+573005050149"),
        ("Local/{e164_digits}@outbound", "Local/573005050149@outbound"),
        ("PJSIP/{number}@{trunk}", "PJSIP/3005050149@{trunk}"),
        ("PJSIP/{number!r}@trunk", "PJSIP/{number!r}@trunk"),
    ],
)
def test_render_channel_fills_only_the_three_placeholders(template: str, expected: str) -> None:
    assert render_channel(template, SAMPLE) == expected


def test_render_channel_for_an_extension() -> None:
    ext = parse_phone("1234", "CO", allow_extensions=True)
    assert render_channel("PJSIP/{number}", ext) == "PJSIP/1234"


@pytest.mark.parametrize(
    "template", ["PJSIP/{number}@a&PJSIP/{number}@b", "PJSIP/{number}\r\n", "SIP/{number};x"]
)
def test_render_channel_guards_the_result(template: str) -> None:
    with pytest.raises(ValueError, match="separator"):
        render_channel(template, SAMPLE)


def test_render_channel_refuses_a_forged_number() -> None:
    forged = PhoneNumber("300&PJSIP/666", "+57300", "57300", "CO")
    with pytest.raises(ValueError, match="digits"):
        render_channel("PJSIP/{number}@trunk", forged)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("3005050149", "<3005050149>"),
        ("300 505-0149", "<3005050149>"),
        ("+57 300 505 0149", "<+573005050149>"),
        ("1000", "<1000>"),
        ("Alerts <6015551234>", '"Alerts" <6015551234>'),
        ('"Alerts" <6015551234>', '"Alerts" <6015551234>'),
        ("José O'Neil-Pérez Jr. <1000>", '"José O\'Neil-Pérez Jr." <1000>'),
        ("<1000>", "<1000>"),
        ('"" <1000>', "<1000>"),
    ],
)
def test_caller_id_is_rebuilt(raw: str, expected: str) -> None:
    assert sanitize_caller_id(raw, "CO") == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "Alerts",
        "1",
        "1234567890123456",
        'Al"erts <1000>',
        '"Alerts <1000>',
        "Alerts> <1000>",
        "A <B> <1000>",
        "Alerts <1000",
        "Alerts <1000>\r\nAction: Originate",
        "Alerts\n <1000>",
        "A&B <1000>",
        "A;B <1000>",
        "A,B <1000>",
        "Alerts <1000&PJSIP/666>",
        "Alerts <١٠٠٠>",
        "Alerts\x00 <1000>",
        "X" * 41 + " <1000>",
        "Alerts <999999999>",
    ],
)
def test_caller_id_rejects_anything_else(raw: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - every rule raises a plain ValueError
        sanitize_caller_id(raw, "CO")
