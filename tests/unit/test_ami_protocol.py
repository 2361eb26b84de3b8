"""AMI framing and parsing, fed with the bytes a real Asterisk sent (recordings/ami/*.log)."""

from __future__ import annotations

import asyncio

import pytest

from tests.doubles.recordings import RECORDINGS, ami_session
from ttsqueue.dialer.ami.errors import AmiProtocolError
from ttsqueue.dialer.ami.protocol import (
    encode_action,
    parse_banner,
    parse_message,
    read_banner,
    read_message,
)

SESSIONS = sorted(p.stem for p in (RECORDINGS / "ami").glob("*.log"))


def _stream(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


@pytest.mark.parametrize("name", SESSIONS)
async def test_every_recorded_server_message_parses_back_to_its_lines(name: str) -> None:
    server = [e for e in ami_session(name) if not e.sent_by_client and e.lines]
    reader = _stream(b"Asterisk Call Manager/11.0.0\r\n" + b"".join(e.wire() for e in server))
    assert await read_banner(reader) == "11.0.0"
    for entry in server:
        message = await read_message(reader)
        assert [f"{k}: {v}" for k, v in message.headers] == list(entry.lines)
    with pytest.raises(asyncio.IncompleteReadError):
        await read_message(reader)


def test_an_originate_response_event_is_an_event_not_a_response() -> None:
    entry = next(e for e in ami_session("busy") if e.event == "OriginateResponse")
    message = parse_message(entry.wire()[:-4])
    assert message.kind == "event"
    assert message.name == "OriginateResponse"
    assert message.get("response") == "Failure"
    assert message.get("REASON") == "5"
    assert message.action_id == "orig-job-busy-1"


def test_repeated_headers_keep_their_order() -> None:
    entry = next(e for e in ami_session("answer") if e.get("Action") == "Originate")
    message = parse_message(entry.wire()[:-4])
    assert message.kind == "action"
    assert message.get_all("Variable") == [
        "TTS_FILE=/var/lib/asterisk/sounds/tts/hola",
        "JOB_ID=job-answer-1",
    ]


def test_encoding_matches_the_recorded_client_bytes() -> None:
    entry = next(e for e in ami_session("answer") if e.get("Action") == "Originate")
    fields = [tuple(line.split(": ", 1)) for line in entry.lines]
    assert encode_action(fields) == entry.wire()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    ["3005050149\r\nAction: Hangup", "x\nChannel: SIP/evil", "x\rAction: Command", "a\x00b"],
)
def test_line_breaks_never_reach_the_wire(value: str) -> None:
    with pytest.raises(ValueError, match="line break"):
        encode_action([("Action", "Originate"), ("Channel", value)])


@pytest.mark.parametrize("name", ["", "Bad Name", "X:Y", "Chan\r\nnel"])
def test_header_names_are_checked(name: str) -> None:
    with pytest.raises(ValueError, match="header name"):
        encode_action([("Action", "Ping"), (name, "1")])


def test_an_action_starts_with_action() -> None:
    with pytest.raises(ValueError, match="starts with its Action"):
        encode_action([("ActionID", "1"), ("Action", "Ping")])


def test_secrets_are_masked_when_shown() -> None:
    login = parse_message(b"Action: Login\r\nUsername: tts\r\nSecret: s3cr3t-value")
    assert "s3cr3t-value" not in login.redacted()
    assert "s3cr3t-value" not in repr(login)
    assert "Username: tts" in login.redacted()


@pytest.mark.parametrize("banner", [b"HTTP/1.1 400 Bad Request\r\n", b"SSH-2.0-OpenSSH\r\n"])
def test_a_server_that_is_not_asterisk_is_refused(banner: bytes) -> None:
    with pytest.raises(AmiProtocolError, match="not an Asterisk"):
        parse_banner(banner)


async def test_eof_before_the_banner_is_a_protocol_error() -> None:
    with pytest.raises(AmiProtocolError, match="before the AMI banner"):
        await read_banner(_stream(b"Asteri"))
