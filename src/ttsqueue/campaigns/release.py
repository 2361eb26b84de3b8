"""A campaign row becomes an ordinary job (`campaign_id` on it): same record, same first
message, same calling policy as a call submitted alone."""

from __future__ import annotations

from datetime import datetime

from ttsqueue.broker.delays import DelayQueues
from ttsqueue.broker.job_messages import send_first_message
from ttsqueue.broker.publisher import Publisher
from ttsqueue.campaigns.spec import CampaignSpec, StoredRow, row_job_id
from ttsqueue.campaigns.store import CampaignStore
from ttsqueue.domain import (
    ConfirmOptions,
    Job,
    JobStatus,
    MachineDetection,
    Priority,
    iso,
    utcnow,
)
from ttsqueue.policy.gate import CallingPolicy
from ttsqueue.policy.rules import JobPolicy
from ttsqueue.store.jobs import JobStore
from ttsqueue.store.lifecycle import JobLifecycle


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
        confirm=ConfirmOptions.model_validate_json(spec.confirm) if spec.confirm else None,
        machine_detection=MachineDetection(spec.machine_detection),
        retry_unconfirmed=spec.retry_unconfirmed,
    )


async def release(
    store: JobStore,
    lifecycle: JobLifecycle,
    campaigns: CampaignStore,
    publisher: Publisher,
    delays: DelayQueues,
    policy: CallingPolicy,
    spec: CampaignSpec,
    index: int,
    row: StoredRow,
    next_release_ms: int,
) -> bool:
    """Release row `index` as a job, unless the campaign stopped running meanwhile.

    The record is created first (unconfirmed), the release recorded only while the campaign
    is running, and only then the message sent: a pause or cancel that lands in between
    leaves no job behind, and a pacer that dies after recording leaves an unconfirmed record
    that the sweeper sends. Releasing a row twice creates nothing new (its job id is derived
    from the row); a second message is dropped by the worker like any duplicate."""
    job = job_for_row(spec, index, row, policy, utcnow())
    await lifecycle.create(job)
    marked = await campaigns.mark_released(spec.campaign_id, index, job.job_id, next_release_ms)
    if marked == 0 and await store.client.zscore(store.keys.unconfirmed, job.job_id) is not None:
        # Paused or canceled meanwhile: the record was never sent; forget it, leaving nothing
        # that would stop the row's job being created when a resumed campaign releases it.
        await lifecycle.forget_unsent(job.job_id)
    if marked != 1:
        return False
    await send_first_message(publisher, delays, job)
    await lifecycle.confirm(job.job_id)
    return True
