"""The two retry policies (SPEC §3), explicit and separate.

Telephony: busy / no answer / congestion are tried again `max_retries` times, `retry_delay`
apart. Technical: engine or connection failures back off exponentially up to
TECH_MAX_RETRIES, after which the message is dead-lettered.
"""

from __future__ import annotations

from dataclasses import dataclass

from ttsqueue.domain import CallOutcome, Job, MachineDetection

TECH_BACKOFF_CAP_S = 300.0


@dataclass(frozen=True, slots=True)
class TelephonyRetry:
    """Decision after an attempt ended with `outcome`."""

    retry: bool
    next_attempt: int
    delay_s: int


def retried_like_no_answer(job: Job, outcome: CallOutcome) -> bool:
    """Outcomes the job itself asked to retry (SPEC §12): an answering machine with
    `machine_detection: retry`; an unconfirmed call (no key, or hung up during the message)
    with `retry_unconfirmed`."""
    if outcome is CallOutcome.MACHINE:
        return job.machine_detection is MachineDetection.RETRY
    unconfirmed = outcome in {CallOutcome.NOT_CONFIRMED, CallOutcome.HANGUP_DURING_MESSAGE}
    return unconfirmed and job.confirm is not None and job.retry_unconfirmed


def telephony_decision(job: Job, attempt: int, outcome: CallOutcome) -> TelephonyRetry:
    wanted = outcome.retryable or retried_like_no_answer(job, outcome)
    retry = wanted and attempt < 1 + job.max_retries
    return TelephonyRetry(retry=retry, next_attempt=attempt + 1, delay_s=job.retry_delay)


def technical_delay(base_s: float, retries_spent: int) -> float:
    """Backoff before technical retry number `retries_spent + 1`: base, 2x base, 4x base..."""
    return float(min(base_s * (2**retries_spent), TECH_BACKOFF_CAP_S))


def technical_exhausted(retries_spent: int, limit: int) -> bool:
    return retries_spent >= limit
