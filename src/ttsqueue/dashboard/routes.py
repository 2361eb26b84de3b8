"""The dashboard's routes: the page, its event stream, and the few reads and writes it makes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response, StreamingResponse

from ttsqueue.dashboard.api_proxy import Relayed
from ttsqueue.dashboard.context import DashboardContext, get_context
from ttsqueue.dashboard.snapshot import RecentFilter, job_row
from ttsqueue.domain import JobStatus, Priority
from ttsqueue.errors import StoreUnavailableError
from ttsqueue.views.http import JsonBody, error_body
from ttsqueue.views.jobs import job_to_status_body

router = APIRouter()

Ctx = Annotated[DashboardContext, Depends(get_context)]
MAX_CALL_BODY = 64 * 1024
# A comment line this often keeps proxies from closing a quiet stream.
KEEPALIVE_S = 15.0


def _problem(status: int, code: str, message: str) -> JsonBody:
    return JsonBody(error_body(code, message), status_code=status)


def _redis_down() -> JsonBody:
    return _problem(503, "redis_unavailable", "Redis is not reachable")


def _valid_id(job_id: str) -> bool:
    try:
        return len(job_id) == 36 and str(uuid.UUID(job_id)) == job_id.lower()
    except ValueError:
        return False


@router.get("/", include_in_schema=False)
async def page(request: Request) -> Response:
    return Response(
        request.app.state.page,
        media_type="text/html; charset=utf-8",
        headers={"Cache-Control": "no-store"},
    )


@router.get("/healthz")
async def healthz() -> JsonBody:
    return JsonBody({"success": True})


@router.get("/events")
async def events(
    request: Request,
    ctx: Ctx,
    status: JobStatus | None = None,
    priority: Priority | None = None,
) -> StreamingResponse:
    """Server-sent events: one `snapshot` message per change (coalesced), see hub.py."""
    subscriber = ctx.hub.subscribe(RecentFilter(status, priority))

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 1000\n\n"
            while True:
                try:
                    async with asyncio.timeout(KEEPALIVE_S):
                        message = await subscriber.queue.get()
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if message is None:
                    return
                yield b"event: snapshot\ndata: " + message + b"\n\n"
        finally:
            ctx.hub.unsubscribe(subscriber)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/api/snapshot")
async def snapshot(
    ctx: Ctx, status: JobStatus | None = None, priority: Priority | None = None
) -> JsonBody:
    return JsonBody(await ctx.hub.snapshot_once(RecentFilter(status, priority)))


@router.get("/api/jobs")
async def jobs(
    ctx: Ctx,
    status: JobStatus | None = None,
    priority: Priority | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 25,
) -> JsonBody:
    try:
        found, _ = await ctx.store.list_recent(status=status, priority=priority, limit=limit)
    except StoreUnavailableError:
        return _redis_down()
    return JsonBody({"success": True, "jobs": [job_row(job) for job in found]})


@router.get("/api/jobs/{job_id}")
async def job_detail(job_id: str, ctx: Ctx) -> JsonBody:
    try:
        job = await ctx.store.get(job_id.lower()) if _valid_id(job_id) else None
        history = await ctx.store.history(job.job_id) if job else []
    except StoreUnavailableError:
        return _redis_down()
    if job is None:
        return _problem(404, "job_not_found", f"job {job_id[:64]!r} not found")
    body: dict[str, Any] = job_to_status_body(job, history)
    if body["audio"]["url"]:
        body["audio"]["url"] = f"/api/audio/{job.job_id}"
    return JsonBody(body)


@router.get("/api/audio/{job_id}")
async def audio(job_id: str, ctx: Ctx) -> Response:
    if not _valid_id(job_id):
        return _problem(404, "job_not_found", "job not found")
    relayed = await ctx.api.audio(job_id.lower())
    return Response(
        relayed.body,
        status_code=relayed.status,
        media_type=relayed.content_type,
        headers={"Cache-Control": "private, max-age=300"},
    )


@router.post("/api/calls")
async def place_call(request: Request, ctx: Ctx) -> Response:
    """A test call from the page, submitted through the API like any other."""
    if not request.headers.get("content-type", "").startswith("application/json"):
        return _problem(415, "unsupported_media_type", "send the call as application/json")
    raw = await request.body()
    if len(raw) > MAX_CALL_BODY:
        return _problem(413, "payload_too_large", "request body too large")
    try:
        body = orjson.loads(raw)
    except ValueError:
        return _problem(400, "malformed_json", "request body is not valid JSON")
    if not isinstance(body, dict):
        return _problem(422, "validation_error", "the body must be a JSON object")
    relayed = await ctx.api.submit_call(body)
    return Response(relayed.body, status_code=relayed.status, media_type=relayed.content_type)


# Campaigns: relayed to the API, which checks everything -----------------------------------------
_CAMPAIGN_VERBS = frozenset({"pause", "resume", "cancel"})


def _relayed(relayed: Relayed, **headers: str) -> Response:
    return Response(
        relayed.body,
        status_code=relayed.status,
        media_type=relayed.content_type,
        headers=headers or None,
    )


@router.post("/api/campaigns")
async def create_campaign(request: Request, ctx: Ctx) -> Response:
    """A CSV upload (multipart) or JSON rows, passed on to `POST /campaigns` as they came."""
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    return _relayed(await ctx.api.campaigns("POST", "", body, content_type))


@router.post("/api/campaigns/{campaign_id}/{verb}")
async def campaign_action(campaign_id: str, verb: str, ctx: Ctx) -> Response:
    if not _valid_id(campaign_id) or verb not in _CAMPAIGN_VERBS:
        return _problem(404, "campaign_not_found", "campaign not found")
    return _relayed(await ctx.api.campaigns("POST", f"/{campaign_id}/{verb}", b"", ""))


@router.get("/api/campaigns/{campaign_id}/results.csv")
async def campaign_results(campaign_id: str, ctx: Ctx) -> Response:
    if not _valid_id(campaign_id):
        return _problem(404, "campaign_not_found", "campaign not found")
    relayed = await ctx.api.campaigns("GET", f"/{campaign_id}/results.csv", b"", "")
    disposition = f'attachment; filename="campaign-{campaign_id[:8]}-results.csv"'
    return _relayed(relayed, **{"Content-Disposition": disposition})
