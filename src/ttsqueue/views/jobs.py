"""A job as the HTTP API and the dashboard show it: its status body and its listing row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ttsqueue.domain import HistoryEntry, Job


def job_to_status_body(job: Job, history: Sequence[HistoryEntry]) -> dict[str, Any]:
    """The `GET /tts/status/{job_id}` body, keys in the documented order."""
    has_audio = job.audio.path is not None or job.audio.url is not None
    return {
        "success": True,
        "job_id": job.job_id,
        "status": job.status.value,
        "text": job.text,
        "phone_number": job.phone_number,
        "created_at": job.created_at,
        "processed_at": job.processed_at,
        "completed_at": job.completed_at,
        "worker_id": job.worker_id,
        "error": job.error,
        "priority": job.priority.value,
        "language": job.language,
        "engine": job.engine,
        "attempts": job.attempts,
        "queue": job.queue,
        "e164": job.e164,
        "scheduled_for": job.scheduled_for,
        "updated_at": job.updated_at,
        "duration_ms": job.duration_ms,
        "audio": {
            "url": f"/tts/audio/{job.job_id}" if has_audio else None,
            "duration_s": job.audio.duration_s,
            "cached": job.audio.cached,
            "engine": job.audio.engine,
        },
        "call": {
            "backend": job.call.backend,
            "outcome": job.call.outcome.value if job.call.outcome is not None else None,
            "reason": job.call.reason,
            "hangup_cause": job.call.hangup_cause,
            "channel": job.call.channel,
            "answered_at": job.call.answered_at,
            "ended_at": job.call.ended_at,
            "talk_s": job.call.talk_s,
            "simulated": job.call.simulated,
            "dtmf": job.call.dtmf,
            "confirmed": job.call.confirmed,
            "amd": job.call.amd.model_dump() if job.call.amd else None,
        },
        "history": [
            {"status": entry.status.value, "at": entry.at, "detail": entry.detail}
            for entry in history
        ],
        "metadata": job.metadata,
        "confirm": job.confirm.model_dump() if job.confirm else None,
        "machine_detection": job.machine_detection.value,
        "retry_unconfirmed": job.retry_unconfirmed,
        "campaign_id": job.campaign_id,
    }


def job_summary(job: Job) -> dict[str, object]:
    """A job in a listing: what an overview needs, not its text or history."""
    return {
        "job_id": job.job_id,
        "status": job.status.value,
        "priority": job.priority.value,
        "phone_number": job.phone_number,
        "language": job.language,
        "attempts": job.attempts,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "outcome": job.call.outcome.value if job.call.outcome else None,
        "links": {"status": f"/tts/status/{job.job_id}"},
    }
