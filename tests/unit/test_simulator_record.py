"""The simulator's own record of what it was asked to dial: one `simulated call placed` line
per origination it receives, naming the call (so duplicates can be counted from the dialer's
side, not only from the worker's)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from tests.conftest import make_settings
from ttsqueue.dialer.base import CallRequest
from ttsqueue.dialer.simulator import SimulatorDialer
from ttsqueue.logs import configure_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()


def call(number: str, attempt: int) -> CallRequest:
    return CallRequest(
        job_id="0f8e4a52-3c1d-4b7a-9e6f-1a2b3c4d5e6f",
        attempt=attempt,
        number=number,
        e164=f"+57{number}",
        caller_id=None,
        audio_path="/var/audio/abc",
        audio_duration_s=1.0,
        ring_timeout_s=30,
        originated_at=time.time(),
    )


async def test_each_origination_is_recorded_with_its_call_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path, LOG_FORMAT="json", LOG_LEVEL="INFO")
    configure_logging(settings, process="worker")
    dialer = SimulatorDialer(settings)
    first, second = call("3005050149", 1), call("3005550001", 2)
    await dialer.originate(first)
    await dialer.originate(second)
    await dialer.originate(second)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    placed = [line for line in lines if line["event"] == "simulated call placed"]
    assert [(line["call_id"], line["scripted"]) for line in placed] == [
        (first.call_id, "answered"),
        (second.call_id, "busy"),
        (second.call_id, "busy"),
    ]
    assert {line["level"] for line in placed} == {"info"}
