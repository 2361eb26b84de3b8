"""A spool double: what Asterisk's pbx_spool does with the files in `outgoing/`, replayed from
the recorded lifecycles (`recordings/callfiles/*.json`, cut by `spool_timeline.py`).

Arrival, as pbx_spool's inotify loop sees it: a file renamed in (IN_MOVED_TO) is queued at
once; a file created in place (IN_CREATE then IN_OPEN) waits for its IN_CLOSE_WRITE
(`inplace.json`); a created file nobody opens (a hard link) is queued only `create_wait_s`
later; files already there when "Asterisk" starts (or is un-paused) are read from the
directory. A queued file is dialed at its mtime as read on arrival: at once when that is not
in the future (`past.json`), at that instant otherwise (`future.json`). pbx_spool compares
whole seconds (`time_t`); the double keeps the fractions, like the recordings' timings.

Dialing: Asterisk's retry lines are appended to the file while it is "dialed"; it then
reappears in `outgoing_done/` (only with `Archive: yes`; without it nothing is left:
`noarchive.json`) with those lines and its `Status:`, and leaves `outgoing/`. A file without a
Channel ends `Failed`; one with a NUL byte is deleted (`malformed.json`). A file gone by the
time it is due (withdrawn) is skipped. With `Set: TTS_REPORT=file`, the double also
writes the status file our dialplan's `failed` / `h` extensions write
(deploy/asterisk/extensions_tts.conf): the recordings used another dialplan, so this part is
the dialplan's contract, not a recording.

Everything handed over is kept (`received`, `handovers`, how each file `arrived` and when it
was `dialed`) for tests to inspect.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import re
import stat
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.doubles.inotify import Event, Watch
from tests.doubles.recordings import callfile_record
from tests.doubles.scenarios import scenario_for
from tests.doubles.spool_timeline import RECORD_OF, Step, appended, timeline

REASON_CODES = {"busy": "5", "congestion": "8", "noanswer": "3", "silent": "3"}
# pbx_spool: "We'll handle this file unless an IN_OPEN event occurs within 2 seconds".
CREATE_WAIT_S = 2.0
_EPOCH = re.compile(r"\((\d+)\)")


def _fields(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            found.setdefault(key.strip().lower(), value.strip())
        if key.strip().lower() == "set":
            name, _, val = value.strip().partition("=")
            found[f"set:{name}"] = val
    return found


@dataclass(slots=True)
class SpoolDouble:
    spool: Path
    time_scale: float = 0.05
    scenario_of: Callable[[str], str] = scenario_for
    report_after_archive: bool = False
    paused: bool = False
    create_wait_s: float = CREATE_WAIT_S
    received: dict[str, str] = field(default_factory=dict)
    handovers: collections.Counter[str] = field(default_factory=collections.Counter)
    arrived: dict[str, str] = field(
        default_factory=dict
    )  # moved_to | close_write | create | present
    dialed: dict[str, float] = field(default_factory=dict)  # wall time the file was picked up
    live_log: list[tuple[float, int]] = field(default_factory=list)
    _busy: set[str] = field(default_factory=set)
    _due: dict[str, float] = field(default_factory=dict)
    _created: dict[str, float] = field(default_factory=dict)
    _opened: set[str] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _watch: Watch | None = None

    @property
    def outgoing(self) -> Path:
        return self.spool / "outgoing"

    @property
    def done(self) -> Path:
        return self.spool / "outgoing_done"

    @property
    def live(self) -> int:
        return len(self._busy)

    async def start(self) -> SpoolDouble:
        self.outgoing.mkdir(parents=True, exist_ok=True)
        self.done.mkdir(exist_ok=True)
        # Watching before start() returns: nothing placed afterwards can be missed.
        self._watch = Watch(self.outgoing)
        self._boot()  # Asterisk starting: what is already there is read from the directory
        self._tasks.add(asyncio.create_task(self._scan(self._watch)))
        return self

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    async def _scan(self, watch: Watch) -> None:
        down = False
        while True:
            await asyncio.sleep(0.005)
            events = watch.read()
            if self.paused:
                down = True  # Asterisk is down: it sees no events
                continue
            if down:  # Asterisk is back: it reads the directory again
                down = False
                self._boot()
            for event in events:
                self._on_event(event)
            self._start_due()

    def _boot(self) -> None:
        self._due.clear()
        self._created.clear()
        self._opened.clear()
        with os.scandir(self.outgoing) as entries:
            names = [entry.name for entry in entries]
        for name in names:
            self._queue(name, "present")

    def _on_event(self, event: Event) -> None:
        kind = event.kind
        if kind == "overflow":
            self._boot()
        elif kind == "create":
            self._created.setdefault(event.name, time.time() + self.create_wait_s)
        elif kind == "open" and event.name in self._created:
            del self._created[event.name]
            self._opened.add(event.name)
        elif kind == "close_write" and event.name in self._opened:
            self._opened.discard(event.name)
            self._queue(event.name, "close_write")
        elif kind == "moved_to":
            self._queue(event.name, "moved_to")

    def _queue(self, name: str, how: str) -> None:
        """pbx_spool's queue_file: the mtime read now decides when the file is dialed."""
        if name in self._busy:
            return
        try:
            info = (self.outgoing / name).stat()
        except FileNotFoundError:
            return
        if stat.S_ISREG(info.st_mode):
            self._due[name] = info.st_mtime
            self.arrived.setdefault(name, how)

    def _start_due(self) -> None:
        now = time.time()
        for name, deadline in list(self._created.items()):
            if deadline <= now:
                del self._created[name]
                self._queue(name, "create")
        for name, when in list(self._due.items()):
            if when > now:
                continue
            del self._due[name]
            if name not in self._busy:
                self._busy.add(name)
                self.live_log.append((time.monotonic(), len(self._busy)))
                task = asyncio.create_task(self._dial(name))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _dial(self, name: str) -> None:
        path = self.outgoing / name
        try:
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                return  # taken back before it was due: Asterisk cannot stat it and skips it
            self.dialed.setdefault(name, time.time())
            text = raw.decode("utf-8", errors="replace")
            self.received.setdefault(name, text)
            self.handovers[name] += 1
            if b"\0" in raw:
                path.unlink()
                return
            fields = _fields(text)
            if "/" not in fields.get("channel", ""):
                await self._sleep(0.25)
                self._archive(path, text, fields, "Status: Failed\n")
                return
            await self._play(path, text, fields)
        finally:
            self._busy.discard(name)
            self.live_log.append((time.monotonic(), len(self._busy)))

    async def _play(self, path: Path, body: str, fields: dict[str, str]) -> None:
        scenario = self.scenario_of(fields["channel"])
        attempts = int(fields.get("maxretries", "0") or 0) + 1
        start, wall_start = time.monotonic(), time.time()
        shift = int(wall_start) - int(callfile_record(*RECORD_OF[scenario])["t0"])
        stretch = _ring_stretch(scenario, fields)
        for step in timeline(scenario, attempts):
            due = step.t * stretch if step.t > 1.0 else step.t
            await self._sleep(due - (time.monotonic() - start) / self.time_scale)
            tail = _EPOCH.sub(lambda m: f"({int(m[1]) + shift})", appended(step.lines, None))
            if step.status is None:
                _rewrite(path, body + tail)
                continue
            report = self._report(scenario, fields, step, wall_start)
            if report and not self.report_after_archive:
                self._write_report(fields, report)
            self._archive(path, body, fields, tail + f"Status: {step.status}\n")
            if report and self.report_after_archive:
                await self._sleep(0.5)
                self._write_report(fields, report)

    def _report(
        self, scenario: str, fields: dict[str, str], step: Step, wall_start: float
    ) -> str | None:
        if fields.get("set:TTS_REPORT") != "file":
            return None
        if step.status == "Expired":
            return f"reason={REASON_CODES.get(scenario, '0')}"
        answered = f"{wall_start:.3f}"
        playback = "FAILED" if scenario == "missingfile" else "SUCCESS"
        done = "" if scenario == "shorthangup" else "1"
        # The dialplan's line at answer time, then its line at the end (written together here).
        return (
            f"answered={answered}\n"
            f"answered={answered} ended={time.time():.3f} playback={playback} done={done} cause=16"
        )

    def _write_report(self, fields: dict[str, str], line: str) -> None:
        target = self.done / f"{fields.get('set:TTS_CALL_ID', '')}.status"
        with target.open("a") as handle:
            handle.write(line + "\n")

    def _archive(self, path: Path, body: str, fields: dict[str, str], tail: str) -> None:
        if fields.get("archive", "").lower() in ("yes", "true", "1"):
            (self.done / path.name).write_text(body + tail)
        path.unlink()

    async def _sleep(self, recorded_s: float) -> None:
        if recorded_s > 0:
            await asyncio.sleep(recorded_s * self.time_scale)


def _rewrite(path: Path, text: str) -> None:
    path.write_text(text)


def _ring_stretch(scenario: str, fields: dict[str, str]) -> float:
    """A no-answer ends at the file's WaitTime, not at the recorded one."""
    if scenario not in ("noanswer", "silent"):
        return 1.0
    source, name = RECORD_OF[scenario]
    recorded = _fields(callfile_record(source, name)["body"]).get("waittime", "")
    wanted = fields.get("waittime", "")
    if recorded.isdigit() and wanted.isdigit():
        return int(wanted) / int(recorded)
    return 1.0


@contextlib.asynccontextmanager
async def running_spool_double(spool: Path, **options: Any) -> AsyncIterator[SpoolDouble]:
    double = SpoolDouble(spool, **options)
    await double.start()
    try:
        yield double
    finally:
        await double.stop()
