"""`./manage.sh` driving the real processes: start, a real call, scale, status, stop.

Each test runs against its own API port, queue and Redis prefixes and var directory, so it
never touches the checkout's own processes or another test's state.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest

from tests.conftest import RABBITMQ_URL, REDIS_URL
from tests.ports import free_port
from ttsqueue.ops import processes

ROOT = Path(__file__).resolve().parents[2]
MANAGE = ROOT / "manage.sh"
TTSQUEUE = ROOT / ".venv" / "bin" / "ttsqueue"

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@dataclass
class Stack:
    env: dict[str, str]
    var_dir: Path
    api_url: str

    def run(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(MANAGE), *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def pids(self) -> dict[str, int]:
        """Live processes by name, from the PID files of this stack."""
        found = {}
        for pid_file in (self.var_dir / "run").glob("*.pid"):
            pid = processes.read_pid(pid_file)
            if pid is not None and processes.is_alive(pid):
                found[pid_file.stem] = pid
        return found


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    tag = uuid.uuid4().hex[:10]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("WORKER_ID", "TTSQ_API_URL")}
    env.update(
        {
            "TTSQ_VAR_DIR": str(tmp_path / "var"),
            "AUDIO_DIR": str(tmp_path / "audio"),
            "RABBITMQ_URL": RABBITMQ_URL,
            "REDIS_URL": REDIS_URL,
            "REDIS_PREFIX": f"ttsqtest:{tag}:",
            "QUEUE_PREFIX": f"t{tag}_",
            "API_HOST": "127.0.0.1",
            "API_PORT": str(port),
            "DASHBOARD_PORT": str(free_port()),
            "WORKERS": "1",
            "TTS_ENGINE": "espeak",
            "TTS_FALLBACK_ENGINE": "",
            "DIALER": "simulator",
            "SIMULATOR_TIME_SCALE": "0",
            "LOG_FORMAT": "console",
        }
    )
    stack = Stack(env=env, var_dir=tmp_path / "var", api_url=f"http://127.0.0.1:{port}")
    try:
        yield stack
    finally:
        for log in sorted((stack.var_dir / "log").glob("*.log")):
            print(f"--- {log.name}", *processes.tail_lines(log, 30), sep="\n")
        # Stops whatever is left, then removes this stack's queues, keys, audio and logs.
        stack.run("clean", "-y", "--queues", timeout=60)


def wait_terminal(client: httpx.Client, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        record: dict[str, Any] = client.get(f"/tts/status/{job_id}").json()
        if record["status"] in ("completed", "failed", "canceled"):
            return record
        assert time.monotonic() < deadline, f"job still {record['status']}"
        time.sleep(0.2)


def wait_answer(url: str, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(url, timeout=5).status_code
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"{url} did not answer"
            time.sleep(0.2)


def test_start_call_scale_status_stop(stack: Stack) -> None:
    started = stack.run("start")
    assert started.returncode == 0, started.stdout + started.stderr
    assert f"{stack.api_url}/docs" in started.stdout
    first = stack.pids()
    assert set(first) == {"api", "dashboard", "worker-1"}
    dashboard_url = f"http://127.0.0.1:{stack.env['DASHBOARD_PORT']}"
    assert f"Dashboard  {dashboard_url}" in started.stdout
    assert wait_answer(f"{dashboard_url}/healthz") == 200

    again = stack.run("start")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already running" in again.stdout
    assert stack.pids() == first

    with httpx.Client(base_url=stack.api_url, timeout=10) as client:
        body = {
            "text": "Hola, su cita es mañana a las diez.",
            "phone_number": "3005050149",
            "language": "es",
            "priority": "normal",
        }
        accepted = client.post("/tts/call", json=body)
        assert accepted.status_code == 202, accepted.text
        record = wait_terminal(client, accepted.json()["job_id"])
    assert record["status"] == "completed", record
    assert record["call"]["simulated"] is True
    assert record["worker_id"] == f"{socket.gethostname()}-w1"

    scaled = stack.run("scale", "2")
    assert scaled.returncode == 0, scaled.stdout + scaled.stderr
    live = stack.pids()
    assert {name for name in live if name.startswith("worker-")} == {"worker-1", "worker-2"}
    assert live["worker-1"] == first["worker-1"]

    status = stack.run("status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "worker-2" in status.stdout
    assert "healthy" in status.stdout

    every_pid = set(live.values())
    stopped = stack.run("stop")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert not any(processes.is_alive(pid) for pid in every_pid)
    assert list((stack.var_dir / "run").glob("*.pid")) == []


def test_test_command_follows_the_call_to_completed(stack: Stack) -> None:
    started = stack.run("start")
    assert started.returncode == 0, started.stdout + started.stderr
    result = stack.run("test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3005050149" in result.stdout
    assert "completed" in result.stdout
    assert "simulated" in result.stdout


def test_scale_to_zero_keeps_the_api(stack: Stack) -> None:
    assert stack.run("start").returncode == 0
    scaled = stack.run("scale", "0")
    assert scaled.returncode == 0, scaled.stdout + scaled.stderr
    assert set(stack.pids()) == {"api", "dashboard"}
    assert "workers running: 0" in scaled.stdout


def test_start_refuses_a_port_taken_by_another_program(stack: Stack) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(stack.env["API_PORT"])))
        squatter.listen()
        result = stack.run("start")
    assert result.returncode == 1
    assert "already in use" in result.stdout
    assert stack.pids() == {}


def test_commands_with_nothing_running(stack: Stack) -> None:
    stopped = stack.run("stop")
    assert (stopped.returncode, "nothing is running" in stopped.stdout) == (0, True)
    status = stack.run("status")
    assert status.returncode == 1
    assert "no processes running" in status.stdout
    test_call = stack.run("test")
    assert test_call.returncode == 3
    assert "cannot reach the API" in test_call.stderr


async def test_queue_with_other_arguments_is_reported_and_fixed_by_clean(stack: Stack) -> None:
    dead = stack.env["QUEUE_PREFIX"] + "tts_dead"
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(dead, durable=True, arguments={"x-max-length": 3})
    failed = await asyncio.to_thread(stack.run, "start")
    assert failed.returncode == 1
    assert "clean --queues" in failed.stdout
    assert dead in failed.stdout
    cleaned = await asyncio.to_thread(stack.run, "clean", "-y", "--queues")
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    started = await asyncio.to_thread(stack.run, "start")
    assert started.returncode == 0, started.stdout + started.stderr


STATES = ("scheduled", "queued", "processing", "calling", "retrying", "completed", "failed")


def shown_states(stdout: str) -> list[str]:
    """The states `call --wait` printed, one line each after the `accepted` line."""
    lines = stdout.split(" accepted ", 1)[-1].splitlines()[1:]
    return [line.split()[0] for line in lines if line.split() and line.split()[0] in STATES]


def test_call_wait_exit_codes(stack: Stack) -> None:
    started = stack.run("start")
    assert started.returncode == 0, started.stderr
    answered = subprocess.run(
        [str(TTSQUEUE), "call", "Hola", "3005050149", "--wait", "--api-url", stack.api_url],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert answered.returncode == 0, answered.stdout + answered.stderr
    assert "completed" in answered.stdout
    assert "processing" in answered.stdout  # the progress was shown, not only the end
    # Every state the job went through, in order, however fast it went through them.
    assert shown_states(answered.stdout) == ["queued", "processing", "calling", "completed"]
    busy = subprocess.run(
        [
            str(TTSQUEUE),
            "call",
            "Hola",
            "3005550001",
            "--wait",
            "--max-retries",
            "0",
            "--api-url",
            stack.api_url,
        ],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert busy.returncode == 1, busy.stdout + busy.stderr
    assert "busy" in busy.stdout
    assert shown_states(busy.stdout) == ["queued", "processing", "calling", "failed"]
    refused = subprocess.run(
        [str(TTSQUEUE), "call", "Hola", "3005050149&SIP/x", "--api-url", stack.api_url],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert refused.returncode == 2
