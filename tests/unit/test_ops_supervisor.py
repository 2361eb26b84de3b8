"""Scale planning, and the supervisor driving real stand-in processes (no broker needed)."""

from __future__ import annotations

import ast
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from ttsqueue.ops import operate, processes
from ttsqueue.ops.layout import Layout
from ttsqueue.ops.supervisor import Supervisor, plan_scale

# Stands in for `ttsqueue <role>`: logs its identity, exits on SIGTERM like the real ones.
STAND_IN = """# ttsqueue stand-in
import os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("role", sys.argv[1], "worker_id", os.environ.get("WORKER_ID"), "cwd", os.getcwd(), flush=True)
print("settings", {k: v for k, v in sorted(os.environ.items()) if k.isupper()
                   and k not in ("PATH", "WORKER_ID")}, flush=True)
time.sleep(600)
"""
STUBBORN = """# ttsqueue stand-in that ignores SIGTERM
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(600)
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


def stop_all(*sups: Supervisor) -> None:
    """Stop everything, and let each supervisor collect the children it started."""
    sups[0].stop(timeout=5)
    for sup in sups:
        sup.stop(timeout=5)


def settings_seen(sup: Supervisor, name: str) -> dict[str, str]:
    """The settings a stand-in process was started with (its `settings` log line)."""
    rows = wait_for_log(sup, name, "settings").splitlines()
    line = next(row for row in rows if row.startswith("settings"))
    seen: dict[str, str] = ast.literal_eval(line.removeprefix("settings "))
    return seen


def test_scale_reuses_the_configuration_recorded_at_start(tmp_path: Path) -> None:
    """`KEYS=... start`, then a plain `scale`: the new workers run with what start was given,
    the record is private, and scale names (never shows) the settings that differ."""
    starter = make_supervisor(
        tmp_path, WORKER_CONCURRENCY="4", API_KEYS="s3cret", SIMULATOR_TIME_SCALE="0.05"
    )
    plain = make_supervisor(tmp_path)
    try:
        starter.start(1, dashboard=False)
        record = starter.layout.config_record
        assert record.stat().st_mode & 0o777 == 0o600
        assert plain.drift() == ["API_KEYS", "SIMULATOR_TIME_SCALE", "WORKER_CONCURRENCY"]
        console = Console(record=True, width=300)
        assert operate.scale(console, plain, 3, timeout=10) == 0
        shown = console.export_text()
        assert "differs from the configuration recorded at start" in shown
        assert "API_KEYS, SIMULATOR_TIME_SCALE, WORKER_CONCURRENCY" in shown
        assert "s3cret" not in shown
        for name in ("worker-1", "worker-2", "worker-3"):
            seen = settings_seen(plain, name)
            assert seen["WORKER_CONCURRENCY"] == "4"
            assert seen["API_KEYS"] == "s3cret"
            assert seen["TTSQ_CONFIG_RECORDED"] == "1"
        # A worker killed and replaced by a plain `scale` gets it as well.
        processes.send_signal(plain.live_workers()[2], signal.SIGKILL)
        processes.wait_exit([plain.pid_of("worker-2") or 0], 10, poll=plain.reap)
        plain.layout.log_file("worker-2").unlink()
        plain.scale(3)
        assert settings_seen(plain, "worker-2")["WORKER_CONCURRENCY"] == "4"
    finally:
        stop_all(starter, plain)


def test_a_later_dotenv_edit_does_not_reach_new_workers(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("WORKER_CONCURRENCY=4\n")
    sup = make_supervisor(tmp_path)
    later = make_supervisor(tmp_path)
    try:
        sup.start(1, dashboard=False)
        (tmp_path / ".env").write_text("WORKER_CONCURRENCY=9\n")
        later.scale(2)
        assert settings_seen(sup, "worker-2")["WORKER_CONCURRENCY"] == "4"
        assert later.drift() == ["WORKER_CONCURRENCY"]
    finally:
        stop_all(sup, later)


def test_a_setting_the_starter_lacked_is_not_taken_from_a_later_caller(tmp_path: Path) -> None:
    sup = make_supervisor(tmp_path)
    later = make_supervisor(tmp_path, WORKER_CONCURRENCY="8")
    try:
        sup.start(1, dashboard=False)
        later.scale(2)
        assert "WORKER_CONCURRENCY" not in settings_seen(sup, "worker-2")
    finally:
        stop_all(sup, later)


def test_stop_forgets_and_restart_records_anew(tmp_path: Path) -> None:
    first = make_supervisor(tmp_path, WORKER_CONCURRENCY="4")
    first.start(1, dashboard=False)
    first.stop(timeout=5)
    assert not first.layout.config_record.exists()
    # Logs are appended to: the next run's settings line must not be confused with this one's.
    first.layout.log_file("worker-1").unlink(missing_ok=True)
    second = make_supervisor(tmp_path, WORKER_CONCURRENCY="2")
    third = make_supervisor(tmp_path, WORKER_CONCURRENCY="6")
    try:
        second.start(1, dashboard=False)
        assert settings_seen(second, "worker-1")["WORKER_CONCURRENCY"] == "2"
        second.layout.log_file("worker-1").unlink()
        stopped, started = third.restart(1, dashboard=False, timeout=5)
        assert sorted(stopped.stopped) == ["api", "worker-1"]
        assert all(new for _, new in started.values())
        assert settings_seen(third, "worker-1")["WORKER_CONCURRENCY"] == "6"
        assert third.drift() == []
    finally:
        stop_all(second, third)
