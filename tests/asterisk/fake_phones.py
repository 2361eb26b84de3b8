"""The fake phones: callees played by the private Asterisk's dialplan, chosen by the number.

Workers dial them with `ASTERISK_CHANNEL=Local/{number}@fake-phone`: Asterisk runs the
`fake-phone` context as the callee (the `;2` leg of the Local channel) while tts-queue's own
`tts-playback` runs as the answered caller (the `;1` leg), as on a real trunk. The last four
digits of the national number pick the behaviour, the same endings as the simulator's and the
replay doubles' (SPEC §7, §12): `3005550001` is busy everywhere.

Every dial writes one NOTICE line to Asterisk's own log, `FAKE-PHONE rings number=<n>
call=<TTS_CALL_ID>`: `PrivateAsterisk.rings()` counts dials from it.

Keys, answering machines, humans and silence are here for the calls that listen (SPEC §12):
the `fake-probe` context (a caller that runs Read() or AMD()) shows what Asterisk makes of
each of them; tests/asterisk/test_fake_phones.py checks it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Callee:
    ending: str
    behaviour: str
    dialplan: tuple[str, ...]


# `${FAKE_SOUNDS}` is a [globals] variable: the directory of tests/asterisk/sounds.py's files.
# A callee who "listens" stays on the line (Wait) until the caller hangs up; Local channels
# carry no audio while it waits, which is all a caller that only plays a message needs.
CALLEES: tuple[Callee, ...] = (
    Callee("0001", "busy", ("Busy(2)",)),
    Callee(
        "0002",
        "rings and never answers (no answer at the ring timeout)",
        ("Ringing()", "Wait(600)"),
    ),
    Callee("0003", "congestion (no circuit)", ("Congestion(2)",)),
    Callee(
        "0004",
        "answers and presses 1 while the message plays (1.5 s after answering)",
        ("Answer()", "Wait(1.5)", "SendDTMF(1,250)", "Goto(listen,on)"),
    ),
    Callee(
        "0005",
        "answering machine: a 7 s greeting, a beep, then silence (as audio)",
        (
            "Answer()",
            "Playback(${FAKE_SOUNDS}/greeting)",
            "Playback(${FAKE_SOUNDS}/beep)",
            "Playback(${FAKE_SOUNDS}/silence)",
            "Playback(${FAKE_SOUNDS}/silence)",
        ),
    ),
    Callee("0006", "answers, listens, presses nothing", ("Goto(listen,1)",)),
    Callee(
        "0007",
        "answers and hangs up 1.5 s later, during the message",
        ("Answer()", "Wait(1.5)", "Hangup(16)"),
    ),
    Callee(
        "0008",
        "answers, but the message's audio path is broken: Asterisk cannot open it",
        # The caller's TTS_FILE now names a file that does not exist: the very failure of
        # an AUDIO_DIR Asterisk does not see (docs/asterisk.md, section 3).
        (
            "Set(MASTER_CHANNEL(TTS_FILE)=${MASTER_CHANNEL(TTS_FILE)}-unreachable)",
            "Goto(listen,1)",
        ),
    ),
    Callee("0009", "silent line: never rings, never answers", ("Wait(600)",)),
    Callee(
        "0010",
        "rings 2 s, then answers and listens",
        ("Ringing()", "Wait(2)", "Goto(listen,1)"),
    ),
    Callee(
        "0011",
        "answers and presses 1 one second after the message (TTS_FILE) has played",
        (
            # 8 kHz 16-bit mono: 16000 bytes a second after the 44-byte header; the caller
            # waits 0.5 s before playing (extensions_tts.conf).
            "Set(BYTES=${STAT(s,${MASTER_CHANNEL(TTS_FILE)}.wav)})",
            'Set(PLAYED=$[(${IF($["${BYTES}" = ""]?44:${BYTES})} - 44) / 16000])',
            "Answer()",
            "Wait($[${PLAYED} + 1.5])",
            "SendDTMF(1,250)",
            "Goto(listen,on)",
        ),
    ),
    Callee(
        "0012",
        "answers and presses 1 then 2 during the message",
        ("Answer()", "Wait(1.5)", "SendDTMF(12,250)", "Goto(listen,on)"),
    ),
    Callee(
        "0013",
        'a human: answers, says "¿Hola?", then silence (as audio)',
        (
            "Answer()",
            "Playback(${FAKE_SOUNDS}/hola)",
            "Playback(${FAKE_SOUNDS}/silence)",
            "Playback(${FAKE_SOUNDS}/silence)",
        ),
    ),
    Callee(
        "0014",
        "answers and says nothing: silence (as audio)",
        ("Answer()", "Playback(${FAKE_SOUNDS}/silence)", "Playback(${FAKE_SOUNDS}/silence)"),
    ),
    Callee(
        "0015",
        "the number does not exist: hangs up before answering (cause 1, unallocated)",
        ("Hangup(1)",),
    ),
    Callee(
        "0016",
        "answers and presses 1 at once",
        ("Answer()", "SendDTMF(1,250)", "Goto(listen,on)"),
    ),
    Callee(
        "0017",
        "answers, presses 2 (repeat) during the message, then 1 while it plays again",
        (
            "Answer()",
            "Wait(1.5)",
            "SendDTMF(2,250)",
            "Wait(2)",
            "SendDTMF(1,250)",
            "Goto(listen,on)",
        ),
    ),
    Callee(
        "0018",
        "answers, presses 9 (a wrong key) during the message, then 1 three seconds later",
        (
            "Answer()",
            "Wait(1.5)",
            "SendDTMF(9,250)",
            "Wait(3)",
            "SendDTMF(1,250)",
            "Goto(listen,on)",
        ),
    ),
    Callee(
        "0019",
        "answers and hangs up 1.5 s after the message (TTS_FILE) has played: during a prompt",
        (
            "Set(BYTES=${STAT(s,${MASTER_CHANNEL(TTS_FILE)}.wav)})",
            'Set(PLAYED=$[(${IF($["${BYTES}" = ""]?44:${BYTES})} - 44) / 16000])',
            "Answer()",
            "Wait($[${PLAYED} + 2])",
            "Hangup(16)",
        ),
    ),
)
DEFAULT_BEHAVIOUR = "answers and listens (any other ending)"
BY_ENDING = {callee.ending: callee for callee in CALLEES}
CHANNEL_TEMPLATE = "Local/{number}@fake-phone"


def number(ending: str, prefix: str = "300555") -> str:
    """A Colombian mobile number (what the API accepts) with the behaviour of `ending`."""
    return f"{prefix}{ending}"


def _extension(name: str, steps: tuple[str, ...], comment: str) -> list[str]:
    lines = [f"; {comment}", f"exten => {name},1,{steps[0]}"]
    lines += [f" same => n,{step}" for step in steps[1:]]
    return lines


# Where a callee that has done its part stays on the line: `Goto(listen,on)` skips the Answer.
LISTEN = [
    f"; {DEFAULT_BEHAVIOUR}",
    "exten => listen,1,Answer()",
    " same => n(on),Wait(600)",
    " same => n,Hangup()",
]


# A caller for the fixture's own tests (not tts-queue's dialplan): what Read() and AMD() make
# of each fake phone. Results come back as UserEvent FakeProbe (the AMI `user` class); Read's
# carries how long it took, by Asterisk's clock.
PROBE_CONTEXT = [
    "[fake-probe]",
    "exten => hangup,1,Hangup()",
    "exten => read,1,Set(T0=${STRFTIME(,,%s.%3q)})",
    " same => n,Read(DIGITS,${TTS_FILE},${PROBE_DIGITS},,1,4)",
    " same => n,UserEvent(FakeProbe,Probe: ${PROBE},Digits: ${DIGITS},Status: ${READSTATUS},"
    "Seconds: $[${STRFTIME(,,%s.%3q)} - ${T0}])",
    " same => n,Hangup()",
    "exten => amd,1,AMD()",
    " same => n,UserEvent(FakeProbe,Probe: ${PROBE},Status: ${AMDSTATUS},Cause: ${AMDCAUSE})",
    " same => n,Hangup()",
    "",
]


def dialplan(sounds_dir: str) -> str:
    """The fake-phone contexts for extensions.conf."""
    lines = [
        "[globals]",
        f"FAKE_SOUNDS={sounds_dir}",
        "",
        "[fake-phone]",
        "; Every dial rings here first: one log line per dial, then the behaviour of the ending.",
        "exten => _X.,1,Log(NOTICE,FAKE-PHONE rings number=${EXTEN} "
        "call=${MASTER_CHANNEL(TTS_CALL_ID)})",
        " same => n,Set(ENDING=${EXTEN:-4})",
        " same => n,GotoIf(${DIALPLAN_EXISTS(fake-callee,${ENDING},1)}"
        "?fake-callee,${ENDING},1:fake-callee,listen,1)",
        "",
        "[fake-callee]",
    ]
    for callee in CALLEES:
        lines += _extension(callee.ending, callee.dialplan, callee.behaviour)
    lines += [*LISTEN, "", *PROBE_CONTEXT]
    return "\n".join(lines) + "\n"
