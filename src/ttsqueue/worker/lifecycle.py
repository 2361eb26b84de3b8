"""Status moves at the start of an attempt and when giving up, within SPEC §3's transitions."""

from __future__ import annotations

from ttsqueue.domain import CallOutcome, Job, JobStatus, iso, utcnow
from ttsqueue.store.jobs import Effects
from ttsqueue.worker.context import WorkerContext
from ttsqueue.worker.outcomes import fail_job

_TO_QUEUED = frozenset({JobStatus.SCHEDULED, JobStatus.RETRYING})


async def advance_to_processing(ctx: WorkerContext, job: Job) -> Job:
    """scheduled|retrying -> queued -> processing; returns the job with its status now.

    A job already `processing` (a redelivery after a worker was lost) is taken as it is.
    """
    status = job.status
    if status in _TO_QUEUED:
        moved = await ctx.store.transition(job.job_id, JobStatus.QUEUED, detail="due")
        status = JobStatus.QUEUED if moved.applied else (moved.previous or status)
    if status is JobStatus.QUEUED:
        now = iso(utcnow()) or ""
        moved = await ctx.store.transition(
            job.job_id,
            JobStatus.PROCESSING,
            detail=f"worker {ctx.worker_id}",
            effects=Effects(set={"processed_at": now, "worker_id": ctx.worker_id}),
        )
        if moved.applied:
            return job.model_copy(
                update={
                    "status": JobStatus.PROCESSING,
                    "processed_at": now,
                    "worker_id": ctx.worker_id,
                }
            )
        status = moved.previous or status
    return job.model_copy(update={"status": status})


async def give_up(ctx: WorkerContext, job: Job, reason: str) -> None:
    """Fail a job whose message is being dead-lettered, whatever non-terminal state it is in."""
    job = await advance_to_processing(ctx, job)
    if job.status in (JobStatus.PROCESSING, JobStatus.CALLING):
        await fail_job(ctx, job, reason, outcome=CallOutcome.FAILED)
