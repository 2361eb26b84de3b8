"""The dashboard's calls to the product's HTTP API: one submission path, one audio path.

A test call from the page goes through `POST /tts/call` exactly like any client's, and the
audio player plays what `GET /tts/audio/{job_id}` serves, so the dashboard may run on another
host than the workers' audio directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from ttsqueue.views.http import error_body

TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Relayed:
    status: int
    body: bytes
    content_type: str


class ApiProxy:
    def __init__(self, base_url: str, key: str | None) -> None:
        headers = {"X-API-Key": key} if key else {}
        self.base_url = base_url
        self._http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=TIMEOUT_S)

    async def submit_call(self, body: dict[str, Any]) -> Relayed:
        return await self._relay("POST", "/tts/call", json=body)

    async def campaigns(self, method: str, path: str, body: bytes, content_type: str) -> Relayed:
        """A campaign request relayed as it came (`path` under /campaigns, already checked)."""
        headers = {"Content-Type": content_type} if content_type else {}
        return await self._relay(
            method, f"/campaigns{path}", content=body or None, headers=headers, timeout=120.0
        )

    async def audio(self, job_id: str) -> Relayed:
        return await self._relay("GET", f"/tts/audio/{job_id}")

    async def _relay(self, method: str, path: str, **kwargs: Any) -> Relayed:
        try:
            reply = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            message = f"the API at {self.base_url} is not reachable ({type(exc).__name__})"
            return Relayed(
                502, orjson.dumps(error_body("api_unreachable", message)), "application/json"
            )
        content_type = reply.headers.get("content-type", "application/octet-stream")
        return Relayed(reply.status_code, reply.content, content_type)

    async def aclose(self) -> None:
        await self._http.aclose()
