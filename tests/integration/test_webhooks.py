"""Webhooks on a real local receiver: every status change, signed, in order, retried."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.integration.test_pipeline import api, running_worker, terminal, wait_for
from ttsqueue.config import Settings
from ttsqueue.webhooks.addresses import RefusedTarget, check_target, literal_target_refused
from ttsqueue.webhooks.signing import verify

__all__ = ["api"]

SECRET = "whsec-test"

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.settings(
        WEBHOOK_ALLOW_PRIVATE=True, WEBHOOK_SECRET=SECRET, WEBHOOK_RETRY_BASE_SECONDS=0.1
    ),
]


class Receiver:
    """Answers 500 to the first delivery of each `processing` event, 200 otherwise."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.signatures_ok: list[bool] = []
        self.failed_once: set[str] = set()

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        event = json.loads(body)
        self.signatures_ok.append(verify(body, SECRET, request.headers["x-ttsq-signature"]))
        if event["status"] == "processing" and event["job_id"] not in self.failed_once:
            self.failed_once.add(event["job_id"])
            return Response(status_code=500)
        self.received.append(event)
        return Response(status_code=204)


@contextlib.asynccontextmanager
async def serving(receiver: Receiver) -> AsyncIterator[str]:
    app = Starlette(routes=[Route("/hook", receiver.hook, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    for _ in range(500):  # polling uvicorn's own flag: it offers no event
        if server.started:
            break
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        server.should_exit = True
        await task


async def test_every_change_is_delivered_signed_in_order(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    receiver = Receiver()
    async with serving(receiver) as url:
        ids = []
        for n in range(3):
            reply = await api.post(
                "/tts/call",
                json={
                    "text": "Aviso",
                    "phone_number": "3005050149",
                    "callback_url": url,
                    "metadata": {"ticket": n},
                },
            )
            ids.append(reply.json()["job_id"])
        async with running_worker(settings):
            for job_id in ids:
                await wait_for(api, job_id, terminal)
            for _ in range(200):
                if len(receiver.received) == 3 * len(ids):
                    break
                await asyncio.sleep(0.05)
    assert all(receiver.signatures_ok)
    for n, job_id in enumerate(ids):
        events = [e for e in receiver.received if e["job_id"] == job_id]
        # The refused first delivery was retried, and nothing overtook it.
        assert [e["status"] for e in events] == ["processing", "calling", "completed"]
        assert [e["previous_status"] for e in events] == ["queued", "processing", "calling"]
        assert events[-1]["call"]["outcome"] == "answered"
        assert events[-1]["attempts"] == 1
        assert events[-1]["metadata"] == {"ticket": n}
        assert job_id in receiver.failed_once


@pytest.mark.settings(WEBHOOK_ALLOW_PRIVATE=False)
async def test_private_targets_are_refused_at_submission(api: httpx.AsyncClient) -> None:
    for url in (
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/x",
        "http://[::1]/x",
        "http://169.254.169.254/latest",
    ):
        reply = await api.post(
            "/tts/call", json={"text": "Hola", "phone_number": "3005050149", "callback_url": url}
        )
        assert reply.status_code == 422, url
        assert "callback_url" in reply.json()["error"]


async def test_names_resolving_to_private_addresses_are_refused() -> None:
    assert literal_target_refused("http://192.168.1.10/x")
    assert not literal_target_refused("https://hooks.example.com/x")
    # The machine's own name resolves to a loopback address without being spelled as one.
    with pytest.raises(RefusedTarget, match="resolves to a private address"):
        await check_target(f"http://{socket.gethostname()}:9/x")
