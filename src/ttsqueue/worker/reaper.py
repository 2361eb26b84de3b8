"""Resolves jobs stuck in `calling` beyond CALL_MAX_DURATION (outcome failed, lost_track).

Every worker runs it; a short Redis lock lets one of them act at a time. Before a job is
failed, the dialer takes back what it has not started yet (`Dialer.abandon`: a call file still
waiting in `outgoing/`), so that the callee is not rung after the job has ended.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import structlog

from ttsqueue.dialer.base import CallRequest
from ttsqueue.domain import CallOutcome, JobStatus
from ttsqueue.logs import get_logger
from ttsqueue.worker.call_request import call_request
from ttsqueue.worker.context import WorkerContext
from ttsqueue.worker.outcomes import fail_job

log = get_logger("ttsqueue.worker.reaper")

REAP_INTERVAL_S = 10.0


async def abandon_call(ctx: WorkerContext, call: CallRequest) -> None:
    """Ask the dialer to take the call back; a failure is logged, never raised."""
    try:
        withdrawn = await ctx.dialer.abandon(call)
    except Exception as exc:
        log.error("call not withdrawn before giving up", call_id=call.call_id, error=repr(exc))
        return
    if withdrawn:
        log.warning("call withdrawn before the backend started it", call_id=call.call_id)


async def reap_once(ctx: WorkerContext) -> int:
    lock = ctx.store.keys.reaper_lock
    if not await ctx.redis.set(lock, ctx.worker_id, nx=True, ex=int(REAP_INTERVAL_S)):
        return 0
    ids = await ctx.redis.zrange(ctx.store.keys.status_index(JobStatus.CALLING), 0, -1)
    reaped = 0
    horizon = time.time() - ctx.settings.CALL_MAX_DURATION
    for job in await ctx.store.get_many([str(job_id) for job_id in ids]):
        started = datetime.fromisoformat(job.call.started_at or job.updated_at).timestamp()
        if job.status is not JobStatus.CALLING or started >= horizon:
            continue
        with structlog.contextvars.bound_contextvars(job_id=job.job_id, attempt=job.attempts):
            if job.attempts >= 1:
                lost = call_request(
                    job,
                    job.attempts,
                    ring_timeout_s=ctx.settings.CALL_RING_TIMEOUT,
                    originated_at=started,
                )
                await abandon_call(ctx, lost)
            if await fail_job(ctx, job, "lost_track", outcome=CallOutcome.FAILED):
                reaped += 1
    return reaped


async def reaper_loop(ctx: WorkerContext) -> None:
    while True:
        try:
            reaped = await reap_once(ctx)
            if reaped:
                log.warning("reaped calls that lost track", count=reaped)
        except Exception as exc:
            log.warning("reaper pass failed", error=repr(exc))
        await asyncio.sleep(REAP_INTERVAL_S)
