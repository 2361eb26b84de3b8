"""Start, stop, scale and list the product's processes on this machine.

Each process is `ttsqueue <role>` started detached with the checkout as working directory.
Its settings are the ones recorded when the system was started (ops/recorded.py): `start`
with nothing running records the caller's configuration (environment and `.env`), and every
later spawn (`start` again, `scale`, a restart) reuses that record, whatever the caller's
environment is then. `stop` forgets it; `restart` is `stop` then `start`, recording anew.
Names are `api`, `dashboard` and `worker-<n>`; worker `n` gets `WORKER_ID=<base>-w<n>`,
where the base is an explicitly configured `WORKER_ID` or the host name, so ids stay stable
and readable.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ttsqueue.ops import processes
from ttsqueue.ops.layout import Layout
from ttsqueue.ops.recorded import (
    child_environment,
    drifted,
    effective_values,
    read_record,
    write_record,
)

CommandBuilder = Callable[[str], list[str]]


def default_command(role: str) -> list[str]:
    return [sys.executable, "-m", "ttsqueue.cli", role]


def dashboard_available() -> bool:
    try:
        return importlib.util.find_spec("ttsqueue.dashboard.app") is not None
    except ModuleNotFoundError:
        return False


def worker_name(index: int) -> str:
    return f"worker-{index}"


def role_of(name: str) -> str:
    return name.split("-", 1)[0]


def _sort_key(name: str) -> tuple[int, int]:
    role, _, index = name.partition("-")
    order = {"api": 0, "dashboard": 1, "worker": 2}.get(role, 3)
    return order, int(index) if index.isdigit() else 0


@dataclass(frozen=True, slots=True)
class ScalePlan:
    start: tuple[int, ...]
    stop: tuple[int, ...]


def plan_scale(live: Iterable[int], target: int) -> ScalePlan:
    """Fill the lowest free indexes when growing; stop the highest indexes when shrinking."""
    if target < 0:
        raise ValueError("worker count cannot be negative")
    current = sorted(set(live))
    if len(current) > target:
        return ScalePlan(start=(), stop=tuple(sorted(current[target:], reverse=True)))
    missing: list[int] = []
    index = 1
    while len(current) + len(missing) < target:
        if index not in current:
            missing.append(index)
        index += 1
    return ScalePlan(start=tuple(missing), stop=())


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    name: str
    pid: int
    alive: bool
    uptime: float | None
    log: Path


@dataclass(slots=True)
class StopResult:
    stopped: list[str] = field(default_factory=list)
    killed: list[str] = field(default_factory=list)


class Supervisor:
    def __init__(
        self,
        layout: Layout,
        *,
        env: Mapping[str, str] | None = None,
        command: CommandBuilder = default_command,
        hostname: str | None = None,
    ) -> None:
        self.layout = layout
        self._env = dict(os.environ if env is None else env)
        self._command = command
        self._hostname = hostname or socket.gethostname()
        # The configuration the processes run with, once `_adopt_record` has settled it.
        self._recorded: dict[str, str] | None = None
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def caller_values(self) -> dict[str, str]:
        """The settings of whoever runs this command (environment, else `.env`)."""
        return effective_values(self.layout.root, self._env)

    def recorded(self) -> dict[str, str] | None:
        return read_record(self.layout.config_record)

    def drift(self) -> list[str]:
        """Names of the settings in which the caller differs from the recorded configuration."""
        record = self.recorded()
        return [] if record is None else drifted(record, self.caller_values())

    def _adopt_record(self, fresh: bool) -> dict[str, str]:
        """The configuration for the processes about to start: the caller's when nothing is
        running (`fresh`) or nothing was recorded, the recorded one otherwise."""
        record = None if fresh else self.recorded()
        if record is None:
            record = self.caller_values()
            write_record(self.layout.config_record, record)
        self._recorded = record
        return record

    @contextmanager
    def locked(self) -> Iterator[None]:
        """One supervisor command at a time per var directory (no double starts)."""
        self.layout.ensure_dirs()
        with self.layout.lock_file.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def survey(self) -> list[ProcessInfo]:
        """Every process with a PID file; a stale one is reported once (not alive), then removed."""
        if not self.layout.run_dir.is_dir():
            return []
        found = []
        for pid_file in self.layout.run_dir.glob("*.pid"):
            name = pid_file.stem
            recorded = processes.read_pid(pid_file) or 0
            pid = processes.live_pid(pid_file, role_of(name))
            uptime = processes.uptime_seconds(pid) if pid else None
            log = self.layout.log_file(name)
            found.append(ProcessInfo(name, pid or recorded, pid is not None, uptime, log))
        return sorted(found, key=lambda info: _sort_key(info.name))

    def running(self) -> list[ProcessInfo]:
        return [info for info in self.survey() if info.alive]

    def pid_of(self, name: str) -> int | None:
        return processes.live_pid(self.layout.pid_file(name), role_of(name))

    def live_workers(self) -> dict[int, int]:
        return {
            int(info.name.split("-", 1)[1]): info.pid
            for info in self.running()
            if role_of(info.name) == "worker"
        }

    def worker_id(self, index: int) -> str:
        values = self._recorded if self._recorded is not None else self.caller_values()
        return f"{values.get('WORKER_ID') or self._hostname}-w{index}"

    def _spawn(self, name: str) -> int:
        self.layout.ensure_dirs()
        env = child_environment(self._env, self._recorded or self._adopt_record(fresh=False))
        if role_of(name) == "worker":
            env["WORKER_ID"] = self.worker_id(int(name.split("-", 1)[1]))
        child = processes.spawn(
            self._command(role_of(name)),
            cwd=self.layout.root,
            env=env,
            log_path=self.layout.log_file(name),
        )
        self._children[child.pid] = child
        processes.write_pid(self.layout.pid_file(name), child.pid)
        return child.pid

    def reap(self) -> None:
        """Collect exit statuses of children started by this object (no zombies)."""
        for pid, child in list(self._children.items()):
            if child.poll() is not None:
                del self._children[pid]

    def start(self, workers: int, *, dashboard: bool) -> dict[str, tuple[int, bool]]:
        """Start what is not running: api, dashboard, workers up to `workers` in total.

        Returns name -> (pid, started_now). Already running processes are left alone, and
        extra workers (from an earlier `scale`) are kept.
        """
        with self.locked():
            self._adopt_record(fresh=not self.running())
            result: dict[str, tuple[int, bool]] = {}
            names = ["api", "dashboard"] if dashboard else ["api"]
            for name in names:
                pid = self.pid_of(name)
                result[name] = (pid, False) if pid else (self._spawn(name), True)
            live = self.live_workers()
            for index, pid in live.items():
                result[worker_name(index)] = (pid, False)
            for index in plan_scale(live, max(workers, len(live))).start:
                result[worker_name(index)] = (self._spawn(worker_name(index)), True)
            return result

    def scale(self, target: int, *, timeout: float = 30.0) -> tuple[list[str], StopResult]:
        """Bring the live worker count to `target`; stopped workers exit gracefully first."""
        with self.locked():
            # Even with nothing left running (all crashed), the recorded configuration holds
            # until a `stop`.
            self._adopt_record(fresh=False)
            plan = plan_scale(self.live_workers(), target)
            started = [worker_name(index) for index in plan.start]
            for name in started:
                self._spawn(name)
            stopped = self._stop([worker_name(index) for index in plan.stop], timeout)
            return started, stopped

    def stop(self, *, timeout: float = 30.0) -> StopResult:
        """Stop every process and forget the recorded configuration (the next `start`
        records the caller's)."""
        with self.locked():
            result = self._stop([info.name for info in self.running()], timeout)
            self.layout.config_record.unlink(missing_ok=True)
            self._recorded = None
            return result

    def restart(
        self, workers: int, *, dashboard: bool, timeout: float = 30.0
    ) -> tuple[StopResult, dict[str, tuple[int, bool]]]:
        """`stop` then `start` with the caller's configuration: how a change is applied."""
        stopped = self.stop(timeout=timeout)
        return stopped, self.start(workers, dashboard=dashboard)

    def _stop(self, names: list[str], timeout: float) -> StopResult:
        """SIGTERM, wait up to `timeout` (in-flight jobs finish or are requeued), then SIGKILL."""
        pids = {name: pid for name in names if (pid := self.pid_of(name)) is not None}
        for pid in pids.values():
            processes.send_signal(pid, signal.SIGTERM)
        left = processes.wait_exit(pids.values(), timeout, poll=self.reap)
        for pid in left:
            processes.send_signal(pid, signal.SIGKILL)
        processes.wait_exit(left, 5.0, poll=self.reap)
        result = StopResult()
        for name, pid in pids.items():
            (result.killed if pid in left else result.stopped).append(name)
            self.layout.pid_file(name).unlink(missing_ok=True)
        return result
