"""Call submission and cancellation."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import Headers

from ttsqueue.api.access import presented_key
from ttsqueue.api.context import ApiContext, context_of, get_context
from ttsqueue.api.errors import ApiError
from ttsqueue.api.media import require_json_body
from ttsqueue.api.routes_jobs import load_job
from ttsqueue.api.schemas import (
    CallAccepted,
    CallRequestIn,
    error_responses,
    validate_call_request,
)
from ttsqueue.api.submission import idempotency_claim, submit
from ttsqueue.domain import Job, JobStatus, iso, utcnow
from ttsqueue.views.http import JsonBody

router = APIRouter(
    tags=["calls"], responses=error_responses(400, 401, 404, 409, 413, 422, 429, 503)
)

IDEMPOTENCY_KEY_MAX = 128
# `POST /tts/call`'s one header parameter, described in the API's schema by hand: the route
# reads it from the request itself (see create_call).
IDEMPOTENCY_KEY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "a repeat with the same key and body gets the original job (200); "
    f"1..{IDEMPOTENCY_KEY_MAX} printable ASCII characters",
    "schema": {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX},
}


def accepted_body(job: Job, message: str) -> dict[str, Any]:
    return {
        "success": True,
        "job_id": job.job_id,
        "status": job.status.value,
        "queue": job.queue,
        "priority": job.priority.value,
        "timestamp": iso(utcnow()),
        "message": message,
        "links": {"status": f"/tts/status/{job.job_id}"},
    }


def check_idempotency_key(key: str) -> None:
    if not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX or not all(" " <= ch <= "~" for ch in key):
        raise ApiError(
            422,
            "validation_error",
            "Idempotency-Key: must be 1..128 printable ASCII characters",
            details=[
                {
                    "loc": ["header", "Idempotency-Key"],
                    "field": "Idempotency-Key",
                    "message": "1..128 printable ASCII characters",
                }
            ],
        )


@router.post(
    "/tts/call",
    status_code=202,
    response_model=CallAccepted,
    dependencies=[Depends(require_json_body)],
    responses={
        200: {"description": "Same Idempotency-Key and body: the original job"},
        **error_responses(415),
    },
    openapi_extra={"parameters": [IDEMPOTENCY_KEY_PARAMETER]},
)
async def create_call(body: CallRequestIn, request: Request) -> JsonBody:
    # A valid JSON body is served by api/call_lane.py before FastAPI's router; this route
    # answers the rest (its errors) and describes the call in the API's schema.
    return await accept_call(context_of(request), body, request.headers)


async def accept_call(ctx: ApiContext, body: CallRequestIn, headers: Headers) -> JsonBody:
    """`POST /tts/call` once its body has been read as a `CallRequestIn`."""
    idempotency_key = headers.get("idempotency-key")
    call = validate_call_request(body, ctx.settings, ctx.languages)
    await ctx.gate.admit()
    claim = None
    if idempotency_key is not None:
        check_idempotency_key(idempotency_key)
        # Keys are scoped per API key: two clients never share an idempotency key.
        client_key = presented_key(headers) or ""
        scope = hashlib.sha256(client_key.encode()).hexdigest()
        claim = idempotency_claim(idempotency_key, body.model_dump(mode="json"), scope)
    result = await submit(ctx, call, claim)
    if not result.created:
        return JsonBody(accepted_body(result.job, "existing job (Idempotency-Key)"), 200)
    message = (
        f"call scheduled for {result.job.scheduled_for}"
        if result.job.status is JobStatus.SCHEDULED
        else "call queued"
    )
    return JsonBody(accepted_body(result.job, message), 202)


@router.delete("/tts/call/{job_id}")
async def cancel_call(job_id: str, ctx: Annotated[ApiContext, Depends(get_context)]) -> JsonBody:
    job = await load_job(ctx, job_id)
    job_id = job.job_id
    moved = await ctx.lifecycle.cancel(job)
    if not moved.applied:
        current = moved.previous.value if moved.previous else job.status.value
        raise ApiError(
            409,
            "job_not_cancelable",
            f"job is {current}; only scheduled, queued or retrying jobs can be canceled",
        )
    return JsonBody(
        {
            "success": True,
            "job_id": job_id,
            "status": JobStatus.CANCELED.value,
            "previous_status": moved.previous.value if moved.previous else None,
        }
    )
