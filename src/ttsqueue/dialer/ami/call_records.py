"""Per-call records in Redis: what Asterisk reported about each of our AMI calls.

The worker that originates a call creates its record first; then every worker's AMI session
adds the facts it sees (only to records that exist, so foreign calls leave no keys, and only
fields not yet set, so duplicates from several sessions are harmless). Whichever worker follows
the call, the originating one or another after a crash and a redelivery, reads the same record.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import redis.asyncio as aioredis

from ttsqueue.store.keys import Keys
from ttsqueue.store.scripts import load_script


class CallRecords:
    def __init__(self, redis: aioredis.Redis, keys: Keys, ttl_s: int) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl_s = ttl_s
        self._record = load_script(redis, "call_record")

    async def create(self, call_id: str, fields: Mapping[str, str]) -> None:
        """A fresh record (an earlier one for the same id was a call never handed over)."""
        key = self._keys.call_record(call_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping=dict[Any, str](fields))
            pipe.expire(key, self._ttl_s)
            await pipe.execute()

    async def record(self, call_id: str, facts: Mapping[str, str]) -> bool:
        """Add first-seen facts; False when the call has no record (not ours)."""
        done = await self._record(keys=[self._keys.call_record(call_id)], args=_flat(facts))
        return bool(done)

    async def record_many(self, batch: Sequence[tuple[str, Mapping[str, str]]]) -> None:
        """`record` for each (call id, facts), in this order, in one pipeline (a call to
        `record` each, but one round trip); the first error is raised. Recording a fact again
        changes nothing, so a batch that failed part way may be sent again whole."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for call_id, facts in batch:
                await self._record(
                    keys=[self._keys.call_record(call_id)], args=_flat(facts), client=pipe
                )
            await pipe.execute()

    async def read(self, call_id: str) -> dict[str, str]:
        data: dict[str, str] = await self._redis.hgetall(self._keys.call_record(call_id))  # type: ignore[assignment]
        return data


def _flat(facts: Mapping[str, str]) -> list[str]:
    return [part for pair in facts.items() for part in pair]
