"""Confirms of first messages, written together: the confirms that concurrent requests ask for
in the same event-loop turn go to Redis as one script call (`confirm_job.lua`). A caller
either waits for its own answer (`confirm`) or only hands the confirm over (`confirm_soon`,
the API's path after its 202: no task or future of its own per request). Under load an API
process makes one call for many requests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from redis.commands.core import AsyncScript

from ttsqueue.logs import get_logger
from ttsqueue.store.keys import Keys

log = get_logger("ttsqueue.store.confirms")

# A failed batch names at most this many of its jobs in its log line (and counts them all).
LOGGED_IDS = 50


@dataclass(slots=True)
class _Batch:
    args: list[str] = field(default_factory=list)
    # One per confirm, in order; None for a confirm nobody waits for.
    waiters: list[asyncio.Future[bool] | None] = field(default_factory=list)


class ConfirmBatcher:
    def __init__(self, script: AsyncScript, keys: Keys) -> None:
        self._script = script
        self._keys = keys
        self._batch: _Batch | None = None
        self._flushing: set[asyncio.Task[None]] = set()  # referenced until done

    async def confirm(self, job_id: str, idempotency_digest: str | None) -> bool:
        """True when the job was still waiting for its confirm; raises what Redis raised."""
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._join(job_id, idempotency_digest, waiter)
        return await waiter

    def confirm_soon(self, job_id: str, idempotency_digest: str | None) -> None:
        """Confirm in this turn's batch without waiting; a failure is logged (the sweeper
        writes a lost confirm once a worker has started the job)."""
        self._join(job_id, idempotency_digest, None)

    async def drain(self) -> None:
        """Wait until every confirm handed over so far is written (or has failed)."""
        while self._flushing:
            await asyncio.gather(*self._flushing, return_exceptions=True)

    def _join(
        self, job_id: str, idempotency_digest: str | None, waiter: asyncio.Future[bool] | None
    ) -> None:
        batch = self._batch
        if batch is None:
            batch = self._batch = _Batch()
            task = asyncio.get_running_loop().create_task(self._flush())
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)
        batch.args += [job_id, idempotency_digest or ""]
        batch.waiters.append(waiter)

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
            unwaited = []
            for position, waiter in enumerate(batch.waiters):
                if waiter is None:
                    unwaited.append(batch.args[2 * position])
                elif not waiter.done():
                    waiter.set_exception(exc)
            if unwaited:
                log.warning(
                    "jobs queued but not marked confirmed",
                    job_ids=unwaited[:LOGGED_IDS],
                    jobs=len(unwaited),
                    error=repr(exc),
                )
            if not isinstance(exc, Exception):
                raise
            return
        for waiter, reply in zip(batch.waiters, replies, strict=True):
            if waiter is not None and not waiter.done():
                waiter.set_result(bool(reply))
