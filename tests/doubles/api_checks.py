"""For the Asterisk end-to-end tests (tests/e2e/test_asterisk_*.py): jobs through the API,
hostile input, and checks on what reached the doubles."""

from __future__ import annotations

from typing import Any

import httpx

from tests.in_process import terminal, wait_for

# SPEC §2.6: none of these may reach Asterisk. Each is refused by the API (422), or, for the
# fields that are never written into a dial string (text, metadata), accepted but kept away.
HOSTILE_REFUSED: list[dict[str, Any]] = [
    {"phone_number": "3005050149\r\nAction: Originate\r\nChannel: Local/66606660@evil"},
    {"phone_number": "3005050149&PJSIP/66606660@evil"},
    {"phone_number": "3005050149,66606660"},
    {"phone_number": "3005050149;66606660"},
    {"phone_number": "3005050149|66606660"},
    {"phone_number": "3005050149@evil"},
    {"phone_number": "300/505/0149"},
    {"phone_number": "3005050149\nAction: Hangup"},
    {"caller_id": '"Evil\r\nAction: Command" <5550100>'},
    {"caller_id": "5550100&66606660"},
    {"caller_id": '"a,b" <5550100>'},
    {"voice": "es\r\nAction: Command"},
]
HOSTILE_ACCEPTED: list[dict[str, Any]] = [
    {"text": "Hola\nAction: Originate\nChannel: Local/66606660@evil\n\nAction: Command evil"},
    {"text": "Aviso & Local/66606660@evil , ; | @evil"},
    {"metadata": {"x": "\r\nAction: Hangup\r\nChannel: Local/66606660@evil", "y": "a&b,c;d|e"}},
]
# Long enough never to turn up by chance in a job id or a channel id (hex).
MARKERS = [b"evil", b"66606660", b"Action: Hangup", b"Action: Command"]


async def submit(api: httpx.AsyncClient, number: str, **extra: Any) -> str:
    body = {"text": "Hola, este es un mensaje de prueba.", "phone_number": number, **extra}
    reply = await api.post("/tts/call", json=body)
    assert reply.status_code == 202, reply.text
    job_id: str = reply.json()["job_id"]
    return job_id


async def finished(api: httpx.AsyncClient, job_id: str, timeout: float = 30) -> dict[str, Any]:
    return await wait_for(api, job_id, terminal, timeout=timeout)


async def refused_hostile_input(api: httpx.AsyncClient) -> None:
    for fields in HOSTILE_REFUSED:
        body = {"text": "Hola", "phone_number": "3005050149", **fields}
        reply = await api.post("/tts/call", json=body)
        assert reply.status_code == 422, (fields, reply.status_code)


def no_marker_in(data: bytes) -> None:
    for marker in MARKERS:
        assert marker not in data, marker
