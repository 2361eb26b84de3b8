"""Reading `POST /campaigns`: JSON with `rows`, or multipart/form-data with a CSV `file` and
the other fields as form values; every setting checked, every row checked by line (CSV) or
index (JSON), rows on the do-not-call list reported like invalid ones."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.datastructures import UploadFile

from ttsqueue.api.context import ApiContext
from ttsqueue.api.errors import ApiError, FieldError, describe_validation_errors
from ttsqueue.api.schemas import ConfirmIn, _supported_language, confirm_options
from ttsqueue.asterisk_servers import no_server_message, serving
from ttsqueue.campaigns.rows import ParsedRows, RowError, RowRules, rows_from_csv, rows_from_json
from ttsqueue.campaigns.spec import CampaignSpec, StoredRow
from ttsqueue.campaigns.template import MessageTemplate, TemplateError, parse_template
from ttsqueue.config import Settings
from ttsqueue.csvfile import CsvFileError
from ttsqueue.domain import iso, utcnow
from ttsqueue.phone import sanitize_caller_id
from ttsqueue.policy.rules import PolicyFieldError, validate_job_policy
from ttsqueue.text_rules import first_control_char
from ttsqueue.tts.catalog import valid_tld

MAX_FORM_FIELDS = 20


class CampaignIn(BaseModel):
    """The fields of `POST /campaigns` (JSON body, or form fields beside a CSV `file`)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    template: str = Field(description="the message, with {column} placeholders")
    rows: list[Any] | None = Field(default=None, description="JSON rows (instead of a CSV file)")
    language: str | None = Field(default=None, min_length=2, max_length=16)
    engine: Literal["gtts", "espeak", "piper"] | None = None
    voice: str | None = Field(default=None, max_length=64, pattern=r"^[A-Za-z0-9._+\-]+$")
    max_retries: int | None = Field(default=None, ge=0, le=5)
    retry_delay: int | None = Field(default=None, ge=10, le=3600)
    caller_id: str | None = Field(default=None, max_length=128)
    calling_windows: str | None = Field(default=None, max_length=500)
    timezone: str | None = Field(default=None, max_length=64)
    max_concurrent_calls: int | None = Field(default=None, ge=1)
    calls_per_minute: int | None = Field(default=None, ge=1)
    confirm: ConfirmIn | None = Field(
        default=None, description="ask each callee for a key (a JSON object in a form field)"
    )
    machine_detection: Literal["off", "hangup", "message", "retry"] = "off"
    retry_unconfirmed: bool = False
    paused: bool = Field(default=False, description="create it paused: resume starts it")
    dry_run: bool = Field(default=False, description="check the rows, create nothing")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if first_control_char(value, "") is not None or not value.strip():
            raise ValueError("must be visible text without control characters")
        return value.strip()


@dataclass(slots=True)
class CampaignDraft:
    spec: CampaignSpec
    template: MessageTemplate
    parsed: ParsedRows
    paused: bool
    dry_run: bool

    @property
    def rows(self) -> list[StoredRow]:
        return [
            StoredRow(r.position, r.phone.e164, r.phone.national, r.text) for r in self.parsed.rows
        ]

    def errors_json(self) -> list[dict[str, Any]]:
        unit = self.parsed.unit
        return [e.to_json(unit) for e in self.parsed.errors]


def _model(fields: Mapping[str, Any]) -> CampaignIn:
    try:
        return CampaignIn.model_validate(dict(fields))
    except ValidationError as exc:
        message, details = describe_validation_errors(exc.errors())
        raise ApiError(422, "validation_error", message, details) from None


def _form_json(values: dict[str, Any]) -> dict[str, Any]:
    """A form carries `confirm` as JSON text: the object itself is checked like in JSON."""
    raw = values.get("confirm")
    if raw is None:
        return values
    if not raw.strip():
        return {k: v for k, v in values.items() if k != "confirm"}
    try:
        values["confirm"] = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise FieldError("confirm", 'must be a JSON object, such as {"digits": "1"}') from None
    return values


async def _read_body(request: Request) -> tuple[CampaignIn, bytes | None]:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        try:
            data = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ApiError(422, "validation_error", "the body must be a JSON object")
        body = _model(data)
        if body.rows is None:
            raise FieldError("rows", "give the rows as JSON, or upload a CSV file")
        return body, None
    if media == "multipart/form-data":
        async with request.form(max_files=1, max_fields=MAX_FORM_FIELDS) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise FieldError("file", "multipart upload without a `file` part (the CSV)")
            data_bytes = await upload.read()
            values = {k: v for k, v in form.items() if k != "file" and isinstance(v, str)}
        if "rows" in values:
            raise FieldError("rows", "send rows as JSON or as a CSV file, not both")
        return _model(_form_json(values)), data_bytes
    raise ApiError(
        415,
        "unsupported_media_type",
        "send JSON with `rows`, or multipart/form-data with a CSV `file`",
    )


def _pacing(body: CampaignIn, ctx: ApiContext) -> tuple[int, int | None]:
    # With ASTERISK_SERVERS the trunk is every server's lines and rate together.
    trunk = ctx.settings.call_limit
    concurrent = body.max_concurrent_calls or trunk
    if concurrent > trunk:
        raise FieldError(
            "max_concurrent_calls", f"must be at most the trunk's MAX_CONCURRENT_CALLS ({trunk})"
        )
    per_minute = body.calls_per_minute
    limit = int(ctx.settings.call_rate * 60)
    if per_minute is not None and per_minute > limit:
        raise FieldError(
            "calls_per_minute", f"must be at most CALLS_PER_SECOND x 60 ({limit}) for this trunk"
        )
    return concurrent, per_minute


def _settings_checked(body: CampaignIn, ctx: ApiContext) -> dict[str, Any]:
    settings = ctx.settings
    engine = body.engine or settings.TTS_ENGINE.value
    language = _supported_language(
        body.language or settings.DEFAULT_LANGUAGE, engine, ctx.languages
    )
    if engine == "gtts" and body.voice is not None and not valid_tld(body.voice):
        raise FieldError("voice", f"{body.voice!r} is not a Google domain gTTS uses")
    caller_id = None
    if body.caller_id is not None:
        try:
            caller_id = sanitize_caller_id(body.caller_id, settings.DEFAULT_REGION)
        except ValueError as exc:
            raise FieldError("caller_id", str(exc)) from None
    try:
        validate_job_policy(body.calling_windows, body.timezone)
    except PolicyFieldError as exc:
        raise FieldError(exc.field, str(exc).removeprefix(f"{exc.field}: ")) from None
    concurrent, per_minute = _pacing(body, ctx)
    confirm = confirm_options(body.confirm, body.retry_unconfirmed, language)
    return {
        "confirm": confirm.model_dump_json() if confirm is not None else None,
        "machine_detection": body.machine_detection,
        "retry_unconfirmed": body.retry_unconfirmed,
        "engine": engine,
        "language": language,
        "voice": body.voice,
        "caller_id": caller_id,
        "max_retries": settings.CALL_MAX_RETRIES if body.max_retries is None else body.max_retries,
        "retry_delay": settings.CALL_RETRY_DELAY if body.retry_delay is None else body.retry_delay,
        "max_concurrent_calls": concurrent,
        "calls_per_minute": per_minute,
        "calling_windows": body.calling_windows,
        "timezone": body.timezone,
    }


def _parse_rows(body: CampaignIn, csv_data: bytes | None, rules: RowRules) -> ParsedRows:
    try:
        if csv_data is not None:
            return rows_from_csv(csv_data, rules)
        parsed = rows_from_json(body.rows or [], rules)
        if parsed.columns:
            rules.template.check_columns(parsed.columns)
        return parsed
    except TemplateError as exc:
        raise FieldError("template", str(exc)) from None
    except CsvFileError as exc:
        raise FieldError("file" if csv_data is not None else "rows", str(exc)) from None


async def _drop_listed(ctx: ApiContext, parsed: ParsedRows) -> None:
    """Rows whose number is on the do-not-call list become errors (never released)."""
    listed = await ctx.policy.dnc.listed_among([r.phone.e164 for r in parsed.rows])
    if not listed:
        return
    kept = []
    for row in parsed.rows:
        if row.phone.e164 in listed:
            parsed.errors.append(
                RowError(row.position, "phone_number", "on the do-not-call list (do_not_call)")
            )
        else:
            kept.append(row)
    parsed.rows = kept
    parsed.errors.sort(key=lambda e: e.position)


def _unserved(settings: Settings) -> Callable[[str], str | None] | None:
    servers = settings.ASTERISK_SERVERS
    if not servers:
        return None
    return lambda e164: None if serving(servers, e164) else no_server_message(e164)


async def read_campaign(request: Request, ctx: ApiContext) -> CampaignDraft:
    body, csv_data = await _read_body(request)
    try:
        template = parse_template(body.template)
    except TemplateError as exc:
        raise FieldError("template", str(exc)) from None
    checked = _settings_checked(body, ctx)
    rules = RowRules(
        template,
        ctx.settings.DEFAULT_REGION,
        ctx.settings.ALLOW_EXTENSIONS,
        ctx.settings.MAX_TEXT_LENGTH,
        unserved=_unserved(ctx.settings),
    )
    # Parsing 100,000 rows takes a while: never on the event loop single calls go through.
    parsed = await asyncio.to_thread(_parse_rows, body, csv_data, rules)
    await _drop_listed(ctx, parsed)
    spec = CampaignSpec(
        campaign_id=str(uuid.uuid4()),
        name=body.name,
        template=body.template,
        created_at=iso(utcnow()) or "",
        total=len(parsed.rows),
        invalid=len({e.position for e in parsed.errors}),
        **checked,
    )
    return CampaignDraft(spec, template, parsed, body.paused, body.dry_run)
