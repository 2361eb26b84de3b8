"""What `GET /campaigns/{id}` shows: counts by status and outcome, progress and ETA. Pure.

`by_status` covers every row: `pending` (not released yet; `canceled` once the campaign is
canceled), the live status of jobs in flight, and the final status of finished ones. A job in
flight whose live status is final has finished, though the pacer counts it only at its next
tick: the progress and the ETA count it already, as `by_status` shows it. The ETA
extrapolates the rate at which rows finished since the campaign started, and is never sooner
than `calls_per_minute` allows; None until a row has finished, 0 once nothing is left.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson

from ttsqueue.campaigns.spec import CampaignState
from ttsqueue.campaigns.store import CampaignRecord
from ttsqueue.domain import JobStatus

_FINAL = frozenset(s.value for s in JobStatus if s.terminal)


def _split(counts: dict[str, int]) -> tuple[Counter[str], dict[str, int], int]:
    statuses: Counter[str] = Counter()
    outcomes: dict[str, int] = {}
    for key, value in counts.items():
        kind, _, name = key.partition(":")
        if kind == "status":
            statuses[name] += value
        elif kind == "outcome":
            outcomes[name] = value
    return statuses, outcomes, counts.get("confirmed", 0)


def eta_seconds(
    record: CampaignRecord, finished: int, remaining: int, now: datetime
) -> float | None:
    if remaining == 0 or record.state.finished:
        return 0.0
    if record.state is CampaignState.PAUSED:
        return None
    started = datetime.fromisoformat(record.started_at) if record.started_at else None
    if started is None or finished == 0:
        return None
    elapsed = max((now - started).total_seconds(), 0.001)
    eta = remaining / (finished / elapsed)
    per_minute = record.spec.calls_per_minute
    if per_minute:
        eta = max(eta, 60.0 * max(record.pending - 1, 0) / per_minute)
    return round(eta, 1)


def campaign_view(
    record: CampaignRecord,
    counts: dict[str, int],
    live_statuses: Iterable[str],
    now: datetime,
) -> dict[str, Any]:
    spec = record.spec
    statuses, outcomes, confirmed = _split(counts)
    live = list(live_statuses)
    finished = sum(statuses.values()) + sum(1 for status in live if status in _FINAL)
    statuses.update(live)
    unreleased = "canceled" if record.state is CampaignState.CANCELED else "pending"
    if record.pending:
        statuses[unreleased] += record.pending
    remaining = 0 if record.state.finished else spec.total - finished
    done = spec.total - remaining
    cid = spec.campaign_id
    return {
        "campaign_id": cid,
        "name": spec.name,
        "status": record.state.value,
        "created_at": spec.created_at,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "template": spec.template,
        "language": spec.language,
        "engine": spec.engine,
        "voice": spec.voice,
        "calling_windows": spec.calling_windows,
        "timezone": spec.timezone,
        "confirm": orjson.loads(spec.confirm) if spec.confirm else None,
        "machine_detection": spec.machine_detection,
        "retry_unconfirmed": spec.retry_unconfirmed,
        "pacing": {
            "max_concurrent_calls": spec.max_concurrent_calls,
            "calls_per_minute": spec.calls_per_minute,
        },
        "rows": {"total": spec.total, "invalid": spec.invalid, "released": record.released},
        "counts": {
            "by_status": dict(sorted(statuses.items())),
            "by_outcome": dict(sorted(outcomes.items())),
            "confirmed": confirmed,
        },
        "progress": {
            "done": done,
            "total": spec.total,
            "percent": round(100.0 * done / spec.total, 1) if spec.total else 100.0,
        },
        "eta_s": eta_seconds(record, finished, remaining, now),
        "links": {
            "self": f"/campaigns/{cid}",
            "results": f"/campaigns/{cid}/results.csv",
        },
    }
