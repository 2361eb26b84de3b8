"""Bodies of the do-not-call routes (SPEC §13), for the OpenAPI document and its checks."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ttsqueue.api.schemas import ErrorBody, error_responses


class DncNumber(BaseModel):
    phone_number: str = Field(examples=["+573005050149"])
    added_at: str | None = None
    added_by: str | None = Field(default=None, description="`key:<digest>` or `anonymous`")
    via: str | None = Field(default=None, description="`api` (one number) or `import`")


class DncState(DncNumber):
    success: Literal[True] = True
    listed: bool
    created: bool | None = Field(default=None, description="PUT: newly listed (201) or not")


class DncPage(BaseModel):
    success: Literal[True] = True
    count: int
    total: int
    numbers: list[DncNumber]
    next_cursor: str | None


class DncImportIn(BaseModel):
    """JSON form of `POST /dnc` (CSV is sent as text/csv or a multipart `file`)."""

    model_config = ConfigDict(extra="forbid")
    numbers: list[str | int] = Field(max_length=200_000, examples=[["3005050149"]])


class DncImportProblem(BaseModel):
    line: int | None = None
    index: int | None = None
    value: str
    message: str


class DncImported(BaseModel):
    success: Literal[True] = True
    received: int
    valid: int
    added: int
    already_listed: int
    duplicates: int
    invalid: int
    errors: list[DncImportProblem]
    errors_truncated: bool


class DncAuditEntry(BaseModel):
    id: str
    action: Literal["add", "remove", "import"]
    phone_number: str | None
    count: int | None
    by: str
    at: str


class DncAuditPage(BaseModel):
    success: Literal[True] = True
    count: int
    entries: list[DncAuditEntry]
    next_cursor: str | None


_OWN_MEANINGS = {
    404: "Not on the do-not-call list (or, with a `/` in the number, no such route)",
    415: "Body is not JSON, CSV or multipart",
}


def dnc_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Error answers of these routes, all in the error shape."""
    answers = error_responses(*(s for s in statuses if s not in _OWN_MEANINGS))
    for status in statuses:
        if status in _OWN_MEANINGS:
            answers[status] = {"model": ErrorBody, "description": _OWN_MEANINGS[status]}
    return answers


IMPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": DncImportIn.model_json_schema()},
            "text/csv": {
                "schema": {"type": "string"},
                "example": "phone_number\n3005050149\n+12125551234\n",
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
        },
    }
}
