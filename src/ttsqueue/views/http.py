"""HTTP answers the API and the dashboard share: orjson bodies declared as UTF-8 (SPEC §2),
the error shape `{"success": false, "error", "code", "details"}`, and the body-size limit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A campaign's upload (CSV or JSON rows): the limit of `POST /campaigns`, at the API and at the
# dashboard's relay alike.
MAX_CAMPAIGN_BYTES = 32 * 1024 * 1024


class JsonBody(Response):
    media_type = "application/json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def error_body(code: str, message: str, details: Sequence[Any] = ()) -> dict[str, Any]:
    return {"success": False, "error": message, "code": code, "details": list(details)}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Sequence[Any] = (),
    headers: Mapping[str, str] | None = None,
) -> Response:
    return JsonBody(error_body(code, message, details), status_code=status, headers=headers)


class BodySizeLimitMiddleware:
    """413 for bodies over `max_bytes`: by Content-Length at once, or counted while reading.

    The body is read here (never more than `max_bytes` held) and replayed to the app, so the
    limit holds for chunked uploads whatever the route does with the body.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int = 65536, per_path: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Routes allowed a larger body (the batch route), by exact path.
        self.per_path = dict(per_path or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope["path"], self.max_bytes)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._reject(limit, scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._reject(limit, scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        pending: list[Message] = [
            {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        ]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)

    async def _reject(self, limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request body is larger than {limit} bytes"
        await error_response(413, "payload_too_large", message)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
