"""Whether writes survived a Redis master switch, for the writes a process acts on.

Sentinel promotes a replica with `REPLICAOF NO ONE` and only then reconfigures the old master
(on `SENTINEL FAILOVER` it keeps accepting writes for ~10 s; after a network cut for as long as
the cut lasts). Writes that reach it meanwhile are replicated to nobody who survives, and are
erased when it resynchronises from the new master. A client cannot see this from the old
master itself, which still answers as a master.

The fence asks the Sentinels instead. The Sentinel leading a failover flags the master
`failover_in_progress` before it promotes anything and keeps the flag until the new master
is in place; the others name the new master once it is. So when, after a write, every
Sentinel that answers (a majority of them at least) names the master the write went to and
none is failing it over, no replica had been promoted when the write was made: it is in
that master's history. Otherwise the caller must make its writes again on the new master
(`settle` waits for it) before it acts on them: acks a message, answers 202.

A process that is given no Sentinels (REDIS_URL only) has nothing to fence: `holds` is true.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from ttsqueue.errors import StoreUnavailableError
from ttsqueue.logs import get_logger
from ttsqueue.store.connection import BlockingSentinelPool, SentinelStoreClient

log = get_logger("ttsqueue.store.fence")

# How long `settle` waits for the Sentinels to agree on a master after a switch (a failover
# normally completes in a few seconds; failover-timeout bounds a stuck one).
SETTLE_TIMEOUT_S = 60.0
SETTLE_POLL_S = 0.2
# A Sentinel that did not answer is not waited for again this long (each ask would otherwise
# cost every ack up to its timeout); a majority must still answer.
QUIET_S = 5.0

Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Stamp:
    """The master a process writes to, taken before the writes: its address and how many
    switches the process's pool has seen."""

    address: Address | None
    switches: int


@dataclass(frozen=True, slots=True)
class _View:
    address: Address
    failing_over: bool


class MasterFence:
    """The fence of one client (see the module's docstring); stateless, cheap to make."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client if isinstance(client, SentinelStoreClient) else None

    @property
    def watched(self) -> bool:
        """Whether the client follows Sentinels (a fence can fail)."""
        return self._client is not None

    def stamp(self) -> Stamp:
        pool = self._pool()
        if pool is None:
            return Stamp(None, 0)
        address = pool.master_address
        return Stamp((str(address[0]), int(address[1])) if address else None, pool.switches)

    async def holds(self, stamp: Stamp) -> bool:
        """Whether every write made since `stamp` was taken went to a master that was still
        the master when this was asked (call it after the writes)."""
        pool = self._pool()
        if pool is None:
            return True
        if pool.switches != stamp.switches:
            return False
        # Stamped before the process's first connection: its first master is not a switch.
        address = stamp.address or self.stamp().address
        if address is None:
            return False
        views = await self._views()
        if not _majority(views, len(self._sentinels())):
            return False
        return all(v.address == address and not v.failing_over for v in views)

    async def settle(self, timeout_s: float = SETTLE_TIMEOUT_S) -> Stamp:
        """Wait until the Sentinels agree on a master that no failover is moving and this
        process talks to it; its stamp. StoreUnavailableError when that takes `timeout_s`."""
        pool = self._pool()
        if pool is None:
            return Stamp(None, 0)
        deadline = time.monotonic() + timeout_s
        while True:
            views = await self._views()
            agreed = {v.address for v in views}
            if (
                _majority(views, len(self._sentinels()))
                and len(agreed) == 1
                and not any(v.failing_over for v in views)
            ):
                try:
                    address = await pool.get_master_address()
                    role = await self._client_role()
                except Exception as exc:  # the new master not reachable yet: ask again
                    log.info("redis master not settled yet", error=repr(exc))
                else:
                    if (str(address[0]), int(address[1])) in agreed and role == "master":
                        return self.stamp()
            if time.monotonic() >= deadline:
                raise StoreUnavailableError("the Sentinels did not settle on a Redis master")
            await asyncio.sleep(SETTLE_POLL_S)

    def _pool(self) -> BlockingSentinelPool | None:
        if self._client is None:
            return None
        pool = self._client.connection_pool
        return pool if isinstance(pool, BlockingSentinelPool) else None

    def _sentinels(self) -> tuple[aioredis.Redis, ...]:
        return self._client.sentinels if self._client is not None else ()

    async def _client_role(self) -> str:
        assert self._client is not None
        reply: Any = await self._client.execute_command("ROLE")
        return str(reply[0])

    async def _views(self) -> list[_View]:
        """What each Sentinel that answers says of the master (unanswered ones left out)."""
        client = self._client
        assert client is not None
        now = time.monotonic()
        asked = [s for s in self._sentinels() if client.sentinel_quiet.get(id(s), 0.0) <= now]
        replies = await asyncio.gather(
            *(sentinel.sentinel_master(client.master_name) for sentinel in asked),
            return_exceptions=True,
        )
        views = []
        for sentinel, reply in zip(asked, replies, strict=True):
            if isinstance(reply, BaseException) or not isinstance(reply, dict):
                client.sentinel_quiet[id(sentinel)] = now + QUIET_S
                continue
            flags = reply.get("flags", "")
            failing_over = "failover_in_progress" in (
                flags if isinstance(flags, (set, frozenset)) else str(flags).split(",")
            )
            views.append(_View((str(reply["ip"]), int(reply["port"])), failing_over))
        return views


def _majority(views: list[_View], sentinels: int) -> bool:
    return len(views) >= sentinels // 2 + 1
