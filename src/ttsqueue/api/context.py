"""Resources of the API process, created in the lifespan and reached through `Depends`."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection
from fastapi import Request
from starlette.applications import Starlette

from ttsqueue.api.backpressure import BacklogGate
from ttsqueue.broker.publisher import Publisher
from ttsqueue.broker.topology import QueueInspector, QueueNames
from ttsqueue.config import Settings
from ttsqueue.domain import DialerHealth
from ttsqueue.policy.gate import CallingPolicy
from ttsqueue.store.dnc import DncList
from ttsqueue.store.fence import MasterFence
from ttsqueue.store.jobs import JobStore
from ttsqueue.store.lifecycle import JobLifecycle
from ttsqueue.store.metrics import MetricsStore
from ttsqueue.store.stats import StatsReader
from ttsqueue.store.workers import WorkerRegistry


@dataclass(slots=True)
class ApiContext:
    settings: Settings
    redis: aioredis.Redis
    broker: AbstractRobustConnection
    names: QueueNames
    store: JobStore
    lifecycle: JobLifecycle
    publisher: Publisher
    inspector: QueueInspector
    registry: WorkerRegistry
    stats: StatsReader
    languages: dict[str, set[str]]
    dialer_name: str
    dialer_health: DialerHealth
    gate: BacklogGate
    metrics: MetricsStore
    dnc: DncList
    policy: CallingPolicy
    # Built once: asking whether the client follows Sentinels costs an ABC check per call.
    fence: MasterFence


def context_of(request: Request) -> ApiContext:
    return context_of_app(request.app)


def context_of_app(app: Starlette) -> ApiContext:
    ctx: ApiContext = app.state.ctx
    return ctx


async def get_context(request: Request) -> ApiContext:
    # async: a plain function would be run in a thread pool on every request.
    return context_of(request)
