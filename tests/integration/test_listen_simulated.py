"""Calls that listen through the simulator (0004 presses 1, 0005 is a machine, 0006 presses
nothing), end to end: the job's outcome and details, the signed webhooks, `/queue/stats`'s
`calls.by_outcome` and `/metrics`' `ttsq_calls_total{outcome}`."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.in_process import running_worker, terminal, wait_for
from tests.integration.test_metrics import samples
from tests.integration.test_webhooks import SECRET, Receiver, serving
from ttsqueue.config import Settings

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.settings(
        WORKER_CONCURRENCY=4,
        WEBHOOK_ALLOW_PRIVATE=True,
        WEBHOOK_SECRET=SECRET,
        WEBHOOK_RETRY_BASE_SECONDS=0.1,
    ),
]

CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "confirmed": ("3005550004", {"confirm": {}}),
    "not_confirmed": ("3005550006", {"confirm": {"timeout_s": 2}}),
    "machine": ("3005550005", {"machine_detection": "hangup"}),
    "voicemail": ("3005550005", {"machine_detection": "message"}),
    "person": ("3005050149", {"machine_detection": "hangup", "confirm": {"digits": "9"}}),
}


async def test_listening_outcomes_everywhere(api: httpx.AsyncClient, settings: Settings) -> None:
    receiver = Receiver()
    async with serving(receiver) as url:
        ids = {}
        for name, (phone, extra) in CASES.items():
            reply = await api.post(
                "/tts/call",
                json={"text": "Aviso", "phone_number": phone, "callback_url": url, **extra},
            )
            assert reply.status_code == 202, reply.text
            ids[name] = reply.json()["job_id"]
        async with running_worker(settings):
            bodies = {name: await wait_for(api, job_id, terminal) for name, job_id in ids.items()}
            for _ in range(200):
                if sum(e["status"] in {"completed", "failed"} for e in receiver.received) == 5:
                    break
                await asyncio.sleep(0.05)
    found = {
        name: (
            b["status"],
            b["call"]["outcome"],
            b["call"]["dtmf"],
            b["call"]["confirmed"],
            (b["call"]["amd"] or {}).get("status"),
        )
        for name, b in bodies.items()
    }
    assert found == {
        "confirmed": ("completed", "confirmed", "1", True, None),
        "not_confirmed": ("completed", "not_confirmed", None, False, None),
        "machine": ("failed", "machine", None, None, "MACHINE"),
        "voicemail": ("completed", "voicemail", None, None, "MACHINE"),
        "person": ("completed", "confirmed", "9", True, "HUMAN"),
    }
    assert bodies["machine"]["call"]["amd"]["detect_ms"] == 2600
    assert bodies["confirmed"]["call"]["simulated"] is True

    # Webhooks carry the same call, signed.
    assert all(receiver.signatures_ok)
    last = {e["job_id"]: e for e in receiver.received if e["status"] in {"completed", "failed"}}
    assert last[ids["confirmed"]]["call"]["dtmf"] == "1"
    assert last[ids["confirmed"]]["call"]["confirmed"] is True
    assert last[ids["machine"]]["call"]["amd"]["cause"] == "LONGGREETING-1500-1500"

    stats = (await api.get("/queue/stats")).json()["statistics"]["calls"]["by_outcome"]
    assert {k: stats.get(k) for k in ("confirmed", "not_confirmed", "machine", "voicemail")} == {
        "confirmed": 2,
        "not_confirmed": 1,
        "machine": 1,
        "voicemail": 1,
    }
    metrics = samples((await api.get("/metrics")).text)
    calls = {
        dict(labels)["outcome"]: value
        for (name, labels), value in metrics.items()
        if name == "ttsq_calls_total"
    }
    assert calls["confirmed"] == 2
    assert calls["voicemail"] == 1
    assert calls["machine"] == 1
    assert calls["hangup_during_message"] == 0
