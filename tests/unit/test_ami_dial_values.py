"""What reaches Asterisk is rebuilt from validated parts: the Originate action and the call file
carry the same values, and nothing that could split a line, a Dial() or a Playback()."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from tests.conftest import make_settings
from ttsqueue.config import Settings
from ttsqueue.dialer.ami.dialer import originate_action
from ttsqueue.dialer.ami.protocol import encode_action
from ttsqueue.dialer.base import CallRequest
from ttsqueue.dialer.callfile.format import call_file_name, render_call_file
from ttsqueue.dialer.dial_values import check_dial_settings, dial_values
from ttsqueue.errors import ConfigError, PermanentJobError

JOB_ID = "0f8e4a52-3c1d-4b7a-9e6f-1a2b3c4d5e6f"


def make_call(**changes: object) -> CallRequest:
    call = CallRequest(
        job_id=JOB_ID,
        attempt=2,
        number="3005050149",
        e164="+573005050149",
        caller_id='"Clínica Norte" <+576015550100>',
        audio_path="/var/lib/asterisk/sounds/tts/ab12cd",
        audio_duration_s=4.0,
        ring_timeout_s=25,
        originated_at=time.time(),
    )
    return dataclasses.replace(call, **changes)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, ASTERISK_CHANNEL="PJSIP/{e164}@trunk")


def test_the_originate_action(settings: Settings) -> None:
    action = originate_action(dial_values(settings, make_call()))
    assert action == [
        ("Action", "Originate"),
        ("ActionID", "orig-0f8e4a523c1d4b7a9e6f1a2b3c4d5e6f02"),
        ("Channel", "PJSIP/+573005050149@trunk"),
        ("Context", "tts-playback"),
        ("Exten", "s"),
        ("Priority", "1"),
        ("Timeout", "25000"),
        ("CallerID", '"Clínica Norte" <+576015550100>'),
        ("Async", "true"),
        ("Variable", "TTS_FILE=/var/lib/asterisk/sounds/tts/ab12cd"),
        ("Variable", f"TTS_JOB_ID={JOB_ID}"),
        ("Variable", "TTS_CALL_ID=0f8e4a523c1d4b7a9e6f1a2b3c4d5e6f02"),
        ("ChannelId", "0f8e4a523c1d4b7a9e6f1a2b3c4d5e6f02"),
    ]
    encode_action(action)


def test_the_call_file(settings: Settings) -> None:
    call = make_call()
    assert call_file_name(call) == f"{JOB_ID}-2.call"
    assert render_call_file(dial_values(settings, call)) == (
        "Channel: PJSIP/+573005050149@trunk\n"
        'CallerID: "Clínica Norte" <+576015550100>\n'
        "WaitTime: 25\n"
        "MaxRetries: 0\n"
        "Context: tts-playback\n"
        "Extension: s\n"
        "Priority: 1\n"
        "Set: TTS_FILE=/var/lib/asterisk/sounds/tts/ab12cd\n"
        f"Set: TTS_JOB_ID={JOB_ID}\n"
        "Set: TTS_CALL_ID=0f8e4a523c1d4b7a9e6f1a2b3c4d5e6f02\n"
        "Set: TTS_REPORT=file\n"
        "Archive: yes\n"
    )


def test_channel_ids_have_one_length_whatever_the_attempt(settings: Settings) -> None:
    ids = {dial_values(settings, make_call(attempt=n)).call_id for n in range(1, 7)}
    assert {len(i) for i in ids} == {34}
    assert not any(a != b and b.startswith(a) for a in ids for b in ids)


def test_extensions_and_national_numbers_fill_the_template(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, ASTERISK_CHANNEL="Local/{number}@from-tts/{e164_digits}")
    values = dial_values(settings, make_call(number="1234", e164="1234", caller_id=None))
    assert values.channel == "Local/1234@from-tts/1234"
    assert values.caller_id is None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"number": "3005050149\r\nAction: Hangup"}, "invalid_phone_number"),
        ({"number": "300505&0149"}, "invalid_phone_number"),
        ({"e164": "+57300505014;9"}, "invalid_phone_number"),
        ({"number": "３００５０５０１４９"}, "invalid_phone_number"),
        ({"caller_id": '"Evil\r\nAction: Command" <123>'}, "invalid_caller_id"),
        ({"caller_id": "123,456"}, "invalid_caller_id"),
        ({"audio_path": "/var/audio/x\r\nAction: Command"}, "invalid_audio_path"),
        ({"audio_path": "/var/audio/a&/etc/passwd"}, "invalid_audio_path"),
        ({"audio_path": "/var/audio/a,b"}, "invalid_audio_path"),
        ({"audio_path": "/var/audio/../../etc/x"}, "invalid_audio_path"),
        ({"audio_path": "/var/audio/hola.wav"}, "invalid_audio_path"),
        ({"job_id": "not-a-uuid"}, "invalid_job_id"),
        ({"job_id": JOB_ID.upper()}, "invalid_job_id"),
    ],
)
def test_values_that_could_reach_asterisk_are_refused(
    settings: Settings, changes: dict[str, object], reason: str
) -> None:
    with pytest.raises(PermanentJobError) as caught:
        dial_values(settings, make_call(**changes))
    assert caught.value.reason == reason


def test_a_relative_audio_dir_becomes_an_absolute_path(settings: Settings) -> None:
    values = dial_values(settings, make_call(audio_path="var/audio/abc"))
    assert values.tts_file == str(Path.cwd() / "var/audio/abc")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ASTERISK_CONTEXT": "tts,playback"}, "ASTERISK_CONTEXT"),
        ({"ASTERISK_CALLER_ID": "TTS <55501\r\n00>"}, "ASTERISK_CALLER_ID"),
    ],
)
def test_bad_dial_settings_stop_the_start(
    tmp_path: Path, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        check_dial_settings(make_settings(tmp_path, **overrides))
