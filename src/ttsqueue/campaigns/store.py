"""Campaigns in Redis: the settings hash, the rows (a list, in file order), the state, the
release cursor, the jobs released and not yet finished, and the counts of finished ones.

Rows are released as jobs by a pacer (`campaigns.pacer`) a few at a time; a row's job id is
derived from the campaign and the row (`row_job_id`), so the jobs of a campaign are found
without an index. State changes are compare-and-set (Lua), like job transitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis

from ttsqueue.campaigns.spec import CampaignSpec, CampaignState, StoredRow
from ttsqueue.store.keys import Keys
from ttsqueue.store.scripts import load_script

ROWS_CHUNK = 5000
# A campaign is kept this long after its creation (its jobs are kept JOB_TTL_SECONDS each).
CAMPAIGN_TTL_S = 30 * 24 * 3600


@dataclass(frozen=True, slots=True)
class CampaignRecord:
    spec: CampaignSpec
    state: CampaignState
    released: int
    started_at: str | None
    finished_at: str | None
    next_release_ms: int

    @property
    def pending(self) -> int:
        """Rows not released yet."""
        return self.spec.total - self.released


class CampaignStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._move = load_script(redis, "campaign_state")
        self._count = load_script(redis, "campaign_count")
        self._release = load_script(redis, "campaign_release")

    async def create(
        self,
        spec: CampaignSpec,
        rows: Sequence[StoredRow],
        errors: Sequence[dict[str, object]],
        *,
        state: CampaignState,
        now_iso: str,
        now_ms: int,
    ) -> None:
        k = self.keys
        cid = spec.campaign_id
        record: dict[Any, str] = spec.to_fields()
        record.update(state=state.value, released="0", next_release_ms="0")
        if state is CampaignState.RUNNING:
            record["started_at"] = now_iso
        async with self.redis.pipeline(transaction=False) as pipe:
            for start in range(0, len(rows), ROWS_CHUNK):
                chunk = rows[start : start + ROWS_CHUNK]
                pipe.rpush(
                    k.campaign_rows(cid),
                    *(orjson.dumps([r.position, r.e164, r.national, r.text]) for r in chunk),
                )
            for start in range(0, len(errors), ROWS_CHUNK):
                pipe.rpush(
                    k.campaign_errors(cid),
                    *(orjson.dumps(e) for e in errors[start : start + ROWS_CHUNK]),
                )
            for key in (k.campaign_rows(cid), k.campaign_errors(cid)):
                pipe.expire(key, CAMPAIGN_TTL_S)
            pipe.hset(k.campaign(cid), mapping=record)
            pipe.expire(k.campaign(cid), CAMPAIGN_TTL_S)
            pipe.zadd(k.campaigns, {cid: now_ms})
            # Campaigns whose records have expired leave the index.
            pipe.zremrangebyscore(k.campaigns, "-inf", now_ms - CAMPAIGN_TTL_S * 1000)
            pipe.sadd(k.campaigns_active, cid)
            await pipe.execute()

    async def get(self, campaign_id: str) -> CampaignRecord | None:
        raw: dict[str, str] = await self.redis.hgetall(self.keys.campaign(campaign_id))  # type: ignore[assignment]
        return _record(raw)

    async def list_ids(self, limit: int) -> list[str]:
        return [str(i) for i in await self.redis.zrevrange(self.keys.campaigns, 0, limit - 1)]

    async def active_ids(self) -> list[str]:
        return sorted(str(i) for i in await self.redis.smembers(self.keys.campaigns_active))

    async def move(
        self,
        campaign_id: str,
        target: CampaignState,
        allowed: frozenset[CampaignState],
        *,
        at: str,
    ) -> CampaignState | None:
        """Compare-and-set of the state; the previous state when applied, else None."""
        reply = await self._move(
            keys=[self.keys.campaign(campaign_id), self.keys.campaigns_active],
            args=[campaign_id, ",".join(s.value for s in allowed), target.value, at],
        )
        applied, previous = int(reply[0]), str(reply[1])
        return CampaignState(previous) if applied else None

    async def rows(self, campaign_id: str, start: int, count: int) -> list[StoredRow]:
        if count <= 0:
            return []
        raw = await self.redis.lrange(
            self.keys.campaign_rows(campaign_id), start, start + count - 1
        )
        return [StoredRow(*orjson.loads(item)) for item in raw]

    async def errors(self, campaign_id: str) -> list[dict[str, object]]:
        raw = await self.redis.lrange(self.keys.campaign_errors(campaign_id), 0, -1)
        return [orjson.loads(item) for item in raw]

    async def mark_released(
        self, campaign_id: str, index: int, job_id: str, next_release_ms: int
    ) -> int:
        """Record row `index` as released, only while the campaign is running and the row is
        the next one: 1 recorded, 0 not running, -1 released already (by another pacer)."""
        k = self.keys
        reply = await self._release(
            keys=[k.campaign(campaign_id), k.campaign_inflight(campaign_id)],
            args=[index, job_id, next_release_ms, CAMPAIGN_TTL_S],
        )
        return int(reply)

    async def inflight(self, campaign_id: str) -> list[str]:
        return sorted(
            str(i) for i in await self.redis.smembers(self.keys.campaign_inflight(campaign_id))
        )

    async def count_finished(
        self, campaign_id: str, job_id: str, status: str, outcome: str | None, confirmed: bool
    ) -> None:
        """Move a finished job from in flight to the counts (once, whoever sees it)."""
        await self._count(
            keys=[self.keys.campaign_inflight(campaign_id), self.keys.campaign_counts(campaign_id)],
            args=[job_id, status, outcome or "", "1" if confirmed else "0", CAMPAIGN_TTL_S],
        )

    async def counts(self, campaign_id: str) -> dict[str, int]:
        raw = await self.redis.hgetall(self.keys.campaign_counts(campaign_id))
        return {str(k): int(v) for k, v in raw.items()}

    async def snapshot(self, campaign_id: str) -> Snapshot | None:
        """The record, the jobs in flight and the counts of finished ones, read at one
        instant: a row the pacer releases or a job it counts meanwhile is seen once."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.keys.campaign(campaign_id))
            pipe.smembers(self.keys.campaign_inflight(campaign_id))
            pipe.hgetall(self.keys.campaign_counts(campaign_id))
            fields, members, counts = await pipe.execute()
        record = _record(fields)
        if record is None:
            return None
        return Snapshot(
            record,
            sorted(str(i) for i in members),
            {str(k): int(v) for k, v in counts.items()},
        )

    async def finish(self, campaign_id: str, at: str) -> bool:
        """running -> completed once every row was released and every job finished."""
        return (
            await self.move(
                campaign_id, CampaignState.COMPLETED, frozenset({CampaignState.RUNNING}), at=at
            )
            is not None
        )

    async def retire(self, campaign_id: str) -> None:
        """Nothing left to pace or count."""
        await self.redis.srem(self.keys.campaigns_active, campaign_id)

    async def lock(self, campaign_id: str, owner: str, ttl_ms: int) -> bool:
        return bool(
            await self.redis.set(self.keys.campaign_lock(campaign_id), owner, nx=True, px=ttl_ms)
        )

    async def unlock(self, campaign_id: str, owner: str) -> None:
        key = self.keys.campaign_lock(campaign_id)
        if await self.redis.get(key) == owner:
            await self.redis.delete(key)


@dataclass(frozen=True, slots=True)
class Snapshot:
    record: CampaignRecord
    inflight: list[str]
    counts: dict[str, int]


def _record(raw: dict[str, str]) -> CampaignRecord | None:
    if not raw or "name" not in raw:
        return None
    return CampaignRecord(
        spec=CampaignSpec.from_fields(raw),
        state=CampaignState(raw["state"]),
        released=int(raw.get("released", 0)),
        started_at=raw.get("started_at"),
        finished_at=raw.get("finished_at"),
        next_release_ms=int(raw.get("next_release_ms", 0)),
    )
