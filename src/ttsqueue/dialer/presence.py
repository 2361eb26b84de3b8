"""A real dialer's heartbeat: its state (store/presence.py) published every BEAT_S seconds and
at once on every change, so that the API can report `asterisk` truthfully."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ttsqueue.logs import get_logger
from ttsqueue.store.presence import DialerPresence, PresenceReport

log = get_logger("ttsqueue.dialer")

BEAT_S = 2.0


async def presence_loop(
    presence: DialerPresence,
    snapshot: Callable[[], PresenceReport],
    changed: asyncio.Event,
) -> None:
    """Publish `snapshot()` every BEAT_S seconds, and at once when `changed` is set."""
    while True:
        changed.clear()
        try:
            await presence.publish(snapshot())
        except Exception as exc:  # Redis blip: the next beat tries again
            log.warning("dialer presence not published", error=repr(exc))
        _end_if_cancelled()
        try:
            async with asyncio.timeout(BEAT_S):
                await changed.wait()
        except TimeoutError:
            pass


def _end_if_cancelled() -> None:
    """redis-py's asyncio client can swallow a task's cancellation that lands mid-command
    (redis/redis-py#2028; measured with 8.1: a dialer's aclose() then waited forever for this
    loop). The task still knows it was cancelled: end it."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
