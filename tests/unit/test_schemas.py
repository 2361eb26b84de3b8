"""Request rules of POST /tts/call, and the status body's exact shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from ttsqueue.api.errors import FieldError
from ttsqueue.api.schemas import (
    CallRequestIn,
    JobStatusOut,
    ValidatedCall,
    validate_call_request,
)
from ttsqueue.config import Settings
from ttsqueue.domain import (
    AudioInfo,
    CallInfo,
    CallOutcome,
    HistoryEntry,
    Job,
    JobStatus,
    Priority,
)
from ttsqueue.views.jobs import job_to_status_body

LANGUAGES = {"espeak": {"es", "en", "pt-BR"}, "gtts": {"es", "en"}}
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def body(**fields: Any) -> dict[str, Any]:
    return {"text": "Hola, su cita es mañana", "phone_number": "3005050149", **fields}


def rejected_fields(data: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationError) as info:
        CallRequestIn.model_validate(data)
    return {str(err["loc"][0]) for err in info.value.errors()}


def check(settings: Settings, data: dict[str, Any]) -> ValidatedCall:
    return validate_call_request(CallRequestIn.model_validate(data), settings, LANGUAGES, now=NOW)


def field_error(settings: Settings, data: dict[str, Any]) -> FieldError:
    with pytest.raises(FieldError) as info:
        check(settings, data)
    return info.value


def test_minimal_request_gets_the_defaults(settings: Settings) -> None:
    call = check(settings, body())
    assert call.text == "Hola, su cita es mañana"
    assert call.phone.e164 == "+573005050149"
    assert call.phone.national == "3005050149"
    assert call.language == "es"
    assert call.priority is Priority.NORMAL
    assert call.engine == "espeak"
    assert call.max_retries == settings.CALL_MAX_RETRIES
    assert call.retry_delay == settings.CALL_RETRY_DELAY
    assert (call.send_at, call.voice, call.callback_url, call.caller_id, call.metadata) == (
        None,
        None,
        None,
        None,
        None,
    )


def test_full_request_is_normalized(settings: Settings) -> None:
    call = check(
        settings,
        body(
            text="  Alerta\n\tnivel 2  ",
            phone_number="+57 300-505-0149",
            language="ES",
            priority="high",
            voice="com.mx",
            engine="gtts",
            max_retries=0,
            retry_delay=3600,
            send_at="2025-03-02T09:30:00-05:00",
            callback_url="https://hooks.example.com/tts?x=1",
            caller_id="Alertas <6015551234>",
            metadata={"ticket": 42},
        ),
    )
    assert call.text == "Alerta\n\tnivel 2"
    assert call.language == "es"
    assert call.priority is Priority.HIGH
    assert (call.engine, call.voice) == ("gtts", "com.mx")
    assert (call.max_retries, call.retry_delay) == (0, 3600)
    assert call.send_at == datetime(2025, 3, 2, 14, 30, tzinfo=UTC)
    assert call.send_at is not None
    assert call.send_at.utcoffset() == timedelta(0)
    assert call.callback_url == "https://hooks.example.com/tts?x=1"
    assert call.caller_id == '"Alertas" <6015551234>'
    assert call.metadata == {"ticket": 42}


@pytest.mark.parametrize("priority", ["urgent", "HIGH", "", 1, None])
def test_unknown_priority_is_rejected(priority: object) -> None:
    assert rejected_fields(body(priority=priority)) == {"priority"}


@pytest.mark.parametrize("value", ["2", 2.0, True, -1, 6])
def test_max_retries_is_a_strict_int_in_range(value: object) -> None:
    assert rejected_fields(body(max_retries=value)) == {"max_retries"}


@pytest.mark.parametrize("value", ["60", 60.5, 9, 3601, False])
def test_retry_delay_is_a_strict_int_in_range(value: object) -> None:
    assert rejected_fields(body(retry_delay=value)) == {"retry_delay"}


@pytest.mark.parametrize(
    "value", ["2025-03-02T09:30:00", "2025-03-02", 1_740_000_000, "tomorrow", "2025-13-01T00:00Z"]
)
def test_send_at_needs_an_iso_datetime_with_offset(value: object) -> None:
    assert rejected_fields(body(send_at=value)) == {"send_at"}


def test_send_at_more_than_30_days_ahead_is_rejected(settings: Settings) -> None:
    late = (NOW + timedelta(days=31)).isoformat()
    error = field_error(settings, body(send_at=late))
    assert (error.field, error.status, error.code) == ("send_at", 422, "validation_error")


def test_send_at_within_30_days_or_in_the_past_is_kept(settings: Settings) -> None:
    soon = NOW + timedelta(days=29)
    assert check(settings, body(send_at=soon.isoformat())).send_at == soon
    past = NOW - timedelta(days=1)
    assert check(settings, body(send_at=past.isoformat())).send_at == past


def test_metadata_over_2kb_is_rejected() -> None:
    assert rejected_fields(body(metadata={"blob": "x" * 3000})) == {"metadata"}


def test_metadata_limit_is_2048_bytes_serialized() -> None:
    overhead = len('{"k":""}')
    fits = {"k": "x" * (2048 - overhead)}
    assert CallRequestIn.model_validate(body(metadata=fits)).metadata == fits
    assert rejected_fields(body(metadata={"k": "x" * (2049 - overhead)})) == {"metadata"}


def test_metadata_must_be_an_object_json_can_hold() -> None:
    assert rejected_fields(body(metadata=["a"])) == {"metadata"}
    assert rejected_fields(body(metadata={"n": 10**30})) == {"metadata"}
    assert rejected_fields(body(metadata={"x": [float("nan")]})) == {"metadata"}


@pytest.mark.parametrize("text", ["a\x00b", "alarm\x07", "line\r\nbreak", "end\x1f", "del\x7f"])
def test_text_with_control_characters_is_rejected(text: str) -> None:
    assert rejected_fields(body(text=text)) == {"text"}


@pytest.mark.parametrize("text", ["", "   ", "\n\t \n"])
def test_empty_or_blank_text_is_rejected(text: str) -> None:
    assert rejected_fields(body(text=text)) == {"text"}


def test_newline_and_tab_are_allowed() -> None:
    text = "Primera línea\n\tSegunda línea"
    assert CallRequestIn.model_validate(body(text=text)).text == text


def test_text_length_is_counted_after_trimming(settings: Settings) -> None:
    short = settings.model_copy(update={"MAX_TEXT_LENGTH": 10})
    assert check(short, body(text="   " + "a" * 10 + "   ")).text == "a" * 10
    error = field_error(short, body(text="a" * 11))
    assert error.field == "text"
    assert "10" in error.message


@pytest.mark.parametrize("field", ["text", "phone_number"])
def test_required_fields_must_be_strings(field: str) -> None:
    assert rejected_fields(body(**{field: 3005050149})) == {field}
    data = body()
    del data[field]
    assert rejected_fields(data) == {field}


def test_unsupported_language_is_rejected(settings: Settings) -> None:
    error = field_error(settings, body(language="xx"))
    assert (error.field, error.code) == ("language", "validation_error")
    assert "espeak" in error.message


def test_language_is_checked_against_the_requested_engine(settings: Settings) -> None:
    assert check(settings, body(language="pt-br")).language == "pt-BR"
    error = field_error(settings, body(language="pt-BR", engine="gtts"))
    assert error.field == "language"


def test_unavailable_engine_is_rejected(settings: Settings) -> None:
    assert field_error(settings, body(engine="piper")).field == "engine"
    assert rejected_fields(body(engine="festival")) == {"engine"}


def test_invalid_phone_has_its_own_code(settings: Settings) -> None:
    error = field_error(settings, body(phone_number="3005050149&PJSIP/666"))
    assert (error.field, error.code, error.status) == ("phone_number", "invalid_phone_number", 422)
    assert error.message.startswith("phone_number: ")


def test_extensions_follow_the_setting(settings: Settings) -> None:
    assert field_error(settings, body(phone_number="1234")).code == "invalid_phone_number"
    allowed = settings.model_copy(update={"ALLOW_EXTENSIONS": True})
    assert check(allowed, body(phone_number="1234")).phone.is_extension


@pytest.mark.parametrize("voice", ["es;rm -rf", "es voice", "v" * 65, "", "es\n"])
def test_voice_charset_and_length(voice: str) -> None:
    assert rejected_fields(body(voice=voice)) == {"voice"}


def test_espeak_voice_names_are_accepted() -> None:
    assert CallRequestIn.model_validate(body(voice="es-419+f3")).voice == "es-419+f3"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "http://",
        "javascript:alert(1)",
        "http://exa mple.com/",
        "http://example.com/\r\nX: y",
        "http://example.com:99999/",
        "https://example.com/" + "a" * 2048,
    ],
)
def test_callback_url_must_be_http_or_https(url: str) -> None:
    assert rejected_fields(body(callback_url=url)) == {"callback_url"}


def test_bad_caller_id_is_a_field_error(settings: Settings) -> None:
    error = field_error(settings, body(caller_id='Evil" <1000>'))
    assert (error.field, error.code) == ("caller_id", "validation_error")


def make_job(**fields: Any) -> Job:
    base: dict[str, Any] = {
        "job_id": "6f1c1f0e-8d5c-4b8e-9a4e-2d7f1f1f1f1f",
        "status": JobStatus.COMPLETED,
        "text": "Hola",
        "phone_number": "300 505 0149",
        "e164": "+573005050149",
        "dial_number": "3005050149",
        "language": "es",
        "engine": "espeak",
        "priority": Priority.HIGH,
        "created_at": "2025-03-01T12:00:00.000Z",
        "updated_at": "2025-03-01T12:00:09.000Z",
        "processed_at": "2025-03-01T12:00:01.000Z",
        "completed_at": "2025-03-01T12:00:09.000Z",
        "worker_id": "host-1",
        "attempts": 1,
        "duration_ms": 8000,
        "metadata": {"ticket": 42},
        "audio": AudioInfo(path="/var/audio/ab", duration_s=2.5, cached=True, engine="espeak"),
        "call": CallInfo(backend="simulator", outcome=CallOutcome.ANSWERED, simulated=True),
    }
    base.update(fields)
    return Job(**base)


STATUS_KEYS = [
    "success", "job_id", "status", "text", "phone_number", "created_at", "processed_at",
    "completed_at", "worker_id", "error", "priority", "language", "engine", "attempts", "queue",
    "e164", "scheduled_for", "updated_at", "duration_ms", "audio", "call", "history", "metadata",
    "confirm", "machine_detection", "retry_unconfirmed",
    "campaign_id",
]  # fmt: skip


def test_status_body_has_the_documented_keys_in_order() -> None:
    history = [
        HistoryEntry(status=JobStatus.QUEUED, at="2025-03-01T12:00:00.000Z"),
        HistoryEntry(status=JobStatus.COMPLETED, at="2025-03-01T12:00:09.000Z", detail="ok"),
    ]
    out = job_to_status_body(make_job(), history)
    assert list(out) == STATUS_KEYS
    assert list(out["audio"]) == ["url", "duration_s", "cached", "engine"]
    assert list(out["call"]) == [
        "backend", "outcome", "reason", "hangup_cause", "channel", "answered_at", "ended_at",
        "talk_s", "simulated", "dtmf", "confirmed", "amd",
    ]  # fmt: skip
    assert out["success"] is True
    assert (out["status"], out["priority"], out["queue"]) == ("completed", "high", "priority")
    assert out["audio"]["url"] == "/tts/audio/6f1c1f0e-8d5c-4b8e-9a4e-2d7f1f1f1f1f"
    assert out["call"]["outcome"] == "answered"
    assert out["history"][1] == {
        "status": "completed",
        "at": "2025-03-01T12:00:09.000Z",
        "detail": "ok",
    }
    assert out["metadata"] == {"ticket": 42}
    assert JobStatusOut.model_validate(out).model_dump(mode="json") == out


def test_status_body_before_any_audio() -> None:
    out = job_to_status_body(
        make_job(status=JobStatus.QUEUED, audio=AudioInfo(), call=CallInfo(), metadata=None), []
    )
    assert out["audio"] == {"url": None, "duration_s": None, "cached": False, "engine": None}
    assert out["call"]["outcome"] is None
    assert (out["history"], out["metadata"]) == ([], None)
