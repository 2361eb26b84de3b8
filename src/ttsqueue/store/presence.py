"""Each worker's dialer state in Redis: written by the dialers every couple of seconds and on
every change, read by the API (`/health`'s `asterisk`) and the dashboard.

A report is `{backend, state, beat, error}` under its worker id. A report older than `STALE_S`
belongs to a worker that is gone and is ignored (and pruned by the next reader).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import orjson
import redis.asyncio as aioredis

from ttsqueue.domain import DialerHealth
from ttsqueue.errors import StoreUnavailableError
from ttsqueue.store.keys import Keys

STALE_S = 6.0
FORGET_S = 3600.0


@dataclass(frozen=True, slots=True)
class PresenceReport:
    worker_id: str
    backend: str
    state: str  # a DialerHealth value
    beat: float
    error: str | None = None
    # Each Asterisk server's state as this worker sees it (name -> DialerHealth value).
    servers: dict[str, str] = field(default_factory=dict)


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

    async def server_health(self) -> dict[str, str]:
        """Each Asterisk server's state across live workers: connected when one worker's
        session to it is logged in, else disconnected; empty when no worker reports servers
        or Redis cannot tell."""
        try:
            reports = await self.alive()
        except StoreUnavailableError:
            return {}
        states: dict[str, str] = {}
        for report in reports:
            for name, state in report.servers.items():
                if states.get(name) != DialerHealth.CONNECTED.value:
                    states[name] = state
        return dict(sorted(states.items()))

    async def health(self, fallback: DialerHealth) -> DialerHealth:
        """`asterisk` for `/health`, from what live workers' dialers report: connected when one
        is (an AMI session logged in, a writable spool), disconnected when they all fail,
        `fallback` when no real dialer is running or Redis cannot tell."""
        try:
            reports = await self.alive()
        except StoreUnavailableError:
            return fallback
        if not reports:
            return fallback
        if any(r.state == DialerHealth.CONNECTED.value for r in reports):
            return DialerHealth.CONNECTED
        return DialerHealth.DISCONNECTED
