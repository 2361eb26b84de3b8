"""Reading jobs: status, listing, audio."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse

from ttsqueue.api.context import ApiContext, get_context
from ttsqueue.api.errors import ApiError
from ttsqueue.api.schemas import error_responses
from ttsqueue.domain import Job, JobStatus, Priority
from ttsqueue.store.jobs import PageCursor
from ttsqueue.views.http import JsonBody
from ttsqueue.views.jobs import job_summary, job_to_status_body

router = APIRouter(tags=["jobs"], responses=error_responses(401, 404, 422, 429, 503))


def _valid_id(job_id: str) -> bool:
    try:
        return len(job_id) == 36 and str(uuid.UUID(job_id)) == job_id.lower()
    except ValueError:
        return False


async def load_job(ctx: ApiContext, job_id: str) -> Job:
    job = await ctx.store.get(job_id.lower()) if _valid_id(job_id) else None
    if job is None:
        raise ApiError(404, "job_not_found", f"job {job_id[:64]!r} not found")
    return job


@router.get("/tts/status/{job_id}")
async def job_status(job_id: str, ctx: Annotated[ApiContext, Depends(get_context)]) -> JsonBody:
    job = await load_job(ctx, job_id)
    history = await ctx.store.history(job.job_id)
    return JsonBody(job_to_status_body(job, history))


@router.get("/tts/jobs")
async def list_jobs(
    ctx: Annotated[ApiContext, Depends(get_context)],
    status: JobStatus | None = None,
    priority: Priority | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=80)] = None,
) -> JsonBody:
    try:
        after = PageCursor.decode(cursor) if cursor is not None else None
    except ValueError:
        problem = "not a cursor: pass the next_cursor of the previous page"
        detail = {"loc": ["query", "cursor"], "field": "cursor", "message": problem}
        raise ApiError(422, "validation_error", f"cursor: {problem}", [detail]) from None
    jobs, next_cursor = await ctx.store.list_recent(
        status=status, priority=priority, limit=limit, after=after
    )
    return JsonBody(
        {
            "success": True,
            "count": len(jobs),
            "jobs": [job_summary(job) for job in jobs],
            "next_cursor": next_cursor.encode() if next_cursor else None,
        }
    )


@router.get("/tts/audio/{job_id}", response_class=FileResponse)
async def job_audio(job_id: str, ctx: Annotated[ApiContext, Depends(get_context)]) -> FileResponse:
    job = await load_job(ctx, job_id)
    path = Path(job.audio.path) if job.audio.path else None
    if path is None or not path.is_file():
        raise ApiError(
            404,
            "audio_not_available",
            "no audio for this job (not generated yet, or evicted from the cache)",
        )
    return FileResponse(path, media_type="audio/wav", filename=f"{job.job_id}.wav")
