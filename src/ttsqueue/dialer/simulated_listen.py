"""What a simulated callee does with a call that listens (SPEC §12). Pure.

Numbers ending 0004 answer and press the first confirmation key while the message plays,
0005 are answering machines (a 7 s greeting and a beep), 0006 answer and press nothing; any
other number answers as a person and presses the first confirmation key once the prompt has
played. Timings are the ones measured on a real Asterisk (AMD's verdict on a greeting after
2.6 s, on a person after 1.6 s; the end of a beep found 1.5 s after it).
"""

from __future__ import annotations

from dataclasses import dataclass

from ttsqueue.dialer.listen import ListenOptions
from ttsqueue.domain import AmdInfo, CallOutcome, MachineDetection

KEY_DURING_MESSAGE = "0004"
MACHINE_ENDING = "0005"
NO_KEY = "0006"
# Measured (../shared/asterisk/BUILD.md): AMD on a greeting, on a person; greeting + beep and
# the 1.5 s of silence WaitForSilence needs after it.
MACHINE_DETECT_S = 2.6
HUMAN_DETECT_S = 1.6
GREETING_END_S = 7.6 + 1.5
KEY_AFTER_S = 1.5


@dataclass(frozen=True, slots=True)
class SimulatedListen:
    """How a simulated answered call that listens unfolds (unscaled seconds of talk)."""

    outcome: CallOutcome
    reason: str
    talk_s: float
    dtmf: str | None = None
    confirmed: bool | None = None
    amd: AmdInfo | None = None


def _amd(machine: bool) -> AmdInfo:
    if machine:
        return AmdInfo(
            status="MACHINE", cause="LONGGREETING-1500-1500", detect_ms=int(MACHINE_DETECT_S * 1000)
        )
    return AmdInfo(status="HUMAN", cause="HUMAN-808-800", detect_ms=int(HUMAN_DETECT_S * 1000))


def simulate_listen(ending: str, options: ListenOptions, message_s: float) -> SimulatedListen:
    machine = ending == MACHINE_ENDING
    amd = None
    talk = 0.5  # Wait() before the message
    if options.machine_detection is not MachineDetection.OFF:
        amd = _amd(machine)
        talk = amd.detect_ms / 1000 if amd.detect_ms else 0.0
        if machine and options.machine_detection is MachineDetection.MESSAGE:
            return SimulatedListen(
                CallOutcome.VOICEMAIL, "played", GREETING_END_S + message_s, amd=amd
            )
        if machine:
            return SimulatedListen(CallOutcome.MACHINE, amd.cause or "MACHINE", talk, amd=amd)
    if not options.confirms:
        return SimulatedListen(CallOutcome.ANSWERED, "played", talk + message_s, amd=amd)
    key = options.confirm_keys[0]
    if ending == KEY_DURING_MESSAGE:
        return SimulatedListen(
            CallOutcome.CONFIRMED, f"key_{key}", talk + min(1.5, message_s), key, True, amd
        )
    spoken = talk + message_s + options.prompt_duration_s
    if ending == NO_KEY or machine:
        return SimulatedListen(
            CallOutcome.NOT_CONFIRMED, "no_key", spoken + options.timeout_s, None, False, amd
        )
    return SimulatedListen(
        CallOutcome.CONFIRMED, f"key_{key}", spoken + KEY_AFTER_S, key, True, amd
    )
