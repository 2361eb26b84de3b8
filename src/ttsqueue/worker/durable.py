"""A delivery is settled only on writes that the Redis master keeps (store/fence.py).

Whatever a delivery wrote of its job (the move to processing, the call claim, calling, the
ending) is noted as it is written (store/journal.py). Before the message is acked, or handed
back after an error, the writes must be on REDIS_WAIT_REPLICAS replicas and the fence must
hold. When it does not (the master was switched while the job was handled: what went to the
old master is being erased), the worker waits for the new master, recreates the record from
the message if it is missing there, and makes its writes again, in order. Each is guarded by
the state it starts from, so what the new master already has is not counted twice; a call
this worker placed keeps its claim, so it is never dialed again; an ending is not lost, so the
job does not stay `calling`. Status changes are made again only while the record there is
still where this delivery's own writes left it (its `updated_at` and status are one of
theirs, or it is older): a record that moved on since (another delivery, the sweeper) is not
taken back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aio_pika.abc import AbstractIncomingMessage

from ttsqueue.domain import JobMessage
from ttsqueue.errors import StoreUnavailableError
from ttsqueue.logs import get_logger
from ttsqueue.store import journal
from ttsqueue.store.fence import MasterFence, Stamp
from ttsqueue.store.replication import wait_replicated
from ttsqueue.worker.context import WorkerContext

log = get_logger("ttsqueue.worker.durable")

# Rounds of "wait for the master, write again, check" before the message is handed back.
SEAL_ROUNDS = 3


@contextlib.asynccontextmanager
async def sealed(ctx: WorkerContext, message: AbstractIncomingMessage) -> AsyncIterator[None]:
    """Run a delivery's handling; on its way out, make sure its writes are kept."""
    fence = MasterFence(ctx.redis)
    if not fence.watched:
        yield
        return
    stamp = fence.stamp()
    with journal.journaling() as writes:
        try:
            yield
        except asyncio.CancelledError:
            raise  # shutdown: the message goes back and its next delivery sees the state
        except BaseException:
            await _seal(ctx, fence, stamp, writes, message)
            raise
        await _seal(ctx, fence, stamp, writes, message)


async def _seal(
    ctx: WorkerContext,
    fence: MasterFence,
    stamp: Stamp,
    writes: list[journal.Entry],
    message: AbstractIncomingMessage,
) -> None:
    if not writes:
        return
    for _ in range(SEAL_ROUNDS):
        if await _replicated(ctx) and await fence.holds(stamp):
            return
        log.warning("redis master switched during the job: writing it again", writes=len(writes))
        stamp = await fence.settle()
        with journal.paused():
            job_id = await _restore_record(ctx, message)
        await journal.replay(await _still_ours(ctx, job_id, writes))
    raise StoreUnavailableError("the job's writes were not confirmed on the Redis master")


async def _replicated(ctx: WorkerContext) -> bool:
    wanted = ctx.settings.REDIS_WAIT_REPLICAS
    if not wanted:
        return True
    keys = ctx.store.keys
    acked = await wait_replicated(ctx.redis, keys, wanted, ctx.settings.REDIS_WAIT_TIMEOUT_MS)
    return acked >= wanted


async def _restore_record(ctx: WorkerContext, message: AbstractIncomingMessage) -> str | None:
    """The job's record on the new master, from the message's copy, when it is not there;
    the job's id."""
    try:
        msg = JobMessage.decode(message.body)
    except ValueError:
        return None
    if await ctx.store.get(msg.job_id) is None and await ctx.lifecycle.rebuild(msg) is None:
        log.warning("job record lost with the old master and not in its message", job_id=msg.job_id)
    return msg.job_id


async def _still_ours(
    ctx: WorkerContext, job_id: str | None, writes: list[journal.Entry]
) -> list[journal.Entry]:
    """The writes to make again: claims always (each is safe twice), status changes only
    after the last of them the record already shows, and none if it moved on elsewhere."""
    ours = [entry.at for entry in writes if entry.at is not None]
    if not ours or job_id is None:
        return writes
    raw_at, raw_status = await ctx.redis.hmget(ctx.store.keys.job(job_id), "updated_at", "status")
    if raw_at is None:
        return writes
    current, status = str(raw_at), None if raw_status is None else str(raw_status)
    # One of ours when both its time and its status match: the record's creation (or a
    # rebuild from the message) may carry the same millisecond as this delivery's first change.
    shown = [i for i, e in enumerate(writes) if e.at == current and e.status == status]
    if shown:
        return [e for i, e in enumerate(writes) if e.at is None or i > max(shown)]
    if current <= min(ours):
        return writes
    log.warning("job moved on since this delivery: its status changes are not made again")
    return [entry for entry in writes if entry.at is None]
