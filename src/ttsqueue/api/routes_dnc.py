"""The do-not-call list (SPEC §13): list or unlist one number, page through the list, import
many at once, read the audit trail. Numbers are stored in E.164."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.datastructures import UploadFile

from ttsqueue.api.actor import actor_of
from ttsqueue.api.context import ApiContext, get_context
from ttsqueue.api.dnc_import import (
    CSV_TYPES,
    MAX_REPORTED_ERRORS,
    ImportFormatError,
    ImportNumbers,
    numbers_from_csv,
    numbers_from_json,
    problems_json,
)
from ttsqueue.api.dnc_schemas import (
    IMPORT_BODY,
    DncAuditPage,
    DncImported,
    DncPage,
    DncState,
    dnc_errors,
)
from ttsqueue.api.errors import ApiError
from ttsqueue.phone import InvalidPhoneNumber, parse_phone
from ttsqueue.store.dnc import DncEntry
from ttsqueue.views.http import JsonBody

router = APIRouter(tags=["do-not-call"])

_DIGITS_CURSOR = r"^[0-9]{1,15}$"
_AUDIT_CURSOR = r"^[0-9]{1,20}-[0-9]{1,20}$"


def _phone(ctx: ApiContext, raw: str) -> str:
    try:
        return parse_phone(raw, ctx.settings.DEFAULT_REGION, allow_extensions=False).e164
    except InvalidPhoneNumber as exc:
        detail = {"loc": ["path", "phone"], "field": "phone", "message": str(exc)}
        raise ApiError(422, "invalid_phone_number", f"phone: {exc}", [detail]) from None


def _state(entry: DncEntry | None, e164: str, **extra: Any) -> dict[str, Any]:
    body = (entry or DncEntry(e164)).to_json()
    return {"success": True, **body, "listed": entry is not None, **extra}


@router.get("/dnc", response_model=DncPage, responses=dnc_errors(401, 422, 429, 503))
async def list_numbers(
    ctx: Annotated[ApiContext, Depends(get_context)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[
        str | None,
        Query(pattern=_DIGITS_CURSOR, description="`next_cursor` of the previous page"),
    ] = None,
) -> JsonBody:
    """The listed numbers in number order, `limit` at a time."""
    entries, last = await ctx.dnc.page("+" + cursor if cursor else None, limit)
    return JsonBody(
        {
            "success": True,
            "count": len(entries),
            "total": await ctx.dnc.count(),
            "numbers": [e.to_json() for e in entries],
            "next_cursor": last.removeprefix("+") if last else None,
        }
    )


@router.get("/dnc/audit", response_model=DncAuditPage, responses=dnc_errors(401, 422, 429, 503))
async def audit_trail(
    ctx: Annotated[ApiContext, Depends(get_context)],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(pattern=_AUDIT_CURSOR)] = None,
) -> JsonBody:
    """Who added or removed which number, and when: newest first."""
    entries, last = await ctx.dnc.audit(cursor, limit)
    return JsonBody(
        {
            "success": True,
            "count": len(entries),
            "entries": [e.to_json() for e in entries],
            "next_cursor": last,
        }
    )


@router.get("/dnc/{phone}", response_model=DncState, responses=dnc_errors(401, 404, 422, 429, 503))
async def number_state(phone: str, ctx: Annotated[ApiContext, Depends(get_context)]) -> JsonBody:
    """Whether one number is listed, and since when."""
    e164 = _phone(ctx, phone)
    return JsonBody(_state(await ctx.dnc.entry(e164), e164))


@router.put(
    "/dnc/{phone}",
    response_model=DncState,
    status_code=201,
    responses={
        200: {"model": DncState, "description": "Already listed (entry unchanged)"},
        **dnc_errors(401, 404, 422, 429, 503),
    },
)
async def add_number(
    phone: str, request: Request, ctx: Annotated[ApiContext, Depends(get_context)]
) -> JsonBody:
    """List a number: 201 when newly listed, 200 when it already was."""
    e164 = _phone(ctx, phone)
    created = await ctx.dnc.add(e164, actor_of(request.headers, ctx.settings.API_KEYS))
    entry = await ctx.dnc.entry(e164)
    return JsonBody(_state(entry, e164, created=created), 201 if created else 200)


@router.delete(
    "/dnc/{phone}", response_model=DncState, responses=dnc_errors(401, 404, 422, 429, 503)
)
async def remove_number(
    phone: str, request: Request, ctx: Annotated[ApiContext, Depends(get_context)]
) -> JsonBody:
    """Unlist a number; 404 when it was not listed."""
    e164 = _phone(ctx, phone)
    if not await ctx.dnc.remove(e164, actor_of(request.headers, ctx.settings.API_KEYS)):
        raise ApiError(404, "not_listed", f"{e164} is not on the do-not-call list")
    return JsonBody(_state(None, e164))


async def _read_import(request: Request, region: str) -> ImportNumbers:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return await asyncio.to_thread(numbers_from_json, await request.body(), region)
    if media in CSV_TYPES:
        return await asyncio.to_thread(numbers_from_csv, await request.body(), region)
    if media == "multipart/form-data":
        # The context closes the spooled upload files whatever happens.
        async with request.form(max_files=1, max_fields=5) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ImportFormatError("file", "multipart upload without a `file` part")
            data = await upload.read()
        return await asyncio.to_thread(numbers_from_csv, data, region)
    raise ApiError(
        415,
        "unsupported_media_type",
        'send JSON ({"numbers": [...]}), text/csv, or a multipart/form-data `file`',
    )


@router.post(
    "/dnc",
    response_model=DncImported,
    openapi_extra=IMPORT_BODY,
    responses=dnc_errors(400, 401, 413, 415, 422, 429, 503),
)
async def import_numbers(
    request: Request, ctx: Annotated[ApiContext, Depends(get_context)]
) -> JsonBody:
    """Bulk import (up to 200,000 numbers). Invalid numbers are reported per line (CSV) or
    index (JSON) without stopping the valid ones; 422 when none is valid."""
    try:
        found = await _read_import(request, ctx.settings.DEFAULT_REGION)
    except ImportFormatError as exc:
        detail = {"loc": ["body", exc.field], "field": exc.field, "message": str(exc)}
        raise ApiError(422, "validation_error", f"{exc.field}: {exc}", [detail]) from None
    if not found.numbers:
        raise ApiError(
            422,
            "no_valid_numbers",
            f"no valid number among {found.received} received",
            [
                {
                    "loc": ["body", found.unit, p.position],
                    "field": f"{found.unit} {p.position}",
                    "message": p.message,
                }
                for p in found.problems[:MAX_REPORTED_ERRORS]
            ],
        )
    result = await ctx.dnc.add_many(found.numbers, actor_of(request.headers, ctx.settings.API_KEYS))
    return JsonBody(
        {
            "success": True,
            "received": found.received,
            "valid": len(found.numbers),
            "added": result.added,
            "already_listed": result.already_listed,
            "duplicates": len(found.numbers) - result.distinct,
            "invalid": len(found.problems),
            "errors": problems_json(found),
            "errors_truncated": len(found.problems) > MAX_REPORTED_ERRORS,
        }
    )
