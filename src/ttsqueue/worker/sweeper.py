"""No job stays waiting without a message or an owner: the sweeper, run by every worker, one
at a time (a short Redis lock).

Each pass, for what has waited longer than SWEEP_AFTER_SECONDS:
1. Jobs whose first message was never marked confirmed (`jobs:unconfirmed`). A job a worker
   has started had its message: it is marked confirmed. Any other job of the API was never
   acknowledged as far as anyone can prove (the client got 503: Redis lost the reply to the
   record's creation, or the publish failed and the discard with it; or the API died before
   answering): it is failed with reason `never confirmed`, never dialed, and its
   Idempotency-Key is freed. While a message of it could still be on its way (its work queue
   holds ready messages, or it is not due yet) it is left for a later pass. A campaign's job
   is sent: the pacer released its row, and no client was refused.
2. `queued` jobs while their work queue holds no ready message, and `processing` jobs that no
   live worker holds (its heartbeat lists its jobs): the message of the job's next attempt is
   sent again, at most MAX_RESENDS times per job; after that the job is failed with a reason.
3. `calling` jobs that no live worker holds (the ending was lost, e.g. with a demoted Redis
   master whose writes were erased after the message was acked): the message of the attempt
   that was dialed is sent again. Its delivery follows the call to its outcome (or fails the
   job `lost_track` once CALL_MAX_DURATION has passed) and never dials: the claim is there.

Sending a message that may still exist somewhere is safe: the attempt claim (`SET NX` on
`attempt:<job>:<n>`) still lets at most one delivery dial, and the plan drops stale copies.
What cannot be known safely is never guessed: a job held by a live worker is left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import datetime

from ttsqueue.broker.delays import DelayQueues
from ttsqueue.broker.job_messages import send_first_message
from ttsqueue.broker.topology import QueueInspector
from ttsqueue.domain import Job, JobMessage, JobStatus
from ttsqueue.logs import get_logger
from ttsqueue.worker.context import WorkerContext

log = get_logger("ttsqueue.worker.sweeper")

SWEEP_INTERVAL_S = 10.0
MAX_RESENDS = 3
PASS_LIMIT = 500
_FIRST_SENDABLE = frozenset({JobStatus.QUEUED, JobStatus.SCHEDULED})
# Statuses in which a live worker holds the job (and lists it in its heartbeat).
_HELD = frozenset({JobStatus.PROCESSING, JobStatus.CALLING})


NEVER_CONFIRMED = (
    "never confirmed: the submission was not acknowledged (no confirmed message), not dialed"
)


@dataclass(slots=True)
class SweepReport:
    confirmed: int = 0  # unconfirmed campaign jobs whose first message was sent
    refused: int = 0  # unconfirmed jobs failed, never dialed
    resent: int = 0  # stuck jobs given their message again
    failed: int = 0  # stuck jobs given up


def sweep_interval(settings_grace_s: int) -> float:
    """Passes are a fraction of the grace apart, never more than SWEEP_INTERVAL_S."""
    return max(1.0, min(SWEEP_INTERVAL_S, settings_grace_s / 3))


async def sweep_once(ctx: WorkerContext, inspector: QueueInspector) -> SweepReport:
    report = SweepReport()
    grace = ctx.settings.SWEEP_AFTER_SECONDS
    lock_s = max(1, int(sweep_interval(grace)))
    if not await ctx.redis.set(ctx.store.keys.sweeper_lock, ctx.worker_id, nx=True, ex=lock_s):
        return report
    horizon = time.time() - grace
    ready = await inspector.depths()
    await _settle_unconfirmed(ctx, horizon, ready, report)
    await _sweep_stuck(ctx, ready, horizon, report)
    return report


async def _settle_unconfirmed(
    ctx: WorkerContext, horizon: float, ready: dict[str, int], report: SweepReport
) -> None:
    for job_id in await ctx.store.unconfirmed_before(int(horizon * 1000), PASS_LIMIT):
        job = await ctx.store.get(job_id)
        digest = await ctx.store.idempotency_digest(job_id)
        if job is not None and job.status in _FIRST_SENDABLE and job.attempts == 0:
            if job.campaign_id is not None:
                await send_first_message(ctx.publisher, DelayQueues.of(ctx.settings), job)
                log.warning("first message sent by the sweeper", job_id=job_id)
                report.confirmed += 1
            elif _may_be_on_its_way(job, horizon, ready):
                continue
            else:
                refused = await ctx.lifecycle.refuse_unconfirmed(
                    job, NEVER_CONFIRMED, digest, worker_id=ctx.worker_id
                )
                if refused.applied:
                    log.warning("unconfirmed job failed by the sweeper", job_id=job_id)
                    report.refused += 1
                    continue
        # Sent now, gone, or a worker has it already (its message existed): confirmed.
        await ctx.lifecycle.confirm(job_id, digest)


def _may_be_on_its_way(job: Job, horizon: float, ready: dict[str, int]) -> bool:
    """Whether a message of this never-started job could still reach a worker: it is not due
    a grace period ago, or its work queue holds messages no worker has taken yet."""
    if job.scheduled_for and datetime.fromisoformat(job.scheduled_for).timestamp() > horizon:
        return True
    return ready.get(job.queue, 0) > 0


async def _sweep_stuck(
    ctx: WorkerContext, ready: dict[str, int], horizon: float, report: SweepReport
) -> None:
    owned = {job_id for worker in await ctx.workers.alive() for job_id in worker.current_jobs}
    for status in (JobStatus.QUEUED, JobStatus.PROCESSING, JobStatus.CALLING):
        ids = await ctx.redis.zrangebyscore(
            ctx.store.keys.status_index(status), "-inf", int(horizon * 1000), 0, PASS_LIMIT
        )
        for job in await ctx.store.get_many([str(job_id) for job_id in ids]):
            if _stuck(job, status, horizon, owned, ready):
                await _resend_or_fail(ctx, job, report)


def _stuck(
    job: Job, status: JobStatus, horizon: float, owned: set[str], ready: dict[str, int]
) -> bool:
    if job.status is not status or datetime.fromisoformat(job.updated_at).timestamp() > horizon:
        return False
    if status in _HELD:
        return job.job_id not in owned
    # A queued job's message may be anywhere in a backlog: only an empty queue says it is not.
    return ready.get(job.queue, 0) == 0


async def _resend_or_fail(ctx: WorkerContext, job: Job, report: SweepReport) -> None:
    swept = ctx.store.keys.swept(job.job_id)
    count = int(await ctx.redis.incr(swept))
    await ctx.redis.expire(swept, ctx.settings.JOB_TTL_SECONDS)
    if count > MAX_RESENDS:
        reason = f"lost: no message and no worker after {MAX_RESENDS} resends"
        await ctx.lifecycle.give_up(job, reason, worker_id=ctx.worker_id)
        log.warning("stuck job failed by the sweeper", job_id=job.job_id, status=job.status.value)
        report.failed += 1
        return
    # The record is touched first: the next resend waits for another full grace period.
    await ctx.lifecycle.touch(job.job_id)
    # A calling job's message names the attempt that was dialed: its delivery follows it.
    attempt = job.attempts if job.status is JobStatus.CALLING else job.attempts + 1
    message = JobMessage(job_id=job.job_id, attempt=attempt)
    queue = ctx.names.work_queue(job.priority)
    await ctx.publisher.to_work_queue(queue, message.encode(), job.job_id)
    log.warning(
        "stuck job given its message again",
        job_id=job.job_id,
        status=job.status.value,
        resend=count,
    )
    report.resent += 1


async def sweeper_loop(ctx: WorkerContext) -> None:
    inspector = QueueInspector(ctx.publisher.connection, ctx.names)
    interval = sweep_interval(ctx.settings.SWEEP_AFTER_SECONDS)
    try:
        while True:
            try:
                report = await sweep_once(ctx, inspector)
                if report.confirmed or report.refused or report.resent or report.failed:
                    log.warning(
                        "sweeper pass",
                        first_messages=report.confirmed,
                        never_confirmed=report.refused,
                        resent=report.resent,
                        failed=report.failed,
                    )
            except Exception as exc:
                log.warning("sweeper pass failed", error=repr(exc))
            await asyncio.sleep(interval)
    finally:
        with contextlib.suppress(Exception):
            await inspector.close()
