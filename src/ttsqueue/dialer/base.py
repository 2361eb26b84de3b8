"""The dialer protocol: originate a call now, learn its outcome later from the backend's events.

Backends (simulator, callfile, ami) implement `Dialer`. The worker calls `originate` once per
attempt (guarded by a Redis `SET NX`), then `wait_outcome`, which may also be called by a
different worker after a redelivery: it must re-attach to the call, never dial again. When
the system gives up on a call (the reaper, CALL_MAX_DURATION), `abandon` takes back whatever
the backend has not started yet, so that the callee is not rung after the job has failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ttsqueue.dialer.listen import ListenOptions
from ttsqueue.domain import AmdInfo, CallOutcome, DialerHealth, attempt_call_id


@dataclass(frozen=True, slots=True)
class CallRequest:
    job_id: str
    attempt: int
    # National significant digits (or an extension): already validated, safe for a dial string.
    number: str
    e164: str
    caller_id: str | None
    # Audio path WITHOUT extension, as Asterisk's Playback() wants it.
    audio_path: str
    audio_duration_s: float
    ring_timeout_s: int
    # Epoch seconds when the attempt was originated (known again after a redelivery).
    originated_at: float
    # Epoch seconds the attempt is scheduled for (send_at, retry_delay): the broker delivers
    # it at most a few ms early; a backend that can schedule (call files) holds it until then.
    not_before: float = 0.0
    # Keys and answering machines (SPEC §12); None for a call that only speaks.
    listen: ListenOptions | None = None
    # The Asterisk server whose trunk line the call holds (ASTERISK_SERVERS); None: the only one.
    server: str | None = None

    @property
    def longest_talk_s(self) -> float:
        """How long the answered call can last: the message, and what listening adds."""
        extra = self.listen.extra_time_s(self.audio_duration_s) if self.listen else 0.0
        return self.audio_duration_s + extra

    @property
    def call_id(self) -> str:
        """Fixed-length id of this attempt: 32 hex digits of the job + 2-digit attempt."""
        return attempt_call_id(self.job_id, self.attempt)


@dataclass(frozen=True, slots=True)
class CallResult:
    outcome: CallOutcome
    reason: str | None = None
    hangup_cause: str | None = None
    channel: str | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    talk_s: float | None = None
    simulated: bool = False
    dtmf: str | None = None
    confirmed: bool | None = None
    amd: AmdInfo | None = None


class Dialer(Protocol):
    name: str

    async def originate(self, call: CallRequest) -> None:
        """Hand the call to the backend; returns once the backend has taken it."""

    async def wait_outcome(self, call: CallRequest) -> CallResult:
        """Wait for the call's final outcome; safe to call after a worker restart."""

    async def abandon(self, call: CallRequest) -> bool:
        """Stop `call` from starting later, if the backend can; True when something was taken
        back. Safe to call for a call that ended, never started, or was abandoned already."""

    def health(self) -> DialerHealth:
        """What `/health` reports as `asterisk`."""

    def server_up(self, name: str) -> bool:
        """Whether a call can be placed on Asterisk server `name` now (its AMI session logged
        in); the trunk gives a server that is down no new calls."""

    def server_states(self) -> dict[str, str]:
        """Each Asterisk server's DialerHealth value, for the heartbeat; empty when the
        backend has no servers of its own (simulator, call files)."""

    async def aclose(self) -> None:
        """Release connections and watchers."""


def answered_call(
    *,
    playback_failed: bool,
    played_to_end: bool,
    answered_at: float | None,
    ended_at: float | None,
    unknown_end_reason: str,
    hangup_cause: str | None,
    channel: str | None,
    fallback_end: float,
) -> CallResult:
    """The result of an answered call, from what the dialplan reported about its playback.

    There is no "playback finished" event: the dialplan's report after Playback() says the
    message was heard to the end; a hangup without it means the callee left mid-message."""
    if playback_failed:
        outcome, reason = CallOutcome.FAILED, "playback_failed"
    elif played_to_end:
        outcome, reason = CallOutcome.ANSWERED, "played"
    elif ended_at is not None:
        outcome, reason = CallOutcome.ANSWERED, "hangup_during_playback"
    else:
        outcome, reason = CallOutcome.ANSWERED, unknown_end_reason
    talk_s = None
    if answered_at is not None and ended_at is not None:
        talk_s = round(max(0.0, ended_at - answered_at), 3)
    return CallResult(
        outcome=outcome,
        reason=reason,
        hangup_cause=hangup_cause,
        channel=channel,
        answered_at=answered_at,
        ended_at=ended_at if ended_at is not None else fallback_end,
        talk_s=talk_s,
    )
