"""The `ami` dialer on real Redis against the recorded AMI server: every recorded case, 50-call
bursts (answered and busy), a call recorded with only the event classes we ask for, a second
process following a call it did not place, AMI links that drop, and giving a call up."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.conftest import make_settings
from tests.doubles.ami_server import AmiServerDouble, ami_dialer_settings, running_ami_double
from tests.doubles.recordings import ami_session
from ttsqueue.config import Settings
from ttsqueue.dialer.ami import SessionTimings
from ttsqueue.dialer.ami.dialer import AmiDialer
from ttsqueue.dialer.base import CallRequest
from ttsqueue.dialer.outcome import Deadlines
from ttsqueue.domain import CallOutcome, DialerHealth
from ttsqueue.errors import DialerError
from ttsqueue.store.factory import keys_for
from ttsqueue.store.keys import Keys

pytestmark = pytest.mark.timeout(45)

FAST = SessionTimings(connect_timeout_s=2.0, keepalive_s=1.0, retry=(0.05, 0.2))


@pytest.fixture
async def double() -> AsyncIterator[AmiServerDouble]:
    async with running_ami_double(time_scale=0.05) as server:
        yield server


@pytest.fixture
def settings(tmp_path: Path, double: AmiServerDouble) -> Settings:
    """The `ami` dialer pointed at the double."""
    return make_settings(tmp_path, **ami_dialer_settings(double))


async def make_dialer(
    settings: Settings, redis: aioredis.Redis, deadlines: Deadlines | None = None
) -> AmiDialer:
    dialer = AmiDialer(settings, redis, keys_for(settings), timings=FAST, deadlines=deadlines)
    dialer.start()
    assert await dialer.session.wait_connected(5)
    return dialer


@pytest.fixture
async def dialer(settings: Settings, redis_client: aioredis.Redis) -> AsyncIterator[AmiDialer]:
    ami = await make_dialer(settings, redis_client)
    try:
        yield ami
    finally:
        await ami.aclose()


def make_call(
    number: str = "3005050149", ring_timeout_s: int = 30, audio_s: float = 3.0
) -> CallRequest:
    return CallRequest(
        job_id=str(uuid.uuid4()),
        attempt=1,
        number=number,
        e164=f"+57{number}",
        caller_id=None,
        audio_path="/var/lib/asterisk/sounds/tts/abc",
        audio_duration_s=audio_s,
        ring_timeout_s=ring_timeout_s,
        originated_at=time.time(),
    )


async def place(dialer: AmiDialer, call: CallRequest) -> tuple[CallOutcome, str | None]:
    await dialer.originate(call)
    result = await asyncio.wait_for(dialer.wait_outcome(call), 20)
    return result.outcome, result.reason


@pytest.mark.parametrize(
    ("number", "outcome", "reason"),
    [
        ("3005050149", CallOutcome.ANSWERED, "played"),
        ("3005550010", CallOutcome.ANSWERED, "played"),
        ("3005550007", CallOutcome.ANSWERED, "hangup_during_playback"),
        ("3005550008", CallOutcome.FAILED, "playback_failed"),
        ("3005550001", CallOutcome.BUSY, "5"),
        ("3005550003", CallOutcome.CONGESTION, "8"),
        ("3005550002", CallOutcome.NO_ANSWER, "3"),
        ("3005550009", CallOutcome.NO_ANSWER, "3"),
    ],
)
async def test_each_recorded_callee(
    dialer: AmiDialer, double: AmiServerDouble, number: str, outcome: CallOutcome, reason: str
) -> None:
    call = make_call(number, ring_timeout_s=5)
    assert await place(dialer, call) == (outcome, reason)
    (originate,) = double.originates
    assert originate.get("ChannelId") == call.call_id
    assert originate.get("Timeout") == "5000"
    assert originate.variables["TTS_FILE"] == "/var/lib/asterisk/sounds/tts/abc"


async def test_a_50_call_burst_on_one_session(dialer: AmiDialer, double: AmiServerDouble) -> None:
    calls = [make_call("3005550001" if i % 5 == 0 else "3005050149") for i in range(50)]
    results = await asyncio.gather(*(place(dialer, call) for call in calls))
    assert results.count((CallOutcome.ANSWERED, "played")) == 40
    assert results.count((CallOutcome.BUSY, "5")) == 10
    ids = [o.get("ChannelId") for o in double.originates]
    assert sorted(ids) == sorted(c.call_id for c in calls)
    assert len(double.calls) == 50
    assert max(count for _, count in double.live_log) > 1


async def test_prefix_colliding_ids_fail_as_recorded(double: AmiServerDouble) -> None:
    """The recorded burst used ids `ba50-0`..`ba50-49`: Asterisk failed `ba50-1`..`ba50-4`
    (Reason 0), each a prefix of a live `ba50-1x`. The double reproduces it, which is why our
    ids have a fixed length."""
    recorded = ami_session("burst_a50")
    failed_in_recording = {
        e.get("Uniqueid")
        for e in recorded
        if e.event == "OriginateResponse" and e.get("Response") == "Failure"
    }
    reader, writer = await asyncio.open_connection("127.0.0.1", double.port)
    await reader.readline()
    sent = [e for e in recorded if e.sent_by_client and e.get("Action") != "Logoff"]
    payload = b"".join(e.wire() for e in sent)
    writer.write(payload.replace(b"Context: tts-out", b"Context: tts-playback"))
    responses: dict[str, str] = {}
    while len(responses) < 50:
        block = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode()
        if block.startswith("Event: OriginateResponse"):
            fields = dict(line.split(": ", 1) for line in block.strip().split("\r\n"))
            responses[fields["Uniqueid"]] = fields["Reason"]
    writer.close()
    assert {uid for uid, reason in responses.items() if reason == "0"} == failed_in_recording
    assert failed_in_recording == {"ba50-1", "ba50-2", "ba50-3", "ba50-4"}


async def test_another_process_follows_a_call_it_did_not_place(
    settings: Settings, redis_client: aioredis.Redis, double: AmiServerDouble
) -> None:
    first = await make_dialer(settings, redis_client)
    second = await make_dialer(settings, redis_client)
    try:
        call = make_call()
        await first.originate(call)
        await first.aclose()  # the originating worker dies right after dialing
        result = await asyncio.wait_for(second.wait_outcome(call), 10)
        assert (result.outcome, result.reason) == (CallOutcome.ANSWERED, "played")
        assert len(double.originates) == 1
    finally:
        await second.aclose()


async def test_a_call_record_holds_first_seen_facts_under_the_prefix(
    dialer: AmiDialer, redis_client: aioredis.Redis, settings: Settings
) -> None:
    call = make_call("3005550001")
    await place(dialer, call)
    record = await redis_client.hgetall(Keys(settings.REDIS_PREFIX).call_record(call.call_id))
    assert record["response"] == "Failure"
    assert record["reason"] == "5"
    assert record["job_id"] == call.job_id
    ttl = await redis_client.ttl(Keys(settings.REDIS_PREFIX).call_record(call.call_id))
    assert 0 < ttl <= settings.CALL_MAX_DURATION + 3600


async def test_a_link_dropped_mid_call_reconnects_and_the_call_still_ends(
    dialer: AmiDialer, double: AmiServerDouble
) -> None:
    call = make_call()
    await dialer.originate(call)
    waiting = asyncio.create_task(dialer.wait_outcome(call))
    await asyncio.sleep(0.05)  # answered; playback under way
    await double.drop_connections()
    result = await asyncio.wait_for(waiting, 10)
    assert result.outcome is CallOutcome.ANSWERED
    assert len(double.logins) >= 2


async def test_a_call_that_ended_while_no_session_was_up_is_settled_from_what_is_known(
    settings: Settings, redis_client: aioredis.Redis, double: AmiServerDouble
) -> None:
    dialer = await make_dialer(settings, redis_client, Deadlines(talk_grace_s=0.5))
    try:
        call = make_call(audio_s=0.2)
        await dialer.originate(call)
        await asyncio.sleep(0.05)  # answered
        await double.shutdown()  # Asterisk stops: the hangup is never reported
        result = await asyncio.wait_for(dialer.wait_outcome(call), 10)
        assert (result.outcome, result.reason) == (CallOutcome.ANSWERED, "hangup_not_seen")
        assert dialer.health() is DialerHealth.DISCONNECTED
        await double.restart()
        assert await dialer.session.wait_connected(5)
        assert dialer.health() is DialerHealth.CONNECTED
    finally:
        await dialer.aclose()


async def test_an_originate_whose_response_is_lost_is_followed_never_resent(
    settings: Settings, redis_client: aioredis.Redis, double: AmiServerDouble
) -> None:
    double.ack_originates = False
    dialer = AmiDialer(
        settings, redis_client, keys_for(settings), timings=FAST, action_timeout_s=0.3
    )
    try:
        call = make_call()
        await dialer.originate(call)  # no DialerError: the claim on the attempt must stay
        result = await asyncio.wait_for(dialer.wait_outcome(call), 10)
        assert (result.outcome, result.reason) == (CallOutcome.ANSWERED, "played")
        assert len(double.originates) == 1
    finally:
        await dialer.aclose()


async def test_without_a_session_nothing_is_sent_and_the_error_says_why(
    settings: Settings, redis_client: aioredis.Redis, double: AmiServerDouble
) -> None:
    await double.stop()
    dialer = AmiDialer(settings, redis_client, keys_for(settings), timings=FAST, connect_wait_s=0.3)
    try:
        with pytest.raises(DialerError, match="no AMI session"):
            await dialer.originate(make_call())
    finally:
        await dialer.aclose()


async def test_a_call_made_while_asterisk_boots_is_sent_once_it_has_booted(
    settings: Settings, redis_client: aioredis.Redis, double: AmiServerDouble
) -> None:
    """Asterisk takes AMI logins while it boots (the Compose stack starts it with the workers):
    a call made then is sent once it has booted, within the session's boot wait, instead of
    failing when the shorter connect wait is over."""
    double.booted = False
    timings = dataclasses.replace(FAST, boot_wait_s=10.0)
    dialer = AmiDialer(
        settings, redis_client, keys_for(settings), timings=timings, connect_wait_s=0.3
    )
    dialer.start()
    placing: asyncio.Task[None] | None = None
    try:
        deadline = time.monotonic() + 10
        while not any(ok for _, ok in double.logins):
            assert time.monotonic() < deadline, "no login"
            await asyncio.sleep(0.01)
        placing = asyncio.create_task(dialer.originate(make_call()))
        await asyncio.sleep(1.0)  # past the connect wait, well inside the boot wait
        assert not placing.done()
        assert double.originates == []
        await double.finish_boot()
        await asyncio.wait_for(placing, 10)
        assert len(double.originates) == 1
    finally:
        if placing is not None:
            placing.cancel()
        await dialer.aclose()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"write": frozenset({"call"})}, "Permission denied"),
        ({"contexts": frozenset({"other"})}, "Extension does not exist."),
    ],
)
async def test_an_originate_asterisk_refuses_is_a_dialer_error(
    dialer: AmiDialer, double: AmiServerDouble, change: dict[str, frozenset[str]], message: str
) -> None:
    for name, value in change.items():
        setattr(double, name, value)
    with pytest.raises(DialerError, match=message):
        await dialer.originate(make_call())


async def _originate_responses(double: AmiServerDouble, recording: str) -> dict[str, str]:
    """Send the recorded client's Originates as recorded; `{Uniqueid: Reason}` of the answers."""
    recorded = ami_session(recording)
    reader, writer = await asyncio.open_connection("127.0.0.1", double.port)
    await reader.readline()
    sent = [e for e in recorded if e.sent_by_client and e.get("Action") != "Logoff"]
    payload = b"".join(e.wire() for e in sent)
    writer.write(payload.replace(b"Context: tts-out", b"Context: tts-playback"))
    responses: dict[str, str] = {}
    try:
        while len(responses) < sum(1 for e in sent if e.get("Action") == "Originate"):
            block = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode()
            if block.startswith("Event: OriginateResponse"):
                fields = dict(line.split(": ", 1) for line in block.strip().split("\r\n"))
                responses[fields["Uniqueid"]] = fields["Reason"]
    finally:
        writer.close()
    return responses


async def test_the_recorded_busy_burst_fails_every_call_busy(double: AmiServerDouble) -> None:
    """burst_busy50.log: 50 Originates at once to a busy callee, fixed-length ChannelIds
    (`bbusy50-0000`..): every one answered Failure / Reason 5 under its own ChannelId."""
    recorded = {
        e.get("Uniqueid"): e.get("Reason")
        for e in ami_session("burst_busy50")
        if e.event == "OriginateResponse"
    }
    assert len(recorded) == 50
    assert set(recorded.values()) == {"5"}
    double.scenario_of = lambda channel: "busy" if "busy" in channel else "answer"
    assert await _originate_responses(double, "burst_busy50") == recorded
    assert len(double.calls) == 50


async def test_a_50_call_busy_burst_on_one_session(
    dialer: AmiDialer, double: AmiServerDouble
) -> None:
    calls = [make_call("3005550001") for _ in range(50)]
    results = await asyncio.gather(*(place(dialer, call) for call in calls))
    assert results == [(CallOutcome.BUSY, "5")] * 50
    assert sorted(o.get("ChannelId") for o in double.originates) == sorted(c.call_id for c in calls)
    assert double.live == 0


async def test_a_call_recorded_with_events_call_user_is_understood(
    dialer: AmiDialer, double: AmiServerDouble
) -> None:
    """filter_events_call_user.log: what a real Asterisk sends for an answered call when the
    session asked for `call,user` only (no VarSet PLAYBACKSTATUS): OriginateResponse, the
    TTSDone UserEvent and the Hangup are enough to tell the message was played."""
    double.scenario_of = lambda channel: "filter_events_call_user"
    call = make_call()
    await dialer.originate(call)
    result = await asyncio.wait_for(dialer.wait_outcome(call), 10)
    assert (result.outcome, result.reason, result.hangup_cause) == (
        CallOutcome.ANSWERED,
        "played",
        "16",
    )
    assert result.talk_s is not None
    assert result.channel is not None
    assert result.channel.startswith("PJSIP/3005050149@trunk-")


async def test_abandon_sends_nothing_and_the_call_goes_on(
    dialer: AmiDialer, double: AmiServerDouble
) -> None:
    """An Originate cannot be taken back, and the least-privilege user may not hang up."""
    call = make_call()
    await dialer.originate(call)
    sent = len(double.actions)
    assert await dialer.abandon(call) is False
    result = await asyncio.wait_for(dialer.wait_outcome(call), 10)
    assert result.outcome is CallOutcome.ANSWERED
    assert {dict(a).get("Action") for a in double.actions[sent:]} <= {"Ping"}
