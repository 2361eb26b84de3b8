"""The AMI double's answers to actions, taken from the recordings instead of written by hand.

Each answer is what the real Asterisk sent back to one recorded action: its header lines, how
long after the action it came, and whether the server closed the connection right after. When
the double replays one, the ActionID line carries the client's id (or is left out when the
client sent none, as Asterisk does).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from tests.doubles.recordings import Entry, ami_session


@dataclass(frozen=True, slots=True)
class Answer:
    session: str
    lines: tuple[str, ...]
    delay_s: float  # recorded seconds between the action and this answer
    closes: bool  # the server closed the connection right after it

    def get(self, name: str) -> str | None:
        return Entry(0.0, False, self.lines).get(name)

    def wire(self, action_id: str, **values: str) -> bytes:
        """The answer for a client whose action had `action_id`; `values` replace headers."""
        out: list[str] = []
        for line in self.lines:
            key = line.split(":", 1)[0]
            if key == "ActionID":
                if action_id:
                    out.append(f"ActionID: {action_id}")
            elif key in values:
                out.append(f"{key}: {values[key]}")
            else:
                out.append(line)
        return ("\r\n".join(out) + "\r\n\r\n").encode()


@functools.cache
def recorded_answer(session: str, action_id: str) -> Answer:
    """The response Asterisk sent in `ami/<session>.log` to the action with `action_id`."""
    entries = ami_session(session)
    action = next(e for e in entries if e.sent_by_client and e.get("ActionID") == action_id)
    start = entries.index(action)
    for index in range(start + 1, len(entries)):
        entry = entries[index]
        if entry.sent_by_client or not entry.lines or not entry.lines[0].startswith("Response:"):
            continue
        if entry.get("ActionID") != action_id:
            continue
        after = entries[index + 1] if index + 1 < len(entries) else None
        closes = after is not None and after.note.startswith("EOF")
        return Answer(session, entry.lines, round(entry.t - action.t, 3), closes)
    raise LookupError(f"{session}: no answer to {action_id}")


# Login (answer.log) and its refusals: a wrong secret and an unknown user get the same answer
# after about 1 s, then the connection is closed (auth_wrongsecret, auth_nouser, badlogin).
LOGIN_ACCEPTED = ("answer", "login-1")
LOGIN_REFUSED = ("auth_wrongsecret", "bad-secret")
LOGIN_REFUSALS = (LOGIN_REFUSED, ("auth_nouser", "bad-user"), ("badlogin", "badlogin"))
# Any action before login, and actions the user's `write` permissions do not cover.
PERMISSION_DENIED = ("auth_unauth_action", "pre-login")
GOODBYE = ("answer", "bye")
PONG = ("misc", "ping-1")
UNKNOWN_ACTION = ("misc", "x-1")
# Originate's synchronous errors.
NO_SUCH_EXTENSION = ("misc", "c-badtarget")
NO_CHANNEL = ("misc", "d-nochannel")
BAD_TIMEOUT = ("misc", "e-badtimeout")
ORIGINATE_QUEUED = ("answer", "orig-job-answer-1")


def answer(which: tuple[str, str]) -> Answer:
    return recorded_answer(*which)
