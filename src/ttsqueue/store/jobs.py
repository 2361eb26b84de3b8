"""Reading job records: one job, its history, listings and counts (writes: lifecycle.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from ttsqueue.domain import (
    HistoryEntry,
    Job,
    JobStatus,
    Priority,
)
from ttsqueue.store.keys import Keys
from ttsqueue.store.lifecycle import IDEMPOTENCY_FIELD


@dataclass(frozen=True, slots=True)
class PageCursor:
    """Where a page of a job listing ends: the last job's creation time and id."""

    score_ms: int
    job_id: str

    def encode(self) -> str:
        return f"{self.score_ms}-{self.job_id}"

    @classmethod
    def decode(cls, text: str) -> PageCursor:
        """Parse `encode`'s form; ValueError when it is not one."""
        score, sep, job_id = text.partition("-")
        if not sep or not score.isdigit() or not job_id or len(text) > 80:
            raise ValueError("not a listing cursor")
        return cls(int(score), job_id)


def claimed_at(claim: str) -> float:
    """Epoch seconds an attempt claim (`<owner>@<epoch>`) records, or now if unknown."""
    try:
        return float(claim.rsplit("@", 1)[1])
    except (IndexError, ValueError):
        return time.time()


class JobStore:
    def __init__(self, client: aioredis.Redis, keys: Keys, ttl_seconds: int) -> None:
        self.client = client
        self.keys = keys
        self.ttl_seconds = ttl_seconds

    # Reads ---------------------------------------------------------------------------------
    async def get(self, job_id: str) -> Job | None:
        raw: dict[str, str] = await self.client.hgetall(self.keys.job(job_id))  # type: ignore[assignment]
        return Job.from_redis(raw) if raw else None

    async def get_status(self, job_id: str) -> JobStatus | None:
        raw = await self.client.hget(self.keys.job(job_id), "status")
        return JobStatus(str(raw)) if raw else None

    async def unconfirmed_before(self, created_ms: int, limit: int = 500) -> list[str]:
        """Jobs created before `created_ms` whose first message was never confirmed."""
        ids = await self.client.zrangebyscore(
            self.keys.unconfirmed, "-inf", created_ms, start=0, num=limit
        )
        return [str(job_id) for job_id in ids]

    async def idempotency_digest(self, job_id: str) -> str | None:
        """The digest of the Idempotency-Key the job was accepted with, if any."""
        raw = await self.client.hget(self.keys.job(job_id), IDEMPOTENCY_FIELD)
        return str(raw) if raw else None

    async def history(self, job_id: str) -> list[HistoryEntry]:
        rows = await self.client.lrange(self.keys.history(job_id), 0, -1)
        return [HistoryEntry.model_validate_json(row) for row in rows]

    async def get_many(self, job_ids: list[str]) -> list[Job]:
        async with self.client.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hgetall(self.keys.job(job_id))
            rows = await pipe.execute()
        return [Job.from_redis(row) for row in rows if row]

    async def list_recent(
        self,
        *,
        status: JobStatus | None = None,
        priority: Priority | None = None,
        limit: int = 50,
        after: PageCursor | None = None,
    ) -> tuple[list[Job], PageCursor | None]:
        """Newest first; returns the jobs and the cursor of the next page (None at the end)."""
        if status is not None and priority is not None:
            key = self.keys.status_priority_index(status, priority)
        elif status is not None:
            key = self.keys.status_index(status)
        elif priority is not None:
            key = self.keys.priority_index(priority)
        else:
            key = self.keys.index
        rows = await self._page_rows(key, limit + 1, after)
        page = rows[:limit]
        jobs = await self.get_many([member for member, _ in page])
        more = len(rows) > limit
        cursor = PageCursor(int(page[-1][1]), page[-1][0]) if page and more else None
        return jobs, cursor

    async def _page_rows(
        self, key: str, count: int, after: PageCursor | None
    ) -> list[tuple[str, float]]:
        """Up to `count` (member, score) rows of `key` after `after`, newest first.

        Several jobs can share a creation millisecond; rows of equal score come in descending
        member order, so the page resumes after the cursor's member within its score.
        """
        if after is None:
            first: list[tuple[str, float]] = await self.client.zrevrangebyscore(  # type: ignore[assignment]
                key, "+inf", "-inf", start=0, num=count, withscores=True
            )
            return first
        same = int(await self.client.zcount(key, after.score_ms, after.score_ms))
        rows: list[tuple[str, float]] = await self.client.zrevrangebyscore(  # type: ignore[assignment]
            key, after.score_ms, "-inf", start=0, num=count + same, withscores=True
        )
        kept = [
            (member, score)
            for member, score in rows
            if score < after.score_ms or member < after.job_id
        ]
        return kept[:count]

    async def counts_by_status(self) -> tuple[int, dict[str, int]]:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.zcard(self.keys.index)
            for status in JobStatus:
                pipe.zcard(self.keys.status_index(status))
            replies = await pipe.execute()
        by_status = {status.value: int(n) for status, n in zip(JobStatus, replies[1:], strict=True)}
        return int(replies[0]), by_status

    # Deliveries and attempts -------------------------------------------------------------
    async def attempt_placed(self, job_id: str, attempt: int) -> bool:
        """Whether the attempt's call was claimed (and so may be under way)."""
        return bool(await self.client.exists(self.keys.attempt(job_id, attempt)))

    async def forget_deliveries(self, job_id: str, counter: tuple[int, int]) -> None:
        """A delivery that ended normally (the job held back, nothing dialed) does not count
        towards MAX_DELIVERIES."""
        await self.client.delete(self.keys.deliveries(job_id, *counter))
