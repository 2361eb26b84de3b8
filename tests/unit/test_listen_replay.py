"""Calls that listen, replayed byte for byte: AMI sessions recorded from a real Asterisk
running the shipped dialplan (tests/asterisk/record_ami.py -> recordings/ami/listen_*.log),
adapted to this client's ids and fed through the real parser, the event reader and the
outcome resolver, in recorded order and shuffled (AMI gives no order across events)."""

from __future__ import annotations

import random

import pytest

from tests.doubles.ami_replay import Adapter, Originate
from tests.doubles.scenarios import call_script
from tests.unit.test_ami_outcome import CALL_ID, JOB_ID, first_seen
from ttsqueue.dialer.ami.events import call_facts
from ttsqueue.dialer.ami.protocol import parse_message
from ttsqueue.dialer.base import CallRequest
from ttsqueue.dialer.listen import ListenOptions
from ttsqueue.dialer.outcome import resolve
from ttsqueue.domain import CallOutcome, MachineDetection

CONFIRM = ListenOptions(
    confirm_keys="1",
    repeat_key="2",
    max_repeats=2,
    timeout_s=3,
    prompt_path="/var/lib/asterisk/sounds/tts/prompt",
    prompt_duration_s=3.9,
)
# recording -> (what the call listened for, outcome, reason, dtmf, confirmed, AMD status)
CASES = {
    "listen_confirm": (CONFIRM, CallOutcome.CONFIRMED, "key_1", "1", True, None),
    "listen_nokey": (CONFIRM, CallOutcome.NOT_CONFIRMED, "no_key", None, False, None),
    "listen_hangup": (CONFIRM, CallOutcome.HANGUP_DURING_MESSAGE, "hangup", None, False, None),
    "listen_machine": (
        ListenOptions(machine_detection=MachineDetection.HANGUP),
        CallOutcome.MACHINE,
        "LONGGREETING-1500-1500",
        None,
        None,
        "MACHINE",
    ),
    "listen_voicemail": (
        ListenOptions(machine_detection=MachineDetection.MESSAGE),
        CallOutcome.VOICEMAIL,
        "played",
        None,
        None,
        "MACHINE",
    ),
}


def _originate() -> Originate:
    variables = [
        ("Variable", "TTS_FILE=/var/lib/asterisk/sounds/tts/abc"),
        ("Variable", f"TTS_JOB_ID={JOB_ID}"),
        ("Variable", f"TTS_CALL_ID={CALL_ID}"),
    ]
    return Originate.parse(
        [
            ("Action", "Originate"),
            ("ActionID", f"orig-{CALL_ID}"),
            ("Channel", "PJSIP/3005050149@trunk"),
            ("Context", "tts-playback"),
            ("Exten", "s"),
            ("Timeout", "30000"),
            ("Async", "true"),
            *variables,
            ("ChannelId", CALL_ID),
        ]
    )


def _call(listen: ListenOptions, at: float) -> CallRequest:
    return CallRequest(
        job_id=JOB_ID,
        attempt=1,
        number="3005050149",
        e164="+573005050149",
        caller_id=None,
        audio_path="/var/lib/asterisk/sounds/tts/abc",
        audio_duration_s=7.0,
        ring_timeout_s=30,
        originated_at=at,
        listen=listen,
    )


def _facts(name: str, t0: float) -> list[dict[str, str]]:
    script = call_script(name)
    adapter = Adapter(script, _originate(), seq=1, unique_base="1796256000")
    found = []
    for t, entry in script.steps:
        seen = call_facts(parse_message("\r\n".join(adapter.lines(entry)).encode()), t0 + t)
        if seen is not None:
            assert seen[0] == CALL_ID
            found.append(seen[1])
    return found


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("order", ["recorded", "shuffled"])
def test_recorded_sessions_resolve_to_what_the_call_heard(name: str, order: str) -> None:
    listen, outcome, reason, dtmf, confirmed, amd = CASES[name]
    t0 = 1_796_256_000.0
    batches = _facts(name, t0)
    if order == "shuffled":
        random.Random(name).shuffle(batches)
    result = resolve(first_seen(batches), _call(listen, t0), t0 + 60)
    assert result is not None
    assert (result.outcome, result.reason, result.dtmf, result.confirmed) == (
        outcome,
        reason,
        dtmf,
        confirmed,
    )
    assert (result.amd.status if result.amd else None) == amd
    assert result.hangup_cause == "16"


def test_the_facts_of_a_call_that_listens_arrive_as_they_happen() -> None:
    """Before the Hangup the call is not over: keys and results alone never settle it."""
    t0 = 1_796_256_000.0
    batches = _facts("listen_confirm", t0)
    record: dict[str, str] = {}
    for facts in batches:
        if "hangup_at" in facts:
            break
        record.update({k: v for k, v in facts.items() if k not in record})
        assert resolve(record, _call(CONFIRM, t0), t0 + 5) is None
    assert record["confirm"] == "confirmed"
    assert record["key1"] == "1"
