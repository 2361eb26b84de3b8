"""A campaign's settings and state, as stored in one Redis hash. Pure.

A campaign is `running` (its pacer releases rows), `paused` (nothing new is dialed; calls in
progress end normally), `canceled` (rows not yet released are never called; released jobs
still waiting are canceled) or `completed` (every row released and every job finished).
"""

from __future__ import annotations

import uuid
from dataclasses import MISSING, asdict, dataclass, fields
from enum import StrEnum
from typing import Any


class CampaignState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    CANCELED = "canceled"
    COMPLETED = "completed"

    @property
    def finished(self) -> bool:
        return self in (CampaignState.CANCELED, CampaignState.COMPLETED)


# Which states each action moves a campaign from.
PAUSABLE = frozenset({CampaignState.RUNNING})
RESUMABLE = frozenset({CampaignState.PAUSED})
CANCELABLE = frozenset({CampaignState.RUNNING, CampaignState.PAUSED})

_JOB_NAMESPACE = uuid.UUID("9b3f4a52-6c1e-4f0e-9a57-2f1d8c6e0b13")


def row_job_id(campaign_id: str, index: int) -> str:
    """The job id of a campaign's row: the same whoever releases it, however many times (a
    pacer that died mid-release cannot create a second job for the row)."""
    return str(uuid.uuid5(_JOB_NAMESPACE, f"{campaign_id}:{index}"))


@dataclass(slots=True)
class CampaignSpec:
    """Everything a campaign was created with (all but the rows)."""

    campaign_id: str
    name: str
    template: str
    language: str
    engine: str
    voice: str | None
    max_retries: int
    retry_delay: int
    max_concurrent_calls: int
    calls_per_minute: int | None
    calling_windows: str | None
    timezone: str | None
    caller_id: str | None
    created_at: str
    total: int
    invalid: int
    # Calls that listen (SPEC §12): the checked `ConfirmOptions` as JSON (prompt resolved for
    # the campaign's language), the answering machine handling, whether unconfirmed retries.
    confirm: str | None = None
    machine_detection: str = "off"
    retry_unconfirmed: bool = False

    def to_fields(self) -> dict[str, str]:
        return {
            k: (str(v).lower() if isinstance(v, bool) else str(v))
            for k, v in asdict(self).items()
            if v is not None
        }

    @classmethod
    def from_fields(cls, raw: dict[str, str]) -> CampaignSpec:
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = raw.get(f.name)
            if value is None and f.default is not MISSING:
                continue  # a campaign stored before the field existed
            if f.type in ("int", "int | None"):
                values[f.name] = int(value) if value not in (None, "") else None
            elif f.type == "bool":
                values[f.name] = value == "true"
            else:
                values[f.name] = value
        return cls(**values)


@dataclass(frozen=True, slots=True)
class StoredRow:
    """A valid row as kept for release: where it came from, who to call, what to say."""

    position: int
    e164: str
    national: str
    text: str
