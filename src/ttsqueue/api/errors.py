"""The API's error model, mapped at the edge (SPEC §2, §2.8).

Every error leaves as `{"success": false, "error", "code", "details"}`; nothing a client sends
produces a stack trace in a response.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ttsqueue.errors import BrokerUnavailableError, ConnectionLostError, StoreUnavailableError
from ttsqueue.logs import get_logger
from ttsqueue.views.http import error_response

log = get_logger("ttsqueue.api")

RETRY_AFTER_UNAVAILABLE = "5"
_MAX_DETAILS = 50
_MAX_MESSAGE = 300
_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "service_unavailable",
}


class ApiError(Exception):
    """An error with its HTTP status and machine code, raised anywhere below a route."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = dict(headers or {})


class FieldError(ApiError):
    """One request field breaks a rule: 422, the message names the field."""

    def __init__(self, field: str, message: str, code: str = "validation_error") -> None:
        self.field = field
        self.problem = message
        detail = {"loc": ["body", field], "field": field, "message": message}
        super().__init__(422, code, f"{field}: {message}", [detail])


def describe_validation_errors(
    errors: Sequence[Mapping[str, Any]],
) -> tuple[str, list[dict[str, Any]]]:
    """A readable message naming each field, and `details` without the offending input."""
    details: list[dict[str, Any]] = []
    for err in errors[:_MAX_DETAILS]:
        loc = [part if isinstance(part, int) else str(part) for part in err.get("loc", ())]
        named = loc[1:] if len(loc) > 1 and loc[0] in _LOCATIONS else loc
        field = ".".join(str(part) for part in named) or "body"
        message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            message = "unknown field (check its spelling: unknown fields are never ignored)"
        details.append({"loc": loc, "field": field, "message": message[:_MAX_MESSAGE]})
    shown = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
    if len(errors) > 5:
        shown += f" (and {len(errors) - 5} more)"
    return shown or "invalid request", details


def _malformed_json(errors: Sequence[Mapping[str, Any]]) -> str | None:
    for err in errors:
        if err.get("type") == "json_invalid":
            reason = str((err.get("ctx") or {}).get("error", "invalid JSON"))[:_MAX_MESSAGE]
            position = err.get("loc", ("body",))[-1]
            where = f" at position {position}" if isinstance(position, int) else ""
            return f"request body is not valid JSON: {reason}{where}"
    return None


def api_error_response(exc: ApiError) -> Response:
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return api_error_response(exc)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    malformed = _malformed_json(errors)
    if malformed is not None:
        return error_response(400, "malformed_json", malformed)
    message, details = describe_validation_errors(errors)
    return error_response(422, "validation_error", message, details)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(exc.status_code, code, message, headers=exc.headers)


def unavailable_response(exc: ConnectionLostError, path: str) -> Response:
    """503 with Retry-After for a Redis or RabbitMQ that could not be used."""
    if isinstance(exc, BrokerUnavailableError):
        message = "the message broker (RabbitMQ) is unavailable; retry later"
    elif isinstance(exc, StoreUnavailableError):
        message = "the job store (Redis) is unavailable; retry later"
    else:
        message = "a backend service is unavailable; retry later"
    log.warning("dependency unavailable", error_type=type(exc).__name__, path=path)
    return error_response(
        503, "service_unavailable", message, headers={"Retry-After": RETRY_AFTER_UNAVAILABLE}
    )


async def _on_unavailable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ConnectionLostError)
    return unavailable_response(exc, request.url.path)


def internal_error_response() -> Response:
    return error_response(500, "internal_error", "internal server error")


async def _on_unhandled(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", path=request.url.path, exc_info=exc)
    return internal_error_response()


class UnhandledErrorMiddleware:
    """Turns an exception escaping a route into the 500 error body, logged once.

    Starlette's own last-resort handler also answers, but re-raises to the server, which logs
    the traceback a second time; this one stops the exception here.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise
            log.exception("unhandled error", path=scope.get("path"))
            await internal_error_response()(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to the error body. Call before the app starts."""
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(ConnectionLostError, _on_unavailable)
    # Last resort for errors raised by middleware outside UnhandledErrorMiddleware.
    app.add_exception_handler(Exception, _on_unhandled)
    app.add_middleware(UnhandledErrorMiddleware)
