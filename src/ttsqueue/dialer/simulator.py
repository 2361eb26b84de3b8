"""A dialer that places no call: the outcome follows from the number, the timing from the audio.

Numbers ending in 0001 are busy, 0002 never answer, 0003 hit congestion; every other number
answers and listens to the whole message. Calls that listen (keys, answering machines) follow
`simulated_listen.py`: 0004 presses 1, 0005 is an answering machine, 0006 presses nothing.
Nothing is kept in memory between `originate` and
`wait_outcome`: the end of the call is computed from `call.originated_at`, so a worker that
picks the job up after a redelivery gets the same result, at the same moment.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from ttsqueue.config import Settings
from ttsqueue.dialer.base import CallRequest, CallResult
from ttsqueue.dialer.simulated_listen import simulate_listen
from ttsqueue.domain import CallOutcome, DialerHealth
from ttsqueue.logs import get_logger

log = get_logger("ttsqueue.dialer.simulator")

# What the dialplan does before hanging up: Answer, Wait(1), Playback(...).
ANSWER_WAIT_S = 1.0


@dataclass(frozen=True, slots=True)
class _Script:
    """How a simulated call unfolds, in unscaled seconds (ring_s None: use the ring timeout)."""

    outcome: CallOutcome
    ring_s: float | None
    hangup_cause: str


_ANSWERED = _Script(CallOutcome.ANSWERED, 2.0, "16")  # Normal Clearing
_BY_ENDING: dict[str, _Script] = {
    "0001": _Script(CallOutcome.BUSY, 1.0, "17"),  # User busy
    "0002": _Script(CallOutcome.NO_ANSWER, None, "19"),  # No answer
    "0003": _Script(CallOutcome.CONGESTION, 0.5, "34"),  # No circuit available
}


def _script_for(number: str) -> _Script:
    return _BY_ENDING.get(number[-4:], _ANSWERED)


class SimulatorDialer:
    name = "simulator"

    def __init__(self, settings: Settings) -> None:
        self._scale = settings.SIMULATOR_TIME_SCALE

    async def originate(self, call: CallRequest) -> None:
        """Nothing to hand over: the call exists only as a function of its request. Each
        origination received is logged with its call id, as a switch's call records would
        show it: the dialer's own account of how often it was asked to dial each attempt."""
        script = _script_for(call.number)
        log.info("simulated call placed", call_id=call.call_id, scripted=script.outcome.value)

    async def wait_outcome(self, call: CallRequest) -> CallResult:
        result = self.outcome_of(call)
        remaining = (result.ended_at or 0.0) - time.time()
        if remaining > 0:
            await asyncio.sleep(remaining)
        return result

    def outcome_of(self, call: CallRequest) -> CallResult:
        """The final result of `call`, known in advance (timestamps may lie in the future)."""
        script = _script_for(call.number)
        ring_s = call.ring_timeout_s if script.ring_s is None else script.ring_s
        rang_until = call.originated_at + ring_s * self._scale
        channel = f"Simulated/{call.number}-{call.call_id}"
        if script.outcome is not CallOutcome.ANSWERED:
            return CallResult(
                outcome=script.outcome,
                reason=script.outcome.value,
                hangup_cause=script.hangup_cause,
                channel=channel,
                ended_at=rang_until,
                simulated=True,
            )
        if call.listen is not None and call.listen.active:
            heard = simulate_listen(call.number[-4:], call.listen, call.audio_duration_s)
            talk_s = heard.talk_s * self._scale
            return CallResult(
                outcome=heard.outcome,
                reason=heard.reason,
                hangup_cause=script.hangup_cause,
                channel=channel,
                answered_at=rang_until,
                ended_at=rang_until + talk_s,
                talk_s=talk_s,
                simulated=True,
                dtmf=heard.dtmf,
                confirmed=heard.confirmed,
                amd=heard.amd,
            )
        talk_s = (call.audio_duration_s + ANSWER_WAIT_S) * self._scale
        return CallResult(
            outcome=CallOutcome.ANSWERED,
            reason=CallOutcome.ANSWERED.value,
            hangup_cause=script.hangup_cause,
            channel=channel,
            answered_at=rang_until,
            ended_at=rang_until + talk_s,
            talk_s=talk_s,
            simulated=True,
        )

    async def abandon(self, call: CallRequest) -> bool:
        """No call exists anywhere: nothing to take back."""
        return False

    def health(self) -> DialerHealth:
        return DialerHealth.NOT_CONFIGURED

    def server_up(self, name: str) -> bool:
        return True  # simulated calls: every server's lines are counted, none is ever down

    def server_states(self) -> dict[str, str]:
        return {}

    async def aclose(self) -> None:
        return None
