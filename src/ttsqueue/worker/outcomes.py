"""Turning a call's result into the job's next state: completed, retrying or failed."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

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
from ttsqueue.store.jobs import Effects
from ttsqueue.store.metrics import END_TO_END, PROCESSING, Observation
from ttsqueue.worker.context import WorkerContext
from ttsqueue.worker.retry import telephony_decision

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
    )


def terminal_effects(ctx: WorkerContext, job: Job, succeeded: bool) -> Effects:
    """Counters that move when a job ends (in the same atomic step as its status)."""
    now = utcnow()
    started = datetime.fromisoformat(job.processed_at) if job.processed_at else now
    duration_ms = max(0, int((now - started).total_seconds() * 1000))
    accepted = datetime.fromisoformat(job.created_at)
    return Effects(
        observe=[
            Observation(PROCESSING, duration_ms / 1000),
            Observation(END_TO_END, max(0.0, (now - accepted).total_seconds())),
        ],
        set={"completed_at": iso(now) or "", "duration_ms": str(duration_ms)},
        metrics={
            "processed": 1,
            "succeeded" if succeeded else "failed": 1,
            "processing_ms_total": duration_ms,
        },
        worker_id=ctx.worker_id,
        worker_incr={"processed": 1} if succeeded else {"processed": 1, "failed": 1},
    )


async def publish_result(
    ctx: WorkerContext, job: Job, status: JobStatus, call: CallInfo, completed_at: str
) -> None:
    """One audit message per terminal state in tts_results (built from what is in memory)."""
    body = orjson.dumps(
        {
            "job_id": job.job_id,
            "status": status.value,
            "attempts": job.attempts,
            "call": call.model_dump(mode="json"),
            "completed_at": completed_at,
            "metadata": job.metadata,
        }
    )
    await ctx.publisher.to_results(body, job.job_id)


async def end_job(
    ctx: WorkerContext,
    job: Job,
    status: JobStatus,
    call: CallInfo,
    *,
    detail: str,
    error: str | None = None,
    expected: frozenset[JobStatus] = frozenset({JobStatus.CALLING}),
) -> bool:
    """Move the job to a terminal status with its counters; publish the result if we won."""
    effects = terminal_effects(ctx, job, succeeded=status is JobStatus.COMPLETED)
    effects.set["call"] = call.model_dump_json()
    if error is not None:
        effects.set["error"] = error
    effects.outcome = call.outcome
    effects.finished = f"{status.value}|{call.outcome.value if call.outcome else 'none'}"
    applied = await ctx.store.transition(
        job.job_id, status, detail=detail, effects=effects, expected=expected
    )
    if applied.applied:
        await publish_result(ctx, job, status, call, effects.set["completed_at"])
    return applied.applied


async def finish_attempt(
    ctx: WorkerContext, job: Job, attempt: int, result: CallResult, work_queue: str
) -> None:
    """Record the attempt's outcome and move the job on. Only the CAS winner acts."""
    info = call_info(job, result, ctx.dialer.name)
    decision = telephony_decision(job, attempt, result.outcome)
    log.info(
        "call ended",
        outcome=result.outcome.value,
        reason=result.reason,
        hangup_cause=result.hangup_cause,
        talk_s=result.talk_s,
        next="completed"
        if result.outcome is CallOutcome.ANSWERED
        else ("retrying" if decision.retry else "failed"),
    )
    if result.outcome is CallOutcome.ANSWERED:
        await end_job(ctx, job, JobStatus.COMPLETED, info, detail="answered")
    elif decision.retry:
        due_ms = int(utcnow().timestamp() * 1000) + decision.delay_s * 1000
        detail = f"{result.outcome.value}: retry in {decision.delay_s}s"
        # A retry that would fall outside the calling window waits for it (SPEC §13).
        due = datetime.fromtimestamp(due_ms / 1000, UTC)
        wait = ctx.policy.hold_until(job.e164, policy_of(job), due)
        if wait is not None:
            due_ms = int(wait.at.timestamp() * 1000)
            detail = f"{result.outcome.value}: retry at {iso(wait.at)} ({wait.reason})"
        effects = Effects(
            set={"call": info.model_dump_json(), "next_attempt_ms": str(due_ms)},
            outcome=result.outcome,
        )
        applied = await ctx.store.transition(
            job.job_id,
            JobStatus.RETRYING,
            detail=detail,
            effects=effects,
            expected=frozenset({JobStatus.CALLING}),
        )
        if applied.applied:
            await park_retry(ctx, job.job_id, decision.next_attempt, due_ms, work_queue)
    else:
        error = f"call {result.outcome.value}: {result.reason or ''}".strip(": ")
        await end_job(ctx, job, JobStatus.FAILED, info, detail=result.outcome.value, error=error)


async def park_retry(
    ctx: WorkerContext, job_id: str, attempt: int, due_ms: int, work_queue: str
) -> None:
    message = JobMessage(job_id=job_id, attempt=attempt, not_before_ms=due_ms)
    await park(ctx.publisher, work_queue, message, DelayQueues.of(ctx.settings))


async def fail_job(
    ctx: WorkerContext, job: Job, reason: str, *, outcome: CallOutcome, error: str | None = None
) -> bool:
    """Give up on a job in processing or calling (errors, exhausted technical retries).

    `reason` is the short code kept in `call.reason`; `error`, when given, the full message."""
    info = job.call.model_copy(update={"outcome": outcome, "reason": reason})
    applied = await end_job(
        ctx,
        job,
        JobStatus.FAILED,
        info,
        detail=error or reason,
        error=error or reason,
        expected=frozenset({JobStatus.PROCESSING, JobStatus.CALLING}),
    )
    if applied:
        log.warning("job failed", reason=reason, error=error)
    return applied
