"""One picture of the system for the page: queues, workers, jobs, calls, cache, dialer.

RabbitMQ and Redis are read side by side; whichever is down is reported as such and its
last good figures are kept (marked stale), so the page never goes blank. Nothing here walks
all jobs: counts are ZCARDs, the recent list is one bounded page of an index.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from ttsqueue.api.schemas import job_summary
from ttsqueue.config import Settings
from ttsqueue.dashboard.broker_link import BrokerLink
from ttsqueue.dialer.factory import describe_dialer
from ttsqueue.domain import Job, JobStatus, Priority, iso, utcnow
from ttsqueue.errors import BrokerUnavailableError
from ttsqueue.stats_snapshot import RedisFigures, StatsSources, read_redis_figures, redis_statistics
from ttsqueue.store.connection import REDIS_DOWN_ERRORS

RECENT_LIMIT = 25
REDIS_TIMEOUT_S = 2.0
RATE_WINDOW_S = 10.0


@dataclass(frozen=True, slots=True)
class RecentFilter:
    status: JobStatus | None = None
    priority: Priority | None = None


def job_row(job: Job) -> dict[str, Any]:
    return {**job_summary(job), "worker_id": job.worker_id}


class DepthRates:
    """Net change per second of each queue's ready count over the last few seconds."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self._seen: deque[tuple[float, dict[str, int]]] = deque()

    def add(self, now: float, ready: dict[str, int]) -> dict[str, float]:
        self._seen.append((now, ready))
        while len(self._seen) > 1 and now - self._seen[0][0] > self.window_s:
            self._seen.popleft()
        then, old = self._seen[0]
        elapsed = now - then
        if elapsed <= 0:
            return {label: 0.0 for label in ready}
        return {label: round((n - old.get(label, n)) / elapsed, 2) for label, n in ready.items()}


class SnapshotBuilder:
    def __init__(self, settings: Settings, sources: StatsSources, broker: BrokerLink) -> None:
        self.settings = settings
        self.sources = sources
        self.broker = broker
        self.rates = DepthRates()
        self.dialer_name, _ = describe_dialer(settings)
        self._figures: RedisFigures | None = None
        self._figures_at: str | None = None

    async def build(self) -> dict[str, Any]:
        queues, redis_up = await asyncio.gather(self._queues(), self._refresh_figures())
        fig = self._figures
        return {
            "at": iso(utcnow()),
            "health": {
                "redis": "up" if redis_up else "down",
                "rabbitmq": "up" if queues is not None else "down",
            },
            "stale_since": None if redis_up else self._figures_at,
            "queues": queues,
            "in_flight": sum(len(w.current_jobs) for w in fig.workers) if fig else None,
            "statistics": redis_statistics(fig, self.settings.MAX_CONCURRENT_CALLS)
            if fig
            else None,
            "throughput": [[minute * 60_000, n] for minute, n in fig.metrics.per_minute]
            if fig
            else [],
            "dialer": {"name": self.dialer_name, "simulated": self.dialer_name == "simulator"},
            "limits": {"max_concurrent_calls": self.settings.MAX_CONCURRENT_CALLS},
        }

    async def recent(self, flt: RecentFilter, limit: int = RECENT_LIMIT) -> list[dict[str, Any]]:
        """Newest jobs matching the filter; raises when Redis is down."""
        async with asyncio.timeout(REDIS_TIMEOUT_S):
            jobs, _ = await self.sources.store.list_recent(
                status=flt.status, priority=flt.priority, limit=limit
            )
        return [job_row(job) for job in jobs]

    async def _refresh_figures(self) -> bool:
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                self._figures = await read_redis_figures(self.sources)
        except REDIS_DOWN_ERRORS:  # TimeoutError is an OSError
            return False
        self._figures_at = iso(utcnow())
        return True

    async def _queues(self) -> dict[str, dict[str, Any]] | None:
        try:
            counts = await self.broker.counts()
        except BrokerUnavailableError:
            return None
        rates = self.rates.add(time.monotonic(), {k: ready for k, (ready, _) in counts.items()})
        return {
            label: {"ready": ready, "consumers": consumers, "rate_per_s": rates[label]}
            for label, (ready, consumers) in counts.items()
        }
