"""Each worker's dialer state in Redis, so that the API can report `asterisk` truthfully.

Every real dialer (ami, callfile) writes `{backend, state, beat, error}` under its worker id
every couple of seconds and on every change. A report older than `STALE_S` belongs to a worker
that is gone and is ignored (and pruned by the next writer).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import orjson
import redis.asyncio as aioredis

from ttsqueue.store.keys import Keys

log = logging.getLogger("ttsqueue.dialer")

BEAT_S = 2.0
STALE_S = 6.0
FORGET_S = 3600.0


@dataclass(frozen=True, slots=True)
class PresenceReport:
    worker_id: str
    backend: str
    state: str  # a DialerHealth value
    beat: float
    error: str | None = None


class DialerPresence:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._key = keys.dialer_presence

    async def publish(self, report: PresenceReport) -> None:
        await self._redis.hset(self._key, report.worker_id, orjson.dumps(asdict(report)))

    async def remove(self, worker_id: str) -> None:
        await self._redis.hdel(self._key, worker_id)

    async def alive(self, now: float | None = None) -> list[PresenceReport]:
        now = time.time() if now is None else now
        raw: dict[str, str] = await self._redis.hgetall(self._key)  # type: ignore[assignment]
        reports: list[PresenceReport] = []
        forgotten: list[str] = []
        for worker_id, value in raw.items():
            try:
                report = PresenceReport(**orjson.loads(value))
            except (orjson.JSONDecodeError, TypeError):
                forgotten.append(worker_id)
                continue
            if report.beat >= now - STALE_S:
                reports.append(report)
            elif report.beat < now - FORGET_S:
                forgotten.append(worker_id)
        if forgotten:
            await self._redis.hdel(self._key, *forgotten)
        return reports


async def presence_loop(
    presence: DialerPresence,
    snapshot: Callable[[], PresenceReport],
    changed: asyncio.Event,
) -> None:
    """Publish `snapshot()` every BEAT_S seconds, and at once when `changed` is set."""
    while True:
        changed.clear()
        try:
            await presence.publish(snapshot())
        except Exception as exc:  # Redis blip: the next beat tries again
            log.warning("dialer presence not published: %r", exc)
        _end_if_cancelled()
        try:
            async with asyncio.timeout(BEAT_S):
                await changed.wait()
        except TimeoutError:
            pass


def _end_if_cancelled() -> None:
    """redis-py's asyncio client can swallow a task's cancellation that lands mid-command
    (redis/redis-py#2028; measured with 8.1: a dialer's aclose() then waited forever for this
    loop). The task still knows it was cancelled: end it."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
