"""`GET /metrics` in the Prometheus text format, computed from Redis and RabbitMQ at scrape
time, so that one scrape of any API process covers every worker (SPEC §8).

The two sources fail apart: while RabbitMQ cannot be read, every Redis-fed series is still
served, the queue depths are left out and `ttsq_broker_up` is 0 (an absent series is what
Prometheus expects for "unknown", a made-up 0 would look like an empty queue). Only Redis
being down makes the scrape a 503, through the API's error mapping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from starlette.responses import Response

from ttsqueue.api.context import ApiContext, get_context
from ttsqueue.domain import CallOutcome, DialerHealth
from ttsqueue.logs import get_logger
from ttsqueue.store.lines import LineFigures, read_lines
from ttsqueue.store.metrics import END_TO_END, PROCESSING, Histogram, synthesis_histogram

router = APIRouter(tags=["system"])
log = get_logger("ttsqueue.api")

# A broker that is reconnecting can leave a read waiting; a scrape does not wait for it.
BROKER_READ_TIMEOUT_S = 2.0


class _Families:
    """A collector that yields families already computed for this scrape."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def _histogram(name: str, doc: str, data: Histogram, labels: dict[str, str]) -> Metric:
    family = HistogramMetricFamily(name, doc, labels=list(labels))
    buckets = [(repr(le), float(n)) for le, n in data.buckets] + [("+Inf", float(data.count))]
    family.add_metric(list(labels.values()), buckets, data.total)
    return family


async def _queue_depths(ctx: ApiContext) -> dict[str, int] | None:
    """Ready messages per queue, or None while RabbitMQ cannot be read. Never raises."""
    try:
        async with asyncio.timeout(BROKER_READ_TIMEOUT_S):
            return await ctx.inspector.depths()
    except Exception as exc:  # whatever the broker did, the Redis series are still served
        log.warning("metrics without queue depths", error=repr(exc))
        return None


def _broker_families(depths: dict[str, int] | None) -> list[Metric]:
    up = GaugeMetricFamily(
        "ttsq_broker_up",
        "1 when RabbitMQ answered this scrape's queue reads",
        value=0 if depths is None else 1,
    )
    if depths is None:
        return [up]
    queue = GaugeMetricFamily("ttsq_queue_depth", "Ready messages per queue", labels=["queue"])
    for label, depth in depths.items():
        queue.add_metric([label], depth)
    return [up, queue]


async def _families(ctx: ApiContext) -> list[Metric]:
    depths_read = asyncio.create_task(_queue_depths(ctx))
    try:
        families = await _redis_families(ctx)
    except BaseException:
        depths_read.cancel()
        raise
    return [*families, *_broker_families(await depths_read)]


async def _redis_families(ctx: ApiContext) -> list[Metric]:
    engines = sorted(ctx.languages)
    snapshot, workers, cache, (_, by_status), lines, outcomes = await asyncio.gather(
        ctx.metrics.snapshot(engines),
        ctx.registry.alive(),
        ctx.redis.hgetall(ctx.store.keys.cache_stats),
        ctx.store.counts_by_status(),
        read_lines(
            ctx.redis, ctx.store.keys, ctx.settings.asterisk_servers, ctx.dialer_health.value
        ),
        ctx.redis.hgetall(ctx.store.keys.outcomes),
    )
    submitted = CounterMetricFamily(
        "ttsq_jobs_submitted", "Jobs accepted by the API", labels=["priority"]
    )
    for priority in ("normal", "high"):
        submitted.add_metric([priority], snapshot.submitted.get(priority, 0))
    finished = CounterMetricFamily(
        "ttsq_jobs_finished", "Jobs that reached a terminal status", labels=["status", "outcome"]
    )
    for (status, outcome), count in sorted(snapshot.finished.items()):
        finished.add_metric([status, outcome], count)
    calls = CounterMetricFamily(
        "ttsq_calls", "Call attempts that ended, by outcome", labels=["outcome"]
    )
    for outcome in CallOutcome:
        calls.add_metric([outcome.value], int(outcomes.get(outcome.value, 0)))
    jobs = GaugeMetricFamily("ttsq_jobs", "Retained jobs by current status", labels=["status"])
    for status, count in by_status.items():
        jobs.add_metric([status], count)
    families: list[Metric] = [
        submitted,
        finished,
        calls,
        jobs,
        _histogram(
            "ttsq_job_processing_seconds",
            "From processing start to terminal status",
            snapshot.histograms[PROCESSING],
            {},
        ),
        _histogram(
            "ttsq_job_end_to_end_seconds",
            "From acceptance to terminal status",
            snapshot.histograms[END_TO_END],
            {},
        ),
        CounterMetricFamily(
            "ttsq_tts_cache_hits", "Speech served from the cache", value=int(cache.get("hits", 0))
        ),
        CounterMetricFamily(
            "ttsq_tts_cache_misses",
            "Speech that had to be synthesized",
            value=int(cache.get("misses", 0)),
        ),
        GaugeMetricFamily(
            "ttsq_calls_active", "Live calls holding a trunk slot", value=lines.active
        ),
        GaugeMetricFamily(
            "ttsq_calls_limit",
            "MAX_CONCURRENT_CALLS (summed over ASTERISK_SERVERS)",
            value=lines.limit,
        ),
        *_line_families(lines),
        GaugeMetricFamily(
            "ttsq_workers_alive", "Workers with a live heartbeat", value=len(workers)
        ),
        # Each worker's breaker is its own (in memory); its heartbeat says when one is open.
        GaugeMetricFamily(
            "ttsq_tts_breaker_open",
            "Live workers whose speech engine is held off by an open circuit breaker",
            value=sum(1 for worker in workers if worker.tts == "degraded"),
        ),
    ]
    for engine in engines:
        families.append(
            _histogram(
                "ttsq_tts_synthesis_seconds",
                "Speech synthesis time by engine",
                snapshot.histograms[synthesis_histogram(engine)],
                {"engine": engine},
            )
        )
    return families


def _line_families(lines: LineFigures) -> list[Metric]:
    """Each Asterisk server's state and lines, and the line queue by priority."""
    up = GaugeMetricFamily(
        "ttsq_asterisk_up",
        "1 when a live worker's AMI session to the server is logged in",
        labels=["server"],
    )
    active = GaugeMetricFamily(
        "ttsq_asterisk_calls_active", "Live calls holding a line of the server", labels=["server"]
    )
    limit = GaugeMetricFamily(
        "ttsq_asterisk_calls_limit", "The server's max_concurrent_calls", labels=["server"]
    )
    for server in lines.servers:
        up.add_metric([server.name], 1 if server.state == DialerHealth.CONNECTED.value else 0)
        active.add_metric([server.name], server.active)
        limit.add_metric([server.name], server.limit)
    waiting = GaugeMetricFamily(
        "ttsq_line_waiters", "Prepared calls waiting for a trunk line", labels=["priority"]
    )
    for priority, count in lines.waiting.items():
        waiting.add_metric([priority], count)
    return [up, active, limit, waiting]


@router.get("/metrics", include_in_schema=False)
async def metrics(ctx: Annotated[ApiContext, Depends(get_context)]) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(await _families(ctx)))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
