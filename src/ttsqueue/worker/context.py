"""Everything a worker's pipeline needs, created at start-up and passed in (no globals)."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from ttsqueue.broker.publisher import Publisher
from ttsqueue.broker.topology import QueueNames
from ttsqueue.config import Settings
from ttsqueue.dialer.base import Dialer
from ttsqueue.policy.gate import CallingPolicy
from ttsqueue.store.jobs import JobStore
from ttsqueue.store.lifecycle import JobLifecycle
from ttsqueue.store.metrics import MetricsStore
from ttsqueue.store.workers import WorkerRegistry
from ttsqueue.tts.service import SpeechService
from ttsqueue.worker.trunk import TrunkGuard


@dataclass(slots=True)
class WorkerContext:
    settings: Settings
    redis: aioredis.Redis
    store: JobStore
    lifecycle: JobLifecycle
    workers: WorkerRegistry
    publisher: Publisher
    names: QueueNames
    speech: SpeechService
    dialer: Dialer
    trunk: TrunkGuard
    metrics: MetricsStore
    policy: CallingPolicy

    @property
    def worker_id(self) -> str:
        return self.settings.WORKER_ID
