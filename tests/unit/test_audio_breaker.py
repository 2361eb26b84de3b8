"""Circuit breaker state machine and request pacing, driven by an injected clock."""

from __future__ import annotations

import time

import pytest

from ttsqueue.tts.breaker import BreakerState, CircuitBreaker
from ttsqueue.tts.throttle import Throttle


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(threshold=3, cooldown=30.0, clock=clock)


def _fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        assert breaker.allow()
        breaker.record_failure()


def test_opens_after_threshold_consecutive_failures(breaker: CircuitBreaker) -> None:
    _fail(breaker, 2)
    assert breaker.state.value == "closed"
    _fail(breaker, 1)
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()
    assert breaker.retry_after() == 30.0


def test_success_resets_the_count(breaker: CircuitBreaker) -> None:
    _fail(breaker, 2)
    assert breaker.allow()
    breaker.record_success()
    _fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.failures == 2


def test_half_open_lets_exactly_one_trial_through(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    _fail(breaker, 3)
    clock.now += 29.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow()
    assert not breaker.allow()  # the trial is in flight: others still fail fast
    assert breaker.state is BreakerState.HALF_OPEN


def test_successful_trial_closes(breaker: CircuitBreaker, clock: FakeClock) -> None:
    _fail(breaker, 3)
    clock.now += 30
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    assert breaker.allow()


def test_failed_trial_reopens_for_a_full_cooldown(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    _fail(breaker, 3)
    clock.now += 45
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.now += 29
    assert not breaker.allow()
    clock.now += 1
    assert breaker.allow()


def test_released_trial_lets_the_next_caller_probe(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    _fail(breaker, 3)
    clock.now += 30
    assert breaker.allow()
    breaker.release()  # e.g. the trial call was canceled
    assert breaker.allow()


@pytest.mark.parametrize(("threshold", "cooldown"), [(0, 1.0), (1, 0.0)])
def test_rejects_nonsense_settings(threshold: int, cooldown: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        CircuitBreaker(threshold, cooldown)


def test_throttle_spaces_a_burst(clock: FakeClock) -> None:
    throttle = Throttle(rate=2.0, clock=clock)
    assert [throttle.reserve() for _ in range(4)] == [0.0, 0.5, 1.0, 1.5]


def test_throttle_cost_books_several_slots(clock: FakeClock) -> None:
    throttle = Throttle(rate=4.0, clock=clock)
    assert throttle.reserve(cost=3) == 0.0
    assert throttle.reserve() == 0.75


def test_throttle_idle_time_is_not_banked(clock: FakeClock) -> None:
    throttle = Throttle(rate=1.0, clock=clock)
    throttle.reserve()
    clock.now += 10
    assert throttle.reserve() == 0.0
    assert throttle.reserve() == 1.0


async def test_throttle_acquire_sleeps_only_when_needed(clock: FakeClock) -> None:
    # The pacing clock stands still, so only the real sleeps make time pass.
    throttle = Throttle(rate=10.0, clock=clock)
    started = time.monotonic()
    await throttle.acquire()
    await throttle.acquire()  # its slot is 0.1 s after the first: it must sleep that long
    assert time.monotonic() - started >= 0.1
    clock.now += 5  # idle for a while: the next one is due at once, nothing is booked ahead
    assert throttle.reserve() == 0.0
