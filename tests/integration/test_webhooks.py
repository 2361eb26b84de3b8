"""Webhooks on a real local receiver: every status change, signed, in order, retried."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from structlog.testing import capture_logs

from tests.in_process import running_worker, terminal, wait_for
from ttsqueue.config import Settings
from ttsqueue.store.factory import keys_for
from ttsqueue.store.keys import Keys
from ttsqueue.webhooks.addresses import RefusedTarget, literal_target_refused
from ttsqueue.webhooks.delivery import DeliveryFailed, deliver
from ttsqueue.webhooks.dispatcher import WebhookDispatcher
from ttsqueue.webhooks.guard import webhook_client
from ttsqueue.webhooks.signing import verify

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
async def listening(app: Starlette, **config: Any) -> AsyncIterator[int]:
    """Serve `app` on 127.0.0.1 with uvicorn; yields the port."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", **config)
    )
    task = asyncio.create_task(server.serve())
    for _ in range(3000):  # polling uvicorn's own flag: it offers no event
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "the local receiver did not start"
    port: int = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def serving(receiver: Receiver) -> AsyncIterator[str]:
    app = Starlette(routes=[Route("/hook", receiver.hook, methods=["POST"])])
    async with listening(app) as port:
        yield f"http://127.0.0.1:{port}/hook"


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


def test_literal_private_targets_are_recognized_without_dns() -> None:
    assert literal_target_refused("http://192.168.1.10/x")
    assert literal_target_refused("http://[::ffff:127.0.0.1]/x")
    assert literal_target_refused("http://100.64.0.1/x")
    assert not literal_target_refused("https://hooks.example.com/x")


# Connect-time refusal: the address that is checked is the address that is connected to ------
HOOK_NAME = "hooks.example.invalid"  # `.invalid` never resolves through real DNS
BODY = b'{"job_id": "j-1", "status": "completed"}'


class Recorder:
    """A receiver that keeps every request it gets."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []

    async def hook(self, request: Request) -> Response:
        self.requests.append((dict(request.headers), await request.body()))
        return Response(status_code=204)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])


class FakeDns:
    """A resolver under the test's control that counts its queries."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.queries: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.queries.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.answers[host]


async def test_a_name_resolving_to_loopback_is_refused_when_connecting() -> None:
    recorder = Recorder()
    dns = FakeDns({HOOK_NAME: ["127.0.0.1"]})
    async with (
        listening(recorder.app()) as port,
        webhook_client(timeout=10, allow_private=False, resolver=dns) as client,
    ):
        with pytest.raises(RefusedTarget, match=r"resolves to a loopback or private address"):
            await deliver(client, f"http://{HOOK_NAME}:{port}/hook", BODY, secret=SECRET)
    assert recorder.requests == []
    assert dns.queries == [HOOK_NAME]


@pytest.mark.parametrize(
    "answers",
    [
        ["8.8.8.8", "127.0.0.1"],  # one inside answer refuses the name, whatever comes first
        ["10.0.0.7"],
        ["169.254.169.254"],
        ["::1"],
        ["::ffff:127.0.0.1"],
        ["fe80::1"],
        ["0.0.0.0"],
        ["224.0.0.1"],
        ["100.64.0.1"],
    ],
)
async def test_every_forbidden_answer_is_refused_before_connecting(answers: list[str]) -> None:
    dns = FakeDns({HOOK_NAME: answers})
    async with webhook_client(timeout=10, allow_private=False, resolver=dns) as client:
        with pytest.raises(RefusedTarget):
            await deliver(client, f"http://{HOOK_NAME}:9/hook", BODY, secret=SECRET)


async def test_literal_and_system_resolved_loopback_targets_are_refused() -> None:
    async with webhook_client(timeout=10, allow_private=False) as client:
        for url in (
            "http://127.0.0.1:9/x",
            "http://[::ffff:127.0.0.1]:9/x",
            "http://localhost:9/x",
            # The machine's own name resolves to one of its own addresses.
            f"http://{socket.gethostname()}:9/x",
        ):
            with pytest.raises(RefusedTarget):
                await deliver(client, url, BODY, secret=SECRET)


async def test_allowed_private_target_gets_the_checked_address_and_its_name() -> None:
    recorder = Recorder()
    dns = FakeDns({HOOK_NAME: ["127.0.0.1"]})
    async with (
        listening(recorder.app()) as port,
        webhook_client(timeout=10, allow_private=True, resolver=dns) as client,
    ):
        # Only the controlled resolver knows the name: the connection used its answer.
        await deliver(client, f"http://{HOOK_NAME}:{port}/hook", BODY, secret=SECRET)
    [(headers, body)] = recorder.requests
    assert body == BODY
    assert verify(body, SECRET, headers["x-ttsq-signature"])
    assert headers["host"] == f"{HOOK_NAME}:{port}"
    assert dns.queries == [HOOK_NAME]


async def test_unresolvable_names_are_retryable_failures() -> None:
    async with webhook_client(timeout=10, allow_private=False, resolver=FakeDns({})) as client:
        with pytest.raises(DeliveryFailed, match="cannot resolve"):
            await deliver(client, f"http://{HOOK_NAME}/hook", BODY, secret=SECRET)


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A throwaway CA and a certificate for HOOK_NAME only (no IP address in it)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", d / "ca.key", "-out", d / "ca.pem", "-days", "2",
             "-subj", "/CN=ttsq test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    _openssl("req", *ec, "-keyout", d / "leaf.key", "-out", d / "leaf.csr",
             "-subj", f"/CN={HOOK_NAME}")  # fmt: skip
    (d / "ext.cnf").write_text(
        f"subjectAltName=DNS:{HOOK_NAME}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    _openssl("x509", "-req", "-in", d / "leaf.csr", "-CA", d / "ca.pem", "-CAkey", d / "ca.key",
             "-CAcreateserial", "-out", d / "leaf.pem", "-days", "2",
             "-extfile", d / "ext.cnf")  # fmt: skip
    return {"ca": d / "ca.pem", "cert": d / "leaf.pem", "key": d / "leaf.key"}


async def test_tls_is_verified_against_the_name_not_the_pinned_address(
    tls_files: dict[str, Path],
) -> None:
    recorder = Recorder()
    trust = ssl.create_default_context(cafile=str(tls_files["ca"]))
    other = "other.example.invalid"
    dns = FakeDns({HOOK_NAME: ["127.0.0.1"], other: ["127.0.0.1"]})
    tls = {"ssl_certfile": str(tls_files["cert"]), "ssl_keyfile": str(tls_files["key"])}
    async with (
        listening(recorder.app(), **tls) as port,
        webhook_client(timeout=10, allow_private=True, resolver=dns, verify=trust) as client,
    ):
        await deliver(client, f"https://{HOOK_NAME}:{port}/hook", BODY, secret=SECRET)
        # Same address, another name: the certificate does not match, nothing is sent.
        with pytest.raises(DeliveryFailed, match="certificate"):
            await deliver(client, f"https://{other}:{port}/hook", BODY, secret=SECRET)
    [(headers, body)] = recorder.requests
    assert headers["host"] == f"{HOOK_NAME}:{port}"
    assert verify(body, SECRET, headers["x-ttsq-signature"])


async def _dispatch_one(
    redis_client: aioredis.Redis, settings: Settings, dns: FakeDns, url: str
) -> list[MutableMapping[str, Any]]:
    """Queue one status change the way the status script does, run a dispatcher until the
    entry is gone from the stream, and return the dispatcher's log events."""
    keys = Keys(settings.REDIS_PREFIX)
    await redis_client.xadd(keys.webhooks, {"job_id": "j-1", "url": url, "body": BODY.decode()})
    dispatcher = WebhookDispatcher(
        redis_client, keys_for(settings), settings, consumer="test", resolver=dns
    )
    with capture_logs() as logs:
        task = asyncio.create_task(dispatcher.run())
        try:
            for _ in range(400):
                if await redis_client.xlen(keys.webhooks) == 0:
                    break
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert await redis_client.xlen(keys.webhooks) == 0
    return logs


async def test_dispatcher_delivers_through_the_guarded_client(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    recorder = Recorder()
    dns = FakeDns({HOOK_NAME: ["127.0.0.1"]})
    async with listening(recorder.app()) as port:
        await _dispatch_one(redis_client, settings, dns, f"http://{HOOK_NAME}:{port}/hook")
    [(headers, body)] = recorder.requests
    assert verify(body, SECRET, headers["x-ttsq-signature"])


@pytest.mark.settings(WEBHOOK_ALLOW_PRIVATE=False, WEBHOOK_SECRET=SECRET)
async def test_dispatcher_refuses_a_name_resolving_inside(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    recorder = Recorder()
    dns = FakeDns({HOOK_NAME: ["127.0.0.1"]})
    async with listening(recorder.app()) as port:
        logs = await _dispatch_one(redis_client, settings, dns, f"http://{HOOK_NAME}:{port}/hook")
    assert recorder.requests == []
    refused = [e for e in logs if e["event"] == "webhook refused"]
    assert len(refused) == 1
    assert "127.0.0.1" in refused[0]["error"]
