"""The image's health check (deploy/docker/healthcheck.py) and the example Asterisk service's
entry point (deploy/docker/asterisk-init.sh), run here as they run in their containers."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import ModuleType

import pytest
import redis.asyncio as aioredis

from tests.ports import free_port
from ttsqueue.config import Settings
from ttsqueue.store.keys import Keys
from ttsqueue.store.workers import WorkerInfo, WorkerRegistry

ROOT = Path(__file__).resolve().parents[2]
HEALTHCHECK = ROOT / "deploy" / "docker" / "healthcheck.py"
ASTERISK_INIT = ROOT / "deploy" / "docker" / "asterisk-init.sh"


def load_healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ttsq_healthcheck", HEALTHCHECK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def healthcheck(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The script as Docker runs it: a fresh process, settings from the environment only."""
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), *args],
        cwd=tmp_path,  # no .env of the checkout
        env={"PATH": os.environ["PATH"], "LOG_LEVEL": "WARNING", **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


# Health check --------------------------------------------------------------------------------
def test_role_is_read_from_the_ttsqueue_process() -> None:
    module = load_healthcheck()
    assert module.role_in(["/opt/venv/bin/python", "/opt/venv/bin/ttsqueue", "worker"]) == "worker"
    assert module.role_in(["python3", "-m", "ttsqueue.cli", "dashboard"]) == "dashboard"
    assert module.role_in(["/usr/bin/ttsqueue", "stats"]) is None
    assert module.role_in(["/sbin/docker-init", "--", "ttsqueue", "api"]) == "api"


def test_role_detection_scans_proc(tmp_path: Path) -> None:
    module = load_healthcheck()
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "cmdline").write_bytes(b"/sbin/docker-init\0--\0/opt/venv/bin/ttsqueue\0")
    assert module.detect_role(tmp_path) is None
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "cmdline").write_bytes(b"/opt/venv/bin/python\0/opt/venv/bin/ttsqueue\0api\0")
    assert module.detect_role(tmp_path) == "api"


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def api_server() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_api_is_healthy_only_when_health_answers_200(
    tmp_path: Path, api_server: HTTPServer
) -> None:
    port = str(api_server.server_address[1])
    ok = healthcheck(tmp_path, "api", API_HOST="0.0.0.0", API_PORT=port)
    assert (ok.returncode, ok.stdout.strip()) == (0, "api: healthy")
    _Health.status = 503
    try:
        down = healthcheck(tmp_path, "api", API_HOST="127.0.0.1", API_PORT=port)
    finally:
        _Health.status = 200
    assert (down.returncode, down.stdout.strip()) == (1, "api: unhealthy")
    api_server.server_close()
    closed = healthcheck(tmp_path, "dashboard", DASHBOARD_PORT=port)
    assert closed.returncode == 1


def test_unknown_role_is_a_usage_error(tmp_path: Path) -> None:
    done = healthcheck(tmp_path, "scheduler")
    assert done.returncode == 2
    assert "usage" in done.stdout


async def test_worker_is_healthy_while_its_heartbeat_lives(
    tmp_path: Path, settings: Settings, redis_client: aioredis.Redis
) -> None:
    env = {"REDIS_URL": settings.REDIS_URL, "REDIS_PREFIX": settings.REDIS_PREFIX}
    registry = WorkerRegistry(redis_client, Keys(settings.REDIS_PREFIX))
    other_host = WorkerInfo(worker_id="elsewhere-w1", host="another-container")
    await registry.beat(other_host)
    absent = await asyncio.to_thread(healthcheck, tmp_path, "worker", **env)
    assert (absent.returncode, absent.stdout.strip()) == (1, "worker: unhealthy")
    here = WorkerInfo(worker_id="here-w1", host=socket.gethostname(), pid=os.getpid())
    await registry.beat(here)
    alive = await asyncio.to_thread(healthcheck, tmp_path, "worker", **env)
    assert (alive.returncode, alive.stdout.strip()) == (0, "worker: healthy")
    await registry.deregister(here.worker_id)
    gone = await asyncio.to_thread(healthcheck, tmp_path, "worker", **env)
    assert gone.returncode == 1


def test_worker_is_unhealthy_when_redis_is_down(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    done = healthcheck(tmp_path, "worker", REDIS_URL=f"redis://127.0.0.1:{port}/0")
    assert (done.returncode, done.stdout.strip()) == (1, "worker: unhealthy")


# asterisk-init.sh ----------------------------------------------------------------------------
def asterisk_init(etc: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(ASTERISK_INIT), "echo", "asterisk started"],
        env={
            "PATH": os.environ["PATH"],
            "TTSQ_ASTERISK_SNIPPETS": str(ROOT / "deploy" / "asterisk"),
            "ASTERISK_ETC_DIR": str(etc),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_asterisk_init_installs_the_dialplan_once_and_hands_over(tmp_path: Path) -> None:
    (tmp_path / "extensions.conf").write_text("[default]\nexten => 100,1,Answer()\n")
    for _ in range(2):
        done = asterisk_init(tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "asterisk started"
    dialplan = (tmp_path / "extensions.conf").read_text()
    assert dialplan.startswith("[default]\nexten => 100,1,Answer()\n")
    assert dialplan.count("#include extensions_tts.conf") == 1
    assert (tmp_path / "extensions_tts.conf").read_text() == (
        ROOT / "deploy" / "asterisk" / "extensions_tts.conf"
    ).read_text()
    assert not (tmp_path / "manager_tts.conf").exists()
    assert "call files only" in done.stderr


def test_asterisk_init_writes_the_ami_user_with_any_secret(tmp_path: Path) -> None:
    secret = r"s&e/c\1|r$t'x"
    done = asterisk_init(
        tmp_path,
        ASTERISK_AMI_USER="ttsqueue",
        ASTERISK_AMI_SECRET=secret,
        AMI_PERMIT="172.30.0.0/255.255.0.0",
    )
    assert done.returncode == 0, done.stderr
    manager = (tmp_path / "manager_tts.conf").read_text()
    assert "[ttsqueue]\n" in manager
    assert f"secret = {secret}\n" in manager
    assert "@AMI_" not in manager
    assert manager.rstrip().endswith("permit = 172.30.0.0/255.255.0.0")
    assert oct((tmp_path / "manager_tts.conf").stat().st_mode & 0o777) == "0o640"
    general = (tmp_path / "manager.conf").read_text()
    assert "enabled = yes" in general
    assert "#include manager_tts.conf" in general


def test_asterisk_init_refuses_a_secret_that_breaks_the_file(tmp_path: Path) -> None:
    done = asterisk_init(tmp_path, ASTERISK_AMI_USER="ttsqueue", ASTERISK_AMI_SECRET="a;b")
    assert done.returncode == 64
    assert "must not contain" in done.stderr
    assert not (tmp_path / "manager_tts.conf").exists()


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not found (apt)")
def test_shell_scripts_pass_shellcheck() -> None:
    scripts = [
        ASTERISK_INIT,
        ROOT / "deploy" / "docker" / "manage-docker.sh",
        ROOT / "scripts" / "compose-ci.sh",
        *sorted((ROOT / "tests" / "compose" / "images").glob("*/entrypoint.sh")),
        ROOT / "tests" / "compose" / "images" / "asterisk" / "asterisk",
    ]
    done = subprocess.run(
        ["shellcheck", *map(str, scripts)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout
