"""A spool double: what Asterisk's pbx_spool does with the files in `outgoing/`, replayed from
the recorded lifecycles (`recordings/callfiles/*.json`, cut by `spool_timeline.py`).

A file is picked up once its mtime is not in the future; Asterisk's retry lines are appended to
it while it is "dialed"; it then reappears in `outgoing_done/` (only with `Archive: yes`) with
those lines and its `Status:`, and leaves `outgoing/`. A file without a Channel ends `Failed`;
one with a NUL byte is deleted (`malformed.json`). With `Set: TTS_REPORT=file`, the double also
writes the status file our dialplan's `failed` / `h` extensions write
(deploy/asterisk/extensions_tts.conf): the recordings used another dialplan, so this part is
the dialplan's contract, not a recording.

Everything handed over is kept (`received`, `handovers`) for tests to inspect.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.doubles.recordings import callfile_record
from tests.doubles.scenarios import scenario_for
from tests.doubles.spool_timeline import RECORD_OF, Step, appended, timeline

REASON_CODES = {"busy": "5", "congestion": "8", "noanswer": "3", "silent": "3"}
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
    received: dict[str, str] = field(default_factory=dict)
    handovers: collections.Counter[str] = field(default_factory=collections.Counter)
    live_log: list[tuple[float, int]] = field(default_factory=list)
    _busy: set[str] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

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
        self._tasks.add(asyncio.create_task(self._scan()))
        return self

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _scan(self) -> None:
        while True:
            await asyncio.sleep(0.005)
            if self.paused:
                continue
            now = time.time()
            with os.scandir(self.outgoing) as entries:
                due = [e.name for e in entries if e.is_file() and e.stat().st_mtime <= now]
            for name in due:
                if name not in self._busy:
                    self._busy.add(name)
                    self.live_log.append((time.monotonic(), len(self._busy)))
                    task = asyncio.create_task(self._dial(name))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

    async def _dial(self, name: str) -> None:
        path = self.outgoing / name
        try:
            raw = path.read_bytes()
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
        answered = int(wall_start)
        playback = "FAILED" if scenario == "missingfile" else "SUCCESS"
        done = "" if scenario == "shorthangup" else "1"
        return (
            f"answered={answered} ended={int(time.time())} playback={playback} done={done} cause=16"
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
