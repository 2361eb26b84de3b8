"""Small builders shared by tests."""

from __future__ import annotations

import uuid
from typing import Any

import redis.asyncio as aioredis

from ttsqueue.config import Settings
from ttsqueue.domain import AudioInfo, Job, JobStatus, Priority, iso, utcnow
from ttsqueue.store.jobs import JobStore
from ttsqueue.store.keys import Keys
from ttsqueue.store.lifecycle import JobLifecycle


def make_job(
    *,
    status: JobStatus = JobStatus.QUEUED,
    priority: Priority = Priority.NORMAL,
    phone: str = "3005050149",
    text: str = "Hola, este es un mensaje de prueba.",
    max_retries: int = 2,
    retry_delay: int = 10,
    e164: str | None = None,
    **extra: Any,
) -> Job:
    now = iso(utcnow()) or ""
    return Job(
        job_id=str(uuid.uuid4()),
        status=status,
        text=text,
        phone_number=phone,
        e164=e164 or f"+57{phone}",
        dial_number=phone,
        language="es",
        engine="espeak",
        priority=priority,
        max_retries=max_retries,
        retry_delay=retry_delay,
        created_at=now,
        updated_at=now,
        **extra,
    )


def lifecycle_of(client: aioredis.Redis, settings: Settings, **options: Any) -> JobLifecycle:
    """The job-state owner a process would build, on a test's client and prefix."""
    return JobLifecycle(client, Keys(settings.REDIS_PREFIX), settings.JOB_TTL_SECONDS, **options)


def lifecycle_for(store: JobStore) -> JobLifecycle:
    """The job-state owner over the same client, keys and retention as `store`."""
    return JobLifecycle(store.client, store.keys, store.ttl_seconds)


async def calling_job(lifecycle: JobLifecycle, worker_id: str) -> Job:
    """A new job taken by `worker_id` and moved to `calling` (its first attempt, simulated)."""
    job = make_job()
    await lifecycle.create(job)
    started = (await lifecycle.start(job, worker_id)).job
    return await lifecycle.mark_calling(
        started, 1, audio=AudioInfo(), backend="simulator", started_at=0.0, detail="placed"
    )
