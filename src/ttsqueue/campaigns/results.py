"""`GET /campaigns/{id}/results.csv`: one line per valid row, in file order, read in chunks.

Columns: the row's line (CSV) or index (JSON), the number, the job, its status and call
outcome, attempts, `confirmed` and `digits` (keypress calls; empty otherwise), and the times.
A row not released yet shows `pending` (`canceled` once the campaign is canceled).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import orjson

from ttsqueue.campaigns.spec import CampaignState, StoredRow, row_job_id
from ttsqueue.campaigns.store import CampaignRecord, CampaignStore

COLUMNS = (
    "line",
    "phone_number",
    "job_id",
    "status",
    "outcome",
    "reason",
    "attempts",
    "confirmed",
    "digits",
    "created_at",
    "called_at",
    "answered_at",
    "completed_at",
)
_FIELDS = ["status", "attempts", "call", "created_at", "completed_at"]
CHUNK = 1000


def _line(row: StoredRow, job_id: str, raw: list[str | None] | None, unreleased: str) -> list[Any]:
    if raw is None or raw[0] is None:
        return [row.position, row.e164, "", unreleased, *[""] * (len(COLUMNS) - 4)]
    status, attempts, call_json, created_at, completed_at = raw
    call: dict[str, Any] = orjson.loads(call_json) if call_json else {}
    confirmed = call.get("confirmed")
    digits = call.get("dtmf") or call.get("digits") or ""
    return [
        row.position,
        row.e164,
        job_id,
        status,
        call.get("outcome") or "",
        call.get("reason") or "",
        attempts or "0",
        "" if confirmed is None else str(bool(confirmed)).lower(),
        "".join(digits) if isinstance(digits, list) else str(digits),
        created_at or "",
        call.get("started_at") or "",
        call.get("answered_at") or "",
        completed_at or "",
    ]


def _csv(lines: list[list[Any]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(lines)
    return out.getvalue().encode("utf-8")


async def results_csv(store: CampaignStore, record: CampaignRecord) -> AsyncIterator[bytes]:
    cid = record.spec.campaign_id
    unreleased = "canceled" if record.state is CampaignState.CANCELED else "pending"
    yield b"\xef\xbb\xbf" + _csv([list(COLUMNS)])  # BOM: spreadsheets then read UTF-8
    for start in range(0, record.spec.total, CHUNK):
        rows = await store.rows(cid, start, CHUNK)
        ids = [row_job_id(cid, start + i) for i in range(len(rows))]
        released = max(0, min(len(rows), record.released - start))
        replies: list[Any] = []
        if released:
            async with store.redis.pipeline(transaction=False) as pipe:
                for job_id in ids[:released]:
                    pipe.hmget(store.keys.job(job_id), _FIELDS)
                replies = await pipe.execute()
        replies += [None] * (len(rows) - len(replies))
        yield _csv([_line(row, ids[i], replies[i], unreleased) for i, row in enumerate(rows)])
