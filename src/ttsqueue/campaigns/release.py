"""A campaign row becomes an ordinary job (`campaign_id` on it): same record, same first
message, same calling policy as a call submitted alone."""

from __future__ import annotations

from datetime import datetime

from ttsqueue.broker.delays import DelayQueues
from ttsqueue.broker.job_messages import send_first_message
from ttsqueue.broker.publisher import Publisher
from ttsqueue.campaigns.spec import CampaignSpec, StoredRow, row_job_id
from ttsqueue.domain import Job, JobStatus, Priority, iso, utcnow
from ttsqueue.policy.gate import CallingPolicy
from ttsqueue.policy.rules import JobPolicy
from ttsqueue.store.jobs import JobStore


def job_for_row(
    spec: CampaignSpec, index: int, row: StoredRow, policy: CallingPolicy, now: datetime
) -> Job:
    job_policy = JobPolicy(spec.calling_windows, spec.timezone)
    wait = policy.hold_until(row.e164, job_policy, now)
    stamp = iso(now) or ""
    return Job(
        job_id=row_job_id(spec.campaign_id, index),
        status=JobStatus.SCHEDULED if wait is not None else JobStatus.QUEUED,
        text=row.text,
        phone_number=row.national,
        e164=row.e164,
        dial_number=row.national,
        language=spec.language,
        engine=spec.engine,
        voice=spec.voice,
        priority=Priority.NORMAL,
        max_retries=spec.max_retries,
        retry_delay=spec.retry_delay,
        caller_id=spec.caller_id,
        metadata={"campaign": spec.name, "campaign_line": row.position},
        created_at=stamp,
        updated_at=stamp,
        scheduled_for=iso(wait.at) if wait is not None else None,
        calling_windows=spec.calling_windows,
        timezone=spec.timezone,
        campaign_id=spec.campaign_id,
    )


async def release(
    store: JobStore,
    publisher: Publisher,
    delays: DelayQueues,
    policy: CallingPolicy,
    spec: CampaignSpec,
    index: int,
    row: StoredRow,
) -> Job:
    """Create the row's job and send its first message (confirmed). Releasing a row twice
    (a pacer died before recording the first time) creates nothing new; its second message
    is dropped by the worker like any duplicate."""
    job = job_for_row(spec, index, row, policy, utcnow())
    await store.create(job)
    await send_first_message(publisher, delays, job)
    await store.confirm(job.job_id)
    return job
