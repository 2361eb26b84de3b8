"""Properties of what reaches Asterisk (Hypothesis): whatever a job record holds, the call file
and the AMI Originate action either are refused or keep their exact framing, one field per
line, with no CR, LF, NUL or separator inside a value."""

from __future__ import annotations

import dataclasses
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.conftest import make_settings
from tests.figures import record
from tests.hostile import FORBIDDEN_IN_CHANNEL, LINE_BREAKERS, hostile_text
from ttsqueue.config import Settings
from ttsqueue.dialer.ami.dialer import originate_action
from ttsqueue.dialer.ami.protocol import encode_action, parse_message
from ttsqueue.dialer.base import CallRequest
from ttsqueue.dialer.callfile.format import render_call_file
from ttsqueue.dialer.dial_values import DialValues, dial_values
from ttsqueue.errors import PermanentJobError

PROPERTY = settings(
    max_examples=1500,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
JOB_ID = "0f8e4a52-3c1d-4b7a-9e6f-1a2b3c4d5e6f"
TEMPLATES = [
    "PJSIP/{number}@trunk",
    "SIP/{e164}",
    "Local/{e164_digits}@out/n",
    "PJSIP/{number}@trunk&SIP/evil",
    "IAX2/{number},30",
]
SETTINGS: list[Settings] = [
    make_settings(Path(tempfile.gettempdir()), ASTERISK_CHANNEL=template) for template in TEMPLATES
]
CALLER_ID = re.compile(r"""<\+?[0-9]{2,15}>|"[^"<>\x00-\x1f\x7f&,|;]{1,40}" <\+?[0-9]{2,15}>""")
AUDIO_PATH = re.compile(r"/[A-Za-z0-9_./-]{1,400}")
CALL_FILE_LINE = re.compile(r"[A-Za-z]+: [^\r\n\x00]*")
TRIED: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    record("hostile_dial", **TRIED)


def tried(name: str) -> None:
    TRIED[name] = TRIED.get(name, 0) + 1


GOOD = CallRequest(
    job_id=JOB_ID,
    attempt=1,
    number="3005050149",
    e164="+573005050149",
    caller_id='"Clínica" <+576015550100>',
    audio_path="/var/lib/asterisk/sounds/tts/ab12cd",
    audio_duration_s=3.0,
    ring_timeout_s=30,
    originated_at=time.time(),
)
FIELDS = ["job_id", "number", "e164", "caller_id", "audio_path"]

any_field_hostile = st.builds(
    CallRequest,
    job_id=st.one_of(st.just(JOB_ID), st.uuids().map(str), hostile_text(40)),
    attempt=st.integers(1, 99),
    number=st.one_of(st.sampled_from(["3005050149", "1234"]), hostile_text(20)),
    e164=st.one_of(st.sampled_from(["+573005050149", "1234"]), hostile_text(20)),
    caller_id=st.one_of(st.none(), st.just('"Clínica" <+576015550100>'), hostile_text(60)),
    audio_path=st.one_of(
        st.just("/var/lib/asterisk/sounds/tts/ab12cd"),
        st.builds(lambda tail: "/var/audio/" + tail, hostile_text(30)),
    ),
    audio_duration_s=st.just(3.0),
    ring_timeout_s=st.integers(5, 300),
    originated_at=st.just(time.time()),
)
one_field_hostile = st.builds(
    lambda field, value: dataclasses.replace(GOOD, **{field: value}),
    st.sampled_from(FIELDS),
    hostile_text(60),
)
calls = st.one_of(one_field_hostile, any_field_hostile)


def check_values(values: DialValues) -> None:
    assert not FORBIDDEN_IN_CHANNEL & set(values.channel)
    assert all(ord(ch) >= 0x20 for ch in values.channel)
    assert values.caller_id is None or CALLER_ID.fullmatch(values.caller_id)
    assert AUDIO_PATH.fullmatch(values.tts_file)
    assert ".." not in values.tts_file.split("/")


@PROPERTY
@given(call=calls, index=st.integers(0, len(SETTINGS) - 1))
def test_call_file_and_originate_keep_their_framing(call: CallRequest, index: int) -> None:
    tried("dial_values")
    try:
        values = dial_values(SETTINGS[index], call)
    except PermanentJobError:
        return
    tried("dial_values_accepted")
    check_values(values)

    text = render_call_file(values)
    lines = text.split("\n")
    assert lines[-1] == ""
    assert len(lines) - 1 == 11 + (values.caller_id is not None)
    assert all(CALL_FILE_LINE.fullmatch(line) for line in lines[:-1])

    fields = originate_action(values)
    wire = encode_action(fields)
    assert wire.endswith(b"\r\n\r\n")
    body = wire[: -len(b"\r\n\r\n")].split(b"\r\n")
    assert len(body) == len(fields)
    assert not any(b"\r" in line or b"\n" in line or b"\x00" in line for line in body)
    assert parse_message(wire).headers == tuple(fields)


@PROPERTY
@given(
    fields=st.lists(
        st.tuples(st.sampled_from(["Channel", "CallerID", "Variable", "Context"]), hostile_text()),
        max_size=6,
    )
)
def test_an_ami_action_is_refused_or_reads_back_the_same(fields: list[tuple[str, str]]) -> None:
    tried("encode_action")
    action = [("Action", "Originate"), *fields]
    try:
        wire = encode_action(action)
    except ValueError:
        assert any(LINE_BREAKERS & set(value) for _, value in fields)
        return
    tried("encode_action_accepted")
    assert wire.count(b"\r\n") == len(action) + 1
    assert list(parse_message(wire).headers) == action


# What must be accepted ---------------------------------------------------------------------
# Refusing everything would satisfy the properties above: a valid call must go through, with
# every value written exactly as the job holds it.
SAFE_TEMPLATES = [(i, t) for i, t in enumerate(TEMPLATES) if not set(t) & FORBIDDEN_IN_CHANNEL]
ACCEPT = settings(PROPERTY, max_examples=400)
NAME = st.text(
    alphabet=st.one_of(st.characters(categories=["Lu", "Ll"]), st.sampled_from(".-'")),
    min_size=1,
    max_size=40,
)


@st.composite
def valid_calls(draw: st.DrawFn) -> tuple[CallRequest, str | None]:
    """A call a job could hold, and the caller id Asterisk must get for it."""
    if draw(st.booleans()):
        number = draw(st.from_regex(r"[1-9][0-9]{6,11}", fullmatch=True))
        e164 = f"+{draw(st.integers(1, 999))}{number}"
        assume(len(e164) <= 16)
    else:
        number = e164 = draw(st.from_regex(r"[0-9]{2,6}", fullmatch=True))  # an extension
    caller = draw(st.from_regex(r"\+57601[0-9]{7}", fullmatch=True))
    name = draw(st.one_of(st.none(), NAME))
    given_id, expected = {
        0: (None, None),
        1: (caller, f"<{caller}>"),
        2: (f'"{name}" <{caller}>', f'"{name}" <{caller}>'),
        3: (f"{name} <{caller}>", f'"{name}" <{caller}>'),
    }[draw(st.integers(0, 1)) if name is None else draw(st.integers(2, 3))]
    call = CallRequest(
        job_id=str(draw(st.uuids())),
        attempt=draw(st.integers(1, 99)),
        number=number,
        e164=e164,
        caller_id=given_id,
        audio_path="/var/lib/asterisk/sounds/tts/"
        + draw(st.from_regex(r"[A-Za-z0-9_-]{1,60}", fullmatch=True)),
        audio_duration_s=3.0,
        ring_timeout_s=draw(st.integers(5, 300)),
        originated_at=time.time(),
    )
    return call, expected


@ACCEPT
@given(valid=valid_calls(), template=st.sampled_from(SAFE_TEMPLATES))
def test_a_valid_call_is_written_exactly(
    valid: tuple[CallRequest, str | None], template: tuple[int, str]
) -> None:
    call, caller_id = valid
    index, channel_template = template
    values = dial_values(SETTINGS[index], call)
    channel = (
        channel_template.replace("{number}", call.number)
        .replace("{e164_digits}", call.e164.removeprefix("+"))
        .replace("{e164}", call.e164)
    )
    assert values == DialValues(
        channel=channel,
        caller_id=caller_id,
        context="tts-playback",
        tts_file=call.audio_path,
        job_id=call.job_id,
        call_id=call.call_id,
        ring_timeout_s=call.ring_timeout_s,
    )
    text = render_call_file(values)
    assert text.startswith(f"Channel: {channel}\n")
    assert f"Set: TTS_FILE={call.audio_path}\n" in text
    assert f"Set: TTS_JOB_ID={call.job_id}\n" in text
    assert (f"CallerID: {caller_id}\n" in text) is (caller_id is not None)
    fields = originate_action(values)
    assert ("Channel", channel) in fields
    assert parse_message(encode_action(fields)).headers == tuple(fields)


@ACCEPT
@given(
    fields=st.lists(
        st.tuples(
            st.sampled_from(["Channel", "CallerID", "Variable", "Context"]),
            st.text().filter(lambda value: not LINE_BREAKERS & set(value)),
        ),
        max_size=6,
    )
)
def test_an_action_without_line_breaks_is_encoded(fields: list[tuple[str, str]]) -> None:
    action = [("Action", "Originate"), *fields]
    assert list(parse_message(encode_action(action)).headers) == action
