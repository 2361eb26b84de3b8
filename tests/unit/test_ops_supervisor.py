"""Scale planning, and the supervisor driving real stand-in processes (no broker needed)."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ttsqueue.ops import processes
from ttsqueue.ops.layout import Layout
from ttsqueue.ops.supervisor import Supervisor, plan_scale

# Stands in for `ttsqueue <role>`: logs its identity, exits on SIGTERM like the real ones.
STAND_IN = """# ttsqueue stand-in
import os, signal, sys, time
print("role", sys.argv[1], "worker_id", os.environ.get("WORKER_ID"), "cwd", os.getcwd(), flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
time.sleep(60)
"""
STUBBORN = """# ttsqueue stand-in that ignores SIGTERM
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize(
    ("live", "target", "start", "stop"),
    [
        ([], 3, (1, 2, 3), ()),
        ([1, 2, 3], 3, (), ()),
        ([1, 3], 3, (2,), ()),
        ([1, 3], 4, (2, 4), ()),
        ([1, 2, 3, 4], 2, (), (4, 3)),
        ([2, 5], 1, (), (5,)),
        ([1, 2], 0, (), (2, 1)),
        ([], 0, (), ()),
    ],
)
def test_plan_scale(
    live: list[int], target: int, start: tuple[int, ...], stop: tuple[int, ...]
) -> None:
    plan = plan_scale(live, target)
    assert (plan.start, plan.stop) == (start, stop)


def test_plan_scale_refuses_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        plan_scale([1], -1)


def make_supervisor(tmp_path: Path, script: str = STAND_IN, **env: str) -> Supervisor:
    layout = Layout(root=tmp_path, var_dir=tmp_path / "var")
    base_env = {"PATH": os.environ.get("PATH", ""), **env}
    return Supervisor(
        layout,
        env=base_env,
        command=lambda role: [sys.executable, "-c", script, role],
        hostname="testhost",
    )


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    sup = make_supervisor(tmp_path)
    try:
        yield sup
    finally:
        sup.stop(timeout=5)


def wait_for_log(sup: Supervisor, name: str, text: str) -> str:
    log = sup.layout.log_file(name)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        content = log.read_text() if log.exists() else ""
        if text in content:
            return content
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {log}")


def test_start_is_idempotent_and_names_workers(supervisor: Supervisor, tmp_path: Path) -> None:
    first = supervisor.start(2, dashboard=False)
    assert sorted(first) == ["api", "worker-1", "worker-2"]
    assert all(started for _, started in first.values())
    again = supervisor.start(2, dashboard=False)
    assert {name: pid for name, (pid, _) in again.items()} == {
        name: pid for name, (pid, _) in first.items()
    }
    assert not any(started for _, started in again.values())
    log = wait_for_log(supervisor, "worker-2", "worker_id")
    assert "role worker worker_id testhost-w2" in log
    assert f"cwd {tmp_path}" in log
    assert [info.name for info in supervisor.running()] == ["api", "worker-1", "worker-2"]


def test_explicit_worker_id_is_the_base(tmp_path: Path) -> None:
    sup = make_supervisor(tmp_path, WORKER_ID="edge")
    try:
        sup.start(1, dashboard=False)
        assert "worker_id edge-w1" in wait_for_log(sup, "worker-1", "worker_id")
    finally:
        sup.stop(timeout=5)


def test_worker_id_base_from_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("WORKER_ID=fromfile\n")
    assert make_supervisor(tmp_path).worker_id(3) == "fromfile-w3"
    assert make_supervisor(tmp_path, WORKER_ID="env").worker_id(3) == "env-w3"


def test_scale_up_and_down(supervisor: Supervisor) -> None:
    supervisor.start(1, dashboard=False)
    started, stopped = supervisor.scale(3)
    assert started == ["worker-2", "worker-3"]
    assert set(supervisor.live_workers()) == {1, 2, 3}
    victims = supervisor.live_workers()
    started, stopped = supervisor.scale(1)
    assert started == []
    assert stopped.stopped == ["worker-3", "worker-2"]
    assert set(supervisor.live_workers()) == {1}
    assert not any(processes.is_alive(victims[index]) for index in (2, 3))
    assert not supervisor.layout.pid_file("worker-3").exists()
    # The api is untouched by scaling.
    assert supervisor.pid_of("api") is not None


def test_stop_ends_everything(supervisor: Supervisor) -> None:
    result = supervisor.start(2, dashboard=False)
    pids = [pid for pid, _ in result.values()]
    stopped = supervisor.stop(timeout=5)
    assert sorted(stopped.stopped) == ["api", "worker-1", "worker-2"]
    assert stopped.killed == []
    assert not any(processes.is_alive(pid) for pid in pids)
    assert supervisor.running() == []
    assert list(supervisor.layout.run_dir.glob("*.pid")) == []


def test_stop_kills_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    sup = make_supervisor(tmp_path, script=STUBBORN)
    try:
        pid, _ = sup.start(0, dashboard=False)["api"]
        wait_for_log(sup, "api", "ready")
        result = sup.stop(timeout=0.5)
        assert result.killed == ["api"]
        assert not processes.is_alive(pid)
    finally:
        sup.stop(timeout=1)


def test_stale_pid_file_does_not_block_start(supervisor: Supervisor) -> None:
    supervisor.layout.ensure_dirs()
    processes.write_pid(supervisor.layout.pid_file("api"), 999_999_999)
    result = supervisor.start(0, dashboard=False)
    pid, started = result["api"]
    assert started
    assert pid != 999_999_999


def test_survey_reports_a_crashed_process_once(supervisor: Supervisor) -> None:
    pid, _ = supervisor.start(1, dashboard=False)["worker-1"]
    processes.send_signal(pid, signal.SIGKILL)
    processes.wait_exit([pid], 10, poll=supervisor.reap)
    report = {info.name: info for info in supervisor.survey()}
    assert report["worker-1"].alive is False
    assert report["worker-1"].pid == pid
    assert report["api"].alive is True
    assert [info.name for info in supervisor.survey()] == ["api"]
