"""Watching the spool for the calls someone waits for.

One polling task per process looks, every `poll_s`, at the few files its waiters care about
(their call file in `outgoing/` and `outgoing_done/`, and the dialplan's status file) in a
single thread hop. Looking up names instead of listing `outgoing_done/` keeps the cost flat
while the archive grows (`Archive: yes` keeps every call file there). Nothing lives only in
memory: after a crash, another process that waits for the same names sees the same files.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

MAX_READ = 64 * 1024


@dataclass(frozen=True, slots=True)
class SpoolPaths:
    outgoing: Path
    done: Path
    staging: Path

    @classmethod
    def under(cls, spool: Path) -> SpoolPaths:
        return cls(spool / "outgoing", spool / "outgoing_done", spool / "tts-staging")


@dataclass(frozen=True, slots=True)
class Sighting:
    """What one poll saw of a call file."""

    in_outgoing: bool
    done_text: str | None  # the archived call file, possibly still being written
    report_text: str | None  # the dialplan's status file
    at: float


def _read(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_READ).decode("utf-8", errors="replace")
    except FileNotFoundError:
        return None


def look(paths: SpoolPaths, call_file: str, report_file: str) -> Sighting:
    done_text = _read(paths.done / call_file)
    return Sighting(
        in_outgoing=done_text is None and (paths.outgoing / call_file).exists(),
        done_text=done_text,
        report_text=_read(paths.done / report_file),
        at=time.time(),
    )


def withdraw_if_unstarted(paths: SpoolPaths, call_file: str) -> bool:
    """Take back a call file Asterisk has not started (no StartRetry line yet)."""
    source = paths.outgoing / call_file
    text = _read(source)
    if text is None or "StartRetry" in text:
        return False
    with contextlib.suppress(FileNotFoundError):
        os.rename(source, paths.staging / f"{call_file}.withdrawn")
        return True
    return False


def overdue_unstarted(paths: SpoolPaths, now: float, after_s: float) -> tuple[str, float] | None:
    """The call file in `outgoing/` longest past its due time (its mtime) without a StartRetry
    line, and by how many seconds, if more than `after_s`: Asterisk is not taking call files
    (stopped, or pbx_spool not loaded). A file being dialed has its StartRetry line at once."""
    worst: tuple[str, float] | None = None
    with os.scandir(paths.outgoing) as entries:
        for entry in entries:
            try:
                late = now - entry.stat().st_mtime
            except FileNotFoundError:
                continue
            if not entry.name.endswith(".call") or late < max(after_s, worst[1] if worst else 0):
                continue
            text = _read(Path(entry.path))
            if text is not None and "StartRetry" not in text:
                worst = (entry.name, late)
    return worst


class SpoolWatcher:
    def __init__(self, paths: SpoolPaths, poll_s: float = 0.25) -> None:
        self.paths = paths
        self.poll_s = poll_s
        self._wanted: dict[tuple[str, str], list[asyncio.Future[Sighting]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def sight(self, call_file: str, report_file: str) -> Sighting:
        """What the next poll sees of these files."""
        future: asyncio.Future[Sighting] = asyncio.get_running_loop().create_future()
        self._wanted.setdefault((call_file, report_file), []).append(future)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll(), name="spool-watcher")
        return await future

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])
        for futures in self._wanted.values():
            for future in futures:
                future.cancel()
        self._wanted.clear()

    async def _poll(self) -> None:
        while self._wanted:
            await asyncio.sleep(self.poll_s)
            wanted, self._wanted = self._wanted, {}
            try:
                seen = await asyncio.to_thread(self._look_all, list(wanted))
            except OSError as exc:
                for futures in wanted.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                continue
            for names, futures in wanted.items():
                for future in futures:
                    if not future.done():
                        future.set_result(seen[names])

    def _look_all(self, names: list[tuple[str, str]]) -> dict[tuple[str, str], Sighting]:
        return {pair: look(self.paths, *pair) for pair in names}
