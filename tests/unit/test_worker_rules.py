"""Pure decisions of the worker: what a delivery means, and the two retry policies."""

from __future__ import annotations

import pytest

from tests.factories import make_job
from ttsqueue.broker.delays import is_due, remaining_ms
from ttsqueue.domain import CallOutcome, JobMessage, JobStatus
from ttsqueue.worker.plan import Plan, plan_for
from ttsqueue.worker.retry import technical_delay, technical_exhausted, telephony_decision


@pytest.mark.parametrize(
    ("status", "attempts", "attempt", "plan"),
    [
        (JobStatus.QUEUED, 0, 1, Plan.START),
        (JobStatus.SCHEDULED, 0, 1, Plan.START),
        (JobStatus.PROCESSING, 0, 1, Plan.START),  # redelivered before the call
        (JobStatus.CALLING, 1, 1, Plan.RESUME),  # redelivered during the call: never redial
        (JobStatus.RETRYING, 1, 2, Plan.START),  # the retry arrives
        (JobStatus.RETRYING, 1, 1, Plan.REPARK),  # the retry message may be lost: resend it
        (JobStatus.CALLING, 2, 1, Plan.DROP),  # stale copy of an earlier attempt
        (JobStatus.QUEUED, 0, 3, Plan.DROP),  # from the future: not ours to run
        (JobStatus.CANCELED, 0, 1, Plan.DROP),
        (JobStatus.COMPLETED, 1, 1, Plan.DROP),
        (JobStatus.FAILED, 3, 4, Plan.DROP),
    ],
)
def test_plan_for_delivery(status: JobStatus, attempts: int, attempt: int, plan: Plan) -> None:
    job = make_job(status=status)
    job.attempts = attempts
    assert plan_for(job, attempt) is plan


def test_telephony_retries_up_to_max_then_stop() -> None:
    job = make_job(max_retries=2, retry_delay=60)
    assert telephony_decision(job, 1, CallOutcome.BUSY).retry
    assert telephony_decision(job, 2, CallOutcome.NO_ANSWER).retry
    assert not telephony_decision(job, 3, CallOutcome.CONGESTION).retry
    assert not telephony_decision(job, 1, CallOutcome.FAILED).retry
    assert not telephony_decision(job, 1, CallOutcome.ANSWERED).retry
    decision = telephony_decision(job, 1, CallOutcome.BUSY)
    assert (decision.next_attempt, decision.delay_s) == (2, 60)


def test_technical_backoff_is_exponential_and_bounded() -> None:
    assert [technical_delay(1.0, n) for n in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert technical_delay(1.0, 30) == 300.0
    assert not technical_exhausted(4, 5)
    assert technical_exhausted(5, 5)


def test_due_time() -> None:
    message = JobMessage(job_id="a" * 36, not_before_ms=10_000)
    assert remaining_ms(message, now_ms=9_000) == 1_000
    assert not is_due(message, now_ms=9_000)
    assert is_due(message, now_ms=9_990)
    assert is_due(message, now_ms=20_000)
