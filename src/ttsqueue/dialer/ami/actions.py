"""Matching responses to the actions that asked for them, by ActionID.

Asterisk answers every action with a `Response:` message carrying the action's ActionID;
responses may interleave with events and with other actions' responses, and nothing else
orders them. Each pending action owns one future, resolved by its response or failed when the
connection ends first.
"""

from __future__ import annotations

import asyncio
import itertools

from ttsqueue.dialer.ami.protocol import AmiMessage


class PendingActions:
    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._counter = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[AmiMessage]] = {}

    def next_id(self) -> str:
        return f"{self._prefix}-{next(self._counter)}"

    def expect(self, action_id: str) -> asyncio.Future[AmiMessage]:
        if action_id in self._waiting:
            raise ValueError(f"ActionID {action_id!r} is already waiting for its response")
        future: asyncio.Future[AmiMessage] = asyncio.get_running_loop().create_future()
        self._waiting[action_id] = future
        return future

    def discard(self, action_id: str) -> None:
        future = self._waiting.pop(action_id, None)
        if future is not None and not future.done():
            future.cancel()

    def resolve(self, response: AmiMessage) -> bool:
        """Hand a response to its action; False when no action waits for it."""
        action_id = response.action_id
        future = self._waiting.pop(action_id, None) if action_id is not None else None
        if future is None or future.done():
            return False
        future.set_result(response)
        return True

    def fail_all(self, exc: Exception) -> None:
        waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            if not future.done():
                future.set_exception(exc)

    def __len__(self) -> int:
        return len(self._waiting)
