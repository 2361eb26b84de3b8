"""A 202 only for a record the Redis master keeps (store/fence.py).

The record of a job is written, replicated (REDIS_WAIT_REPLICAS) and confirmed before the
API answers 202. If the master was switched meanwhile, those writes may have gone to the old
master and be erased with it: the API then waits for the new master and writes the record
there again (idempotently: the same job id and Idempotency-Key), before it answers.
"""

from __future__ import annotations

from ttsqueue.api.context import ApiContext
from ttsqueue.domain import Job
from ttsqueue.errors import StoreUnavailableError
from ttsqueue.logs import get_logger
from ttsqueue.store.fence import Stamp
from ttsqueue.store.lifecycle import IdempotencyClaim
from ttsqueue.store.replication import wait_replicated

log = get_logger("ttsqueue.api.kept")

ROUNDS = 3


def master_stamp(ctx: ApiContext) -> Stamp:
    """Taken before the record is written."""
    return ctx.fence.stamp()


async def ensure_kept(
    ctx: ApiContext, job: Job, claim: IdempotencyClaim | None, stamp: Stamp
) -> None:
    """Return once the job's record and confirm are on the current master (written again
    there when the master was switched since `stamp`); StoreUnavailableError if that fails."""
    fence = ctx.fence
    for _ in range(ROUNDS):
        if await fence.holds(stamp):
            return
        log.warning(
            "redis master switched while accepting: record written again", job_id=job.job_id
        )
        stamp = await fence.settle()
        created = await ctx.lifecycle.create(job, claim=claim)
        if not created.created or created.job_id != job.job_id:
            raise StoreUnavailableError(f"job {job.job_id} could not be recorded again")
        wanted = ctx.settings.REDIS_WAIT_REPLICAS
        if wanted:
            keys = ctx.store.keys
            timeout = ctx.settings.REDIS_WAIT_TIMEOUT_MS
            if await wait_replicated(ctx.store.client, keys, wanted, timeout) < wanted:
                continue
        await ctx.lifecycle.confirm(job.job_id, claim.key_digest if claim else None)
    raise StoreUnavailableError(f"job {job.job_id}: Redis master kept switching")
