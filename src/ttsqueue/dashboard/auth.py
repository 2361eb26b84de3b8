"""Who may see the dashboard (SPEC §2.8): the API's keys, or DASHBOARD_USER/PASSWORD.

A key is accepted the way the API takes it (`Authorization: Bearer`, `X-API-Key`) and, for a
browser, as `?key=` on the page: the page then gets a cookie holding a digest of the key (not
the key itself) and is redirected to a clean URL, so the event stream and the audio player
work without headers. With neither keys nor a user configured, nothing is checked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE = "ttsq_dashboard"
OPEN_PATHS = frozenset({"/healthz"})
_LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tts-queue dashboard</title></head>
<body style="font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem">
<h1>tts-queue</h1><p>An API key is required · Se requiere una clave de API</p>
<form method="get" action="/"><input name="key" type="password" autocomplete="current-password"
 aria-label="API key" style="width:100%;padding:.5rem" autofocus>
<button style="margin-top:.5rem;padding:.5rem 1rem">Open · Abrir</button></form></body></html>"""


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def cookie_token(key: str) -> str:
    return hashlib.sha256(f"ttsq-dashboard\x00{key}".encode()).hexdigest()


class DashboardAuth:
    def __init__(self, app: ASGIApp, *, keys: Sequence[str], user: str, password: str) -> None:
        self.app = app
        self.keys = [key for key in keys if key]
        self.tokens = [cookie_token(key) for key in self.keys]
        self.user = user
        self.password = password

    @property
    def enabled(self) -> bool:
        return bool(self.keys) or bool(self.user and self.password)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.enabled or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        query_key = self._query_key(scope)
        if query_key is not None and self._key_ok(query_key):
            # Trade the key in the URL for a cookie, and drop it from the address bar.
            response: Response = RedirectResponse(scope["path"], status_code=303)
            response.set_cookie(
                COOKIE, cookie_token(query_key), httponly=True, samesite="strict", path="/"
            )
            await response(scope, receive, send)
            return
        if self._header_ok(headers) or self._cookie_ok(headers) or self._basic_ok(headers):
            await self.app(scope, receive, send)
            return
        await self._refuse(headers)(scope, receive, send)

    def _refuse(self, headers: Headers) -> Response:
        if self.user and self.password and not self.keys:
            return Response(
                "authentication required\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="tts-queue dashboard", charset="UTF-8"'},
            )
        wants_html = "text/html" in headers.get("accept", "")
        if wants_html:
            return HTMLResponse(_LOGIN_PAGE, status_code=401)
        challenge = "Bearer" + (', Basic realm="tts-queue dashboard"' if self.user else "")
        return Response(
            "missing or invalid API key\n", status_code=401, headers={"WWW-Authenticate": challenge}
        )

    @staticmethod
    def _query_key(scope: Scope) -> str | None:
        raw = scope.get("query_string", b"").decode("latin-1")
        values = parse_qs(raw).get("key")
        return values[0] if values else None

    def _key_ok(self, candidate: str) -> bool:
        found = False
        for key in self.keys:
            found |= _same(candidate, key)
        return found

    def _header_ok(self, headers: Headers) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return self._key_ok(token.strip())
        presented = headers.get("x-api-key")
        return presented is not None and self._key_ok(presented)

    def _cookie_ok(self, headers: Headers) -> bool:
        token = cookie_parser(headers.get("cookie", "")).get(COOKIE)
        if not token:
            return False
        found = False
        for expected in self.tokens:
            found |= _same(token, expected)
        return found

    def _basic_ok(self, headers: Headers) -> bool:
        if not (self.user and self.password):
            return False
        scheme, _, encoded = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return _same(user, self.user) & _same(password, self.password)
