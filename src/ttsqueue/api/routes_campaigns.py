"""Campaigns (SPEC §13): create from JSON rows or a CSV upload, list, follow, pause, resume,
cancel, and download the results. The rows are released as ordinary jobs by the workers'
pacer at the campaign's pace; the API only records what was asked."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from ttsqueue.api.campaign_input import read_campaign
from ttsqueue.api.campaign_schemas import (
    CREATE_ANSWERS,
    CREATE_BODY,
    RESULTS_ANSWERS,
    campaign_errors,
)
from ttsqueue.api.context import ApiContext, get_context
from ttsqueue.api.errors import ApiError
from ttsqueue.campaigns.overview import overview, recent_overviews
from ttsqueue.campaigns.results import results_csv
from ttsqueue.campaigns.spec import (
    CANCELABLE,
    PAUSABLE,
    RESUMABLE,
    CampaignState,
)
from ttsqueue.campaigns.store import CampaignRecord, CampaignStore
from ttsqueue.domain import iso, utcnow
from ttsqueue.views.http import JsonBody

router = APIRouter(tags=["campaigns"])
_ACTION_ANSWERS = campaign_errors(401, 404, 409, 429, 503)

# Rows shown rendered in a dry run (the dashboard's preview).
PREVIEW_ROWS = 10
MAX_REPORTED_ERRORS = 10_000
_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def campaign_store(ctx: ApiContext) -> CampaignStore:
    return CampaignStore(ctx.redis, ctx.store.keys)


async def _load(ctx: ApiContext, campaign_id: str) -> CampaignRecord:
    record = await campaign_store(ctx).get(campaign_id) if _ID.match(campaign_id) else None
    if record is None:
        raise ApiError(404, "campaign_not_found", f"no campaign {campaign_id[:40]!r}")
    return record


async def view(ctx: ApiContext, record: CampaignRecord) -> dict[str, Any]:
    return await overview(campaign_store(ctx), record)


@router.post("/campaigns", status_code=201, openapi_extra=CREATE_BODY, responses=CREATE_ANSWERS)
async def create_campaign(
    request: Request, ctx: Annotated[ApiContext, Depends(get_context)]
) -> JsonBody:
    """JSON `{name, template, rows: [{phone_number, ...}], ...}` or multipart/form-data with a
    CSV `file` (a `phone_number` column and every column the template names; UTF-8 with or
    without BOM; `,` or `;`) and the other fields as form values. Invalid rows are reported
    by line (CSV, header = line 1) or index (JSON) and do not stop the valid ones; 422 when
    none is valid. `dry_run: true` checks and previews without creating anything."""
    draft = await read_campaign(request, ctx)
    errors = draft.errors_json()
    report = {
        "valid": draft.spec.total,
        "invalid": draft.spec.invalid,
        "columns": draft.parsed.columns,
        "separator": draft.parsed.separator,
        "errors": errors[:MAX_REPORTED_ERRORS],
        "errors_truncated": len(errors) > MAX_REPORTED_ERRORS,
    }
    if not draft.spec.total:
        raise ApiError(
            422,
            "no_valid_rows",
            f"no valid row ({draft.spec.invalid} invalid)",
            [
                {
                    "loc": ["body", draft.parsed.unit, e["line" if "line" in e else "index"]],
                    "field": e["field"],
                    "message": e["message"],
                }
                for e in errors[:MAX_REPORTED_ERRORS]
            ],
        )
    if draft.dry_run:
        preview = [
            {draft.parsed.unit: r.position, "phone_number": r.phone.e164, "text": r.text}
            for r in draft.parsed.rows[:PREVIEW_ROWS]
        ]
        return JsonBody({"success": True, "dry_run": True, **report, "preview": preview}, 200)
    now = utcnow()
    state = CampaignState.PAUSED if draft.paused else CampaignState.RUNNING
    store = campaign_store(ctx)
    await store.create(
        draft.spec,
        draft.rows,
        errors,
        state=state,
        now_iso=iso(now) or "",
        now_ms=int(now.timestamp() * 1000),
    )
    record = await _load(ctx, draft.spec.campaign_id)
    return JsonBody({"success": True, **report, "campaign": await view(ctx, record)}, 201)


@router.get("/campaigns", responses=campaign_errors(401, 422, 429, 503))
async def list_campaigns(
    ctx: Annotated[ApiContext, Depends(get_context)],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JsonBody:
    """The most recent campaigns first, each with its counts and progress."""
    found = await recent_overviews(campaign_store(ctx), limit)
    return JsonBody({"success": True, "campaigns": found})


@router.get("/campaigns/{campaign_id}", responses=campaign_errors(401, 404, 422, 429, 503))
async def get_campaign(
    campaign_id: str,
    ctx: Annotated[ApiContext, Depends(get_context)],
    errors: Annotated[bool, Query(description="also list the rows refused at creation")] = False,
) -> JsonBody:
    """Counts by status and outcome, confirmed, progress and ETA; with `errors=true`, the rows
    refused at creation (line or index, field, message)."""
    record = await _load(ctx, campaign_id)
    body = await view(ctx, record)
    if errors:
        body["errors"] = (await campaign_store(ctx).errors(campaign_id))[:MAX_REPORTED_ERRORS]
    return JsonBody({"success": True, **body})


async def _move(
    ctx: ApiContext,
    campaign_id: str,
    target: CampaignState,
    allowed: frozenset[CampaignState],
    verb: str,
) -> CampaignRecord:
    record = await _load(ctx, campaign_id)
    previous = await campaign_store(ctx).move(campaign_id, target, allowed, at=iso(utcnow()) or "")
    if previous is None:
        current = await _load(ctx, campaign_id)
        raise ApiError(
            409,
            "campaign_state",
            f"the campaign is {current.state.value}; only a "
            f"{' or '.join(sorted(s.value for s in allowed))} campaign can be {verb}",
        )
    return record


@router.post("/campaigns/{campaign_id}/pause", responses=_ACTION_ANSWERS)
async def pause_campaign(
    campaign_id: str, ctx: Annotated[ApiContext, Depends(get_context)]
) -> JsonBody:
    """Dial nothing new; calls in progress end normally."""
    await _move(ctx, campaign_id, CampaignState.PAUSED, PAUSABLE, "paused")
    return JsonBody({"success": True, **await view(ctx, await _load(ctx, campaign_id))})


@router.post("/campaigns/{campaign_id}/resume", responses=_ACTION_ANSWERS)
async def resume_campaign(
    campaign_id: str, ctx: Annotated[ApiContext, Depends(get_context)]
) -> JsonBody:
    await _move(ctx, campaign_id, CampaignState.RUNNING, RESUMABLE, "resumed")
    return JsonBody({"success": True, **await view(ctx, await _load(ctx, campaign_id))})


@router.post("/campaigns/{campaign_id}/cancel", responses=_ACTION_ANSWERS)
async def cancel_campaign(
    campaign_id: str, ctx: Annotated[ApiContext, Depends(get_context)]
) -> JsonBody:
    """Rows not released are never called; released jobs still waiting are canceled; calls
    in progress end normally."""
    await _move(ctx, campaign_id, CampaignState.CANCELED, CANCELABLE, "canceled")
    store = campaign_store(ctx)
    for job in await ctx.store.get_many(await store.inflight(campaign_id)):
        await ctx.lifecycle.cancel(job, "campaign canceled")
    return JsonBody({"success": True, **await view(ctx, await _load(ctx, campaign_id))})


@router.get(
    "/campaigns/{campaign_id}/results.csv",
    response_class=StreamingResponse,
    responses=RESULTS_ANSWERS,
)
async def campaign_results(
    campaign_id: str, ctx: Annotated[ApiContext, Depends(get_context)]
) -> StreamingResponse:
    """One line per valid row: status, outcome, attempts, confirmed, digits, times."""
    record = await _load(ctx, campaign_id)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", record.spec.name)[:60] or "campaign"
    return StreamingResponse(
        results_csv(campaign_store(ctx), record),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}-results.csv"'},
    )
