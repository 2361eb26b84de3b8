"""Histograms in Redis: one write per observation, read back as Prometheus cumulative buckets."""

from __future__ import annotations

from datetime import datetime, timedelta

import redis.asyncio as aioredis

from tests.factories import calling_job, lifecycle_of
from ttsqueue.config import Settings
from ttsqueue.domain import CallInfo, CallOutcome, JobStatus
from ttsqueue.store.keys import Keys
from ttsqueue.store.metrics import (
    PROCESSING,
    SYNTHESIS_BUCKETS,
    MetricsStore,
    bucket_for,
    synthesis_histogram,
)


def test_each_value_falls_in_the_smallest_bound_at_or_above_it() -> None:
    assert bucket_for(0.0, SYNTHESIS_BUCKETS) == "0.01"
    assert bucket_for(0.01, SYNTHESIS_BUCKETS) == "0.01"
    assert bucket_for(0.011, SYNTHESIS_BUCKETS) == "0.025"
    assert bucket_for(99.0, SYNTHESIS_BUCKETS) is None


async def test_synthesis_observations_read_back_cumulative(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    metrics = MetricsStore(redis_client, Keys(settings.REDIS_PREFIX))
    for seconds in (0.005, 0.02, 0.02, 0.3, 42.0):
        await metrics.observe_synthesis("espeak", seconds)
    raw = await redis_client.hgetall(metrics.keys.histogram(synthesis_histogram("espeak")))
    # Stored per bucket, not cumulatively, and no separate count: two fields moved per
    # observation, its bucket's and the sum's.
    assert (raw["le:0.01"], raw["le:0.025"], raw["le:0.5"], raw["le:+Inf"]) == ("1", "2", "1", "1")
    assert set(raw) == {"le:0.01", "le:0.025", "le:0.5", "le:+Inf", "sum_us"}
    hist = (await metrics.snapshot(["espeak"])).histograms[synthesis_histogram("espeak")]
    cumulative = dict(hist.buckets)
    assert cumulative[0.01] == 1
    assert cumulative[0.025] == 3
    assert cumulative[0.25] == 3
    assert cumulative[0.5] == 4
    assert cumulative[10.0] == 4
    assert hist.count == 5
    assert abs(hist.total - 42.345) < 1e-9


async def test_terminal_transition_observes_in_its_atomic_step(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    lifecycle = lifecycle_of(redis_client, settings)
    metrics = MetricsStore(redis_client, Keys(settings.REDIS_PREFIX))
    answered = CallInfo(outcome=CallOutcome.ANSWERED)
    for seconds in (0.2, 7200.0):
        calling = await calling_job(lifecycle, "w")
        assert calling.processed_at is not None
        # The call ends `seconds` after processing started.
        ended = datetime.fromisoformat(calling.processed_at) + timedelta(seconds=seconds)
        at_end = lifecycle_of(redis_client, settings, now=lambda ended=ended: ended)
        done = await at_end.finish(
            calling, JobStatus.COMPLETED, answered, worker_id="w", detail="answered"
        )
        assert done.applied
    hist = (await metrics.snapshot([])).histograms[PROCESSING]
    cumulative = dict(hist.buckets)
    assert cumulative[0.1] == 0
    assert cumulative[0.25] == 1
    assert cumulative[3600.0] == 1  # 7200 s is counted only by +Inf (the count)
    raw = await redis_client.hgetall(metrics.keys.histogram(PROCESSING))
    assert (raw["le:0.25"], raw["le:+Inf"]) == ("1", "1")
    assert hist.count == 2
    # The sum, in whole microseconds, is exact: 0.2 s + 7200 s.
    assert hist.total == 7200.2


async def test_a_histogram_written_by_earlier_versions_still_counts(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    """Earlier versions counted a value in its bound's own field, in `count`, and in `sum` (a
    float, seconds); a histogram written by both forms, as during a rolling upgrade, reads
    back every observation of each."""
    metrics = MetricsStore(redis_client, Keys(settings.REDIS_PREFIX))
    key = metrics.keys.histogram(synthesis_histogram("espeak"))
    # 0.2 s and 0.1 s, then 60 s (above the last bound: in `count` only), the earlier way.
    await redis_client.hset(key, mapping={"0.25": 1, "0.1": 1, "count": 3, "sum": "60.3"})
    await metrics.observe_synthesis("espeak", 0.02)
    await metrics.observe_synthesis("espeak", 0.2)
    hist = (await metrics.snapshot(["espeak"])).histograms[synthesis_histogram("espeak")]
    cumulative = dict(hist.buckets)
    assert (cumulative[0.025], cumulative[0.1], cumulative[0.25], cumulative[10.0]) == (1, 2, 4, 4)
    assert hist.count == 5
    assert abs(hist.total - 60.52) < 1e-9
