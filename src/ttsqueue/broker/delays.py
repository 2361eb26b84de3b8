"""Delayed delivery through tts_retry and tts_hold: scheduled jobs and retries (no worker
sleeps on a job).

RabbitMQ expires messages only at the head of a queue, so a long expiration would hold back
shorter ones queued behind it. Each stay in tts_retry is therefore capped at
RETRY_HOP_SECONDS; a message that comes back before it is due is parked again for the rest.
Waits of DELAY_HOLD_SECONDS or more go through tts_hold instead, where every message lives
exactly that long: a call scheduled a day ahead costs 144 hops there instead of 5,760 here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ttsqueue.broker.publisher import Publisher
from ttsqueue.config import Settings
from ttsqueue.domain import JobMessage

# A message this close to its due time is started rather than parked again.
DUE_TOLERANCE_MS = 50


@dataclass(frozen=True, slots=True)
class DelayQueues:
    """How long one stay in each delay queue lasts (see the module docstring)."""

    hop_cap_s: float
    hold_s: float

    @classmethod
    def of(cls, settings: Settings) -> DelayQueues:
        return cls(float(settings.RETRY_HOP_SECONDS), float(settings.DELAY_HOLD_SECONDS))


def remaining_ms(message: JobMessage, now_ms: int | None = None) -> int:
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    return max(0, message.not_before_ms - now_ms)


def is_due(message: JobMessage, now_ms: int | None = None) -> bool:
    return remaining_ms(message, now_ms) <= DUE_TOLERANCE_MS


async def park(
    publisher: Publisher, work_queue: str, message: JobMessage, delays: DelayQueues
) -> None:
    """Publish `message` to wait; it returns to `work_queue`, at the latest when it is due."""
    left_s = remaining_ms(message) / 1000
    if left_s >= delays.hold_s:
        await publisher.to_hold(work_queue, message.encode(), message.job_id)
    else:
        delay_s = min(left_s, delays.hop_cap_s)
        await publisher.to_retry(work_queue, message.encode(), message.job_id, delay_s)
