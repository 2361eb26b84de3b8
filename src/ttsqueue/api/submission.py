"""Accepting a call request: the job record first, then the confirmed publish (SPEC §2).

A job is acknowledged to the client only once RabbitMQ has confirmed its message and the
record exists in Redis. If the publish fails the record is removed again, so nothing is left
in a non-terminal state for a job the client was told failed.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta

import orjson

from ttsqueue.api.context import ApiContext
from ttsqueue.api.errors import ApiError
from ttsqueue.api.schemas import ValidatedCall
from ttsqueue.broker.delays import DelayQueues, park
from ttsqueue.domain import Job, JobMessage, JobStatus, iso, utcnow
from ttsqueue.errors import BrokerUnavailableError
from ttsqueue.store.jobs import IdempotencyClaim

# A send_at closer than this to now is treated as "now".
SCHEDULE_THRESHOLD = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Submitted:
    job: Job
    created: bool


def idempotency_claim(key: str, body: dict[str, object], scope: str = "") -> IdempotencyClaim:
    key_digest = hashlib.sha256(f"{scope}\x00{key}".encode()).hexdigest()
    body_digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return IdempotencyClaim(key_digest=key_digest, body_digest=body_digest)


def build_job(call: ValidatedCall) -> Job:
    now = utcnow()
    scheduled = call.send_at is not None and call.send_at - now > SCHEDULE_THRESHOLD
    stamp = iso(now) or ""
    return Job(
        job_id=str(uuid.uuid4()),
        status=JobStatus.SCHEDULED if scheduled else JobStatus.QUEUED,
        text=call.text,
        phone_number=call.phone.national,
        e164=call.phone.e164,
        dial_number=call.phone.national,
        language=call.language,
        engine=call.engine,
        voice=call.voice,
        priority=call.priority,
        max_retries=call.max_retries,
        retry_delay=call.retry_delay,
        caller_id=call.caller_id,
        callback_url=call.callback_url,
        metadata=call.metadata,
        created_at=stamp,
        updated_at=stamp,
        scheduled_for=iso(call.send_at) if scheduled else None,
    )


async def submit(
    ctx: ApiContext, call: ValidatedCall, claim: IdempotencyClaim | None = None
) -> Submitted:
    job = build_job(call)
    created = await ctx.store.create(job, claim=claim)
    if not created.created:
        return await _existing(ctx, created.job_id, created.original_body_digest, claim)
    queue = ctx.names.work_queue(job.priority)
    message = JobMessage(job_id=job.job_id, attempt=1)
    try:
        if job.status is JobStatus.SCHEDULED and call.send_at is not None:
            message.not_before_ms = int(call.send_at.timestamp() * 1000)
            await park(ctx.publisher, queue, message, DelayQueues.of(ctx.settings))
        else:
            await ctx.publisher.to_work_queue(queue, message.encode(), job.job_id)
    except BrokerUnavailableError:
        await ctx.store.discard(job.job_id, claim=claim)
        raise
    return Submitted(job, True)


async def _existing(
    ctx: ApiContext, job_id: str, body_digest: str | None, claim: IdempotencyClaim | None
) -> Submitted:
    if claim is not None and body_digest != claim.body_digest:
        raise ApiError(
            409,
            "idempotency_conflict",
            "Idempotency-Key was already used with a different request body",
        )
    job = await ctx.store.get(job_id)
    if job is None:
        raise ApiError(
            409,
            "idempotency_in_progress",
            "a request with this Idempotency-Key is still being accepted; retry shortly",
        )
    return Submitted(job, False)
