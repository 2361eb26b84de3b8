"""The error model at the HTTP edge, driven through a small app with the real handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException

from ttsqueue.api.errors import ApiError, FieldError, install_error_handlers
from ttsqueue.api.schemas import CallRequestIn
from ttsqueue.errors import BrokerUnavailableError, StoreUnavailableError
from ttsqueue.views.http import BodySizeLimitMiddleware

LIMIT = 65536


def build_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=LIMIT)

    @app.post("/call")
    async def call(body: CallRequestIn) -> dict[str, Any]:
        if body.text == "field":
            raise FieldError("language", "language 'xx' is not supported")
        return {"success": True, "priority": body.priority}

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, Any]:
        data = await request.body()
        return {"size": len(data), "head": data[:8].decode()}

    @app.get("/boom")
    async def boom() -> dict[str, Any]:
        raise RuntimeError("secret-internal-detail")

    @app.get("/broker")
    async def broker() -> dict[str, Any]:
        raise BrokerUnavailableError("amqp://user:hunter2@rabbit refused")

    @app.get("/store")
    async def store() -> dict[str, Any]:
        raise StoreUnavailableError("redis down")

    @app.get("/limited")
    async def limited() -> dict[str, Any]:
        raise ApiError(429, "rate_limited", "too many requests", headers={"Retry-After": "7"})

    @app.get("/teapot")
    async def teapot() -> dict[str, Any]:
        raise HTTPException(418, detail="short and stout")

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def assert_error_shape(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    data: dict[str, Any] = response.json()
    assert set(data) == {"success", "error", "code", "details"}
    assert data["success"] is False
    assert data["code"] == code
    assert isinstance(data["error"], str)
    assert data["error"]
    return data


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/call", content=b'{"text": "hi", ', headers={"content-type": "application/json"}
    )
    data = assert_error_shape(response, 400, "malformed_json")
    assert "not valid JSON" in data["error"]


async def test_unknown_priority_is_422_naming_the_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/call", json={"text": "hi", "phone_number": "3005050149", "priority": "urgent"}
    )
    data = assert_error_shape(response, 422, "validation_error")
    assert data["error"] == "priority: Input should be 'normal' or 'high'"
    assert data["details"] == [
        {
            "loc": ["body", "priority"],
            "field": "priority",
            "message": "Input should be 'normal' or 'high'",
        }
    ]


async def test_every_bad_field_is_named_without_echoing_input(client: httpx.AsyncClient) -> None:
    huge = "9" * 5000
    response = await client.post(
        "/call", json={"text": huge, "phone_number": 1, "max_retries": "2", "send_at": huge}
    )
    data = assert_error_shape(response, 422, "validation_error")
    assert {d["field"] for d in data["details"]} == {"phone_number", "max_retries", "send_at"}
    for name in ("phone_number", "max_retries", "send_at"):
        assert f"{name}: " in data["error"]
    assert huge not in response.text


async def test_missing_body_is_422(client: httpx.AsyncClient) -> None:
    data = assert_error_shape(await client.post("/call"), 422, "validation_error")
    assert data["details"][0]["field"] == "body"


async def test_field_error_from_a_route(client: httpx.AsyncClient) -> None:
    response = await client.post("/call", json={"text": "field", "phone_number": "3005050149"})
    data = assert_error_shape(response, 422, "validation_error")
    assert data["error"] == "language: language 'xx' is not supported"
    assert data["details"][0]["field"] == "language"


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/call", content=b"{" + b" " * 200_000 + b"}", headers={"content-type": "application/json"}
    )
    assert_error_shape(response, 413, "payload_too_large")


async def test_chunked_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"x" * 10_000

    response = await client.post("/echo", content=chunks())
    assert "content-length" not in response.request.headers
    assert_error_shape(response, 413, "payload_too_large")


async def test_body_within_the_limit_reaches_the_route_intact(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"abcd"
        yield b"x" * (LIMIT - 4)

    response = await client.post("/echo", content=chunks())
    assert response.status_code == 200
    assert response.json() == {"size": LIMIT, "head": "abcdxxxx"}


async def test_unhandled_error_is_500_without_traceback(client: httpx.AsyncClient) -> None:
    response = await client.get("/boom")
    data = assert_error_shape(response, 500, "internal_error")
    assert data["details"] == []
    assert "secret-internal-detail" not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text


@pytest.mark.parametrize("path", ["/broker", "/store"])
async def test_dependency_down_is_503_with_retry_after(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert_error_shape(response, 503, "service_unavailable")
    assert response.headers["retry-after"] == "5"
    assert "hunter2" not in response.text


async def test_api_error_keeps_status_and_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/limited")
    data = assert_error_shape(response, 429, "rate_limited")
    assert data["error"] == "too many requests"
    assert response.headers["retry-after"] == "7"


async def test_not_found_and_method_not_allowed(client: httpx.AsyncClient) -> None:
    assert_error_shape(await client.get("/nowhere"), 404, "not_found")
    response = await client.get("/call")
    assert_error_shape(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


async def test_other_http_exceptions_keep_their_detail(client: httpx.AsyncClient) -> None:
    data = assert_error_shape(await client.get("/teapot"), 418, "http_418")
    assert data["error"] == "short and stout"
