"""Every value that reaches Asterisk, rebuilt from validated parts (SPEC §2.6).

Both real backends write the same things (channel, caller id, context, audio path, ids) into
an AMI action or a call file. Each is rebuilt here from parsed digits, a UUID, a fixed-length id
or an allow-listed path, and checked once more: none can hold a CR, LF, NUL, `&`, `,`, `;` or
`|`. A value that fails is a bug or a tampered record, never something to clean up silently.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass

from ttsqueue.config import Settings
from ttsqueue.dialer.base import CallRequest
from ttsqueue.dialer.listen import KEY_CHARS, KEYS
from ttsqueue.domain import MachineDetection
from ttsqueue.errors import ConfigError, PermanentJobError
from ttsqueue.phone import PhoneNumber, render_channel, sanitize_caller_id

CALL_ID = re.compile(r"[0-9a-f]{32}[0-9]{2}")
_CONTEXT = re.compile(r"[A-Za-z0-9_-]{1,79}")
# Playback() splits on `&` and `,`; the AMI Variable header splits on `,`.
_AUDIO_PATH = re.compile(r"/[A-Za-z0-9_./-]{1,400}")
_E164_DIGITS = re.compile(r"\+?[0-9]{2,15}")
_LINE_BREAKERS = frozenset("\r\n\x00")
# The ranges the API accepts (SPEC §12), checked again before they reach the dialplan.
MAX_REPEATS = 5
MAX_KEY_WAIT_S = 30


@dataclass(frozen=True, slots=True)
class DialValues:
    channel: str
    caller_id: str | None
    context: str
    tts_file: str
    job_id: str
    call_id: str
    ring_timeout_s: int
    # Channel variables of a call that listens (SPEC §12), name -> validated value.
    listen_vars: tuple[tuple[str, str], ...] = ()


def _bad(call: CallRequest, reason: str, detail: str) -> PermanentJobError:
    return PermanentJobError(detail, job_id=call.job_id, reason=reason)


def _job_id(call: CallRequest) -> str:
    try:
        job_id = str(uuid.UUID(call.job_id))
    except ValueError:
        raise _bad(call, "invalid_job_id", "job id is not a UUID") from None
    if job_id != call.job_id:
        raise _bad(call, "invalid_job_id", "job id is not in canonical UUID form")
    return job_id


def _channel(template: str, call: CallRequest, region: str) -> str:
    if not (_E164_DIGITS.fullmatch(call.e164) and call.number.isascii() and call.number.isdigit()):
        raise _bad(call, "invalid_phone_number", "stored number is not plain digits")
    phone = PhoneNumber(
        national=str(int(call.number)).zfill(len(call.number)),
        e164=call.e164,
        e164_digits=call.e164.removeprefix("+"),
        region=region,
        is_extension=not call.e164.startswith("+"),
    )
    try:
        return render_channel(template, phone)
    except ValueError as exc:
        raise _bad(call, "invalid_channel", str(exc)) from None


def _caller_id(raw: str | None, region: str, call: CallRequest) -> str | None:
    if not raw:
        return None
    try:
        return sanitize_caller_id(raw, region)
    except ValueError as exc:
        raise _bad(call, "invalid_caller_id", str(exc)) from None


def _tts_file(call: CallRequest) -> str:
    return _audio_path(call, call.audio_path)


def _audio_path(call: CallRequest, raw: str) -> str:
    path = os.path.abspath(raw)
    climbs = ".." in raw.split("/")
    if climbs or not _AUDIO_PATH.fullmatch(path) or path.endswith((".wav", ".sln16")):
        raise _bad(
            call,
            "invalid_audio_path",
            "audio path must be absolute, without extension, made of letters, digits, . _ - /",
        )
    return path


def _listen_vars(call: CallRequest) -> tuple[tuple[str, str], ...]:
    """The dialplan's options for keys and machines, each checked against what it may be."""
    options = call.listen
    if options is None or not options.active:
        return ()
    found: list[tuple[str, str]] = []
    if options.machine_detection is not MachineDetection.OFF:
        found.append(("TTS_AMD", MachineDetection(options.machine_detection).value))
    if options.confirms:
        repeat = options.repeat_key
        if not KEYS.fullmatch(options.confirm_keys) or (repeat and not KEY_CHARS.fullmatch(repeat)):
            raise _bad(call, "invalid_confirm", "confirmation keys must be 0-9 or *")
        if repeat and repeat in options.confirm_keys:
            raise _bad(call, "invalid_confirm", "the repeat key is also a confirmation key")
        ranges = (
            0 <= options.max_repeats <= MAX_REPEATS and 1 <= options.timeout_s <= MAX_KEY_WAIT_S
        )
        if not ranges:
            raise _bad(call, "invalid_confirm", "max_repeats or timeout_s out of range")
        prompt = _audio_path(call, options.prompt_path)
        found += [
            ("TTS_CONFIRM_KEYS", options.confirm_keys),
            ("TTS_MAX_REPEATS", str(int(options.max_repeats))),
            ("TTS_KEY_TIMEOUT", str(int(options.timeout_s))),
            ("TTS_PROMPT", prompt),
        ]
        if repeat:
            found.append(("TTS_REPEAT_KEY", repeat))
    return tuple(found)


def check_context(context: str) -> str:
    if not _CONTEXT.fullmatch(context):
        raise ConfigError("ASTERISK_CONTEXT may contain only letters, digits, '_' and '-'")
    return context


def check_dial_settings(settings: Settings) -> None:
    """Refuse at start-up the settings every call would trip over."""
    check_context(settings.ASTERISK_CONTEXT)
    if settings.ASTERISK_CALLER_ID:
        try:
            sanitize_caller_id(settings.ASTERISK_CALLER_ID, settings.DEFAULT_REGION)
        except ValueError as exc:
            raise ConfigError(f"ASTERISK_CALLER_ID: {exc}") from None


def dial_values(
    settings: Settings, call: CallRequest, channel_template: str | None = None
) -> DialValues:
    """The validated values for `call`; `PermanentJobError` when one cannot be built.
    `channel_template`: the chosen server's (ASTERISK_SERVERS), else ASTERISK_CHANNEL."""
    job_id = _job_id(call)
    call_id = call.call_id
    if not CALL_ID.fullmatch(call_id):
        raise _bad(call, "invalid_call_id", "call id is not 32 hex digits and a 2-digit attempt")
    region = settings.DEFAULT_REGION
    values = DialValues(
        channel=_channel(channel_template or settings.ASTERISK_CHANNEL, call, region),
        caller_id=_caller_id(call.caller_id or settings.ASTERISK_CALLER_ID, region, call),
        context=check_context(settings.ASTERISK_CONTEXT),
        tts_file=_tts_file(call),
        job_id=job_id,
        call_id=call_id,
        ring_timeout_s=int(call.ring_timeout_s),
        listen_vars=_listen_vars(call),
    )
    texts = [values.channel, values.caller_id or "", values.tts_file]
    for text in texts + [value for _, value in values.listen_vars]:
        if any(ch in _LINE_BREAKERS for ch in text):
            raise _bad(call, "invalid_dial_value", "a dial value holds a line break")
    return values
