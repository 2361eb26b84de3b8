"""Job records in Redis: creation, compare-and-set transitions, reads and listings."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import redis.asyncio as aioredis

from ttsqueue.domain import (
    CallOutcome,
    HistoryEntry,
    Job,
    JobStatus,
    Priority,
    iso,
    sources_of,
    utcnow,
)
from ttsqueue.store.keys import Keys
from ttsqueue.store.metrics import Observation
from ttsqueue.store.scripts import Scripts

IDEMPOTENCY_TTL_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """An `Idempotency-Key` digest and the digest of the body it was sent with."""

    key_digest: str
    body_digest: str


@dataclass(frozen=True, slots=True)
class CreateResult:
    created: bool
    job_id: str
    # Set when the idempotency key was already used: the body digest it was first sent with.
    original_body_digest: str | None = None
    # The first request with that key is still waiting for RabbitMQ's confirm.
    pending: bool = False


# The job hash field naming its idempotency key digest (so the sweeper can confirm it).
IDEMPOTENCY_FIELD = "idempotency_key"


def idempotency_value(job_id: str, body_digest: str, *, pending: bool) -> str:
    value: dict[str, object] = {"job_id": job_id, "body": body_digest}
    if pending:
        value["pending"] = True
    return orjson.dumps(value).decode()


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


@dataclass(frozen=True, slots=True)
class TransitionResult:
    applied: bool
    previous: JobStatus | None


@dataclass(slots=True)
class Effects:
    """What changes together with a status (beyond status, history and indexes)."""

    set: dict[str, str] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)
    outcome: CallOutcome | None = None
    metrics: dict[str, int] = field(default_factory=dict)
    worker_id: str | None = None
    worker_incr: dict[str, int] = field(default_factory=dict)
    # Terminal transitions: the `<status>|<outcome>` counter and latency observations.
    finished: str | None = None
    observe: list[Observation] = field(default_factory=list)


class JobStore:
    def __init__(self, client: aioredis.Redis, prefix: str, ttl_seconds: int) -> None:
        self.client = client
        self.keys = Keys(prefix)
        self.ttl_seconds = ttl_seconds
        self._scripts = Scripts.register(client)

    # Creation -----------------------------------------------------------------------------
    async def create(self, job: Job, *, claim: IdempotencyClaim | None = None) -> CreateResult:
        k = self.keys
        created_ms = int(time.time() * 1000)
        entry = HistoryEntry(status=job.status, at=job.created_at, detail="accepted")
        idem_value = idempotency_value(job.job_id, claim.body_digest, pending=True) if claim else ""
        event = {
            "job_id": job.job_id,
            "status": job.status.value,
            "previous_status": None,
            "at": job.created_at,
        }
        flat: list[str] = []
        for name, value in job.to_redis().items():
            flat += [name, value]
        if claim:
            flat += [IDEMPOTENCY_FIELD, claim.key_digest]
        reply = await self._scripts.create_job(
            keys=[
                k.job(job.job_id),
                k.history(job.job_id),
                k.index,
                k.status_index(job.status),
                k.priority_index(job.priority),
                k.idempotency(claim.key_digest) if claim else k.idempotency("-"),
                k.status_priority_index(job.status, job.priority),
                k.expiry_index,
            ],
            args=[
                job.job_id,
                created_ms,
                self.record_ttl(job, created_ms / 1000),
                entry.model_dump_json(),
                idem_value,
                IDEMPOTENCY_TTL_S,
                k.events,
                orjson.dumps(event).decode(),
                k.prefix,
                job.priority.value,
                *flat,
            ],
        )
        if reply[0] == "duplicate":
            original = orjson.loads(reply[1])
            if original["job_id"] != job.job_id:
                return CreateResult(
                    False,
                    str(original["job_id"]),
                    str(original["body"]),
                    pending=bool(original.get("pending")),
                )
        # "created"; or "exists" / the key holding this very id: the script already ran for
        # this fresh UUID and its reply was lost before redis-py retried. Still created, so the
        # caller publishes the message instead of reporting a job that would never run.
        return CreateResult(True, job.job_id)

    def record_ttl(self, job: Job, now_s: float) -> int:
        """Seconds a new job's record is kept: JOB_TTL_SECONDS counted from when it is due,
        so that a call scheduled weeks ahead still has its record when its message arrives."""
        ahead = 0.0
        if job.scheduled_for:
            ahead = max(0.0, datetime.fromisoformat(job.scheduled_for).timestamp() - now_s)
        return self.ttl_seconds + math.ceil(ahead)

    async def confirm(self, job_id: str, idempotency_digest: str | None = None) -> bool:
        """The job's first message is confirmed by RabbitMQ: only now does its idempotency key
        lead to it. True when the job was still waiting for this."""
        key = self.keys.idempotency(idempotency_digest or "-")
        reply = await self._scripts.confirm_job(
            keys=[self.keys.unconfirmed, key], args=[job_id, "1" if idempotency_digest else "0"]
        )
        return bool(reply)

    async def unconfirmed_before(self, created_ms: int, limit: int = 500) -> list[str]:
        """Jobs created before `created_ms` whose first message was never confirmed."""
        ids = await self.client.zrangebyscore(
            self.keys.unconfirmed, "-inf", created_ms, start=0, num=limit
        )
        return [str(job_id) for job_id in ids]

    async def discard(self, job_id: str, *, claim: IdempotencyClaim | None = None) -> None:
        """Forget a job whose message never reached RabbitMQ."""
        k = self.keys
        await self._scripts.delete_job(
            keys=[
                k.job(job_id),
                k.history(job_id),
                k.index,
                k.idempotency(claim.key_digest) if claim else k.idempotency("-"),
            ],
            args=[k.prefix, job_id, "1" if claim else "0"],
        )

    # Transitions ---------------------------------------------------------------------------
    async def transition(
        self,
        job_id: str,
        target: JobStatus,
        *,
        detail: str | None = None,
        effects: Effects | None = None,
        expected: frozenset[JobStatus] | None = None,
    ) -> TransitionResult:
        """Move the job to `target` if its current status allows it (or is in `expected`)."""
        effects = effects or Effects()
        now = utcnow()
        at = iso(now) or ""
        allowed = expected if expected is not None else sources_of(target)
        payload: dict[str, Any] = {
            "set": {"updated_at": at, **effects.set},
            "event": {"job_id": job_id, "status": target.value, "at": at, "detail": detail},
        }
        if effects.delete:
            payload["del"] = effects.delete
        if effects.outcome is not None:
            payload["outcome"] = effects.outcome.value
        if effects.metrics:
            payload["metrics"] = effects.metrics
        if target.terminal:
            payload["minute"] = str(int(now.timestamp()) // 60)
        if effects.finished is not None:
            payload["finished"] = effects.finished
        if effects.observe:
            # No "bucket" above the last bound (JSON null would be truthy in Lua's cjson).
            payload["observe"] = [
                {"key": self.keys.histogram(o.name), "value": o.seconds}
                | ({"bucket": o.bucket} if o.bucket is not None else {})
                for o in effects.observe
            ]
        if effects.worker_id and effects.worker_incr:
            payload["worker"] = self.keys.worker_stats(effects.worker_id)
            payload["worker_incr"] = effects.worker_incr
        entry = HistoryEntry(status=target, at=at, detail=detail)
        reply = await self._scripts.transition(
            keys=[self.keys.job(job_id), self.keys.history(job_id)],
            args=[
                self.keys.prefix,
                job_id,
                ",".join(sorted(allowed)),
                target.value,
                entry.model_dump_json(),
                orjson.dumps(payload).decode(),
            ],
        )
        previous = JobStatus(reply[1]) if reply[1] else None
        return TransitionResult(bool(reply[0]), previous)

    async def update(self, job_id: str, fields: dict[str, str]) -> bool:
        """Set fields of an existing job without touching its status."""
        flat: list[str] = []
        for name, value in fields.items():
            flat += [name, value]
        return bool(await self._scripts.update_job(keys=[self.keys.job(job_id)], args=flat))

    # Reads ---------------------------------------------------------------------------------
    async def get(self, job_id: str) -> Job | None:
        raw: dict[str, str] = await self.client.hgetall(self.keys.job(job_id))  # type: ignore[assignment]
        return Job.from_redis(raw) if raw else None

    async def get_status(self, job_id: str) -> JobStatus | None:
        raw = await self.client.hget(self.keys.job(job_id), "status")
        return JobStatus(str(raw)) if raw else None

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

    # At-most-once dialing ------------------------------------------------------------------
    async def claim_attempt(self, job_id: str, attempt: int, owner: str) -> bool:
        """True exactly once per (job, attempt): the caller may originate that call."""
        key = self.keys.attempt(job_id, attempt)
        return bool(await self.client.set(key, owner, nx=True, ex=self.ttl_seconds))

    async def attempt_placed(self, job_id: str, attempt: int) -> bool:
        """Whether the attempt's call was claimed (and so may be under way)."""
        return bool(await self.client.exists(self.keys.attempt(job_id, attempt)))

    async def release_attempt(self, job_id: str, attempt: int) -> None:
        """Undo a claim whose call never reached the backend."""
        await self.client.delete(self.keys.attempt(job_id, attempt))

    async def attempt_claimed_at(self, job_id: str, attempt: int) -> float:
        """Epoch seconds recorded by the claim (`<owner>@<epoch>`), or now if unknown."""
        value = await self.client.get(self.keys.attempt(job_id, attempt))
        try:
            return float(str(value).rsplit("@", 1)[1])
        except (IndexError, ValueError):
            return time.time()

    async def load_for_delivery(
        self, job_id: str, counter: tuple[int, int] | None
    ) -> tuple[Job | None, int]:
        """The job, and how many times the message `counter` = (attempt, technical retry) has
        now been delivered (0 when `counter` is None: a delivery that is not counted)."""
        if counter is None:
            return await self.get(job_id), 0
        deliveries = self.keys.deliveries(job_id, *counter)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.job(job_id))
            pipe.incr(deliveries)
            pipe.expire(deliveries, self.ttl_seconds)
            raw, count, _ = await pipe.execute()
        return (Job.from_redis(raw) if raw else None), int(count)
