"""`POST /tts/calls`: one job per valid item, per-item errors, nothing else blocked."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.test_pipeline import api

__all__ = ["api"]

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
