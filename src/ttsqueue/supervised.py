"""Background loops that must not die: restarted (after a short pause) whatever ends them,
cancellation excepted."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("ttsqueue")

RESTART_PAUSE_S = 1.0


async def keep_running(
    name: str, loop: Callable[[], Awaitable[None]], pause_s: float = RESTART_PAUSE_S
) -> None:
    """Run `loop()` again and again: a loop that raises or returns is logged and restarted."""
    while True:
        try:
            await loop()
            log.error("background task %s ended; restarting it", name)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("background task %s died (%r); restarting it", name, exc)
        await asyncio.sleep(pause_s)
