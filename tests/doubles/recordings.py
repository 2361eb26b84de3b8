"""Loading the recorded AMI sessions and call-file lifecycles (`recordings/`)."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RECORDINGS = Path(__file__).resolve().parent / "recordings"
_ENTRY = re.compile(r"^\[\s*(?P<t>[0-9.]+)\] (?P<dir><<<|>>>)(?P<rest>.*)$")


@dataclass(frozen=True, slots=True)
class Entry:
    """One recorded step: a message sent by the client (`>>>`) or the server (`<<<`)."""

    t: float
    sent_by_client: bool
    lines: tuple[str, ...]  # header lines as recorded (trailing spaces kept)
    note: str = ""  # "BANNER b'...'" or "EOF (...)" for the non-message steps

    def get(self, name: str) -> str | None:
        wanted = name.lower() + ":"
        for line in self.lines:
            if line.lower().startswith(wanted):
                return line.split(":", 1)[1].removeprefix(" ")
        return None

    @property
    def event(self) -> str | None:
        return self.get("Event") if self.lines and self.lines[0].startswith("Event:") else None

    def wire(self) -> bytes:
        return ("\r\n".join(self.lines) + "\r\n\r\n").encode()


@functools.cache
def ami_session(name: str) -> tuple[Entry, ...]:
    """`ami/<name>.log` as a list of steps."""
    entries: list[Entry] = []
    current: dict[str, Any] | None = None
    for raw in (RECORDINGS / "ami" / f"{name}.log").read_text().split("\n"):
        match = _ENTRY.match(raw)
        if match:
            if current is not None:
                entries.append(_entry(current))
            current = {
                "t": float(match["t"]),
                "client": match["dir"] == ">>>",
                "lines": [],
                "note": match["rest"].strip(),
            }
        elif current is not None and raw:
            current["lines"].append(raw)
    if current is not None:
        entries.append(_entry(current))
    return tuple(entries)


def _entry(data: dict[str, Any]) -> Entry:
    return Entry(data["t"], data["client"], tuple(data["lines"]), data["note"])


@functools.cache
def callfile_records(name: str) -> tuple[dict[str, Any], ...]:
    """`callfiles/<name>.json`: each record has name, channel, body, t0 and events."""
    return tuple(json.loads((RECORDINGS / "callfiles" / f"{name}.json").read_text()))


def callfile_record(name: str, file_name: str) -> dict[str, Any]:
    return next(r for r in callfile_records(name) if r["name"] == file_name)
