"""Phone numbers: parsing, normalizing and dial-string rendering. Pure, no I/O.

Security rule (SPEC §2.6): the raw input is checked against an allow-list before anything else,
and every string that may reach Asterisk is rebuilt from parsed integers, never sliced from the
input. CR/LF would inject AMI commands, `&` would dial a second destination.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

MAX_RAW_LENGTH = 32
# ASCII only: `\d` would also match other scripts' digits, which phonenumbers happily converts.
_RAW_ALLOWED = re.compile(r" *\+?[0-9 ().\-]+")
_EXTENSION = re.compile(r"[0-9]{2,6}")
_E164 = re.compile(r"\+[0-9]{7,15}")
_DIGITS = re.compile(r"[0-9]{1,15}")
_PLACEHOLDERS = ("{number}", "{e164}", "{e164_digits}")
# Characters that end or split an AMI line, a Dial() argument or a call-file field.
_FORBIDDEN_IN_CHANNEL = frozenset("\r\n\x00&,|;")

_NAME_MAX = 40
_NAME_PUNCT = frozenset(" .-'")
_CALLER_ID = re.compile(r'(?:"(?P<quoted>[^"<>]*)"|(?P<name>[^"<>]*?)) *<(?P<number>[^<>]*)>')


class InvalidPhoneNumber(ValueError):
    """The input is not a phone number this service will dial; the message says why."""


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    # National significant digits ("3005050149"), or the digits of a PBX extension.
    national: str
    # "+573005050149"; for an extension, the extension digits.
    e164: str
    e164_digits: str
    region: str
    is_extension: bool = False


def _rebuild_digits(text: str) -> str:
    return "".join(str(int(ch)) for ch in text if ch.isascii() and ch.isdigit())


def parse_phone(raw: str, region: str, allow_extensions: bool) -> PhoneNumber:
    """Validate and normalize `raw` for `region`; raise `InvalidPhoneNumber` otherwise."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidPhoneNumber("phone number is empty")
    if len(raw) > MAX_RAW_LENGTH:
        raise InvalidPhoneNumber(f"phone number is longer than {MAX_RAW_LENGTH} characters")
    if not _RAW_ALLOWED.fullmatch(raw):
        raise InvalidPhoneNumber(
            "phone number may contain only digits, a leading '+', spaces, '-', '.', '(' and ')'"
        )
    plain = raw.strip(" ")
    if allow_extensions and _EXTENSION.fullmatch(plain):
        digits = _rebuild_digits(plain)
        return PhoneNumber(digits, digits, digits, region.upper(), is_extension=True)
    try:
        parsed = phonenumbers.parse(raw, region.upper())
    except phonenumbers.NumberParseException:
        raise InvalidPhoneNumber("phone number could not be parsed") from None
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber(f"phone number is not a valid number for region {region.upper()}")
    return _rebuild(parsed, region.upper())


def _rebuild(parsed: phonenumbers.PhoneNumber, region: str) -> PhoneNumber:
    if parsed.country_code is None or parsed.national_number is None:
        raise InvalidPhoneNumber("phone number could not be parsed")
    zeros = (parsed.number_of_leading_zeros or 1) if parsed.italian_leading_zero else 0
    national = "0" * zeros + str(int(parsed.national_number))
    e164_digits = str(int(parsed.country_code)) + national
    number_region = phonenumbers.region_code_for_number(parsed) or region
    phone = PhoneNumber(national, "+" + e164_digits, e164_digits, number_region)
    if not (_DIGITS.fullmatch(phone.national) and _E164.fullmatch(phone.e164)):
        raise InvalidPhoneNumber("phone number could not be normalized")
    return phone


def render_channel(template: str, phone: PhoneNumber) -> str:
    """Fill the `ASTERISK_CHANNEL` placeholders; only the three named ones are replaced."""
    values = {
        "{number}": phone.national,
        "{e164}": phone.e164,
        "{e164_digits}": phone.e164_digits,
    }
    for value in values.values():
        if not _DIGITS.fullmatch(value.removeprefix("+")):
            raise ValueError("phone number holds characters other than digits")
    channel = template
    for placeholder in _PLACEHOLDERS:
        channel = channel.replace(placeholder, values[placeholder])
    if any(ch in _FORBIDDEN_IN_CHANNEL or ord(ch) < 0x20 for ch in channel):
        raise ValueError("channel contains a character that Asterisk would treat as a separator")
    return channel


def _clean_name(name: str) -> str:
    name = name.strip(" ")
    if not name:
        raise ValueError("caller id display name is empty")
    if len(name) > _NAME_MAX:
        raise ValueError(f"caller id display name is longer than {_NAME_MAX} characters")
    for ch in name:
        if not (ch.isalpha() or (ch.isascii() and ch.isdigit()) or ch in _NAME_PUNCT):
            raise ValueError(
                "caller id display name may contain only letters, digits, spaces "
                "and the characters . - '"
            )
    return name


def _clean_caller_number(raw: str, region: str) -> str:
    if not raw.strip(" ") or len(raw) > MAX_RAW_LENGTH or not _RAW_ALLOWED.fullmatch(raw):
        raise ValueError(
            "caller id number may contain only digits, a leading '+', spaces, '-', '.', '(' and ')'"
        )
    plus = "+" if raw.strip(" ").startswith("+") else ""
    digits = _rebuild_digits(raw)
    if not 2 <= len(digits) <= 15:
        raise ValueError("caller id number must have 2 to 15 digits")
    # Short ids are PBX extensions; longer ones must at least look like a number of `region`.
    if len(digits) > 6:
        try:
            possible = phonenumbers.is_possible_number(phonenumbers.parse(plus + digits, region))
        except phonenumbers.NumberParseException:
            possible = False
        if not possible:
            raise ValueError(f"caller id number is not a possible number for region {region}")
    return plus + digits


def sanitize_caller_id(raw: str, region: str) -> str:
    """`Name <digits>` or just digits, rebuilt as `"Name" <digits>` or `<digits>`."""
    if not isinstance(raw, str) or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in raw):
        raise ValueError("caller id contains control characters")
    text = raw.strip(" ")
    if "<" not in text and ">" not in text:
        return f"<{_clean_caller_number(text, region.upper())}>"
    match = _CALLER_ID.fullmatch(text)
    if match is None:
        raise ValueError("caller id must be digits or `Name <digits>`")
    number = _clean_caller_number(match["number"], region.upper())
    name = match["quoted"] if match["quoted"] is not None else match["name"]
    if not name.strip(" "):
        return f"<{number}>"
    return f'"{_clean_name(name)}" <{number}>'
