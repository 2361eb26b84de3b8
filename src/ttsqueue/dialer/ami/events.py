"""From one AMI event to the facts it states about one of our calls. Pure.

Our calls are recognised by the `Uniqueid` Asterisk gives the originated channel: the
`ChannelId` we chose (32 hex digits of the job + a 2-digit attempt; fixed length, because
Asterisk checks ChannelId uniqueness by case-insensitive prefix). With a ChannelId it is set on
success and on failure alike (`chanid.log`, `chanid_busy.log`); the other leg of a Local channel
gets `<id>;2`, which is not ours. The dialplan's UserEvents name the call in a `CallID` header,
because the `failed` extension runs on a channel of its own.

Facts are first-seen values: recording them again (every worker's session sees every event)
changes nothing, and the order in which they arrive does not matter.
"""

from __future__ import annotations

from ttsqueue.dialer.ami.protocol import AmiMessage
from ttsqueue.dialer.dial_values import CALL_ID
from ttsqueue.dialer.listen import parse_facts

Facts = dict[str, str]

# Newstate ChannelState 6 = Up: the callee answered.
STATE_UP = "6"


def _stamp(now: float) -> str:
    return f"{now:.3f}"


def _originate_response(event: AmiMessage, now: float) -> Facts:
    facts = {
        "response": event.get("Response") or "",
        "reason": event.get("Reason") or "",
        "response_at": _stamp(now),
    }
    if facts["response"].lower() == "success":
        facts["up_at"] = _stamp(now)
        facts["channel"] = event.get("Channel") or ""
    return facts


def _hangup(event: AmiMessage, now: float) -> Facts:
    return {
        "hangup_at": _stamp(now),
        "cause": event.get("Cause") or "",
        "cause_txt": event.get("Cause-txt") or "",
        "channel": event.get("Channel") or "",
    }


def _user_event(event: AmiMessage, now: float) -> Facts:
    name = (event.get("UserEvent") or "").lower()
    if name == "ttsdone":
        return {
            "playback": (event.get("PlaybackStatus") or "").upper(),
            "done": "1",
            "playback_at": _stamp(now),
        }
    if name == "ttsfailed":
        return {"failed_reason": event.get("Reason") or ""}
    if name == "ttsreport":
        # Keys and answering machines (listen.py): only the tokens it knows are kept.
        return parse_facts(event.get("Facts") or "")
    return {}


def _facts(event: AmiMessage, now: float) -> Facts:
    name = event.name.lower()
    if name == "originateresponse":
        return _originate_response(event, now)
    if name == "hangup":
        return _hangup(event, now)
    if name == "newstate" and event.get("ChannelState") == STATE_UP:
        return {"up_at": _stamp(now), "channel": event.get("Channel") or ""}
    if name == "userevent":
        return _user_event(event, now)
    if name == "varset" and (event.get("Variable") or "").upper() == "PLAYBACKSTATUS":
        return {"playback": (event.get("Value") or "").upper(), "playback_at": _stamp(now)}
    return {}


def call_facts(event: AmiMessage, now: float) -> tuple[str, Facts] | None:
    """`(call_id, facts)` when `event` says something about one of our calls, else None."""
    if event.kind != "event":
        return None
    call_id = event.get("CallID") if event.name.lower() == "userevent" else None
    call_id = (call_id or event.get("Uniqueid") or "").lower()
    if not CALL_ID.fullmatch(call_id):
        return None
    facts = {key: value for key, value in _facts(event, now).items() if value}
    return (call_id, facts) if facts else None
