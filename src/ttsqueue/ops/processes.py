"""PID files, detached spawning, signals and waiting, read through /proc (Linux).

A PID file is trusted only while its process is alive and its command line is a `ttsqueue`
command in the expected role; anything else (dead, zombie, PID reused by another program)
makes the file stale and it is removed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def write_pid(path: Path, pid: int) -> None:
    tmp = path.with_suffix(".pid.tmp")
    tmp.write_text(f"{pid}\n")
    tmp.replace(path)


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat from the state onwards (the name may contain spaces)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw[raw.rindex(")") + 2 :].split()


def is_alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def command_line(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


# A process that has just been exec'd shows an empty command line for a moment (the kernel
# fills it in after the point where our spawn returns): worth this long a wait, not a verdict.
ARGV_SETTLE_S = 1.0


def is_ours(pid: int, role: str) -> bool:
    """Alive, and running a `ttsqueue` command whose arguments include `role`."""
    deadline = time.monotonic() + ARGV_SETTLE_S
    while True:
        if not is_alive(pid):
            return False
        argv = command_line(pid)
        if argv or time.monotonic() >= deadline:
            return any("ttsqueue" in part for part in argv) and role in argv[1:]
        time.sleep(0.01)


def live_pid(pid_file: Path, role: str) -> int | None:
    """The PID recorded in `pid_file` if that process is ours; a stale file is removed."""
    pid = read_pid(pid_file)
    if pid is not None and is_ours(pid, role):
        return pid
    pid_file.unlink(missing_ok=True)
    return None


def uptime_seconds(pid: int) -> float | None:
    fields = _stat_fields(pid)
    if fields is None:
        return None
    started = int(fields[19]) / CLOCK_TICKS  # field 22 of stat: start time in clock ticks
    since_boot = float(Path("/proc/uptime").read_text().split()[0])
    return max(0.0, since_boot - started)


def spawn(
    argv: list[str], *, cwd: Path, env: Mapping[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    """Start `argv` in its own session, detached from our terminal, output appended to a log."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def send_signal(pid: int, sig: signal.Signals) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def wait_exit(
    pids: Iterable[int],
    timeout: float,
    *,
    poll: Callable[[], None] | None = None,
    interval: float = 0.1,
) -> set[int]:
    """Wait until every PID has exited; returns those still alive after `timeout` seconds.

    `poll` reaps children this process started itself (they would linger as zombies).
    """
    remaining = set(pids)
    deadline = time.monotonic() + timeout
    while True:
        if poll is not None:
            poll()
        remaining = {pid for pid in remaining if is_alive(pid)}
        if not remaining or time.monotonic() >= deadline:
            if poll is not None:
                # A child that exited between the reap above and the check is a zombie now:
                # reaped here, or it would be left for the garbage collector to complain about.
                poll()
            return remaining
        time.sleep(interval)


def tail_lines(path: Path, count: int = 20, max_bytes: int = 64 * 1024) -> list[str]:
    """The last lines of a log file, reading at most its last `max_bytes`."""
    with contextlib.suppress(FileNotFoundError), path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - max_bytes))
        return handle.read().decode(errors="replace").splitlines()[-count:]
    return []
