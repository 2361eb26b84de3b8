"""Turning a recorded call script into the messages for one live call of the double.

Ids and values the recorded client chose are replaced by the ones this client chose (ActionID,
ChannelId, channel, variables, context, caller id); the recorded `tts-out` dialplan's UserEvent
gets the `CallID` header our dialplan adds (deploy/asterisk/extensions_tts.conf). Times are
compressed by the double's time scale; a no-answer that the recording ended at its `Timeout`
ends at this client's Timeout instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from tests.doubles.recordings import Entry
from tests.doubles.scenarios import CallScript

_CALLER_ID = re.compile(r'^"?(?P<name>[^"<]*)"? *<(?P<num>[^>]*)>$')


@dataclass(frozen=True, slots=True)
class Originate:
    """What the client asked for (first value of each header, variables split)."""

    fields: Mapping[str, str]
    variables: Mapping[str, str]

    @classmethod
    def parse(cls, headers: list[tuple[str, str]]) -> Originate:
        fields: dict[str, str] = {}
        variables: dict[str, str] = {}
        for key, value in headers:
            if key.lower() == "variable":
                for pair in value.split(","):
                    name, _, val = pair.partition("=")
                    variables[name] = val
            else:
                fields.setdefault(key.lower(), value)
        return cls(fields, variables)

    def get(self, key: str, default: str = "") -> str:
        return self.fields.get(key.lower(), default)


def _recorded_variables(entry: Entry) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in entry.lines:
        if line.startswith("Variable: "):
            name, _, value = line.removeprefix("Variable: ").partition("=")
            found[name] = value
    return found


def _caller_parts(value: str) -> tuple[str, str]:
    match = _CALLER_ID.match(value.strip())
    if not match:
        return "<unknown>", "<unknown>"
    return match["name"].strip() or "<unknown>", match["num"] or "<unknown>"


@dataclass
class Adapter:
    script: CallScript
    client: Originate
    seq: int
    unique_base: str

    def __post_init__(self) -> None:
        recorded = self.script.originate
        rec_vars = _recorded_variables(recorded)
        channel_id = self.client.get("ChannelId") or None
        first = channel_id or f"{self.unique_base}.{2 * self.seq}"
        second = self.client.get("OtherChannelId") or (
            f"{channel_id};2" if channel_id else f"{self.unique_base}.{2 * self.seq + 1}"
        )
        rec_name, rec_num = _caller_parts(recorded.get("CallerID") or "")
        name, num = _caller_parts(self.client.get("CallerID"))
        exact = {
            self.script.first_leg_id: first,
            self.script.second_leg_id: second,
            recorded.get("ActionID") or "": self.client.get("ActionID"),
            recorded.get("Context") or "": self.client.get("Context"),
            "JOB_ID": "TTS_JOB_ID",
            rec_name: name,
            rec_num: num,
        }
        self._exact = {old: new for old, new in exact.items() if old}
        # With a ChannelId, Asterisk reports it on failure too (chanid_busy.log).
        self._unknown_id = channel_id or "<unknown>"
        self._texts = [
            (rec_vars.get("JOB_ID", "\0"), self.client.variables.get("TTS_JOB_ID", "")),
            (rec_vars.get("TTS_FILE", "\0"), self.client.variables.get("TTS_FILE", "")),
        ]
        rec_channel = recorded.get("Channel") or ""
        self._channel = (re.compile(re.escape(rec_channel) + r"-[0-9a-f]{8}"), rec_channel)

    def time_of(self, t: float) -> float:
        """Recorded seconds after the Originate -> seconds for this client (unscaled)."""
        recorded = float(self.script.originate.get("Timeout") or 0) / 1000
        wanted = float(self.client.get("Timeout") or 0) / 1000
        if recorded and wanted and self._ends_at_timeout() and t > 1.0:
            return t * wanted / recorded
        return t

    def _ends_at_timeout(self) -> bool:
        return any(
            e.event == "OriginateResponse" and e.get("Reason") == "3" for _, e in self.script.steps
        )

    def _value(self, key: str, value: str) -> str:
        if key == "Uniqueid" and value == "<unknown>":
            return self._unknown_id
        if value in self._exact:
            return self._exact[value]
        for old, new in self._texts:
            value = value.replace(old, new)
        pattern, rec_channel = self._channel
        suffix = f"{self.client.get('Channel')}-{self.seq:08x}"
        value = pattern.sub(suffix, value)
        return value.replace(rec_channel, self.client.get("Channel")) if rec_channel else value

    def lines(self, entry: Entry) -> list[str]:
        out: list[str] = []
        for line in entry.lines:
            key, sep, value = line.partition(":")
            if not sep:
                out.append(line)
                continue
            out.append(f"{key}: {self._value(key, value.removeprefix(' '))}")
            if key == "JobID" and entry.get("UserEvent") == "TTSDone":
                out.append(f"CallID: {self.client.variables.get('TTS_CALL_ID', '')}")
        return out
