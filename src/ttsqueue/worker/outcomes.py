"""Turning a call's result into the job's next state: completed, retrying or failed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from ttsqueue.broker.delays import DelayQueues, park
from ttsqueue.dialer.base import CallResult
from ttsqueue.domain import (
    CallInfo,
    CallOutcome,
    Job,
    JobMessage,
    JobStatus,
    iso,
    utcnow,
)
from ttsqueue.logs import get_logger
from ttsqueue.policy.gate import policy_of
from ttsqueue.store.lifecycle import HeldLine, Unpin
from ttsqueue.worker.context import WorkerContext
from ttsqueue.worker.retry import retried_like_no_answer, telephony_decision

log = get_logger("ttsqueue.worker.outcomes")


def _epoch_iso(value: float | None) -> str | None:
    return iso(datetime.fromtimestamp(value, UTC)) if value is not None else None


def call_info(job: Job, result: CallResult, backend: str) -> CallInfo:
    return CallInfo(
        backend=backend,
        outcome=result.outcome,
        reason=result.reason,
        hangup_cause=result.hangup_cause,
        channel=result.channel,
        started_at=job.call.started_at,
        answered_at=_epoch_iso(result.answered_at),
        ended_at=_epoch_iso(result.ended_at),
        talk_s=result.talk_s,
        simulated=result.simulated,
        dtmf=result.dtmf,
        confirmed=result.confirmed,
        amd=result.amd,
    )


async def finish_attempt(
    ctx: WorkerContext,
    job: Job,
    attempt: int,
    result: CallResult,
    work_queue: str,
    *,
    unpin: Sequence[Unpin] = (),
    line: HeldLine | None = None,
) -> None:
    """Record the attempt's outcome and move the job on (dropping the call's audio cache
    leases and giving up its line in the same step). Only the CAS winner acts."""
    info = call_info(job, result, ctx.dialer.name)
    decision = telephony_decision(job, attempt, result.outcome)
    # An outcome the job asked to retry (SPEC §12) fails once its retries are spent, like a
    # no-answer; any other call that reached someone completes.
    completes = result.outcome.delivered and not retried_like_no_answer(job, result.outcome)
    log.info(
        "call ended",
        outcome=result.outcome.value,
        reason=result.reason,
        hangup_cause=result.hangup_cause,
        talk_s=result.talk_s,
        dtmf=result.dtmf,
        amd=result.amd.status if result.amd else None,
        next="retrying" if decision.retry else ("completed" if completes else "failed"),
    )
    lifecycle = ctx.lifecycle
    if decision.retry:
        due_ms = int(utcnow().timestamp() * 1000) + decision.delay_s * 1000
        detail = f"{result.outcome.value}: retry in {decision.delay_s}s"
        # A retry that would fall outside the calling window waits for it (SPEC §13).
        due = datetime.fromtimestamp(due_ms / 1000, UTC)
        wait = ctx.policy.hold_until(job.e164, policy_of(job), due)
        if wait is not None:
            due_ms = int(wait.at.timestamp() * 1000)
            detail = f"{result.outcome.value}: retry at {iso(wait.at)} ({wait.reason})"
        if (
            await lifecycle.schedule_retry(job, info, due_ms, detail, unpin=unpin, line=line)
        ).applied:
            await park_retry(ctx, job.job_id, decision.next_attempt, due_ms, work_queue)
        return
    error = None if completes else f"call {result.outcome.value}: {result.reason or ''}".strip(": ")
    await lifecycle.finish(
        job,
        JobStatus.COMPLETED if completes else JobStatus.FAILED,
        info,
        worker_id=ctx.worker_id,
        detail=result.outcome.value,
        error=error,
        unpin=unpin,
        line=line,
    )


async def park_retry(
    ctx: WorkerContext, job_id: str, attempt: int, due_ms: int, work_queue: str
) -> None:
    message = JobMessage(job_id=job_id, attempt=attempt, not_before_ms=due_ms)
    await park(ctx.publisher, work_queue, message, DelayQueues.of(ctx.settings))


async def fail_job(
    ctx: WorkerContext,
    job: Job,
    reason: str,
    *,
    outcome: CallOutcome,
    error: str | None = None,
    unpin: Sequence[Unpin] = (),
    line: HeldLine | None = None,
) -> bool:
    """Give up on a job in processing or calling (errors, exhausted technical retries).

    `reason` is the short code kept in `call.reason`; `error`, when given, the full message."""
    moved = await ctx.lifecycle.fail(
        job, reason, worker_id=ctx.worker_id, outcome=outcome, error=error, unpin=unpin, line=line
    )
    if moved.applied:
        log.warning("job failed", reason=reason, error=error)
    return moved.applied
