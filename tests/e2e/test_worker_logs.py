"""The log of a real `ttsqueue worker` process (LOG_FORMAT=json, LOG_LEVEL=INFO) through an
answered job and a busy one: one JSON object per line; every line about a job carries its
`job_id`, the `worker_id`, the `attempt` and the process; each call's end is logged with its
outcome; no line carries the message text (SPEC §8)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.factories import lifecycle_for, make_job
from ttsqueue.broker.publisher import Publisher
from ttsqueue.broker.topology import QueueNames
from ttsqueue.config import Settings
from ttsqueue.domain import JobMessage, JobStatus
from ttsqueue.store.factory import build_store
from ttsqueue.store.jobs import JobStore

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

WORKER_ID = "logs-w1"
TEXT = "Su código de verificación es 4821-99173; no lo comparta con nadie."


def worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "WORKER_ID"}
    env.update(
        RABBITMQ_URL=settings.RABBITMQ_URL,
        REDIS_URL=settings.REDIS_URL,
        REDIS_PREFIX=settings.REDIS_PREFIX,
        QUEUE_PREFIX=settings.QUEUE_PREFIX,
        AUDIO_DIR=str(settings.AUDIO_DIR),
        TTS_ENGINE="espeak",
        TTS_FALLBACK_ENGINE="",
        DIALER="simulator",
        SIMULATOR_TIME_SCALE="0",
        WORKER_CONCURRENCY="2",
        WORKER_ID=WORKER_ID,
        WEBHOOKS_ENABLED="false",
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
    )
    return env


def start_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).with_name("ttsqueue")), "worker"],
            env=worker_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def strings(value: Any) -> list[str]:
    """Every string inside a decoded log line (keys and values, nested)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in (key, *strings(item))]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    return []


async def wait_for(store: JobStore, wanted: dict[str, JobStatus], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        now = {job_id: await store.get_status(job_id) for job_id in wanted}
        if now == wanted:
            return
        assert time.monotonic() < deadline, f"statuses now: {now}"
        await asyncio.sleep(0.1)


async def test_job_lines_carry_the_context_and_never_the_text(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any, tmp_path: Path
) -> None:
    store = build_store(redis_client, settings).jobs
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    publisher = Publisher(broker, names)
    answered = make_job(text=TEXT)
    busy = make_job(text=TEXT, phone="3005550001", max_retries=0)
    for job in (answered, busy):
        await lifecycle_for(store).create(job)
        await publisher.to_work_queue(
            names.calls, JobMessage(job_id=job.job_id).encode(), job.job_id
        )

    log = tmp_path / "worker.log"
    worker = start_worker(settings, log)
    try:
        await wait_for(store, {answered.job_id: JobStatus.COMPLETED, busy.job_id: JobStatus.FAILED})
    finally:
        worker.send_signal(signal.SIGTERM)
        exit_code = await asyncio.to_thread(worker.wait, 40)
    assert exit_code == 0, log.read_text()

    raw = log.read_text(encoding="utf-8").splitlines()
    lines = [json.loads(line) for line in raw]  # every line is one JSON object
    assert lines, "the worker logged nothing"
    about: dict[str, list[dict[str, Any]]] = {answered.job_id: [], busy.job_id: []}
    for line in lines:
        found = strings(line)
        for job in (answered, busy):
            call_id = job.job_id.replace("-", "") + "01"
            if any(job.job_id in s or call_id in s for s in found):
                about[job.job_id].append(line)
        # The message text, decoded (JSON escapes accents), whole or in a long piece.
        assert not any(TEXT in s or "4821-99173" in s for s in found), line
        assert line["level"] in ("info", "warning", "error", "critical"), line

    for job_id, mentions in about.items():
        events = {line["event"] for line in mentions}
        assert {"originating call", "simulated call placed", "call ended"} <= events, (
            job_id,
            events,
        )
        for line in mentions:
            assert line.get("job_id") == job_id, line
            assert line.get("worker_id") == WORKER_ID, line
            assert line.get("attempt") == 1, line
            assert line.get("process") == "worker", line
    ended = {
        job_id: [
            (line["outcome"], line["next"]) for line in mentions if line["event"] == "call ended"
        ]
        for job_id, mentions in about.items()
    }
    assert ended == {
        answered.job_id: [("answered", "completed")],
        busy.job_id: [("busy", "failed")],
    }
    placed = [line for line in about[busy.job_id] if line["event"] == "simulated call placed"]
    assert [line["scripted"] for line in placed] == ["busy"]
