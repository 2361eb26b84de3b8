"""What the worker hands the dialer: the call request names the audio it just prepared, and the
move to `calling` stores the same audio (a backend that plays a file needs its path)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aio_pika
from aio_pika.abc import AbstractRobustConnection

from tests.factories import lifecycle_of, make_job
from ttsqueue.broker.publisher import Publisher
from ttsqueue.broker.topology import QueueNames
from ttsqueue.config import Settings
from ttsqueue.dialer.base import CallRequest
from ttsqueue.dialer.simulator import SimulatorDialer
from ttsqueue.domain import JobMessage, JobStatus, Priority
from ttsqueue.store.factory import build_store
from ttsqueue.worker.main import build_context
from ttsqueue.worker.pipeline import JobHandler


class RecordingDialer(SimulatorDialer):
    """The simulator, keeping every request it was asked to originate."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.placed: list[CallRequest] = []

    async def originate(self, call: CallRequest) -> None:
        self.placed.append(call)
        await super().originate(call)


async def _get(queue: aio_pika.abc.AbstractQueue) -> aio_pika.abc.AbstractIncomingMessage:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        message = await queue.get(no_ack=False, fail=False)
        if message is not None:
            return message
        await asyncio.sleep(0.05)
    raise AssertionError("no message in the work queue")


async def test_the_dialer_gets_the_prepared_audio(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    publisher = Publisher(broker, names)
    ctx = await build_context(settings, redis_client, publisher)
    dialer = RecordingDialer(settings)
    ctx.dialer = dialer
    job = make_job()
    await lifecycle_of(redis_client, settings).create(job)
    await publisher.to_work_queue(names.calls, JobMessage(job_id=job.job_id).encode(), job.job_id)
    channel = await broker.channel()
    message = await _get(await channel.get_queue(names.calls))
    await JobHandler(ctx).handle(message, Priority.NORMAL)
    await channel.close()

    stored = await build_store(redis_client, settings).jobs.get(job.job_id)
    assert stored is not None
    assert stored.status is JobStatus.COMPLETED
    assert stored.audio.path is not None
    [call] = dialer.placed
    assert call.audio_path == stored.audio.path.removesuffix(".wav")
    assert await asyncio.to_thread(Path(call.audio_path + ".wav").is_file)
    assert call.audio_duration_s == stored.audio.duration_s
