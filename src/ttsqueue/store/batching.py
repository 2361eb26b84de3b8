"""Scripts called in the same turn of the event loop go to Redis in one write.

Every step of a job is one script call (EVALSHA), and a worker runs dozens of jobs at once,
so many calls are ready in the same turn of its event loop. Sent one by one, each takes a
pooled connection, a write system call, a read wake-up and redis-py's per-command
bookkeeping, on the client and on Redis. Here the calls made in one turn are queued, and at
the end of that turn a flush task sends them together on one connection and hands each caller
its own reply (auto-pipelining, as ioredis and Lettuce do it). A call that found no other in
its turn is sent by its caller, without a flush task (one would cost more than the call).
Writes and replies go straight through the connection (store/wire.py), without redis-py's
per-command wrapping.

What a caller sees does not change:
- Each script still runs atomically and alone; only the transport is shared. A reply that is
  an error fails its own call, not its neighbours'.
- One caller's calls stay in order, since each is awaited before the next is made. Calls of
  different tasks were never ordered among themselves.
- A connection that drops is handled as redis-py handles one command: the calls not yet
  answered are sent again on a fresh connection, up to the client's retry budget.
- A caller that stops waiting (a timeout, a cancellation) only drops its interest in the
  reply: the flush task still reads it, so the connection stays in step.

Only scripts are batched: blocking and connection-state commands (BLPOP, WAIT, WATCH,
SUBSCRIBE, ...) must keep a connection to themselves, and they go the usual way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from ttsqueue.errors import StoreUnavailableError
from ttsqueue.store import wire

if TYPE_CHECKING:
    import redis.asyncio as aioredis

# The commands sent in a shared write.
BATCHED = frozenset({"EVALSHA", "EVAL"})

# What a queued call is answered with when no other came in its turn: its caller sends it.
_ALONE: Any = object()

# The most calls one write carries (a `gather` of thousands is sent in several).
MAX_BATCH = 256

# How long closing the client waits for writes already on their way before dropping them.
CLOSE_WAIT_S = 1.0

ErrorMapper = Callable[[BaseException], BaseException]


@dataclass(slots=True)
class _Call:
    args: tuple[Any, ...]
    options: dict[str, Any]
    reply: asyncio.Future[Any]


@dataclass
class ScriptBatcher:
    """Queues one client's script calls for the current turn and sends them in one write.

    `store_error` turns what redis-py raises into the store's own error (store/connection.py)."""

    client: aioredis.Redis
    store_error: ErrorMapper
    _queued: list[_Call] | None = None
    _closing: bool = False
    _flushing: set[asyncio.Task[None]] = field(default_factory=set)
    # Shared writes sent and how many calls they carried (a call alone in its turn is
    # counted in neither): read by the tests.
    writes: int = 0
    calls: int = 0

    async def call(self, args: tuple[Any, ...], options: dict[str, Any]) -> Any:
        """The call's reply (an error reply raised as the store's error)."""
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Any] = loop.create_future()
        if self._queued is None:
            self._queued = []
            # Runs after every callback already ready in this turn: they may add calls.
            loop.call_soon(self._flush)
        self._queued.append(_Call(args, options, reply))
        if len(self._queued) >= MAX_BATCH:
            self._flush()  # a bound on one write; the rest of the turn starts another
        result = await reply
        if result is not _ALONE:
            return result
        # Alone in its turn: sent from here, the same way, with no flush task.
        alone = _Call(args, options, loop.create_future())
        await self._send([alone], shared=False)
        return alone.reply.result()

    def _flush(self) -> None:
        queued, self._queued = self._queued, None
        if not queued:  # flushed already (full, or by aclose)
            return
        if len(queued) == 1 and not self._closing:
            # Nothing to share the write with: its caller sends it, which costs less than a
            # flush task for one call.
            _settle(queued[0], result=_ALONE)
            return
        task = asyncio.get_running_loop().create_task(self._send(queued))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _send(self, queued: list[_Call], *, shared: bool = True) -> None:
        if shared:
            self.writes += 1
            self.calls += len(queued)
        pool = self.client.connection_pool
        try:
            connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        except BaseException as exc:
            self._fail(queued, exc)
            if not isinstance(exc, Exception):
                raise
            return
        try:
            await connection.retry.call_with_retry(
                lambda: self._exchange(connection, queued),
                lambda error: connection.disconnect(),
            )
        except BaseException as exc:
            # Out of retries, or the flush itself was cancelled (the client is closing): the
            # calls still unanswered fail, and the connection, out of step, is dropped.
            await connection.disconnect()
            self._fail(queued, exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            await pool.release(connection)

    async def _exchange(self, connection: Any, queued: list[_Call]) -> None:
        """One round: the calls not yet answered, written at once, then their replies."""
        waiting = [call for call in queued if not call.reply.done()]
        if not waiting:
            return
        packed = connection.pack_commands([call.args for call in waiting])
        await wire.connected(connection)
        if wire.usable(connection):

            def on_reply(index: int, reply: Any) -> None:
                if isinstance(reply, ResponseError):
                    _settle(waiting[index], error=self.store_error(reply))
                else:
                    _settle(waiting[index], result=reply)

            await wire.exchange(connection, packed, len(waiting), on_reply)
            return
        await connection.send_packed_command(packed)
        for call in waiting:
            try:
                result = await self.client.parse_response(
                    connection, call.args[0], **dict(call.options)
                )
            except ResponseError as exc:
                # An error reply is read whole: the connection stays in step for the next.
                _settle(call, error=self.store_error(exc))
            else:
                _settle(call, result=result)

    def _fail(self, queued: list[_Call], exc: BaseException) -> None:
        """The calls still unanswered fail with the store's error (one each: a shared
        exception would collect every caller's traceback)."""
        for call in queued:
            if isinstance(exc, Exception):
                _settle(call, error=self.store_error(exc))
            else:
                _settle(call, error=StoreUnavailableError("the Redis client was closed"))

    async def aclose(self) -> None:
        """Send what is queued, let the writes on their way finish (briefly), then cancel
        what is left: nothing may reopen a connection once the client is closed."""
        self._closing = True
        self._flush()
        if not self._flushing:
            return
        _, pending = await asyncio.wait(set(self._flushing), timeout=CLOSE_WAIT_S)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)


def _settle(call: _Call, *, result: Any = None, error: BaseException | None = None) -> None:
    if call.reply.done():  # its caller stopped waiting
        return
    if error is not None:
        call.reply.set_exception(error)
    else:
        call.reply.set_result(result)
