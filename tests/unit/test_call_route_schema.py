"""`POST /tts/call` reads its Idempotency-Key from the request, not as a FastAPI parameter; the
API's schema must still document that header, or clients generated from it lose the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_settings
from ttsqueue.api.app import create_app
from ttsqueue.api.routes_calls import IDEMPOTENCY_KEY_MAX

pytestmark = pytest.mark.timeout(30)


def call_operation(tmp_path: Path) -> dict[str, Any]:
    schema = create_app(make_settings(tmp_path)).openapi()
    operation: dict[str, Any] = schema["paths"]["/tts/call"]["post"]
    return operation


def test_the_schema_documents_the_idempotency_key_header(tmp_path: Path) -> None:
    parameters = call_operation(tmp_path).get("parameters", [])
    headers = [p for p in parameters if p["in"] == "header"]
    assert [p["name"] for p in headers] == ["Idempotency-Key"]
    assert headers[0]["required"] is False
    assert headers[0]["schema"] == {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX}


def test_the_schema_still_documents_the_body(tmp_path: Path) -> None:
    body = call_operation(tmp_path)["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CallRequestIn"
    }
