"""Surviving a Redis failover: records lost to asynchronous replication, and WAIT.

A Redis replica lags its master by a few writes. When Sentinel promotes it after the master
died, the newest writes are gone: possibly the record of a job the API has just accepted,
whose message is safe in RabbitMQ. Every job message carries the job as accepted, so the
worker that finds no record rebuilds it (`rebuild_record`) instead of dropping the message.

The API can also make the record reach replicas before it answers 202 (`REDIS_WAIT_REPLICAS`):
`wait_replicated` writes a marker and sends WAIT on the same connection, which covers every
write the master had received by then.
"""

from __future__ import annotations

import time
from datetime import datetime

import redis.asyncio as aioredis

from ttsqueue.config import Settings
from ttsqueue.domain import Job, JobMessage
from ttsqueue.logs import get_logger
from ttsqueue.store.jobs import JobStore
from ttsqueue.store.keys import Keys

log = get_logger("ttsqueue.store.rebuild")

# How long a refused submission stays marked: longer than any message can wait unseen.
REFUSED_TTL_S = 7 * 24 * 3600


async def mark_refused(client: aioredis.Redis, keys: Keys, job_id: str) -> None:
    """The API told the client this job failed: never rebuild it from a stray message."""
    await client.set(keys.refused(job_id), "1", ex=REFUSED_TTL_S)


async def rebuild_record(store: JobStore, msg: JobMessage, ttl_seconds: int) -> Job | None:
    """Recreate the missing record of `msg`'s job from the copy the message carries; None
    when it carries none, the job's submission was refused, or it is older than the
    records' lifetime (its record expired: the job is long over)."""
    if msg.record is None:
        return None
    job = Job.model_validate(msg.record)
    if job.job_id != msg.job_id:
        return None
    if await store.client.exists(store.keys.refused(job.job_id)):
        return None
    created = datetime.fromisoformat(job.created_at).timestamp()
    if time.time() - created > ttl_seconds:
        return None
    await store.create(job)
    await store.confirm(job.job_id, None)
    log.warning(
        "job record rebuilt from its message (lost by Redis)",
        job_id=job.job_id,
        status=job.status.value,
    )
    return await store.get(job.job_id)


async def wait_replicated(
    client: aioredis.Redis, keys: Keys, replicas: int, timeout_ms: int
) -> int:
    """Wait until `replicas` replicas hold every write made so far (or `timeout_ms`); the
    number that do. WAIT counts the writes of its own connection, hence the marker written
    on the same one (a pipeline)."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.incr(keys.replication_marker)
        pipe.execute_command("WAIT", replicas, timeout_ms)
        _, acked = await pipe.execute()
    return int(acked)


async def claim_replicated(store: JobStore, settings: Settings) -> bool:
    """REDIS_WAIT_REPLICAS for a worker's claim on a call attempt, before it dials: False
    when too few replicas hold it in time (the caller must not dial: a failover now would
    forget that the call was placed, and it would be dialed again)."""
    wanted = settings.REDIS_WAIT_REPLICAS
    if not wanted:
        return True
    acked = await wait_replicated(store.client, store.keys, wanted, settings.REDIS_WAIT_TIMEOUT_MS)
    if acked < wanted:
        log.warning("call claim not on enough replicas: not dialing yet", replicas=acked)
        return False
    return True
