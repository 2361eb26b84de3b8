"""Canceling a job that has not started its call: the one transition a client (or a canceled
campaign) makes, shared by `DELETE /tts/call/{id}` and the campaign routes and pacer."""

from __future__ import annotations

from ttsqueue.domain import CANCELABLE, CallOutcome, Job, JobStatus, iso, utcnow
from ttsqueue.store.jobs import Effects, JobStore, TransitionResult


async def cancel_job(store: JobStore, job: Job, detail: str) -> TransitionResult:
    """scheduled|queued|retrying -> canceled (compare-and-set); the worker that later gets
    its message drops it."""
    info = job.call.model_copy(update={"outcome": CallOutcome.CANCELED, "reason": "canceled"})
    return await store.transition(
        job.job_id,
        JobStatus.CANCELED,
        detail=detail,
        effects=Effects(
            set={"completed_at": iso(utcnow()) or "", "call": info.model_dump_json()},
            outcome=CallOutcome.CANCELED,
            finished="canceled|canceled",
        ),
        expected=CANCELABLE,
    )
