"""Fields a client should not get through: unknown names (single, each batch item, the batch
envelope, the dashboard's test-call form), `send_at` at the edges of the datetime range, and
dashboard bodies over the API's size limit (413 before the rest is read)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.http_servers import serving
from ttsqueue.api.app import create_app as create_api
from ttsqueue.config import Settings
from ttsqueue.dashboard.app import create_app as create_dashboard

pytestmark = pytest.mark.timeout(60)

CALL = {"text": "Hola", "phone_number": "3005050149"}
EDGES = ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+00:01"]


async def test_unknown_fields_are_named_in_a_422(api: httpx.AsyncClient) -> None:
    reply = await api.post("/tts/call", json={**CALL, "prioridad": "high", "retries": 3})
    assert reply.status_code == 422
    body = reply.json()
    assert {d["field"] for d in body["details"]} == {"prioridad", "retries"}
    assert "prioridad: unknown field" in body["error"]
    # Every field of the contract is still accepted.
    full = {
        **CALL,
        "language": "es",
        "priority": "high",
        "voice": "es",
        "engine": "espeak",
        "max_retries": 1,
        "retry_delay": 30,
        "send_at": "2020-01-01T00:00:00+00:00",
        "callback_url": "https://hooks.example.com/x",
        "caller_id": "3005050149",
        "metadata": {"ticket": 1},
    }
    assert (await api.post("/tts/call", json=full)).status_code == 202


async def test_unknown_fields_in_a_batch_are_reported_per_item_and_in_the_envelope(
    api: httpx.AsyncClient,
) -> None:
    items = [CALL, {**CALL, "numero": "1"}]
    reply = await api.post("/tts/calls", json={"calls": items})
    assert reply.status_code == 202
    results = reply.json()["results"]
    assert results[0]["success"] is True
    assert results[1]["success"] is False
    assert results[1]["details"][0]["field"] == "numero"
    envelope = await api.post("/tts/calls", json={"calls": [CALL], "llamadas": []})
    assert envelope.status_code == 422
    assert envelope.json()["details"][0]["field"] == "llamadas"


@pytest.mark.parametrize("send_at", EDGES)
async def test_send_at_at_the_edges_of_the_datetime_range_is_a_422(
    api: httpx.AsyncClient, send_at: str
) -> None:
    single = await api.post("/tts/call", json={**CALL, "send_at": send_at})
    assert single.status_code == 422
    assert single.json()["details"][0]["field"] == "send_at"
    batch = await api.post("/tts/calls", json={"calls": [{**CALL, "send_at": send_at}, CALL]})
    assert batch.status_code == 202
    [bad, good] = batch.json()["results"]
    assert bad["details"][0]["field"] == "send_at"
    assert good["success"] is True


@pytest.fixture
async def dashboard(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> AsyncIterator[str]:
    async with (
        serving(create_api(settings)) as api_url,
        serving(create_dashboard(settings, api_url=api_url)) as url,
    ):
        yield url


async def test_the_dashboard_form_names_unknown_fields(dashboard: str) -> None:
    async with httpx.AsyncClient(base_url=dashboard, timeout=10) as http:
        reply = await http.post("/api/calls", json={**CALL, "prioridad": "high"})
    assert reply.status_code == 422
    assert reply.json()["details"][0]["field"] == "prioridad"


async def test_the_dashboard_refuses_a_huge_chunked_body_without_reading_it(
    dashboard: str,
) -> None:
    """No Content-Length: the body comes in chunks, and the dashboard answers 413 once it has
    passed 64 KB, while the client is still sending (it never waits for the end)."""
    host, port = dashboard.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            b"POST /api/calls HTTP/1.1\r\nHost: dashboard\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b" " * 16384
        for _ in range(8):  # 128 KB, and the body never ends
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        await writer.drain()
        async with asyncio.timeout(15):
            status_line = await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    assert status_line.split()[1] == b"413"


async def test_a_gtts_voice_must_be_a_google_domain(api: httpx.AsyncClient) -> None:
    """The voice becomes the host a worker fetches speech from."""
    for voice in ("attacker.example", "com.attacker", "evil", "localhost"):
        single = await api.post("/tts/call", json={**CALL, "engine": "gtts", "voice": voice})
        assert single.status_code == 422, voice
        assert single.json()["details"][0]["field"] == "voice"
        batch = await api.post(
            "/tts/calls", json={"calls": [{**CALL, "voice": voice, "engine": "gtts"}, CALL]}
        )
        assert [r["success"] for r in batch.json()["results"]] == [False, True]
    for voice in ("com.mx", "es", "us", "co.uk"):
        ok = await api.post("/tts/call", json={**CALL, "engine": "gtts", "voice": voice})
        assert ok.status_code == 202, (voice, ok.text)
