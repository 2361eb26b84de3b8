"""Schemathesis against the real app's /openapi.json, served over HTTP with real RabbitMQ and
Redis: generated valid and invalid requests for every operation (Hypothesis, deterministic,
MAX_EXAMPLES each).

Checked on every response: no 5xx; the status code is one the operation declares (the
document lists 200/202 and the error answers 400/401/404/409/413/422/429/503, per operation);
the body matches the schema where one is declared; the content type is the declared one; an
invalid request (negative mode) is refused with a 4xx; every error has the product's error
shape. Not checked: that schema-valid bodies are accepted (the schema cannot say which phone
numbers exist).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.result import Ok

from tests.conftest import make_settings
from tests.figures import record
from tests.fuzz.live_api import serve_api
from ttsqueue.api.app import create_app

pytestmark = pytest.mark.timeout(300)

MAX_EXAMPLES = 50

# The document the app serves at /openapi.json (building the app needs no connection).
SCHEMA = schemathesis.openapi.from_dict(
    create_app(make_settings(Path(tempfile.gettempdir()))).openapi()
)
# An invalid request may also be refused as too large (413).
_rejection = SCHEMA.config.checks.negative_data_rejection
_rejection.expected_statuses = [*_rejection.expected_statuses, "413"]
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations() if isinstance(result, Ok)]


def can_be_invalid(operation: schemathesis.APIOperation[Any, Any, Any, Any]) -> bool:
    """A body or query parameters can break the schema; a bare string path parameter cannot."""
    raw = operation.definition.raw
    return "requestBody" in raw or any(p.get("in") == "query" for p in raw.get("parameters", []))


CASES = [(op.label, GenerationMode.POSITIVE) for op in OPERATIONS] + [
    (op.label, GenerationMode.NEGATIVE) for op in OPERATIONS if can_be_invalid(op)
]
SENT: dict[str, int] = {}
# Answers with a 5xx status, by case, as they came (each also fails its test).
SERVER_ERRORS: dict[str, int] = {}


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_api(make_settings(tmp_path_factory.mktemp("fuzz"), LOG_LEVEL="ERROR")) as url:
        yield url
    record(
        "fuzz_openapi",
        requests=sum(SENT.values()),
        by_case=SENT,
        http_5xx=sum(SERVER_ERRORS.values()),
        http_5xx_by_case=SERVER_ERRORS,
    )


def check_error_shape(label: str, status: int, body: Any) -> None:
    assert status < 500, f"{label}: {status} {body}"
    if status < 400:
        return
    if label == "POST /tts/calls" and status == 422 and "results" in body:
        assert body["success"] is False
        assert isinstance(body["results"], list)
        return
    assert body["success"] is False, body
    assert isinstance(body["error"], str)
    assert body["error"]
    assert isinstance(body["code"], str)
    assert isinstance(body["details"], list)


@pytest.mark.parametrize(("label", "mode"), CASES, ids=[f"{lab}-{m.value}" for lab, m in CASES])
def test_operation_conforms(live_api: str, label: str, mode: GenerationMode) -> None:
    operation = SCHEMA.find_operation_by_label(label)
    assert operation is not None
    key = f"{label} {mode.value}"

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case[Any]) -> None:
        response = case.call(base_url=live_api, timeout=30)
        SENT[key] = SENT.get(key, 0) + 1
        if response.status_code >= 500:
            SERVER_ERRORS[key] = SERVER_ERRORS.get(key, 0) + 1
        case.validate_response(response, excluded_checks=[positive_data_acceptance])
        if response.headers.get("content-type", [""])[0].startswith("application/json"):
            check_error_shape(label, response.status_code, response.json())
        else:
            assert response.status_code < 400, (label, response.status_code, response.text)

    run()
