"""Confirms of first messages, written together: the confirms that concurrent requests ask for
in the same event-loop turn go to Redis as one script call (`confirm_job.lua`), each caller
still waiting for its own answer. Under load an API process makes one call for many requests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from redis.commands.core import AsyncScript

from ttsqueue.store.keys import Keys


@dataclass(slots=True)
class _Batch:
    args: list[str] = field(default_factory=list)
    waiters: list[asyncio.Future[bool]] = field(default_factory=list)


class ConfirmBatcher:
    def __init__(self, script: AsyncScript, keys: Keys) -> None:
        self._script = script
        self._keys = keys
        self._batch: _Batch | None = None
        self._flushing: set[asyncio.Task[None]] = set()  # referenced until done

    async def confirm(self, job_id: str, idempotency_digest: str | None) -> bool:
        """True when the job was still waiting for its confirm; raises what Redis raised."""
        if self._batch is None:
            self._batch = _Batch()
            task = asyncio.get_running_loop().create_task(self._flush())
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)
        batch = self._batch
        batch.args += [job_id, idempotency_digest or ""]
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        batch.waiters.append(waiter)
        return await waiter

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # the rest of this turn's confirms join the batch
        batch, self._batch = self._batch, None
        if batch is None:
            return
        try:
            replies = await self._script(
                keys=[self._keys.unconfirmed], args=[self._keys.prefix, *batch.args]
            )
        except BaseException as exc:
            for waiter in batch.waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for waiter, reply in zip(batch.waiters, replies, strict=True):
            if not waiter.done():
                waiter.set_result(bool(reply))
