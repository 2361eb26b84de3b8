"""Accepting a call request: the job record first, then the confirmed publish (SPEC §2).

The request path is one Redis call (the do-not-call check, the idempotency key and the record
with its indexes, in one script) and one publish that RabbitMQ confirms. A job is acknowledged
to the client only once RabbitMQ has confirmed its message and the record exists in Redis. If
the publish fails the record is removed again and the job marked refused, so nothing is left in
a non-terminal state, or dialed from the copy its message carries, for a job the client was
told failed. Until the confirm is recorded the job sits in the unconfirmed set and its
Idempotency-Key is "pending" (a repeat waits for it, then gets the job, or 409
`idempotency_in_progress`). That record is written after the response, off its path: if this
process dies before it is, the workers' sweeper confirms the job once a worker has started it,
and fails a job that no message ever reached, never dialed, freeing the key
(worker/sweeper.py). Behind Sentinels, the 202 also waits for the fence (api/kept.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import orjson

from ttsqueue.api.context import ApiContext
from ttsqueue.api.errors import ApiError
from ttsqueue.api.kept import ensure_kept, master_stamp
from ttsqueue.api.schemas import ValidatedCall
from ttsqueue.broker.delays import DelayQueues
from ttsqueue.broker.job_messages import send_first_message
from ttsqueue.domain import Job, JobStatus, iso, utcnow
from ttsqueue.errors import BrokerUnavailableError, StoreUnavailableError
from ttsqueue.logs import get_logger
from ttsqueue.policy.gate import CallingPolicy
from ttsqueue.store.lifecycle import CreateResult, IdempotencyClaim
from ttsqueue.store.replication import wait_replicated

log = get_logger("ttsqueue.api")

# How long a repeated Idempotency-Key waits for the first request's confirm before 409.
PENDING_WAIT_S = 5.0
PENDING_POLL_S = 0.05
# A send_at closer than this to now is treated as "now".
SCHEDULE_THRESHOLD = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Submitted:
    job: Job
    created: bool


def idempotency_claim(key: str, body: dict[str, object], scope: str = "") -> IdempotencyClaim:
    key_digest = hashlib.sha256(f"{scope}\x00{key}".encode()).hexdigest()
    try:
        canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # an unvalidated batch item (integers beyond 64 bits)
        canonical = json.dumps(body, sort_keys=True, default=repr).encode()
    body_digest = hashlib.sha256(canonical).hexdigest()
    return IdempotencyClaim(key_digest=key_digest, body_digest=body_digest)


def build_job(
    call: ValidatedCall, policy: CallingPolicy | None = None, campaign_id: str | None = None
) -> Job:
    """The job record of a validated call; `scheduled` until `send_at`, or until the callee's
    calling window opens when it is closed then (SPEC §13: held, never refused)."""
    now = utcnow()
    due = call.send_at
    if due is not None and due - now <= SCHEDULE_THRESHOLD:
        due = None
    if policy is not None:
        wait = policy.hold_until(call.phone.e164, call.policy, due)
        if wait is not None and wait.at - now > SCHEDULE_THRESHOLD:
            due = wait.at
    stamp = iso(now) or ""
    return Job(
        job_id=str(uuid.uuid4()),
        status=JobStatus.SCHEDULED if due is not None else JobStatus.QUEUED,
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
        confirm=call.confirm,
        machine_detection=call.machine_detection,
        retry_unconfirmed=call.retry_unconfirmed,
        created_at=stamp,
        updated_at=stamp,
        scheduled_for=iso(due),
        calling_windows=call.policy.calling_windows,
        timezone=call.policy.timezone,
        ignore_calling_windows=call.policy.ignore_calling_windows,
        campaign_id=campaign_id,
    )


def do_not_call_error(e164: str) -> ApiError:
    """409 `do_not_call` for a number on the do-not-call list (SPEC §13)."""
    return ApiError(
        409,
        "do_not_call",
        f"phone_number: {e164} is on the do-not-call list",
        details=[
            {
                "loc": ["body", "phone_number"],
                "field": "phone_number",
                "message": "on the do-not-call list",
            }
        ],
    )


async def submit(
    ctx: ApiContext, call: ValidatedCall, claim: IdempotencyClaim | None = None
) -> Submitted:
    job = build_job(call, ctx.policy)
    stamp = master_stamp(ctx)
    created = await _create(ctx, job, claim)
    if created.listed:
        raise do_not_call_error(call.phone.e164)
    if not created.created:
        return await _existing(ctx, created, claim)
    if not await _replicated(ctx, job):
        await ctx.lifecycle.discard(job.job_id, claim=claim)
        raise StoreUnavailableError("the job record did not reach REDIS_WAIT_REPLICAS replicas")
    try:
        await send_first_message(ctx.publisher, DelayQueues.of(ctx.settings), job)
    except BrokerUnavailableError:
        # The publish may have reached RabbitMQ unconfirmed: discarding marks the job refused,
        # so that its message does not bring it back from the copy it carries.
        await ctx.lifecycle.discard(job.job_id, claim=claim)
        raise
    # The job is queued and durable: accepted. Recording that is not on the response's path
    # (a failure leaves the key pending until the sweeper confirms it).
    ctx.lifecycle.confirm_later(job.job_id, claim.key_digest if claim else None)
    await ensure_kept(ctx, job, claim, stamp)
    return Submitted(job, True)


async def _replicated(ctx: ApiContext, job: Job) -> bool:
    """REDIS_WAIT_REPLICAS: whether the record reached that many replicas within
    REDIS_WAIT_TIMEOUT_MS (always, when 0). Short of it the job is refused (503): a 202 must
    survive the loss of the master."""
    wanted = ctx.settings.REDIS_WAIT_REPLICAS
    if not wanted:
        return True
    acked = await wait_replicated(
        ctx.store.client, ctx.store.keys, wanted, ctx.settings.REDIS_WAIT_TIMEOUT_MS
    )
    if acked < wanted:
        log.warning("job record not on enough replicas: refused", job_id=job.job_id, replicas=acked)
        return False
    return True


async def _create(ctx: ApiContext, job: Job, claim: IdempotencyClaim | None) -> CreateResult:
    """Create the record; a repeat of a request still waiting for its confirm waits with it
    (briefly): it then gets that job, or creates its own if the first one failed."""
    deadline = time.monotonic() + PENDING_WAIT_S
    while True:
        created = await ctx.lifecycle.create(job, claim=claim, refuse_listed=True)
        if created.created or not created.pending or time.monotonic() >= deadline:
            return created
        await asyncio.sleep(PENDING_POLL_S)


async def _existing(
    ctx: ApiContext, created: CreateResult, claim: IdempotencyClaim | None
) -> Submitted:
    if claim is not None and created.original_body_digest != claim.body_digest:
        raise ApiError(
            409,
            "idempotency_conflict",
            "Idempotency-Key was already used with a different request body",
        )
    job = None if created.pending else await ctx.store.get(created.job_id)
    if job is None:
        raise ApiError(
            409,
            "idempotency_in_progress",
            "a request with this Idempotency-Key is still being accepted; retry shortly",
        )
    return Submitted(job, False)
