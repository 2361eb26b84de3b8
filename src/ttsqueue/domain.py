"""The job and its lifecycle: statuses, outcomes, allowed transitions. Pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

import orjson
from pydantic import BaseModel, ConfigDict, Field


class JobStatus(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    PROCESSING = "processing"
    CALLING = "calling"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED})

# from -> allowed destinations (SPEC §3). processing -> queued is a technical retry;
# processing -> scheduled a job held until its calling window opens (SPEC §13).
TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.SCHEDULED: frozenset({JobStatus.QUEUED, JobStatus.CANCELED}),
    JobStatus.QUEUED: frozenset({JobStatus.PROCESSING, JobStatus.CANCELED}),
    JobStatus.PROCESSING: frozenset(
        {JobStatus.CALLING, JobStatus.FAILED, JobStatus.QUEUED, JobStatus.SCHEDULED}
    ),
    JobStatus.CALLING: frozenset({JobStatus.COMPLETED, JobStatus.RETRYING, JobStatus.FAILED}),
    JobStatus.RETRYING: frozenset({JobStatus.QUEUED, JobStatus.CANCELED}),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELED: frozenset(),
}


def can_transition(current: JobStatus, target: JobStatus) -> bool:
    return target in TRANSITIONS[current]


def sources_of(target: JobStatus) -> frozenset[JobStatus]:
    """Every status from which `target` may be reached."""
    return frozenset(src for src, dests in TRANSITIONS.items() if target in dests)


CANCELABLE = sources_of(JobStatus.CANCELED)


class DialerHealth(StrEnum):
    """What `/health` reports as `asterisk`: the telephony backend's state."""

    CONNECTED = "connected"
    NOT_CONFIGURED = "not_configured"
    DISCONNECTED = "disconnected"


class Priority(StrEnum):
    NORMAL = "normal"
    HIGH = "high"

    @property
    def queue_label(self) -> str:
        """The seed's name for the queue a priority goes to (`queue` in responses)."""
        return "priority" if self is Priority.HIGH else "normal"


class CallOutcome(StrEnum):
    ANSWERED = "answered"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CONGESTION = "congestion"
    FAILED = "failed"
    CANCELED = "canceled"
    # Calls that listen (SPEC §12).
    CONFIRMED = "confirmed"
    NOT_CONFIRMED = "not_confirmed"
    MACHINE = "machine"
    VOICEMAIL = "voicemail"
    HANGUP_DURING_MESSAGE = "hangup_during_message"
    # Never dialed: the number was put on the do-not-call list after submission.
    SUPPRESSED = "suppressed"

    @property
    def retryable(self) -> bool:
        """Telephony outcomes that the retry policy tries again after `retry_delay` (whatever
        the job asked; `listen.retry_on` adds the ones a job may choose to retry)."""
        return self in {CallOutcome.BUSY, CallOutcome.NO_ANSWER, CallOutcome.CONGESTION}

    @property
    def delivered(self) -> bool:
        """Someone (or a mailbox) was on the line and the message was played, in part or in
        full: the job ends `completed` unless the job asked for a retry."""
        return self in DELIVERED_OUTCOMES


DELIVERED_OUTCOMES = frozenset(
    {
        CallOutcome.ANSWERED,
        CallOutcome.CONFIRMED,
        CallOutcome.NOT_CONFIRMED,
        CallOutcome.VOICEMAIL,
        CallOutcome.HANGUP_DURING_MESSAGE,
    }
)


class MachineDetection(StrEnum):
    OFF = "off"
    HANGUP = "hangup"
    MESSAGE = "message"
    RETRY = "retry"


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 UTC with millisecond precision and a `Z`, or None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def attempt_call_id(job_id: str, attempt: int) -> str:
    """Fixed-length id of one call attempt: the job's 32 hex digits + a 2-digit attempt."""
    return f"{job_id.replace('-', '')}{attempt:02d}"


class AudioInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str | None = None
    path: str | None = None
    duration_s: float | None = None
    cached: bool = False
    engine: str | None = None
    cache_key: str | None = None
    # The confirmation prompt, synthesized with the message (same engine and voice).
    prompt_path: str | None = None
    prompt_duration_s: float | None = None
    prompt_cache_key: str | None = None


class ConfirmOptions(BaseModel):
    """Keypress confirmation of a call (SPEC §12), as validated by the API."""

    model_config = ConfigDict(extra="ignore")

    digits: str = "1"
    repeat_digit: str | None = "2"
    max_repeats: int = 2
    timeout_s: int = 5
    prompt: str


class AmdInfo(BaseModel):
    """Asterisk's answering machine verdict: AMDSTATUS, AMDCAUSE, and how long it took."""

    model_config = ConfigDict(extra="ignore")

    status: str
    cause: str | None = None
    detect_ms: int | None = None


class CallInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")

    backend: str | None = None
    outcome: CallOutcome | None = None
    reason: str | None = None
    hangup_cause: str | None = None
    channel: str | None = None
    started_at: str | None = None
    answered_at: str | None = None
    ended_at: str | None = None
    talk_s: float | None = None
    simulated: bool = False
    # Calls that listen: keys pressed (in order), whether confirmed, the AMD verdict.
    dtmf: str | None = None
    confirmed: bool | None = None
    amd: AmdInfo | None = None


class HistoryEntry(BaseModel):
    status: JobStatus
    at: str
    detail: str | None = None

    @staticmethod
    def row(status: JobStatus, at: str, detail: str | None) -> str:
        """The entry as a history row holds it: the JSON `model_dump_json()` writes, without
        building the model first (every status change writes one or more)."""
        return orjson.dumps({"status": status.value, "at": at, "detail": detail}).decode()


class Job(BaseModel):
    """A job record as stored in Redis (one hash) and returned by the status route."""

    model_config = ConfigDict(extra="ignore")

    job_id: str
    status: JobStatus
    text: str
    phone_number: str
    e164: str
    dial_number: str
    language: str
    engine: str
    voice: str | None = None
    priority: Priority = Priority.NORMAL
    max_retries: int = 2
    retry_delay: int = 60
    caller_id: str | None = None
    callback_url: str | None = None
    metadata: dict[str, Any] | None = None
    confirm: ConfirmOptions | None = None
    machine_detection: MachineDetection = MachineDetection.OFF
    retry_unconfirmed: bool = False
    # Calling policy of the job (SPEC §13): overrides of the global rules.
    calling_windows: str | None = None
    timezone: str | None = None
    ignore_calling_windows: bool = False
    campaign_id: str | None = None
    created_at: str
    updated_at: str
    processed_at: str | None = None
    completed_at: str | None = None
    scheduled_for: str | None = None
    worker_id: str | None = None
    error: str | None = None
    attempts: int = 0
    # Epoch ms when the next call attempt is due (while retrying).
    next_attempt_ms: int | None = None
    duration_ms: int | None = None
    audio: AudioInfo = Field(default_factory=AudioInfo)
    call: CallInfo = Field(default_factory=CallInfo)

    @property
    def queue(self) -> str:
        return self.priority.queue_label

    # Redis hashes hold strings: scalars as text, nested values as JSON; None is omitted.
    _JSON_FIELDS: ClassVar[tuple[str, ...]] = ("metadata", "audio", "call", "confirm")

    def to_redis(self) -> dict[str, str]:
        json_fields = self._JSON_FIELDS
        return {
            name: orjson.dumps(value).decode() if name in json_fields else str(value)
            for name, value in self.model_dump(mode="json").items()
            if value is not None
        }

    @classmethod
    def from_redis(cls, raw: dict[str, str]) -> Job:
        data: dict[str, Any] = dict(raw)
        for name in cls._JSON_FIELDS:
            if name in data:
                data[name] = orjson.loads(data[name])
        return cls.model_validate(data)


class JobMessage(BaseModel):
    """The body of a work-queue message: which job, which call attempt, and when it is due."""

    model_config = ConfigDict(extra="forbid")

    v: int = 1
    job_id: str = Field(min_length=36, max_length=36)
    attempt: int = Field(default=1, ge=1, le=100)
    # Epoch milliseconds before which the job must not start (scheduled or delayed retry).
    not_before_ms: int = 0
    # Technical retries already spent on this attempt.
    tech_retries: int = Field(default=0, ge=0)
    # The job as it was accepted (`Job` fields, JSON): what a worker rebuilds the record from
    # when Redis lost it (a write not yet replicated when a failover promoted a replica).
    record: dict[str, Any] | None = None

    def encode(self) -> bytes:
        # The fields written out by hand: pydantic's model_dump would first copy `record`
        # (the whole job) into a new dict, only for orjson to encode it.
        return orjson.dumps(
            {
                "v": self.v,
                "job_id": self.job_id,
                "attempt": self.attempt,
                "not_before_ms": self.not_before_ms,
                "tech_retries": self.tech_retries,
                "record": self.record,
            }
        )

    @classmethod
    def decode(cls, body: bytes) -> JobMessage:
        return cls.model_validate_json(body)
