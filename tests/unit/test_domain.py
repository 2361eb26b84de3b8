"""The lifecycle rules of SPEC §3, as pure functions."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from tests.factories import make_job
from ttsqueue.domain import (
    CANCELABLE,
    TERMINAL_STATUSES,
    CallOutcome,
    HistoryEntry,
    Job,
    JobMessage,
    JobStatus,
    can_transition,
    sources_of,
)

ALLOWED = {
    ("scheduled", "queued"),
    ("queued", "processing"),
    ("processing", "calling"),
    ("processing", "failed"),
    ("processing", "queued"),
    # Held by the calling policy just before dialing until its window opens (SPEC §13).
    ("processing", "scheduled"),
    ("calling", "completed"),
    ("calling", "retrying"),
    ("calling", "failed"),
    ("retrying", "queued"),
    ("scheduled", "canceled"),
    ("queued", "canceled"),
    ("retrying", "canceled"),
}


@pytest.mark.parametrize("current", list(JobStatus))
@pytest.mark.parametrize("target", list(JobStatus))
def test_transition_table_is_the_contract(current: JobStatus, target: JobStatus) -> None:
    assert can_transition(current, target) == ((current.value, target.value) in ALLOWED)


def test_terminal_states_go_nowhere() -> None:
    for status in TERMINAL_STATUSES:
        assert status.terminal
        assert not any(can_transition(status, t) for t in JobStatus)


def test_cancelable_states() -> None:
    assert {JobStatus.SCHEDULED, JobStatus.QUEUED, JobStatus.RETRYING} == CANCELABLE
    assert sources_of(JobStatus.COMPLETED) == {JobStatus.CALLING}


def test_retryable_outcomes() -> None:
    assert {o for o in CallOutcome if o.retryable} == {
        CallOutcome.BUSY,
        CallOutcome.NO_ANSWER,
        CallOutcome.CONGESTION,
    }


def test_job_round_trips_through_a_redis_hash() -> None:
    job = make_job()
    job.metadata = {"ticket": 42, "tags": ["a", "ñ"]}
    raw = job.to_redis()
    assert all(isinstance(v, str) for v in raw.values())
    assert Job.from_redis(raw) == job


def test_job_message_rejects_foreign_shapes() -> None:
    with pytest.raises(ValidationError, match="job_id"):
        JobMessage.decode(b'{"job_id": "short"}')
    with pytest.raises(ValidationError, match="evil"):
        JobMessage.decode(b'{"job_id": "%s", "evil": 1}' % (b"a" * 36))
    message = JobMessage(job_id="a" * 36, attempt=2)
    assert JobMessage.decode(message.encode()) == message


def test_job_message_encodes_every_field_as_pydantic_would() -> None:
    """encode() lists the fields by hand: a field added to the model must be added there."""
    job = make_job(metadata={"ticket": 7})
    message = JobMessage(
        job_id=job.job_id,
        attempt=3,
        not_before_ms=1_700_000_000_000,
        tech_retries=2,
        record=job.model_dump(mode="json"),
    )
    assert orjson.loads(message.encode()) == message.model_dump(mode="json")
    assert JobMessage.decode(message.encode()) == message


@pytest.mark.parametrize("detail", [None, "accepted", 'worker w-1: ñandú "quoted" \\ 🚨'])
def test_history_row_is_what_the_model_writes(detail: str | None) -> None:
    at = "2026-12-04T17:00:00.123Z"
    row = HistoryEntry.row(JobStatus.CALLING, at, detail)
    assert row == HistoryEntry(status=JobStatus.CALLING, at=at, detail=detail).model_dump_json()
    assert HistoryEntry.model_validate_json(row).detail == detail
