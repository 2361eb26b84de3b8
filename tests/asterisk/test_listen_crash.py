"""A worker SIGKILLed while its calls wait for a key, on a real Asterisk: the replacement
follows each call to its confirmation, nothing is dialed twice (Asterisk's own log), and every
job ends with a clear outcome (both backends)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.asterisk.fake_phones import number
from tests.asterisk.helpers import call_id, publish_many, wait_jobs
from tests.asterisk.instance import PrivateAsterisk
from tests.e2e.test_asterisk_crash import until
from tests.e2e.test_worker_crash import originations, worker_env
from ttsqueue.config import Settings
from ttsqueue.domain import ConfirmOptions, JobStatus
from ttsqueue.store.factory import build_store

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(150)]

JOBS = 3
# About 5 s of speech: the key (0011: 1.5 s after the message) comes after the kill.
TEXT = "Su cita médica es mañana a las nueve de la mañana en la sede norte."
PROMPT = "Presione uno para confirmar."


def start_worker(
    settings: Settings, pbx: PrivateAsterisk, backend: str, worker_id: str, log: Path
) -> subprocess.Popen[bytes]:
    env = worker_env(settings, worker_id)
    env.update(WORKER_CONCURRENCY=str(JOBS), CALL_RING_TIMEOUT="5", **pbx.worker_env(backend))
    ttsqueue = Path(sys.executable).with_name("ttsqueue")
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(ttsqueue), "worker"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def stop(worker: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if worker.poll() is None:
        worker.send_signal(sig)
        worker.wait(30)


def waiting_for_key(pbx: PrivateAsterisk, call_ids: list[str]) -> bool:
    """Every call is in Read() (message, prompt, key), from Asterisk's own log."""
    log = pbx.log_text()
    for cid in call_ids:
        ours = re.search(rf'NoOp\("(Local/[^;"]+;1)", "tts-queue call {cid} ', log)
        if ours is None or f'Read("{ours.group(1)}", ' not in log:
            return False
    return True


@pytest.mark.parametrize("backend", ["ami", "callfile"])
async def test_a_worker_killed_mid_confirmation_dials_nothing_twice(
    settings: Settings,
    broker: AbstractRobustConnection,
    redis_client: Any,
    shared_asterisk: PrivateAsterisk,
    tmp_path: Path,
    backend: str,
) -> None:
    store = build_store(redis_client, settings).jobs
    confirm = ConfirmOptions(timeout_s=3, prompt=PROMPT)
    ids = await publish_many(
        broker, settings, store, [number("0011")] * JOBS, max_retries=0, text=TEXT, confirm=confirm
    )
    logs = tmp_path / "w1.log", tmp_path / "w2.log"
    first = start_worker(settings, shared_asterisk, backend, f"{backend}-w1", logs[0])
    second: subprocess.Popen[bytes] | None = None
    try:
        await wait_jobs(store, ids, frozenset({JobStatus.CALLING}), timeout=60)
        second = start_worker(settings, shared_asterisk, backend, f"{backend}-w2", logs[1])
        if backend == "ami":
            await until(lambda: len(shared_asterisk.ami_sessions()) >= 2, timeout=30)
        await until(lambda: waiting_for_key(shared_asterisk, [call_id(i) for i in ids]), 30)
        stop(first, signal.SIGKILL)
        jobs = await wait_jobs(store, ids, timeout=90)
    finally:
        stop(first, signal.SIGKILL)
        if second is not None:
            stop(second, signal.SIGTERM)
    for job_id, job in jobs.items():
        call = job.call
        assert (job.status, job.attempts, call.outcome, call.dtmf, call.confirmed) == (
            JobStatus.COMPLETED,
            1,
            "confirmed",
            "1",
            True,
        ), call
        history = [h.status for h in await store.history(job_id)]
        assert history.count(JobStatus.CALLING) == 1
    rings = shared_asterisk.rings()
    assert [rings[call_id(job_id)] for job_id in ids] == [1] * JOBS
    assert originations(logs[1]) == {}
