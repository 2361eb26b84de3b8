"""`POST /tts/calls`: up to 1000 calls in one request, one job each, errors per item.

Whatever fails while items are being queued (RabbitMQ, Redis), the answer reports each item:
a client never gets a bare 503 for a batch part of which was queued. With an Idempotency-Key,
item `i` is keyed `<key>#<i>`: a retried batch gets the same job ids back.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ttsqueue.api.access import presented_key
from ttsqueue.api.context import ApiContext, get_context
from ttsqueue.api.errors import (
    RETRY_AFTER_UNAVAILABLE,
    ApiError,
    FieldError,
    describe_validation_errors,
)
from ttsqueue.api.media import require_json_body
from ttsqueue.api.rate_limit import TOO_LARGE, RateLimiter
from ttsqueue.api.routes_calls import check_idempotency_key
from ttsqueue.api.schemas import (
    METADATA_MAX_BYTES,
    CallRequestIn,
    ValidatedCall,
    error_responses,
    validate_call_request,
)
from ttsqueue.api.submission import idempotency_claim, submit
from ttsqueue.logs import get_logger
from ttsqueue.store.lifecycle import IdempotencyClaim
from ttsqueue.views.http import JsonBody

log = get_logger("ttsqueue.api")

router = APIRouter(tags=["calls"], responses=error_responses(400, 401, 413, 422, 429, 503))

MAX_BATCH = 1000
# JSON bytes one character of `text` may take: UTF-8 needs up to 4.
TEXT_BYTES_PER_CHAR = 4
# Every other field of an item at its longest, ASCII, with the names and punctuation: the
# callback URL (up to 2048), caller id (128), voice (64), language (16), phone number (32),
# send_at, engine, priority, max_retries, retry_delay; about 2.5 KB, rounded up.
OTHER_FIELDS_BYTES = 3 * 1024
# `{"calls":[...]}` and whitespace around it.
ENVELOPE_BYTES = 1024


def batch_body_limit(max_text_length: int) -> int:
    """The largest body `POST /tts/calls` reads: MAX_BATCH items each at the SPEC's limits
    (text at MAX_TEXT_LENGTH characters of up to 4 bytes, metadata at 2 KB, the other fields
    at their longest). 9,121,024 bytes with the default MAX_TEXT_LENGTH of 1000; over it: 413."""
    item = TEXT_BYTES_PER_CHAR * max_text_length + METADATA_MAX_BYTES + OTHER_FIELDS_BYTES
    return MAX_BATCH * item + ENVELOPE_BYTES


def _item_error(index: int, code: str, message: str, details: Any = ()) -> dict[str, Any]:
    return {
        "index": index,
        "success": False,
        "code": code,
        "error": message,
        "details": list(details),
    }


def _validate(index: int, item: Any, ctx: ApiContext) -> ValidatedCall | dict[str, Any]:
    try:
        body = CallRequestIn.model_validate(item)
        return validate_call_request(body, ctx.settings, ctx.languages)
    except ValidationError as exc:
        message, details = describe_validation_errors(exc.errors())
        return _item_error(index, "validation_error", message, details)
    except FieldError as exc:
        return _item_error(index, exc.code, exc.message, exc.details)


UNAVAILABLE = "service_unavailable"


class BatchIn(BaseModel):
    """`{"calls": [...]}`; each item is checked on its own (per-item errors)."""

    model_config = ConfigDict(extra="forbid")

    calls: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH)


# Items of one batch submitted at once.
BATCH_IN_FLIGHT = 64


async def _accept(
    index: int, call: ValidatedCall, ctx: ApiContext, claim: IdempotencyClaim | None
) -> dict[str, Any]:
    try:
        result = await submit(ctx, call, claim)
    except ApiError as exc:  # the item's Idempotency-Key: in progress, or another body
        return _item_error(index, exc.code, exc.message, exc.details)
    except Exception as exc:  # whatever failed, the other items' results still count
        log.warning("batch item not queued", index=index, error=repr(exc))
        return _item_error(index, UNAVAILABLE, "could not queue this call; retry it")
    job = result.job
    return {
        "index": index,
        "success": True,
        "job_id": job.job_id,
        "status": job.status.value,
        "queue": job.queue,
        "existing": not result.created,
        "links": {"status": f"/tts/status/{job.job_id}"},
    }


async def _charge_items(request: Request, ctx: ApiContext, count: int) -> None:
    """A batch counts as its number of items against the key's rate limit (the access
    middleware has charged the request itself: one)."""
    api_key = request.scope.get("state", {}).get("api_key")
    if api_key is None or count <= 1:
        return
    limiter = RateLimiter(ctx.settings.RATE_LIMIT_PER_MINUTE, ctx.store.keys)
    wait_ms = TOO_LARGE if count > limiter.per_minute else 0
    if wait_ms == 0:
        wait_ms = await limiter.charge(ctx.redis, api_key, count - 1)
    if wait_ms == TOO_LARGE:
        raise ApiError(
            429,
            "rate_limited",
            f"a batch of {count} calls is more than RATE_LIMIT_PER_MINUTE "
            f"({limiter.per_minute}) allows in a minute: split it",
        )
    if wait_ms > 0:
        raise ApiError(
            429,
            "rate_limited",
            f"rate limit exceeded for this API key: {count} calls do not fit in the last minute",
            headers={"Retry-After": str(max(1, math.ceil(wait_ms / 1000)))},
        )


def _item_claims(
    request: Request, key: str | None, items: list[dict[str, Any]]
) -> list[IdempotencyClaim | None]:
    if key is None:
        return [None] * len(items)
    check_idempotency_key(key)
    client_key = presented_key(request.headers) or ""
    scope = hashlib.sha256(f"batch\x00{client_key}".encode()).hexdigest()
    return [idempotency_claim(f"{key}#{i}", item, scope) for i, item in enumerate(items)]


@router.post(
    "/tts/calls",
    status_code=202,
    dependencies=[Depends(require_json_body)],
    responses=error_responses(415),
)
async def create_calls(
    request: Request,
    ctx: Annotated[ApiContext, Depends(get_context)],
    batch: BatchIn,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JsonBody:
    """Each item is a `POST /tts/call` body. Valid items are queued even when others are
    rejected; their confirms are awaited together. The body may take up to 1000 × (4 ×
    MAX_TEXT_LENGTH + 2 KB of metadata + 3 KB for the other fields) + 1 KB bytes, 9,121,024
    with the default MAX_TEXT_LENGTH; a larger body gets 413."""
    calls = batch.calls
    await _charge_items(request, ctx, len(calls))
    claims = _item_claims(request, idempotency_key, calls)
    await ctx.gate.admit()
    checked = [_validate(i, item, ctx) for i, item in enumerate(calls)]
    # A bounded number of items in flight: each publish's deadline then measures RabbitMQ's
    # answer, not the queue of this batch's own publishes ahead of it.
    in_flight = asyncio.Semaphore(BATCH_IN_FLIGHT)

    async def accept(index: int, call: ValidatedCall) -> dict[str, Any]:
        async with in_flight:
            return await _accept(index, call, ctx, claims[index])

    accepted = await asyncio.gather(
        *(accept(i, c) for i, c in enumerate(checked) if isinstance(c, ValidatedCall))
    )
    results = sorted(
        [*accepted, *(c for c in checked if isinstance(c, dict))], key=lambda r: r["index"]
    )
    ok = sum(1 for r in results if r["success"])
    body: dict[str, Any] = {
        "success": ok > 0,
        "accepted": ok,
        "rejected": len(results) - ok,
        "results": results,
    }
    if ok:
        return JsonBody(body, status_code=202)
    # Nothing accepted: the standard error shape, with the per-item results kept.
    if all(r["code"] == UNAVAILABLE for r in results):
        body.update(error="no call could be queued; retry the batch", code=UNAVAILABLE)
        body["details"] = []
        return JsonBody(body, 503, headers={"Retry-After": RETRY_AFTER_UNAVAILABLE})
    first = results[0]
    body.update(
        error=f"no call was accepted; item 0: {first['error']}",
        code="batch_rejected",
        details=[
            {
                "loc": ["body", "calls", r["index"]],
                "field": f"calls.{r['index']}",
                "message": r["error"],
            }
            for r in results
        ],
    )
    return JsonBody(body, status_code=422)
