"""Which recorded callee a dialed number plays, and the recorded call scripts themselves.

Both doubles pick the recorded case from the last four digits of the dialed number, with the
endings of the simulator (SPEC §7) and of the real Asterisk's fake phones
(tests/asterisk/fake_phones.py), so a number means the same callee everywhere: 0001 busy,
0002 no answer, 0003 congestion, 0007 callee hangs up mid-message, 0008 broken audio path
(missing sound file), 0009 silent (never rings), 0010 late answer; anything else answers
(0004-0006 press keys or are machines on the fake phones: their sessions, recorded with the
shipped dialplan, are `listen_*.log`, replayed by tests/unit/test_listen_replay.py).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from tests.doubles.recordings import Entry, ami_session

BY_ENDING = {
    "0001": "busy",
    "0002": "noanswer",
    "0003": "congestion",
    "0007": "shorthangup",
    "0008": "missingfile",
    "0009": "silent",
    "0010": "lateanswer",
}
CALL_SCENARIOS = ("answer", *BY_ENDING.values())
_LAST_DIGITS = re.compile(r"([0-9]{4,})(?!.*[0-9]{4,})")
# Events of the login, not of the call, that the recordings interleave with it.
_LOGIN_EVENTS = frozenset({"SuccessfulAuth", "FullyBooted"})


def scenario_for(channel: str) -> str:
    match = _LAST_DIGITS.search(channel)
    return BY_ENDING.get(match.group(1)[-4:], "answer") if match else "answer"


@dataclass(frozen=True, slots=True)
class CallScript:
    """The server side of one recorded async Originate, times relative to the Originate."""

    name: str
    originate: Entry
    ack: Entry
    steps: tuple[tuple[float, Entry], ...]
    first_leg_id: str  # recorded Uniqueid of the originated channel (`;1`)
    second_leg_id: str  # and of the Local channel's other leg (`;2`)

    @property
    def duration(self) -> float:
        return self.steps[-1][0] if self.steps else 0.0


def _leg_id(steps: tuple[tuple[float, Entry], ...], leg: str) -> str:
    for _, entry in steps:
        if entry.event == "Newchannel" and (entry.get("Channel") or "").endswith(leg):
            return entry.get("Uniqueid") or ""
    raise LookupError(f"no {leg} Newchannel in the recording")


@functools.cache
def call_script(name: str) -> CallScript:
    entries = ami_session(name)
    start = next(i for i, e in enumerate(entries) if e.get("Action") == "Originate")
    originate = entries[start]
    action_id = originate.get("ActionID")
    ack: Entry | None = None
    steps: list[tuple[float, Entry]] = []
    for entry in entries[start + 1 :]:
        if entry.sent_by_client:
            break  # the Logoff that ended the recording
        if not entry.lines:
            continue
        if entry.lines[0].startswith("Response:") and entry.get("ActionID") == action_id:
            ack = entry
        elif entry.event not in _LOGIN_EVENTS:
            steps.append((round(entry.t - originate.t, 3), entry))
    if ack is None:
        raise LookupError(f"{name}: no response to the Originate")
    frozen = tuple(steps)
    return CallScript(name, originate, ack, frozen, _leg_id(frozen, ";1"), _leg_id(frozen, ";2"))
