"""Request and response bodies of the HTTP API (SPEC §2), and the settings-dependent checks.

`CallRequestIn` checks what a request can be judged on alone (types, ranges, characters);
`validate_call_request` adds the rules that depend on settings and engines, and returns the
normalized values the route stores.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from ttsqueue.api.errors import FieldError
from ttsqueue.asterisk_servers import no_server_message, serving
from ttsqueue.config import Settings
from ttsqueue.domain import ConfirmOptions, JobStatus, MachineDetection, Priority, utcnow
from ttsqueue.phone import InvalidPhoneNumber, PhoneNumber, parse_phone, sanitize_caller_id
from ttsqueue.policy.rules import (
    DEFAULT_JOB_POLICY,
    JobPolicy,
    PolicyFieldError,
    validate_job_policy,
)
from ttsqueue.prompts import default_prompt
from ttsqueue.text_rules import ALLOWED_CONTROLS, first_control_char
from ttsqueue.tts.catalog import valid_tld
from ttsqueue.webhooks.addresses import literal_target_refused
from ttsqueue.webhooks.delivery import check_webhook_url

METADATA_MAX_BYTES = 2048
SEND_AT_MAX_AHEAD = timedelta(days=30)


PROMPT_MAX_LENGTH = 300


class ConfirmIn(BaseModel):
    """`confirm` of a call request (SPEC §12): the keys that confirm, the one that repeats."""

    model_config = ConfigDict(extra="forbid")

    digits: str = Field(
        default="1",
        pattern=r"^[0-9*]{1,4}$",
        description="keys any of which confirms (0-9, *)",
        examples=["1"],
    )
    repeat_digit: str | None = Field(
        default="2", pattern=r"^[0-9*]$", description="key that plays message and prompt again"
    )
    max_repeats: int = Field(default=2, strict=True, ge=0, le=5)
    timeout_s: int = Field(default=5, strict=True, ge=1, le=30)
    prompt: str | None = Field(
        default=None,
        description="spoken after the message; default: by language (es, en)",
        examples=["Presione 1 para confirmar, 2 para repetir"],
    )

    @field_validator("digits")
    @classmethod
    def _distinct(cls, value: str) -> str:
        if len(set(value)) != len(value):
            raise ValueError("must not repeat a key")
        return value

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str | None) -> str | None:
        if value is None:
            return None
        bad = first_control_char(value, ALLOWED_CONTROLS)
        if bad is not None:
            raise ValueError(f"must not contain control character U+{ord(bad):04X}")
        value = value.strip()
        if not value:
            raise ValueError("must not be empty or only whitespace")
        if len(value) > PROMPT_MAX_LENGTH:
            raise ValueError(f"must be at most {PROMPT_MAX_LENGTH} characters")
        return value


class CallRequestIn(BaseModel):
    """Body of `POST /tts/call` (and of each item of `POST /tts/calls`). Any other field is
    refused by name (SPEC §2.8: a misspelt option is never silently ignored)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="1..MAX_TEXT_LENGTH characters after trimming")
    phone_number: str = Field(examples=["3005050149"])
    language: str | None = Field(default=None, min_length=2, max_length=16, examples=["es"])
    priority: Literal["normal", "high"] = "normal"
    voice: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9._+\-]+$")
    engine: Literal["gtts", "espeak", "piper"] | None = None
    max_retries: int | None = Field(default=None, strict=True, ge=0, le=5)
    retry_delay: int | None = Field(default=None, strict=True, ge=10, le=3600)
    send_at: AwareDatetime | None = Field(default=None, description="ISO-8601 with offset")
    callback_url: str | None = Field(
        default=None, max_length=2048, json_schema_extra={"format": "uri"}
    )
    caller_id: str | None = Field(default=None, max_length=128)
    metadata: dict[str, Any] | None = None
    confirm: ConfirmIn | None = None
    machine_detection: Literal["off", "hangup", "message", "retry"] = "off"
    retry_unconfirmed: bool = Field(default=False, strict=True)
    calling_windows: str | None = Field(
        default=None,
        max_length=500,
        description="replaces CALLING_WINDOWS for this call: a spec such as "
        "'mon-fri 07:00-19:00; sat 08:00-15:00' or a preset (co-ley-2300)",
    )
    timezone: str | None = Field(
        default=None,
        max_length=64,
        description="the callee's IANA time zone; default: from the number",
        examples=["America/Bogota"],
    )
    ignore_calling_windows: bool = Field(
        default=False, strict=True, description="emergencies: no windows, holidays or cap"
    )

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        # Checked before trimming: str.strip() also removes some control characters.
        bad = first_control_char(value, ALLOWED_CONTROLS)
        if bad is not None:
            raise ValueError(f"must not contain control character U+{ord(bad):04X}")
        value = value.strip()
        if not value:
            raise ValueError("must not be empty or only whitespace")
        return value

    @field_validator("send_at", mode="before")
    @classmethod
    def _send_at_is_text(cls, value: object) -> object:
        # Lax datetime parsing would take a bare number as a Unix timestamp.
        if value is not None and not isinstance(value, str | datetime):
            raise ValueError("must be an ISO-8601 datetime string with an offset")
        return value

    @field_validator("send_at")
    @classmethod
    def _send_at_in_range(cls, value: datetime | None) -> datetime | None:
        # 0001-01-01T00:00+05:00 or 9999-12-31T23:00-05:00 parse, but have no UTC time.
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except (OverflowError, ValueError):
            raise ValueError("is outside the range of dates that can be scheduled") from None

    @field_validator("callback_url")
    @classmethod
    def _callback_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if first_control_char(value) is not None or " " in value:
            raise ValueError("must not contain spaces or control characters")
        parts = urlsplit(value)
        if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an http or https URL with a host")
        _ = parts.port  # raises ValueError for a malformed port
        # The parser the webhook client itself uses: what it cannot send is refused now.
        check_webhook_url(value)
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata_size(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            # orjson refuses integers beyond 64 bits (as the job store would); json refuses NaN.
            size = len(orjson.dumps(value))
            json.dumps(value, allow_nan=False)
        except (orjson.JSONEncodeError, ValueError):
            raise ValueError("must be plain JSON (no NaN, integers within 64 bits)") from None
        if size > METADATA_MAX_BYTES:
            raise ValueError(f"must be at most {METADATA_MAX_BYTES} bytes as JSON (got {size})")
        return value


@dataclass(frozen=True, slots=True)
class ValidatedCall:
    """A call request with every value checked and normalized."""

    text: str
    phone: PhoneNumber
    language: str
    priority: Priority
    engine: str
    voice: str | None
    max_retries: int
    retry_delay: int
    # UTC; may be in the past, which means "now".
    send_at: datetime | None
    callback_url: str | None
    caller_id: str | None
    metadata: dict[str, Any] | None
    confirm: ConfirmOptions | None = None
    machine_detection: MachineDetection = MachineDetection.OFF
    retry_unconfirmed: bool = False
    policy: JobPolicy = DEFAULT_JOB_POLICY


def confirm_options(
    confirm: ConfirmIn | None, retry_unconfirmed: bool, language: str
) -> ConfirmOptions | None:
    """The checked confirmation of a call or campaign (`confirm`, `retry_unconfirmed`), its
    prompt defaulting by `language`; `FieldError` naming the bad field."""
    if confirm is None:
        if retry_unconfirmed:
            raise FieldError("retry_unconfirmed", "needs `confirm`: only a confirmation can fail")
        return None
    if confirm.repeat_digit is not None and confirm.repeat_digit in confirm.digits:
        raise FieldError("confirm.repeat_digit", "must not be one of the confirmation digits")
    prompt = confirm.prompt or default_prompt(language, confirm.digits, confirm.repeat_digit)
    if prompt is None:
        raise FieldError(
            "confirm.prompt", f"is required for language {language!r} (defaults: es, en)"
        )
    return ConfirmOptions(
        digits=confirm.digits,
        repeat_digit=confirm.repeat_digit,
        max_repeats=confirm.max_repeats,
        timeout_s=confirm.timeout_s,
        prompt=prompt,
    )


def _supported_language(
    language: str, engine: str, languages: Mapping[str, Collection[str]]
) -> str:
    if engine not in languages:
        raise FieldError("engine", f"engine {engine!r} is not available")
    if language in languages[engine]:
        return language
    by_lower = {code.lower(): code for code in languages[engine]}
    canonical = by_lower.get(language.lower().replace("_", "-"))
    if canonical is None:
        raise FieldError("language", f"language {language!r} is not supported by engine {engine!r}")
    return canonical


def validate_call_request(
    body: CallRequestIn,
    settings: Settings,
    languages: Mapping[str, Collection[str]],
    *,
    now: datetime | None = None,
) -> ValidatedCall:
    """Apply the settings-dependent rules; raise `FieldError` naming the first bad field."""
    if len(body.text) > settings.MAX_TEXT_LENGTH:
        raise FieldError(
            "text",
            f"must be at most {settings.MAX_TEXT_LENGTH} characters after trimming "
            f"(got {len(body.text)})",
        )
    try:
        phone = parse_phone(body.phone_number, settings.DEFAULT_REGION, settings.ALLOW_EXTENSIONS)
    except InvalidPhoneNumber as exc:
        raise FieldError("phone_number", str(exc), code="invalid_phone_number") from None
    if settings.ASTERISK_SERVERS and not serving(settings.ASTERISK_SERVERS, phone.e164):
        raise FieldError("phone_number", no_server_message(phone.e164), code="no_asterisk_server")
    engine = body.engine or settings.TTS_ENGINE.value
    language = _supported_language(body.language or settings.DEFAULT_LANGUAGE, engine, languages)
    if engine == "gtts" and body.voice is not None and not valid_tld(body.voice):
        raise FieldError(
            "voice",
            f"{body.voice!r} is not a Google domain gTTS uses (such as com, com.mx, es, us)",
        )
    send_at = body.send_at.astimezone(UTC) if body.send_at is not None else None
    if send_at is not None and send_at - (now or utcnow()) > SEND_AT_MAX_AHEAD:
        raise FieldError("send_at", f"must be at most {SEND_AT_MAX_AHEAD.days} days ahead")
    caller_id = None
    if body.caller_id is not None:
        try:
            caller_id = sanitize_caller_id(body.caller_id, settings.DEFAULT_REGION)
        except ValueError as exc:
            raise FieldError("caller_id", str(exc)) from None
    if (
        body.callback_url is not None
        and not settings.WEBHOOK_ALLOW_PRIVATE
        and literal_target_refused(body.callback_url)
    ):
        raise FieldError(
            "callback_url",
            "must not point to a loopback or private address "
            "(set WEBHOOK_ALLOW_PRIVATE=true to allow it)",
        )
    try:
        policy = validate_job_policy(
            body.calling_windows, body.timezone, body.ignore_calling_windows
        )
    except PolicyFieldError as exc:
        raise FieldError(exc.field, str(exc).removeprefix(f"{exc.field}: ")) from None
    return ValidatedCall(
        text=body.text,
        phone=phone,
        language=language,
        priority=Priority(body.priority),
        engine=engine,
        voice=body.voice,
        max_retries=settings.CALL_MAX_RETRIES if body.max_retries is None else body.max_retries,
        retry_delay=settings.CALL_RETRY_DELAY if body.retry_delay is None else body.retry_delay,
        send_at=send_at,
        callback_url=body.callback_url,
        caller_id=caller_id,
        metadata=body.metadata,
        confirm=confirm_options(body.confirm, body.retry_unconfirmed, language),
        machine_detection=MachineDetection(body.machine_detection),
        retry_unconfirmed=body.retry_unconfirmed,
        policy=policy,
    )


# Responses --------------------------------------------------------------------------------
class ErrorDetail(BaseModel):
    loc: list[str | int]
    field: str
    message: str


class ErrorBody(BaseModel):
    success: Literal[False] = False
    error: str
    code: str
    details: list[ErrorDetail] = Field(default_factory=list)


class CallLinks(BaseModel):
    status: str


class CallAccepted(BaseModel):
    success: Literal[True] = True
    job_id: str
    status: JobStatus
    queue: Literal["normal", "priority"]
    priority: Priority
    timestamp: str
    message: str
    links: CallLinks


class AudioOut(BaseModel):
    url: str | None = None
    duration_s: float | None = None
    cached: bool = False
    engine: str | None = None


class AmdOut(BaseModel):
    status: str = Field(description="AMDSTATUS: HUMAN, MACHINE, NOTSURE, HANGUP")
    cause: str | None = Field(default=None, description="AMDCAUSE, e.g. LONGGREETING-1500-1500")
    detect_ms: int | None = None


class ConfirmOut(BaseModel):
    digits: str
    repeat_digit: str | None
    max_repeats: int
    timeout_s: int
    prompt: str


class CallOut(BaseModel):
    backend: str | None = None
    outcome: str | None = None
    reason: str | None = None
    hangup_cause: str | None = None
    channel: str | None = None
    answered_at: str | None = None
    ended_at: str | None = None
    talk_s: float | None = None
    simulated: bool = False
    dtmf: str | None = Field(default=None, description="keys pressed, in order")
    confirmed: bool | None = Field(default=None, description="set when the call asked to confirm")
    amd: AmdOut | None = None


class HistoryOut(BaseModel):
    status: JobStatus
    at: str
    detail: str | None = None


class JobStatusOut(BaseModel):
    # The original system's fields first, in its order.
    success: Literal[True] = True
    job_id: str
    status: JobStatus
    text: str
    phone_number: str
    created_at: str
    processed_at: str | None
    completed_at: str | None
    worker_id: str | None
    error: str | None
    priority: Priority
    language: str
    engine: str
    attempts: int
    queue: Literal["normal", "priority"]
    e164: str
    scheduled_for: str | None
    updated_at: str
    duration_ms: int | None
    audio: AudioOut
    call: CallOut
    history: list[HistoryOut]
    metadata: dict[str, Any] | None
    confirm: ConfirmOut | None = None
    machine_detection: Literal["off", "hangup", "message", "retry"] = "off"
    retry_unconfirmed: bool = False
    campaign_id: str | None = None


_ERROR_MEANINGS = {
    400: "Malformed request (e.g. invalid JSON)",
    401: "Missing or invalid API key",
    404: "Unknown job",
    409: "Conflict: idempotency key reused with another body, or job not cancelable",
    413: "Request body too large",
    415: "Body not sent as JSON (Content-Type must be application/json)",
    422: "Invalid field; the message names it",
    429: "Rate limit exceeded (see Retry-After)",
    503: "RabbitMQ or Redis unavailable, or backlog full (see Retry-After)",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route can give, all in the error shape."""
    return {s: {"model": ErrorBody, "description": _ERROR_MEANINGS[s]} for s in statuses}
