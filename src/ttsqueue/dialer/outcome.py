"""A call's result from the facts recorded about it, whatever order they came in. Pure.

Final as soon as Asterisk has said enough: a failed OriginateResponse (reason code), or an
answered call's Hangup (with the playback result when the dialplan reported it). When facts are
missing, because no AMI session was connected while they happened, the call is resolved from
what is known once it must be over (deadlines below), never left in `calling`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ttsqueue.dialer.base import CallRequest, CallResult, answered_call
from ttsqueue.dialer.listen_result import apply_listen
from ttsqueue.domain import CallOutcome

# OriginateResponse `Reason:` codes (README of the recordings).
REASON_OUTCOMES: dict[str, CallOutcome] = {
    "0": CallOutcome.FAILED,
    "1": CallOutcome.NO_ANSWER,  # hung up while ringing
    "3": CallOutcome.NO_ANSWER,  # no answer, also at the Timeout
    "4": CallOutcome.ANSWERED,
    "5": CallOutcome.BUSY,
    "8": CallOutcome.CONGESTION,
}
# What the dialplan waits between Answer() and Playback() (deploy/asterisk/extensions_tts.conf).
ANSWER_WAIT_S = 0.5


@dataclass(frozen=True, slots=True)
class Deadlines:
    """How long to wait for facts that may never come (the AMI session was down)."""

    # After the expected end of the message, for the Hangup of an answered call.
    talk_grace_s: float = 30.0
    # After a Hangup or a playback failure, for the OriginateResponse / Hangup that goes with it.
    # Asterisk sends them milliseconds apart, but a busy worker may record them seconds apart:
    # generous, since it only delays the verdict on a call whose other fact is really lost.
    settle_s: float = 10.0
    # After the claim, for the record the originating worker writes before sending Originate.
    record_s: float = 10.0


def _num(facts: Mapping[str, str], key: str) -> float | None:
    try:
        return float(facts[key])
    except (KeyError, ValueError):
        return None


def _failure(facts: Mapping[str, str], code: str) -> CallResult:
    return CallResult(
        outcome=REASON_OUTCOMES.get(code, CallOutcome.FAILED),
        reason=code,
        hangup_cause=facts.get("cause"),
        channel=facts.get("channel"),
        ended_at=_num(facts, "response_at") or _num(facts, "hangup_at"),
    )


def lost_track(facts: Mapping[str, str], now: float) -> CallResult:
    cause = facts.get("cause")
    return CallResult(
        outcome=CallOutcome.FAILED,
        reason="lost_track",
        hangup_cause=cause,
        channel=facts.get("channel"),
        ended_at=_num(facts, "hangup_at") or now,
    )


def _answered(
    facts: Mapping[str, str], call: CallRequest, answered_at: float | None, now: float
) -> CallResult:
    result = answered_call(
        playback_failed=facts.get("playback") == "FAILED",
        played_to_end=bool(facts.get("done")),
        answered_at=answered_at,
        ended_at=_num(facts, "hangup_at"),
        unknown_end_reason="hangup_not_seen",
        hangup_cause=facts.get("cause"),
        channel=facts.get("channel"),
        fallback_end=now,
    )
    return apply_listen(result, facts, call)


def _message_end(call: CallRequest, start: float, grace: Deadlines) -> float:
    return start + ANSWER_WAIT_S + call.longest_talk_s + grace.talk_grace_s


def resolve(
    facts: Mapping[str, str], call: CallRequest, now: float, grace: Deadlines | None = None
) -> CallResult | None:
    """The result when it is known (or must be decided now), else None: keep waiting."""
    grace = grace or Deadlines()
    if not facts:
        # No record: Originate was never sent (the record is written first) or it expired.
        return lost_track(facts, now) if now > call.originated_at + grace.record_s else None
    code = facts.get("reason") or facts.get("failed_reason")
    if facts.get("response", "").lower() == "failure" or (code and code != "4"):
        return _failure(facts, code or "0")
    answered_at = _num(facts, "up_at")
    playback_at = _num(facts, "playback_at")
    if answered_at is not None or playback_at is not None:
        if "hangup_at" in facts:
            return _answered(facts, call, answered_at, now)
        if facts.get("playback") == "FAILED" and now > (playback_at or now) + grace.settle_s:
            return _answered(facts, call, answered_at, now)
        start = answered_at or playback_at or call.originated_at
        if now > _message_end(call, start, grace):
            return _answered(facts, call, answered_at, now)
        return None
    hangup_at = _num(facts, "hangup_at")
    if hangup_at is not None:
        # A Hangup and nothing else: the OriginateResponse may still be on its way.
        return lost_track(facts, now) if now > hangup_at + grace.settle_s else None
    ring_end = call.originated_at + call.ring_timeout_s
    if now > _message_end(call, ring_end, grace):
        return lost_track(facts, now)
    return None
