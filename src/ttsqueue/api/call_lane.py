"""`POST /tts/call` with a valid JSON body, served before FastAPI's router.

The route's own work is one Redis call and one confirmed publish. FastAPI's routing, its body
parsing (JSON to Python objects, then the model in Python mode) and its dependency solving cost
about a quarter of the API's CPU per call on top of that (`bench_ingest.py --profile`). Here
pydantic validates the model straight from the JSON bytes, once, and the request goes to the
same `accept_call` as the route's.

A body the lane does not take goes on to FastAPI's route unchanged: a media type other than
`application/json`, an empty body, or a body that is not a valid call. Every error answer is
therefore the route's own (422 naming the field, 400 for malformed JSON, ...). The middlewares
outside this one apply to both paths: the body limit, API keys and rate limit, and the
last-resort 500.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ttsqueue.api.context import ApiContext
from ttsqueue.api.errors import ApiError, api_error_response, unavailable_response
from ttsqueue.api.routes_calls import accept_call
from ttsqueue.api.schemas import CallRequestIn
from ttsqueue.errors import ConnectionLostError

PATH = "/tts/call"


class CallLane:
    """ASGI middleware: valid `POST /tts/call` requests to `accept_call`, the rest to `app`."""

    def __init__(self, app: ASGIApp, context: Callable[[], ApiContext]) -> None:
        self.app = app
        # The context exists once the app's lifespan has started, before any request.
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _takes(scope):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:
            return  # the client went away before sending its body
        call = _valid_call(body)
        if call is None:
            await self.app(scope, _replay(body, receive), send)
            return
        response = await self._accept(call, scope)
        await response(scope, receive, send)

    async def _accept(self, call: CallRequestIn, scope: Scope) -> Response:
        # The errors the app's handlers map for FastAPI's route, mapped the same way here;
        # anything else reaches the last-resort 500 outside.
        try:
            return await accept_call(self.context(), call, Headers(scope=scope))
        except ApiError as exc:
            return api_error_response(exc)
        except ConnectionLostError as exc:
            return unavailable_response(exc, PATH)


def _takes(scope: Scope) -> bool:
    if scope["type"] != "http" or scope["method"] != "POST":
        return False
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path == PATH and _is_json(scope)


def _is_json(scope: Scope) -> bool:
    """Whether the request's (first) Content-Type is application/json, parameters aside."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            media_type: bytes = value.split(b";", 1)[0].strip().lower()
            return media_type == b"application/json"
    return False


def _valid_call(body: bytes) -> CallRequestIn | None:
    if not body:
        return None
    try:
        return CallRequestIn.model_validate_json(body)
    except ValidationError:
        return None


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed
