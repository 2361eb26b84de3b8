"""The management API as the dashboard reads it: in the background, never waited on for long.

A snapshot takes the latest figures at once; when they are older than `REFRESH_S` a new read
starts in the background (one at a time). Only the very first read is waited for, once, and
for at most `FIRST_WAIT_S`. After a failure (plugin not enabled, wrong credentials, timeout)
the figures are dropped, so the page marks those cells unavailable rather than showing an old
or made-up number, and the next try is `RETRY_S` later.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

from ttsqueue.broker.management import ManagementClient, QueueFigures
from ttsqueue.errors import BrokerUnavailableError
from ttsqueue.logs import get_logger

log = get_logger("ttsqueue.dashboard")

REFRESH_S = 1.0
RETRY_S = 5.0
FIRST_WAIT_S = 0.25
# Figures older than this are not shown, whatever happened to the reads meant to renew them.
MAX_AGE_S = 10.0

Figures = dict[str, QueueFigures | None]


class ManagementView:
    def __init__(
        self,
        client: ManagementClient,
        names: Mapping[str, str],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.names = dict(names)
        self._clock = clock
        self._figures: Figures | None = None
        self._read_at = 0.0
        self._next_try = 0.0
        self._up: bool | None = None  # None: never tried
        self._waited = False
        self._task: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        return self.client.target.base_url

    async def latest(self) -> Figures | None:
        """Figures by queue label (None for a queue that does not exist), or None if unknown."""
        if self._task is None and self._clock() >= self._next_try:
            self._task = asyncio.create_task(self._refresh(), name="dashboard-management-read")
        if not self._waited and self._task is not None:
            self._waited = True
            await asyncio.wait({self._task}, timeout=FIRST_WAIT_S)
        if self._figures is None or self._clock() - self._read_at > MAX_AGE_S:
            return None
        return self._figures

    async def _refresh(self) -> None:
        try:
            figures = await self.client.queues(self.names)
        except BrokerUnavailableError as exc:
            if self._up is not False:
                log.warning("RabbitMQ management API unavailable", error=str(exc))
            self._up = False
            self._figures = None
            self._next_try = self._clock() + RETRY_S
            return
        finally:
            self._task = None
        if self._up is not True:
            log.info("RabbitMQ management API available", url=self.base_url)
        self._up = True
        self._figures = figures
        self._read_at = self._clock()
        self._next_try = self._read_at + REFRESH_S

    async def close(self) -> None:
        task = self._task
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        await self.client.aclose()
