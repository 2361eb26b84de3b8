"""The one way a process builds its store: the Redis client the settings name (REDIS_URL, or
the master the Sentinels of REDIS_SENTINELS name), and every Redis-backed part over that one
client and one `Keys`, for the API, the worker and the dashboard alike."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from ttsqueue.config import Settings
from ttsqueue.store.connection import StoreClient, connect_redis, connect_sentinel_master
from ttsqueue.store.dnc import DncList
from ttsqueue.store.jobs import JobStore
from ttsqueue.store.keys import Keys
from ttsqueue.store.lifecycle import JobLifecycle, ResultSink
from ttsqueue.store.metrics import MetricsStore
from ttsqueue.store.stats import StatsReader
from ttsqueue.store.workers import WorkerRegistry


@dataclass(frozen=True, slots=True)
class Store:
    """Everything the product keeps in Redis: reads, the job lifecycle, counters, workers."""

    client: aioredis.Redis
    keys: Keys
    jobs: JobStore
    lifecycle: JobLifecycle
    workers: WorkerRegistry
    stats: StatsReader
    metrics: MetricsStore
    dnc: DncList


def connect_store(settings: Settings, *, client_name: str) -> StoreClient:
    """The Redis of the settings: through the Sentinels when REDIS_SENTINELS is set, else
    REDIS_URL."""
    if settings.sentinels:
        return connect_sentinel_master(
            settings.sentinels,
            settings.REDIS_SENTINEL_MASTER,
            url=settings.REDIS_URL,
            client_name=client_name,
        )
    return connect_redis(settings.REDIS_URL, client_name=client_name)


def keys_for(settings: Settings) -> Keys:
    """The keys of the settings' REDIS_PREFIX: built here only, and handed to every part that
    names a Redis key (tests/unit/test_key_builder.py holds the rule)."""
    return Keys(settings.REDIS_PREFIX)


def build_store(
    client: aioredis.Redis, settings: Settings, *, results: ResultSink | None = None
) -> Store:
    """The store over `client` (see store/connection.py); `results` receives the audit
    message of every job that ends (the worker's and the API's publisher)."""
    keys = keys_for(settings)
    return Store(
        client=client,
        keys=keys,
        jobs=JobStore(client, keys, settings.JOB_TTL_SECONDS),
        lifecycle=JobLifecycle(client, keys, settings.JOB_TTL_SECONDS, results),
        workers=WorkerRegistry(client, keys),
        stats=StatsReader(client, keys),
        metrics=MetricsStore(client, keys),
        dnc=DncList(client, keys),
    )
