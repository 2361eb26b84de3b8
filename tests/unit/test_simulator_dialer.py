"""The simulator dialer: outcome from the number, timing from the audio, no memory between calls."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.conftest import make_settings
from ttsqueue.dialer.base import CallRequest, Dialer
from ttsqueue.dialer.simulator import SimulatorDialer
from ttsqueue.domain import CallOutcome, DialerHealth

JOB_ID = "0f8e4a52-3c1d-4b7a-9e6f-1a2b3c4d5e6f"


def make_call(
    number: str = "3001234567",
    *,
    originated_at: float | None = None,
    audio_duration_s: float = 3.0,
    ring_timeout_s: int = 30,
) -> CallRequest:
    return CallRequest(
        job_id=JOB_ID,
        attempt=1,
        number=number,
        e164=f"+57{number}",
        caller_id=None,
        audio_path="/var/audio/abc",
        audio_duration_s=audio_duration_s,
        ring_timeout_s=ring_timeout_s,
        originated_at=time.time() if originated_at is None else originated_at,
    )


def simulator(tmp_path: Path, scale: float) -> SimulatorDialer:
    return SimulatorDialer(make_settings(tmp_path, SIMULATOR_TIME_SCALE=scale))


@pytest.mark.parametrize(
    ("number", "outcome", "cause"),
    [
        ("3001230001", CallOutcome.BUSY, "17"),
        ("3001230002", CallOutcome.NO_ANSWER, "19"),
        ("3001230003", CallOutcome.CONGESTION, "34"),
        ("3001230004", CallOutcome.ANSWERED, "16"),
        ("3000001000", CallOutcome.ANSWERED, "16"),
    ],
)
async def test_outcome_follows_the_number_ending(
    tmp_path: Path, number: str, outcome: CallOutcome, cause: str
) -> None:
    dialer = simulator(tmp_path, 0.0)
    call = make_call(number)
    await dialer.originate(call)
    result = await dialer.wait_outcome(call)
    assert result.outcome is outcome
    assert result.reason == outcome.value
    assert result.hangup_cause == cause
    assert result.simulated is True
    assert result.channel == f"Simulated/{number}-{call.call_id}"
    assert result.ended_at is not None
    if outcome is CallOutcome.ANSWERED:
        assert result.answered_at is not None
        assert result.talk_s is not None
    else:
        assert result.answered_at is None
        assert result.talk_s is None


async def test_answered_timing_is_ring_then_message_plus_answer_wait(tmp_path: Path) -> None:
    dialer = simulator(tmp_path, 0.5)
    call = make_call(originated_at=1_000.0, audio_duration_s=7.0)
    result = dialer.outcome_of(call)
    assert result.answered_at == pytest.approx(1_000.0 + 2.0 * 0.5)
    assert result.talk_s == pytest.approx((7.0 + 1.0) * 0.5)
    assert result.ended_at == pytest.approx(1_000.0 + 1.0 + 4.0)


@pytest.mark.parametrize(
    ("number", "ring_s"), [("3001230001", 1.0), ("3001230003", 0.5), ("3001230002", 45.0)]
)
def test_unanswered_calls_end_after_their_ring_time(
    tmp_path: Path, number: str, ring_s: float
) -> None:
    dialer = simulator(tmp_path, 2.0)
    call = make_call(number, originated_at=1_000.0, ring_timeout_s=45)
    result = dialer.outcome_of(call)
    assert result.ended_at == pytest.approx(1_000.0 + ring_s * 2.0)


async def test_wait_outcome_lasts_until_the_scaled_end(tmp_path: Path) -> None:
    dialer = simulator(tmp_path, 0.01)
    call = make_call(audio_duration_s=3.0)
    result = await dialer.wait_outcome(call)
    ended_at = call.originated_at + (2.0 + 4.0) * 0.01
    assert result.ended_at == pytest.approx(ended_at)
    assert time.time() >= ended_at


async def test_wait_after_restart_returns_the_same_outcome_without_waiting_again(
    tmp_path: Path,
) -> None:
    # A one-hour message originated long ago by a worker that has since died.
    call = make_call(originated_at=time.time() - 7_200, audio_duration_s=3_600.0)
    expected = simulator(tmp_path, 1.0).outcome_of(call)
    other_process = simulator(tmp_path, 1.0)
    result = await asyncio.wait_for(other_process.wait_outcome(call), timeout=10)
    assert result == expected
    assert result.outcome is CallOutcome.ANSWERED


async def test_wait_after_restart_sleeps_only_the_remaining_time(tmp_path: Path) -> None:
    # Rings 2 s and plays 3601 s: 3603 s in all, of which 0.2 s are left.
    call = make_call(originated_at=time.time() - 3_602.8, audio_duration_s=3_600.0)
    result = await asyncio.wait_for(simulator(tmp_path, 1.0).wait_outcome(call), timeout=30)
    assert result.ended_at is not None
    assert time.time() >= result.ended_at


async def test_waiting_for_a_call_does_not_block_other_coroutines(tmp_path: Path) -> None:
    dialer = simulator(tmp_path, 0.05)
    call = make_call(audio_duration_s=2.0)  # ends 0.25 s from now
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    try:
        await dialer.wait_outcome(call)
    finally:
        ticking.cancel()
        await asyncio.wait([ticking])
    assert ticks >= 2


async def test_reports_itself_as_no_asterisk(tmp_path: Path) -> None:
    dialer: Dialer = simulator(tmp_path, 0.0)
    assert dialer.name == "simulator"
    assert dialer.health() is DialerHealth.NOT_CONFIGURED
    await dialer.aclose()
