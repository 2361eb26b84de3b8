"""`GET /metrics` in the Prometheus text format, computed from Redis and RabbitMQ at scrape
time, so that one scrape of any API process covers every worker (SPEC §8)."""

from __future__ import annotations

import asyncio
import time
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
from ttsqueue.store.metrics import END_TO_END, PROCESSING, Histogram, synthesis_histogram

router = APIRouter(tags=["system"])


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


async def _families(ctx: ApiContext) -> list[Metric]:
    engines = sorted(ctx.languages)
    snapshot, depths, workers, cache, (_, by_status) = await asyncio.gather(
        ctx.metrics.snapshot(engines),
        ctx.inspector.depths(),
        ctx.registry.alive(),
        ctx.redis.hgetall(ctx.store.keys.cache_stats),
        ctx.store.counts_by_status(),
    )
    active = await ctx.redis.zcount(ctx.store.keys.call_slots, int(time.time() * 1000), "+inf")
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
    jobs = GaugeMetricFamily("ttsq_jobs", "Retained jobs by current status", labels=["status"])
    for status, count in by_status.items():
        jobs.add_metric([status], count)
    queue = GaugeMetricFamily("ttsq_queue_depth", "Ready messages per queue", labels=["queue"])
    for label, depth in depths.items():
        queue.add_metric([label], depth)
    families: list[Metric] = [
        submitted,
        finished,
        jobs,
        queue,
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
        GaugeMetricFamily("ttsq_calls_active", "Live calls holding a trunk slot", value=active),
        GaugeMetricFamily(
            "ttsq_calls_limit", "MAX_CONCURRENT_CALLS", value=ctx.settings.MAX_CONCURRENT_CALLS
        ),
        GaugeMetricFamily(
            "ttsq_workers_alive", "Workers with a live heartbeat", value=len(workers)
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


@router.get("/metrics", include_in_schema=False)
async def metrics(ctx: Annotated[ApiContext, Depends(get_context)]) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(await _families(ctx)))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
