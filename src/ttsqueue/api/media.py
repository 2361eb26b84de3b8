"""The media type of a call's body: JSON, or an answer that names the header.

A body sent as `text/plain` or as a form (`curl -d` without `-H 'Content-Type: ...'`) used to
reach the model as raw bytes and come back as a 422 about the body's type, which does not say
what to change. It now gets 415 naming `Content-Type`, as does a request without the header
(FastAPI does not read such a body as JSON either).
"""

from __future__ import annotations

from fastapi import Request

from ttsqueue.api.errors import ApiError


def is_json_media_type(content_type: str | None) -> bool:
    """`application/json` or an `application/...+json` type, parameters aside."""
    if content_type is None:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def require_json_body(request: Request) -> None:
    """A route dependency: 415 before the body is validated when it is not sent as JSON."""
    content_type = request.headers.get("content-type")
    if is_json_media_type(content_type):
        return
    found = "missing" if content_type is None else f"not {content_type[:80]!r}"
    raise ApiError(
        415,
        "unsupported_media_type",
        "Content-Type: send the body as application/json",
        details=[
            {
                "loc": ["header", "Content-Type"],
                "field": "Content-Type",
                "message": f"must be application/json ({found})",
            }
        ],
    )
