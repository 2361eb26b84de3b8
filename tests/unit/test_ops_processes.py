"""PID files and process checks against real short-lived processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ttsqueue.ops import processes

# The word "ttsqueue" in the script makes the command line look like one of ours.
OURS_SLEEPING = "import time  # ttsqueue\ntime.sleep(30)"


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen([sys.executable, "-c", OURS_SLEEPING, "worker"])
    try:
        yield child
    finally:
        child.kill()
        child.wait()


def test_live_process_of_ours_is_kept(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    pid_file = tmp_path / "worker-1.pid"
    processes.write_pid(pid_file, sleeper.pid)
    assert processes.live_pid(pid_file, "worker") == sleeper.pid
    assert pid_file.exists()


def test_pid_file_of_exited_process_is_stale(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass  # ttsqueue", "worker"])
    child.wait()
    pid_file = tmp_path / "worker-1.pid"
    processes.write_pid(pid_file, child.pid)
    assert processes.live_pid(pid_file, "worker") is None
    assert not pid_file.exists()


def test_zombie_counts_as_dead(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass  # ttsqueue", "worker"])
    try:
        assert processes.wait_exit([child.pid], timeout=10) == set()
        assert Path(f"/proc/{child.pid}").exists()  # not reaped yet: a zombie
        assert not processes.is_alive(child.pid)
    finally:
        child.wait()


def test_process_that_is_not_ours_is_stale(tmp_path: Path) -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        pid_file = tmp_path / "worker-1.pid"
        processes.write_pid(pid_file, child.pid)
        assert processes.live_pid(pid_file, "worker") is None
        assert not pid_file.exists()
    finally:
        child.kill()
        child.wait()


def test_process_of_ours_in_another_role_is_stale(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    pid_file = tmp_path / "api.pid"
    processes.write_pid(pid_file, sleeper.pid)
    assert processes.live_pid(pid_file, "api") is None


@pytest.mark.parametrize("content", ["", "abc", "-5", "0"])
def test_garbage_pid_file_is_stale(tmp_path: Path, content: str) -> None:
    pid_file = tmp_path / "api.pid"
    pid_file.write_text(content)
    assert processes.live_pid(pid_file, "api") is None
    assert not pid_file.exists()


def test_uptime_of_a_live_process(sleeper: subprocess.Popen[bytes]) -> None:
    uptime = processes.uptime_seconds(sleeper.pid)
    assert uptime is not None
    assert 0 <= uptime < 3600


def test_tail_lines_reads_only_the_end(tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    log.write_text("".join(f"line {n}\n" for n in range(1000)))
    assert processes.tail_lines(log, 3) == ["line 997", "line 998", "line 999"]
    assert processes.tail_lines(tmp_path / "missing.log") == []
