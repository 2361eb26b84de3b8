"""`POST /tts/calls`: up to 1000 calls in one request, one job each, errors per item."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from pydantic import ValidationError

from ttsqueue.api.context import ApiContext, get_context
from ttsqueue.api.errors import FieldError, describe_validation_errors
from ttsqueue.api.responses import JsonBody
from ttsqueue.api.schemas import (
    CallRequestIn,
    ValidatedCall,
    error_responses,
    validate_call_request,
)
from ttsqueue.api.submission import submit
from ttsqueue.errors import ConnectionLostError

router = APIRouter(tags=["calls"], responses=error_responses(400, 401, 413, 422, 429, 503))

MAX_BATCH = 1000
MAX_BATCH_BYTES = 2 * 1024 * 1024


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


async def _accept(index: int, call: ValidatedCall, ctx: ApiContext) -> dict[str, Any]:
    try:
        job = (await submit(ctx, call)).job
    except ConnectionLostError:
        return _item_error(index, "service_unavailable", "could not queue this call; retry it")
    return {
        "index": index,
        "success": True,
        "job_id": job.job_id,
        "status": job.status.value,
        "queue": job.queue,
        "links": {"status": f"/tts/status/{job.job_id}"},
    }


@router.post("/tts/calls", status_code=202)
async def create_calls(
    ctx: Annotated[ApiContext, Depends(get_context)],
    calls: Annotated[list[dict[str, Any]], Body(embed=True, min_length=1, max_length=MAX_BATCH)],
) -> JsonBody:
    """Each item is a `POST /tts/call` body. Valid items are queued even when others are
    rejected; their confirms are awaited together."""
    await ctx.gate.admit()
    checked = [_validate(i, item, ctx) for i, item in enumerate(calls)]
    accepted = await asyncio.gather(
        *(_accept(i, c, ctx) for i, c in enumerate(checked) if isinstance(c, ValidatedCall))
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
