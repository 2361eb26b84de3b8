"""One picture of the system for the page: queues, workers, jobs, calls, cache, dialer.

RabbitMQ and Redis are read side by side; whichever is down is reported as such and its
last good figures are kept (marked stale), so the page never goes blank. Nothing here walks
all jobs: counts are ZCARDs, the recent list is one bounded page of an index.

Queues: ready messages and consumers come from passive declares (exact at this instant);
unacknowledged counts and rates from the management API when it answers, else they are
reported as unavailable (None), never estimated.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Any

from ttsqueue.backends import describe_dialer
from ttsqueue.broker.management import QueueFigures, QueueRates
from ttsqueue.campaigns.overview import recent_overviews
from ttsqueue.campaigns.store import CampaignStore
from ttsqueue.config import Settings
from ttsqueue.dashboard.broker_link import BrokerLink
from ttsqueue.dashboard.management_view import Figures, ManagementView
from ttsqueue.domain import Job, JobStatus, Priority, iso, utcnow
from ttsqueue.errors import BrokerUnavailableError, StoreUnavailableError
from ttsqueue.stats_snapshot import RedisFigures, StatsSources, read_redis_figures, redis_statistics
from ttsqueue.views.jobs import job_summary

RECENT_LIMIT = 25
CAMPAIGNS_SHOWN = 10
REDIS_TIMEOUT_S = 2.0
IDLE_QUEUE = QueueFigures(ready=0, unacked=0, consumers=0, rates=QueueRates(0.0, 0.0, 0.0))


@dataclass(frozen=True, slots=True)
class RecentFilter:
    status: JobStatus | None = None
    priority: Priority | None = None


def job_row(job: Job) -> dict[str, Any]:
    return {**job_summary(job), "worker_id": job.worker_id}


def queue_row(ready: int, consumers: int, figures: Figures | None, label: str) -> dict[str, Any]:
    """One queue for the page; `unacked` and `rates` are None without the management API."""
    row: dict[str, Any] = {"ready": ready, "consumers": consumers, "unacked": None, "rates": None}
    if figures is not None:
        # A queue the management API does not know (yet) holds nothing and moves nothing.
        found = figures.get(label) or IDLE_QUEUE
        row.update(unacked=found.unacked, rates=asdict(found.rates))
    return row


class SnapshotBuilder:
    def __init__(
        self,
        settings: Settings,
        sources: StatsSources,
        broker: BrokerLink,
        management: ManagementView,
    ) -> None:
        self.settings = settings
        self.sources = sources
        self.broker = broker
        self.management = management
        self.dialer_name, _ = describe_dialer(settings)
        self._figures: RedisFigures | None = None
        self._figures_at: str | None = None

    async def build(self) -> dict[str, Any]:
        (queues, managed), redis_up = await asyncio.gather(self._queues(), self._refresh_figures())
        fig = self._figures
        return {
            "at": iso(utcnow()),
            "health": {
                "redis": "up" if redis_up else "down",
                "rabbitmq": "up" if queues is not None else "down",
            },
            "stale_since": None if redis_up else self._figures_at,
            "queues": queues,
            "management": {"available": managed, "url": self.management.base_url},
            "in_flight": sum(len(w.current_jobs) for w in fig.workers) if fig else None,
            "statistics": redis_statistics(fig) if fig else None,
            "throughput": [[minute * 60_000, n] for minute, n in fig.metrics.per_minute]
            if fig
            else [],
            "dialer": {"name": self.dialer_name, "simulated": self.dialer_name == "simulator"},
            "limits": {"max_concurrent_calls": self.settings.call_limit},
            "campaigns": await self._campaigns() if redis_up else None,
        }

    async def _campaigns(self) -> list[dict[str, Any]] | None:
        """The most recent campaigns with their counts and progress (None: Redis trouble)."""
        store = CampaignStore(self.sources.redis, self.sources.store.keys)
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                return await recent_overviews(store, CAMPAIGNS_SHOWN)
        except (StoreUnavailableError, TimeoutError):
            return None

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
        except (StoreUnavailableError, TimeoutError):
            return False
        self._figures_at = iso(utcnow())
        return True

    async def _queues(self) -> tuple[dict[str, dict[str, Any]] | None, bool]:
        """The queue rows (None while RabbitMQ is down) and whether the management API answered."""
        figures, counts = await asyncio.gather(self.management.latest(), self._counts())
        if counts is None:
            return None, figures is not None
        rows = {
            label: queue_row(ready, consumers, figures, label)
            for label, (ready, consumers) in counts.items()
        }
        return rows, figures is not None

    async def _counts(self) -> dict[str, tuple[int, int]] | None:
        try:
            return await self.broker.counts()
        except BrokerUnavailableError:
            return None
