"""A job's status change as `store/lua/transition.lua` reads it: hops along SPEC §3's
transitions and what changes with the last one. Built only by `store/lifecycle.py`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ttsqueue.domain import CallOutcome, HistoryEntry, Job, JobStatus, iso
from ttsqueue.store.keys import Keys
from ttsqueue.store.metrics import END_TO_END, PROCESSING, Observation
from ttsqueue.store.workers import WORKER_STATS_TTL_S


@dataclass(frozen=True, slots=True)
class Hop:
    sources: frozenset[JobStatus]
    target: JobStatus
    detail: str | None
    fields: dict[str, str] = field(default_factory=dict)
    optional: bool = False


@dataclass(slots=True)
class Change:
    """A status change (one or more hops) and what changes with its last hop."""

    hops: list[Hop]
    fields: dict[str, str] = field(default_factory=dict)
    outcome: CallOutcome | None = None
    metrics: dict[str, int] = field(default_factory=dict)
    worker_id: str | None = None
    worker_incr: dict[str, int] = field(default_factory=dict)
    finished: str | None = None
    observe: list[Observation] = field(default_factory=list)
    # Folded into the same script call (see transition.lua): a worker's step, one round trip.
    extras: dict[str, Any] = field(default_factory=dict)


def encode(change: Change, keys: Keys, now: datetime) -> dict[str, Any]:
    """The change as transition.lua reads it (once packed as MessagePack), made at `now`."""
    at = iso(now) or ""
    payload: dict[str, Any] = {"hops": [_hop_row(hop, at) for hop in change.hops], "at": at}
    payload.update(change.extras)
    if change.fields:
        payload["set"] = change.fields
    if change.outcome is not None:
        payload["outcome"] = change.outcome.value
    if change.metrics:
        payload["metrics"] = change.metrics
    if change.hops[-1].target.terminal:
        payload["minute"] = str(int(now.timestamp()) // 60)
    if change.finished is not None:
        payload["finished"] = change.finished
    if change.observe:
        payload["observe"] = [
            {"key": keys.histogram(o.name), "field": o.field, "us": o.microseconds}
            for o in change.observe
        ]
    if change.worker_id and change.worker_incr:
        payload["worker"] = keys.worker_stats(change.worker_id)
        payload["worker_incr"] = change.worker_incr
        payload["worker_ttl"] = WORKER_STATS_TTL_S
    return payload


def count_processing(
    change: Change, job: Job, now: datetime, worker_id: str, succeeded: bool
) -> None:
    """What a worker's ending adds: processing time, latency histograms, worker counters."""
    started = datetime.fromisoformat(job.processed_at) if job.processed_at else now
    duration_ms = max(0, int((now - started).total_seconds() * 1000))
    accepted = datetime.fromisoformat(job.created_at)
    change.observe = [
        Observation(PROCESSING, duration_ms / 1000),
        Observation(END_TO_END, max(0.0, (now - accepted).total_seconds())),
    ]
    change.fields["duration_ms"] = str(duration_ms)
    change.metrics = {
        "processed": 1,
        "succeeded" if succeeded else "failed": 1,
        "processing_ms_total": duration_ms,
    }
    change.worker_id = worker_id
    change.worker_incr = {"processed": 1} if succeeded else {"processed": 1, "failed": 1}


def _hop_row(hop: Hop, at: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "from": sorted(hop.sources),
        "to": hop.target.value,
        "entry": HistoryEntry.row(hop.target, at, hop.detail),
    }
    if hop.detail is not None:
        row["detail"] = hop.detail
    if hop.fields:
        row["set"] = hop.fields
    if hop.optional:
        row["optional"] = True
    return row
