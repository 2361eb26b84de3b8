"""The job-state writes of one unit of work (a worker's delivery, an API submission), kept so
that they can be made again on a new Redis master (store/fence.py says when).

`JobLifecycle` notes a redo for every write it makes while a journal is open in the current
task. Every redo is safe to run twice: status changes are guarded by the status they start
from (transition.lua), a claim is `SET NX` with the same owner, a creation finds the record
it made.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass

# Makes one write again, on whatever master the client now talks to.
Redo = Callable[[], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Entry:
    redo: Redo
    # For a status change: the `updated_at` it wrote and the status it left the record in
    # (together they tell whether the record moved on since: a time alone is to the
    # millisecond, and the record's creation may share its millisecond with the first change).
    at: str | None = None
    status: str | None = None


_open: ContextVar[list[Entry] | None] = ContextVar("ttsqueue_store_journal", default=None)


def note(redo: Redo, *, at: str | None = None, status: str | None = None) -> None:
    """Keep `redo` in the journal open in this task, if any."""
    entries = _open.get()
    if entries is not None:
        entries.append(Entry(redo, at, status))


@contextlib.contextmanager
def journaling() -> Iterator[list[Entry]]:
    """Open a journal for the writes made inside the block; its entries."""
    entries: list[Entry] = []
    token = _open.set(entries)
    try:
        yield entries
    finally:
        _open.reset(token)


async def replay(entries: list[Entry]) -> None:
    """Make the writes again, in order, without noting them a second time."""
    with paused():
        for entry in list(entries):
            await entry.redo()


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Writes inside the block are not noted (they restore, they are not the work)."""
    token = _open.set(None)
    try:
        yield
    finally:
        _open.reset(token)
