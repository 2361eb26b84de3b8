"""Calls that listen (SPEC §12): what the dialplan reports about keys and answering machines,
and the outcome it makes of an answered call. Pure, shared by both Asterisk backends.

The dialplan (deploy/asterisk/extensions_tts.conf) reports facts as `key=value` tokens, in a
`UserEvent(TTSReport)` for AMI and as lines of the call's status file for call files; each key
is written once per call, so reports are first-seen facts like AMI's own events:

    amd=MACHINE amd_cause=LONGGREETING-1500-1500 amd_from=<epoch> amd_at=<epoch>
    beep_end=<epoch> wait=SILENCE          (machine, message mode: the greeting and beep ended)
    round<n>=<epoch> plays<n>=m|p          (round n of the confirmation starts: message+prompt
                                            or prompt only)
    key<n>=<digit> key<n>_at=<epoch>       (the key pressed in round n)
    confirm=<result> dtmf=<keys> confirm_at=<epoch>
    hung=<epoch> amd=<status>              (the `h` extension: the call ended; AMD's status
                                            is repeated, so that none at all means that
                                            AMD() never ran: app_amd is not loaded)

Epochs are Asterisk's clock (`STRFTIME(,,%s.%3q)`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ttsqueue.domain import AmdInfo, CallOutcome, MachineDetection

# Confirmation results the dialplan reports (`confirm=`).
CONFIRMED = "confirmed"
NOT_CONFIRMED_RESULTS = frozenset({"no_key", "wrong_key", "repeat_limit"})
# Keys a callee can press that the dialplan can test and report safely ('#' ends Read()).
KEY_CHARS = re.compile(r"[0-9*]")
KEYS = re.compile(r"[0-9*]{1,4}")
# What one report token may look like: nothing else is recorded.
_FACT_KEY = re.compile(
    r"amd|amd_cause|amd_from|amd_at|beep_end|wait|round\d{1,2}|plays\d{1,2}"
    r"|key\d{1,2}|key\d{1,2}_at|confirm|dtmf|confirm_at|hung"
)
_FACT_VALUE = re.compile(r"[A-Za-z0-9_.*-]{1,64}")
# AMD's verdicts that mean a person (NOTSURE included: better to speak to someone who may be
# there than to hang up on them); `MACHINE` is the only one that means a machine.
MACHINE = "MACHINE"
# The reason of a call that asked for AMD on an Asterisk without it (app_amd not loaded).
AMD_UNAVAILABLE = "amd_unavailable"
# How long AMD() may listen (amd.conf's total_analysis_time, default 5 s) and WaitForSilence
# may wait for the end of a greeting (its timeout in the dialplan).
AMD_MAX_S = 5.0
BEEP_WAIT_MAX_S = 20.0


@dataclass(frozen=True, slots=True)
class ListenOptions:
    """What a call listens for, as the dialplan receives it (validated in `dial_values`)."""

    machine_detection: MachineDetection = MachineDetection.OFF
    confirm_keys: str = ""
    repeat_key: str = ""
    max_repeats: int = 0
    timeout_s: int = 5
    # Prompt audio path WITHOUT extension (as Read() wants it), and its length.
    prompt_path: str = ""
    prompt_duration_s: float = 0.0

    @property
    def confirms(self) -> bool:
        return bool(self.confirm_keys)

    @property
    def active(self) -> bool:
        return self.confirms or self.machine_detection is not MachineDetection.OFF

    def extra_time_s(self, message_s: float) -> float:
        """The longest a call can last beyond the message itself, for the deadlines of a call
        whose end was not seen."""
        extra = 0.0
        if self.machine_detection is not MachineDetection.OFF:
            extra += AMD_MAX_S + BEEP_WAIT_MAX_S
        if self.confirms:
            rounds = 1 + self.max_repeats
            extra += rounds * (message_s + self.prompt_duration_s + self.timeout_s)
        return extra


def parse_facts(text: str) -> dict[str, str]:
    """The allowed `key=value` tokens of one report; the first value of a key wins."""
    facts: dict[str, str] = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        if sep and _FACT_KEY.fullmatch(key) and _FACT_VALUE.fullmatch(value):
            facts.setdefault(key, value)
    return facts


def _num(facts: Mapping[str, str], key: str) -> float | None:
    try:
        return float(facts[key])
    except (KeyError, ValueError):
        return None


def amd_verdict(facts: Mapping[str, str]) -> AmdInfo | None:
    status = facts.get("amd")
    if not status:
        return None
    started, decided = _num(facts, "amd_from"), _num(facts, "amd_at")
    detect_ms = None
    if started is not None and decided is not None:
        detect_ms = max(0, round((decided - started) * 1000))
    return AmdInfo(status=status, cause=facts.get("amd_cause"), detect_ms=detect_ms)


def keys_pressed(facts: Mapping[str, str]) -> str:
    """Every key, in the order pressed (one per round)."""
    if facts.get("dtmf"):
        return facts["dtmf"]
    rounds = sorted(int(key[3:]) for key in facts if re.fullmatch(r"key\d+", key))
    return "".join(facts[f"key{n}"] for n in rounds)


@dataclass(frozen=True, slots=True)
class Heard:
    """What a listening call came to, before it is put into a CallResult."""

    outcome: CallOutcome
    reason: str
    dtmf: str | None
    confirmed: bool | None
    amd: AmdInfo | None


def _last_round(facts: Mapping[str, str]) -> int:
    rounds = [int(key[5:]) for key in facts if re.fullmatch(r"round\d+", key)]
    return max(rounds, default=0)


def _hung_while_speaking(
    facts: Mapping[str, str], options: ListenOptions, message_s: float, ended_at: float | None
) -> bool:
    """Whether the callee left while the message or prompt of the last round still played."""
    last = _last_round(facts)
    hung = _num(facts, "hung") or ended_at
    if last == 0 or hung is None:
        return True  # before the first round: during the message
    start = _num(facts, f"round{last}") or 0.0
    length = options.prompt_duration_s
    if facts.get(f"plays{last}") != "p":
        length += message_s
    return hung < start + length


def _confirmation(
    facts: Mapping[str, str],
    options: ListenOptions,
    message_s: float,
    ended_at: float | None,
    amd: AmdInfo | None,
) -> Heard:
    dtmf = keys_pressed(facts) or None
    result = facts.get("confirm")
    if result == CONFIRMED:
        return Heard(CallOutcome.CONFIRMED, f"key_{(dtmf or '?')[-1]}", dtmf, True, amd)
    if result in NOT_CONFIRMED_RESULTS:
        return Heard(CallOutcome.NOT_CONFIRMED, result or "", dtmf, False, amd)
    if _hung_while_speaking(facts, options, message_s, ended_at):
        return Heard(CallOutcome.HANGUP_DURING_MESSAGE, "hangup", dtmf, False, amd)
    return Heard(CallOutcome.NOT_CONFIRMED, "hangup_waiting_for_key", dtmf, False, amd)


def heard(
    facts: Mapping[str, str],
    options: ListenOptions,
    *,
    played_to_end: bool,
    message_s: float,
    ended_at: float | None,
) -> Heard:
    """The outcome of an answered call that listened, from the dialplan's reports."""
    amd = amd_verdict(facts)
    if amd is None and options.machine_detection is not MachineDetection.OFF:
        # AMD() does not exist in this Asterisk (no amd.conf): the dialplan stopped there.
        return Heard(CallOutcome.FAILED, AMD_UNAVAILABLE, None, None, None)
    if amd is not None and amd.status == MACHINE:
        if options.machine_detection is MachineDetection.MESSAGE:
            if played_to_end:
                return Heard(CallOutcome.VOICEMAIL, "played", None, None, amd)
            return Heard(CallOutcome.HANGUP_DURING_MESSAGE, "voicemail", None, None, amd)
        if options.machine_detection is not MachineDetection.OFF:
            return Heard(CallOutcome.MACHINE, amd.cause or MACHINE, None, None, amd)
    if options.confirms:
        return _confirmation(facts, options, message_s, ended_at, amd)
    if played_to_end:
        return Heard(CallOutcome.ANSWERED, "played", None, None, amd)
    return Heard(CallOutcome.HANGUP_DURING_MESSAGE, "hangup", None, None, amd)
