"""What a worker does when the calling policy says "not this call, not now" (SPEC §13).

`WaitUntil`: the job goes back to `scheduled` with `scheduled_for` = the next opening (the
window, a holiday or the daily contact cap), and its message waits in the delay queues for the
same attempt; nothing was dialed. `Suppressed`: the number was put on the do-not-call list
after submission; the job ends `failed` with `call.outcome = "suppressed"`, never dialed.
Both are named operations of the job's lifecycle (`hold`, `suppress`).
"""

from __future__ import annotations

from ttsqueue.broker.delays import DelayQueues, park
from ttsqueue.domain import Job, JobMessage, iso
from ttsqueue.logs import get_logger
from ttsqueue.policy.gate import Suppressed, WaitUntil
from ttsqueue.worker.context import WorkerContext

log = get_logger("ttsqueue.worker.policy")


async def hold(
    ctx: WorkerContext, job: Job, msg: JobMessage, wait: WaitUntil, work_queue: str
) -> None:
    """Put a job in `processing` back to `scheduled` until `wait.at` (policy clock)."""
    at = ctx.policy.to_system_time(wait.at)
    detail = f"{wait.reason}: waits until {iso(wait.at)} ({wait.zone})"
    if not (await ctx.lifecycle.hold(job, at, detail)).applied:
        return
    await ctx.store.forget_deliveries(job.job_id, (msg.attempt, msg.tech_retries))
    later = JobMessage(
        job_id=job.job_id, attempt=msg.attempt, not_before_ms=int(at.timestamp() * 1000)
    )
    await park(ctx.publisher, work_queue, later, DelayQueues.of(ctx.settings))
    log.info("call held by the calling policy", reason=wait.reason, until=iso(at), zone=wait.zone)


async def suppress(ctx: WorkerContext, job: Job, decision: Suppressed) -> None:
    """End a job whose number may not be called at all."""
    moved = await ctx.lifecycle.suppress(job, decision.reason, worker_id=ctx.worker_id)
    if moved.applied:
        log.info("call suppressed", reason=decision.reason)


async def not_now(
    ctx: WorkerContext,
    job: Job,
    msg: JobMessage,
    decision: WaitUntil | Suppressed,
    work_queue: str,
) -> None:
    if isinstance(decision, Suppressed):
        await suppress(ctx, job, decision)
    else:
        await hold(ctx, job, msg, decision, work_queue)
