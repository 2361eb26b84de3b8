"""The recorded life of a call file, cut to the number of attempts a file asks for.

`callfiles/callees.json` was recorded with `MaxRetries: 2` (three attempts); our files say
`MaxRetries: 0`. Asterisk writes `StartRetry: <pid> <n> (<epoch>)` when attempt n starts,
`EndRetry`/`DelayedRetry` lines while it retries, and no EndRetry for the attempt that ends the
file (compare `callees.json` busy with `maxretries0.json`). Cutting the recording keeps every
line of the first N attempts, drops the last attempt's EndRetry, and ends the file ~250 ms after
that attempt ended, as `maxretries0.json` shows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tests.doubles.recordings import callfile_record

_RETRY = re.compile(r"^(?P<kind>StartRetry|EndRetry|DelayedRetry): \d+ (?P<n>\d+) \(\d+\)$")
ARCHIVE_DELAY_S = 0.25
# Recorded case for each callee of scenarios.py (no call-file recording for the others).
RECORD_OF = {
    "answer": ("callees", "tts-answer.call"),
    "lateanswer": ("callees", "tts-answer.call"),
    "shorthangup": ("callees", "tts-answer.call"),
    "missingfile": ("callees", "tts-answer.call"),
    "busy": ("callees", "tts-busy.call"),
    "congestion": ("callees", "tts-congestion.call"),
    "noanswer": ("callees", "tts-noanswer.call"),
    "silent": ("callees", "tts-noanswer.call"),
}


@dataclass(frozen=True, slots=True)
class Step:
    t: float  # seconds after the file was moved into outgoing/
    lines: tuple[str, ...]  # retry lines Asterisk has appended so far
    status: str | None = None  # set on the last step: the file goes to outgoing_done/


def _kept(lines: list[str], attempts: int) -> tuple[list[str], bool]:
    """Lines of the first `attempts` attempts, and whether the last of them has ended."""
    kept: list[str] = []
    for line in lines:
        match = _RETRY.match(line)
        if match is None:
            continue
        kind, n = match["kind"], int(match["n"])
        if kind == "StartRetry" and n > attempts:
            return kept, True
        if kind == "EndRetry" and n >= attempts:
            return kept, True
        if kind == "DelayedRetry" and n >= attempts:
            continue
        kept.append(line)
    return kept, False


def _suffix_lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line and not line.startswith("Status:")]


def timeline(scenario: str, attempts: int) -> list[Step]:
    source, name = RECORD_OF[scenario]
    record: dict[str, Any] = callfile_record(source, name)
    body: str = record["body"]
    steps: list[Step] = []
    for event in record["events"]:
        t, what = float(event[0]), str(event[1])
        if what.startswith("appeared in outgoing_done/"):
            final: str = event[2]
            kept, _ = _kept(_suffix_lines(final[len(body) :]), attempts)
            status = final.rstrip("\n").rsplit("Status: ", 1)[1]
            steps.append(Step(t, tuple(kept), status))
            return steps
        if what.startswith("outgoing/ content changed"):
            kept, over = _kept(_suffix_lines(event[2]), attempts)
            if over:
                steps.append(Step(t + ARCHIVE_DELAY_S, tuple(kept), "Expired"))
                return steps
            steps.append(Step(t, tuple(kept)))
    raise LookupError(f"{source}/{name} never reached outgoing_done/")


def appended(lines: tuple[str, ...], status: str | None) -> str:
    """How Asterisk appends its lines: each after a blank line; Status right after the last."""
    text = "".join(f"\n{line}\n" for line in lines)
    return text + (f"Status: {status}\n" if status else "")
