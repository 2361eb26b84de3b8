"""From recorded AMI events to a call's result: every recorded case, in any order, and the
deadlines that settle calls whose end no session saw."""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Sequence

import pytest

from tests.doubles.ami_replay import Adapter, Originate
from tests.doubles.scenarios import call_script
from ttsqueue.dialer.ami.events import call_facts
from ttsqueue.dialer.ami.protocol import parse_message
from ttsqueue.dialer.base import CallRequest, CallResult
from ttsqueue.dialer.outcome import Deadlines, resolve
from ttsqueue.domain import CallOutcome

JOB_ID = "0f8e4a52-3c1d-4b7a-9e6f-1a2b3c4d5e6f"
CALL_ID = "0f8e4a523c1d4b7a9e6f1a2b3c4d5e6f01"


def make_call(originated_at: float, audio_s: float = 3.0, ring_s: int = 30) -> CallRequest:
    return CallRequest(
        job_id=JOB_ID,
        attempt=1,
        number="3005050149",
        e164="+573005050149",
        caller_id=None,
        audio_path="/var/lib/asterisk/sounds/tts/abc",
        audio_duration_s=audio_s,
        ring_timeout_s=ring_s,
        originated_at=originated_at,
    )


def our_originate() -> Originate:
    return Originate.parse(
        [
            ("Action", "Originate"),
            ("ActionID", f"orig-{CALL_ID}"),
            ("Channel", "PJSIP/3005050149@trunk"),
            ("Context", "tts-playback"),
            ("Exten", "s"),
            ("Timeout", "30000"),
            ("Async", "true"),
            ("Variable", "TTS_FILE=/var/lib/asterisk/sounds/tts/abc"),
            ("Variable", f"TTS_JOB_ID={JOB_ID}"),
            ("Variable", f"TTS_CALL_ID={CALL_ID}"),
            ("ChannelId", CALL_ID),
        ]
    )


def recorded_facts(scenario: str, t0: float) -> list[tuple[float, dict[str, str]]]:
    """The facts our session would record, one set per recorded event, at recorded times."""
    script = call_script(scenario)
    adapter = Adapter(script, our_originate(), seq=1, unique_base="1795588411")
    found = []
    for t, entry in script.steps:
        message = parse_message("\r\n".join(adapter.lines(entry)).encode())
        seen = call_facts(message, t0 + t)
        if seen is not None:
            assert seen[0] == CALL_ID
            found.append((t0 + t, seen[1]))
    return found


def first_seen(batches: list[dict[str, str]]) -> dict[str, str]:
    """What the Redis record holds: the first value recorded for each field (HSETNX)."""
    record: dict[str, str] = {}
    for facts in batches:
        for key, value in facts.items():
            record.setdefault(key, value)
    return record


def settle(scenario: str) -> tuple[CallResult | None, float]:
    """Apply the recorded facts in order; the first time the result is known, and the result."""
    t0 = 1_000_000.0
    call = make_call(t0)
    batches: list[dict[str, str]] = [{"originated_at": str(t0)}]
    for at, facts in recorded_facts(scenario, t0):
        batches.append(facts)
        result = resolve(first_seen(batches), call, at)
        if result is not None:
            return result, at - t0
    return None, 0.0


@pytest.mark.parametrize(
    ("scenario", "outcome", "reason", "cause"),
    [
        ("answer", CallOutcome.ANSWERED, "played", "16"),
        ("lateanswer", CallOutcome.ANSWERED, "played", "16"),
        ("shorthangup", CallOutcome.ANSWERED, "hangup_during_playback", "16"),
        ("missingfile", CallOutcome.FAILED, "playback_failed", "16"),
        ("busy", CallOutcome.BUSY, "5", None),
        ("congestion", CallOutcome.CONGESTION, "8", None),
        ("noanswer", CallOutcome.NO_ANSWER, "3", "19"),
        ("silent", CallOutcome.NO_ANSWER, "3", None),
    ],
)
def test_each_recorded_case_gives_what_asterisk_reported(
    scenario: str, outcome: CallOutcome, reason: str, cause: str | None
) -> None:
    result, _ = settle(scenario)
    assert result is not None, "the recorded events never settled the call"
    assert (result.outcome, result.reason) == (outcome, reason)
    if cause is not None:
        assert result.hangup_cause == cause
    assert not result.simulated


def test_an_answered_call_ends_with_its_hangup_not_before() -> None:
    result, after = settle("answer")
    assert result is not None
    hangup = max(t for t, e in call_script("answer").steps if e.event == "Hangup")
    assert after == pytest.approx(hangup, abs=0.01)
    assert result.answered_at is not None
    assert result.talk_s == pytest.approx(3.82, abs=0.05)
    assert result.channel is not None
    assert result.channel.startswith("PJSIP/3005050149@trunk-")


@pytest.mark.parametrize("scenario", ["answer", "busy", "congestion", "noanswer", "missingfile"])
def test_the_order_of_events_does_not_matter(scenario: str) -> None:
    t0 = time.time() - 600  # everything happened; deadlines long past
    call = make_call(t0)
    batches = [facts for _, facts in recorded_facts(scenario, t0)]
    expected = resolve(first_seen([{"originated_at": str(t0)}, *batches]), call, t0 + 100)
    assert expected is not None
    rng = random.Random(7)
    orders: list[Sequence[dict[str, str]]] = list(
        itertools.islice(itertools.permutations(batches), 50)
    )
    orders += [rng.sample(batches, len(batches)) for _ in range(50)]
    for order in orders:
        record = first_seen([{"originated_at": str(t0)}, *order])
        got = resolve(record, call, t0 + 100)
        assert got is not None
        assert (got.outcome, got.reason) == (expected.outcome, expected.reason)


def test_a_hangup_alone_waits_for_the_originate_response() -> None:
    t0 = 1_000.0
    call = make_call(t0)
    record = {"originated_at": str(t0), "hangup_at": str(t0 + 1), "cause": "0"}
    assert resolve(record, call, t0 + 1.5) is None
    assert resolve(record, call, t0 + 10) is None  # a loaded worker may record it late
    late = resolve(record, call, t0 + 12)
    assert late is not None
    assert (late.outcome, late.reason) == (CallOutcome.FAILED, "lost_track")
    record |= {"response": "Failure", "reason": "8"}
    assert resolve(record, call, t0 + 1.5) == resolve(record, call, t0 + 99)


def test_a_call_no_session_saw_end_is_settled_once_it_must_be_over() -> None:
    t0 = 1_000.0
    grace = Deadlines(talk_grace_s=5.0)
    call = make_call(t0, audio_s=3.0, ring_s=30)
    nothing = {"originated_at": str(t0)}
    assert resolve(nothing, call, t0 + 30 + 3.5 + 4.9, grace) is None
    lost = resolve(nothing, call, t0 + 30 + 3.5 + 5.1, grace)
    assert lost is not None
    assert (lost.outcome, lost.reason) == (CallOutcome.FAILED, "lost_track")
    answered = {**nothing, "response": "Success", "reason": "4", "up_at": str(t0 + 2)}
    assert resolve(answered, call, t0 + 2 + 3.5 + 4.9, grace) is None
    ended = resolve(answered, call, t0 + 2 + 3.5 + 5.1, grace)
    assert ended is not None
    assert (ended.outcome, ended.reason) == (CallOutcome.ANSWERED, "hangup_not_seen")


def test_a_missing_record_means_the_call_was_never_sent() -> None:
    t0 = 1_000.0
    call = make_call(t0)
    assert resolve({}, call, t0 + 5) is None
    gone = resolve({}, call, t0 + 11)
    assert gone is not None
    assert gone.reason == "lost_track"


def test_events_of_other_calls_are_not_ours() -> None:
    for name in ("answer", "busy", "chanid", "chanid_busy"):
        for _, entry in call_script(name).steps:
            message = parse_message("\r\n".join(entry.lines).encode())
            assert call_facts(message, 0.0) is None
