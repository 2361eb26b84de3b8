"""Who may open the dashboard: API keys (headers, `?key=`, cookie) or basic auth (SPEC §2.8).

The middleware is tested on a small app for its rules, then on the real dashboard app served
by uvicorn (real Redis and RabbitMQ behind it) so that removing its wiring fails a test.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.http_servers import serving
from ttsqueue.config import Settings
from ttsqueue.dashboard.app import create_app
from ttsqueue.dashboard.auth import COOKIE, DashboardAuth


async def _ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("inside")


def client(
    *, keys: list[str] | None = None, user: str = "", password: str = ""
) -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/", _ok), Route("/healthz", _ok), Route("/events", _ok)])
    guarded = DashboardAuth(app, keys=keys or [], user=user, password=password)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=guarded), base_url="http://dash")


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def test_open_when_nothing_is_configured() -> None:
    async with client() as http:
        assert (await http.get("/")).text == "inside"


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": "Bearer k2"}, {"X-API-Key": "k1"}, {"authorization": "bearer k1"}],
)
async def test_a_key_in_a_header_opens(headers: dict[str, str]) -> None:
    async with client(keys=["k1", "k2"]) as http:
        reply = await http.get("/events", headers=headers)
    assert (reply.status_code, reply.text) == (200, "inside")


async def test_missing_or_wrong_key_is_refused() -> None:
    async with client(keys=["k1"]) as http:
        assert (await http.get("/events")).status_code == 401
        assert (await http.get("/events", headers={"X-API-Key": "k10"})).status_code == 401
        page = await http.get("/", headers={"Accept": "text/html"})
        assert (await http.get("/events?key=nope")).status_code == 401
        assert (await http.get("/healthz")).status_code == 200
    assert page.status_code == 401
    assert 'name="key"' in page.text


async def test_key_in_the_url_becomes_a_cookie_without_the_key() -> None:
    async with client(keys=["secret-key"]) as http:
        traded = await http.get("/?key=secret-key")
        assert traded.status_code == 303
        assert traded.headers["location"] == "/"
        set_cookie = traded.headers["set-cookie"]
        assert "secret-key" not in set_cookie
        assert "httponly" in set_cookie.lower()
        assert "samesite=strict" in set_cookie.lower()
        token = traded.cookies[COOKIE]
        http.cookies.clear()
        follow = await http.get("/events", headers={"Cookie": f"{COOKIE}={token}"})
        forged = await http.get("/events", headers={"Cookie": f"{COOKIE}={'0' * 64}"})
    assert follow.text == "inside"
    assert forged.status_code == 401


async def test_basic_auth_user_and_password() -> None:
    async with client(user="ops", password="s3cret") as http:
        ok = await http.get("/", headers=basic("ops", "s3cret"))
        wrong = await http.get("/", headers=basic("ops", "nope"))
        nothing = await http.get("/")
    assert ok.text == "inside"
    assert wrong.status_code == 401
    assert nothing.headers["www-authenticate"].startswith("Basic")


async def test_keys_and_basic_auth_both_work_when_both_are_set() -> None:
    async with client(keys=["k1"], user="ops", password="pw") as http:
        by_key = await http.get("/", headers={"X-API-Key": "k1"})
        by_user = await http.get("/", headers=basic("ops", "pw"))
        refused = await http.get("/", headers=basic("ops", "k1"))
    assert (by_key.status_code, by_user.status_code, refused.status_code) == (200, 200, 401)


# The real dashboard app, served by uvicorn: the middleware must be wired in front of every route.
@contextlib.asynccontextmanager
async def real_dashboard(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        serving(create_app(settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):
        yield http


async def first_event_bytes(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> tuple[int, str, bytes]:
    async with http.stream("GET", "/events", headers=headers) as reply:
        if reply.status_code != 200:
            return reply.status_code, reply.headers.get("content-type", ""), await reply.aread()
        chunk = b""
        async with asyncio.timeout(10):
            async for piece in reply.aiter_bytes():
                chunk += piece
                if b"\n\n" in chunk:
                    break
        return reply.status_code, reply.headers["content-type"], chunk


PROTECTED = ["/", "/api/snapshot", "/api/jobs", "/static/app.js", "/static/vendor/chart.umd.min.js"]


@pytest.mark.settings(DASHBOARD_USER="ops", DASHBOARD_PASSWORD="s3cret")
async def test_the_real_dashboard_asks_for_basic_auth_everywhere(
    settings: Settings, redis_client: Any
) -> None:
    right, wrong, other_user = basic("ops", "s3cret"), basic("ops", "s3cre"), basic("op", "s3cret")
    async with real_dashboard(settings) as http:
        for path in PROTECTED:
            for headers in ({}, wrong, other_user, {"X-API-Key": "s3cret"}):
                reply = await http.get(path, headers=headers)
                assert reply.status_code == 401, (path, headers)
                assert reply.headers["www-authenticate"].startswith("Basic "), path
                assert "queues-panel" not in reply.text, path
            allowed = await http.get(path, headers=right)
            assert allowed.status_code == 200, path
        page = await http.get("/", headers=right)
        assert 'id="queues-panel"' in page.text
        assert (await http.get("/api/snapshot", headers=right)).json()["health"]["redis"] == "up"

        # The event stream: refused without (or with wrong) credentials, streaming with them.
        for headers in ({}, wrong):
            status, _, body = await first_event_bytes(http, headers)
            assert status == 401
            assert b"retry:" not in body
        status, content_type, body = await first_event_bytes(http, right)
        assert (status, content_type.split(";")[0]) == (200, "text/event-stream")
        assert body.startswith(b"retry: 1000")

        # Only the liveness probe is open.
        assert (await http.get("/healthz")).status_code == 200


@pytest.mark.settings(API_KEYS="dash-key")
async def test_the_real_dashboard_takes_the_api_keys_on_the_stream(
    settings: Settings, redis_client: Any
) -> None:
    async with real_dashboard(settings) as http:
        assert (await first_event_bytes(http, {}))[0] == 401
        assert (await first_event_bytes(http, {"X-API-Key": "dash-keys"}))[0] == 401
        status, _, body = await first_event_bytes(http, {"Authorization": "Bearer dash-key"})
        assert status == 200
        assert body.startswith(b"retry: 1000")
