"""Background loops that must not die: restarted (after a short pause) whatever ends them,
cancellation excepted."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ttsqueue.logs import get_logger

log = get_logger("ttsqueue")

RESTART_PAUSE_S = 1.0


async def keep_running(
    name: str, loop: Callable[[], Awaitable[None]], pause_s: float = RESTART_PAUSE_S
) -> None:
    """Run `loop()` again and again: a loop that raises or returns is logged and restarted."""
    while True:
        try:
            await loop()
            log.error("background task ended; restarting it", task=name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("background task died; restarting it", task=name, error=repr(exc))
        await asyncio.sleep(pause_s)
