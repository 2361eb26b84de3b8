"""REDIS_WAIT_REPLICAS: writes that must reach replicas before the product acts on them.

A Redis replica lags its master by a few writes; when Sentinel promotes it after the master
died, the newest writes are gone. The API can make a job's record reach replicas before it
answers 202, and a worker its claim on a call before it dials (a forgotten claim would let the
call be dialed again). A record lost anyway is rebuilt from its message
(`JobLifecycle.rebuild`).
"""

from __future__ import annotations

import redis.asyncio as aioredis

from ttsqueue.config import Settings
from ttsqueue.logs import get_logger
from ttsqueue.store.keys import Keys

log = get_logger("ttsqueue.store.replication")


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


async def claim_replicated(client: aioredis.Redis, keys: Keys, settings: Settings) -> bool:
    """REDIS_WAIT_REPLICAS for a worker's claim on a call attempt, before it dials: False
    when too few replicas hold it in time (the caller must not dial: a failover now would
    forget that the call was placed, and it would be dialed again)."""
    wanted = settings.REDIS_WAIT_REPLICAS
    if not wanted:
        return True
    acked = await wait_replicated(client, keys, wanted, settings.REDIS_WAIT_TIMEOUT_MS)
    if acked < wanted:
        log.warning("call claim not on enough replicas: not dialing yet", replicas=acked)
        return False
    return True
