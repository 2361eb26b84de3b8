"""Small builders shared by tests."""

from __future__ import annotations

import uuid
from typing import Any

from ttsqueue.domain import Job, JobStatus, Priority, iso, utcnow


def make_job(
    *,
    status: JobStatus = JobStatus.QUEUED,
    priority: Priority = Priority.NORMAL,
    phone: str = "3005050149",
    text: str = "Hola, este es un mensaje de prueba.",
    max_retries: int = 2,
    retry_delay: int = 10,
    **extra: Any,
) -> Job:
    now = iso(utcnow()) or ""
    return Job(
        job_id=str(uuid.uuid4()),
        status=status,
        text=text,
        phone_number=phone,
        e164=f"+57{phone}",
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
