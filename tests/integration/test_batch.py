"""`POST /tts/calls`: one job per valid item, per-item errors, nothing else blocked."""

from __future__ import annotations

import json

import httpx
import pytest

from ttsqueue.api.app import MAX_BODY_BYTES
from ttsqueue.api.routes_batch import MAX_BATCH, batch_body_limit
from ttsqueue.api.schemas import METADATA_MAX_BYTES
from ttsqueue.config import Settings

pytestmark = pytest.mark.timeout(90)


async def test_valid_items_are_queued_and_bad_ones_reported(api: httpx.AsyncClient) -> None:
    items = [
        {"text": "Uno", "phone_number": "3005050149"},
        {"text": "Dos", "phone_number": "3005050149\r\nAction: Originate"},
        {"text": "Tres", "phone_number": "3005050149", "priority": "high"},
        {"text": "Cuatro", "phone_number": "3005050149", "priority": "urgent"},
        {"text": "Cinco", "phone_number": "+57 300 505 0149"},
    ]
    reply = await api.post("/tts/calls", json={"calls": items})
    assert reply.status_code == 202
    body = reply.json()
    assert (body["success"], body["accepted"], body["rejected"]) == (True, 3, 2)
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert [r["success"] for r in results] == [True, False, True, False, True]
    assert "phone_number" in results[1]["error"]
    assert results[1]["code"] == "invalid_phone_number"
    assert "priority" in results[3]["error"]
    assert results[2]["queue"] == "priority"
    for result in (results[0], results[2], results[4]):
        status = await api.get(f"/tts/status/{result['job_id']}")
        assert status.json()["status"] == "queued"
    queues = (await api.get("/queue/stats")).json()["statistics"]["queues"]
    assert (queues["normal"], queues["priority"]) == (2, 1)


async def test_all_rejected_is_422_and_too_many_items_refused(api: httpx.AsyncClient) -> None:
    bad = await api.post("/tts/calls", json={"calls": [{"text": "", "phone_number": "1"}]})
    assert bad.status_code == 422
    assert bad.json()["accepted"] == 0
    too_many = [{"text": "x", "phone_number": "3005050149"}] * 1001
    reply = await api.post("/tts/calls", json={"calls": too_many})
    assert reply.status_code == 422
    assert reply.json()["success"] is False
    assert "calls" in reply.json()["error"]


async def test_a_thousand_calls_in_one_request(api: httpx.AsyncClient) -> None:
    text = "Recordatorio: su cita es mañana a las nueve de la mañana en la sede principal."
    items = [{"text": f"{text} #{n}", "phone_number": "3005050149"} for n in range(1000)]
    reply = await api.post("/tts/calls", json={"calls": items})
    assert reply.status_code == 202
    assert reply.json()["accepted"] == 1000
    stats = (await api.get("/queue/stats")).json()["statistics"]
    assert stats["jobs"]["total"] == 1000
    assert stats["queues"]["normal"] == 1000


async def test_empty_or_fully_rejected_batches_use_the_error_shape(
    api: httpx.AsyncClient,
) -> None:
    empty = await api.post("/tts/calls", json={"calls": []})
    assert empty.status_code == 422
    assert set(empty.json()) >= {"success", "error", "code", "details"}
    rejected = await api.post("/tts/calls", json={"calls": [{"text": "Hola"}]})
    body = rejected.json()
    assert rejected.status_code == 422
    assert (body["success"], body["code"]) == (False, "batch_rejected")
    assert "phone_number" in body["error"]
    assert body["details"][0]["field"] == "calls.0"


def maximal_item(n: int, max_text_length: int) -> dict[str, object]:
    """One call at the SPEC's limits: MAX_TEXT_LENGTH characters of 4 UTF-8 bytes each,
    metadata of exactly 2 KB as JSON, a 2048-character callback URL, every field set."""
    text = "\U0001f4de" * max_text_length  # 📞, four bytes in UTF-8
    metadata: dict[str, object] = {"n": n, "note": ""}
    metadata["note"] = "x" * (METADATA_MAX_BYTES - len(json.dumps(metadata, separators=(",", ":"))))
    url = "https://hooks.example.com/tts?token="
    return {
        "text": text,
        "phone_number": "+57 (300) 505-0149",
        "language": "es",
        "priority": "high" if n % 2 else "normal",
        "voice": "es-419",
        "engine": "espeak",
        "max_retries": 5,
        "retry_delay": 3600,
        "callback_url": url + "a" * (2048 - len(url)),
        "caller_id": '"Centro de Atención Médica" <6015550100>',
        "metadata": metadata,
    }


@pytest.mark.timeout(180)
async def test_a_maximal_batch_fits_and_one_byte_more_is_413(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    limit = batch_body_limit(settings.MAX_TEXT_LENGTH)
    items = [maximal_item(n, settings.MAX_TEXT_LENGTH) for n in range(MAX_BATCH)]
    assert len(json.dumps(items[0]["metadata"], separators=(",", ":"))) == METADATA_MAX_BYTES
    compact = json.dumps({"calls": items}, ensure_ascii=False, separators=(",", ":")).encode()
    assert len(compact) <= limit, f"a valid batch of {len(compact)} bytes is over {limit}"
    # The same batch padded (JSON allows trailing whitespace) to the cap, then one byte more.
    at_limit = compact + b" " * (limit - len(compact))
    headers = {"Content-Type": "application/json"}
    over = await api.post("/tts/calls", content=at_limit + b" ", headers=headers)
    assert over.status_code == 413
    assert over.json()["code"] == "payload_too_large"
    assert str(limit) in over.json()["error"]
    reply = await api.post("/tts/calls", content=at_limit, headers=headers)
    assert reply.status_code == 202, reply.text[:500]
    assert reply.json()["accepted"] == MAX_BATCH
    status = await api.get(f"/tts/status/{reply.json()['results'][-1]['job_id']}")
    assert status.json()["text"] == items[-1]["text"]
    assert status.json()["metadata"] == items[-1]["metadata"]


async def test_a_single_call_keeps_the_64_kb_limit(api: httpx.AsyncClient) -> None:
    body = json.dumps({"text": "Hola", "phone_number": "3005050149"}).encode()
    padded = body + b" " * (MAX_BODY_BYTES - len(body))
    headers = {"Content-Type": "application/json"}
    over = await api.post("/tts/call", content=padded + b" ", headers=headers)
    assert over.status_code == 413
    assert (await api.post("/tts/call", content=padded, headers=headers)).status_code == 202
