"""Delayed delivery through tts_retry: scheduled jobs and retries (no worker sleeps on a job).

RabbitMQ expires messages only at the head of a queue, so a long expiration would hold back
shorter ones queued behind it. Each stay in tts_retry is therefore capped at
RETRY_HOP_SECONDS; a message that comes back before it is due is parked again for the rest.
"""

from __future__ import annotations

import time

from ttsqueue.broker.publisher import Publisher
from ttsqueue.domain import JobMessage

# A message this close to its due time is started rather than parked again.
DUE_TOLERANCE_MS = 50


def remaining_ms(message: JobMessage, now_ms: int | None = None) -> int:
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    return max(0, message.not_before_ms - now_ms)


def is_due(message: JobMessage, now_ms: int | None = None) -> bool:
    return remaining_ms(message, now_ms) <= DUE_TOLERANCE_MS


async def park(publisher: Publisher, work_queue: str, message: JobMessage, hop_cap_s: int) -> None:
    """Publish `message` to tts_retry for min(time left, hop cap); it returns to `work_queue`."""
    delay_s = min(remaining_ms(message) / 1000, float(hop_cap_s))
    await publisher.to_retry(work_queue, message.encode(), message.job_id, delay_s)
