"""Who may open the dashboard: API keys (headers, `?key=`, cookie) or basic auth (SPEC §2.8)."""

from __future__ import annotations

import base64

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

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
