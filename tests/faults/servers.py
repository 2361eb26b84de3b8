"""Private RabbitMQ and Redis servers for the fault suite: own ports, own data directories.

The fault tests stop, restart and fill these servers; the shared ones on the default ports
are never touched. Each server runs in its own session (process group) so that whatever it
spawns is ended with it, and `close()` stops it whatever state it is in.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

from tests.ports import free_port

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
BOOT_TIMEOUT_S = 90.0
NODE_UNREACHABLE = 69  # rabbitmqctl's exit status (EX_UNAVAILABLE) when the node does not answer


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def rabbitmq_tool(name: str) -> str | None:
    """The tool itself rather than Debian's wrapper, which would `su` to the rabbitmq user
    (who cannot write our temp dirs); as root the node then runs as root."""
    direct = RABBITMQ_BIN / name
    if os.geteuid() == 0 and direct.exists():
        return str(direct)
    return shutil.which(name)


def _end_group(popen: subprocess.Popen[bytes], grace_s: float) -> None:
    if popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGTERM)
        try:
            popen.wait(grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGKILL)
            popen.wait(10)
    # Children that outlived the leader (erl_child_setup, inet_gethost).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signal.SIGKILL)


class RabbitServer:
    """One RabbitMQ node (no plugins) with its Mnesia, logs and Erlang cookie in `base`."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.node = f"ttsqfault-{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self._popen: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        plugins = self.base / "enabled_plugins"
        plugins.touch()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update(
            HOME=str(self.base),  # the Erlang cookie: shared by this node and its rabbitmqctl
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.base / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.base / "log"),
            RABBITMQ_PID_FILE=str(self.base / "rabbitmq.pid"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(plugins),
            RABBITMQ_CONFIG_FILE=str(self.base / "rabbitmq"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self.base / "advanced.config"),
        )
        return env

    def start(self, timeout: float = BOOT_TIMEOUT_S) -> None:
        server = rabbitmq_tool("rabbitmq-server")
        if server is None:
            raise RuntimeError("rabbitmq-server is not installed")
        self.starts += 1
        with (self.base / f"server-{self.starts}.out").open("wb") as out:
            self._popen = subprocess.Popen(
                [server],
                env=self._env(),
                cwd=self.base,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        # The AMQP listener opens once the broker has booted.
        while not port_open(self.port):
            if self._popen.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited: {self.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"RabbitMQ did not open port {self.port}: {self.tail()}")
            time.sleep(0.2)
        # An open port is not proof that this node is the one listening (while it was down,
        # another process may have taken the port, and the node then fails to bind): the node
        # itself must say it has started. rabbitmqctl exits 69 when it cannot reach the node
        # yet; it is asked again for as long as the node's process is alive.
        while True:
            try:
                self.ctl("await_startup", timeout=max(deadline - time.monotonic(), 10.0))
                return
            except subprocess.CalledProcessError as exc:
                alive = self._popen.poll() is None
                if exc.returncode != NODE_UNREACHABLE or not alive or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"RabbitMQ node {self.node} did not start: {exc.stderr}\n{self.tail()}"
                    ) from exc
            time.sleep(1.0)

    def stop(self, timeout: float = 60.0) -> None:
        """A clean shutdown (`rabbitmqctl stop`); durable queues and persistent messages stay."""
        if self._popen is None:
            return
        ctl = rabbitmq_tool("rabbitmqctl")
        if ctl is not None and self._popen.poll() is None:
            subprocess.run(
                [ctl, "-n", self.node, "stop"],
                env=self._env(),
                cwd=self.base,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout)
        _end_group(self._popen, 5.0)
        self._popen = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """`rabbitmqctl -n <node> <args>` against this node; its output."""
        ctl = rabbitmq_tool("rabbitmqctl")
        if ctl is None:
            raise RuntimeError("rabbitmqctl is not installed")
        done = subprocess.run(
            [ctl, "-n", self.node, *args],
            env=self._env(),
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
        return done.stdout

    def tail(self, lines: int = 20) -> str:
        out = self.base / f"server-{self.starts}.out"
        text = out.read_text(errors="replace") if out.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        try:
            self.stop(timeout=30.0)
        finally:
            if self._popen is not None:
                _end_group(self._popen, 1.0)


class RedisServer:
    """One redis-server with its data directory in `base`, append-only file on, no RDB."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self._popen: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.starts += 1
        argv = [
            binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.base),
            "--save", "",
            "--appendonly", "yes",
            "--daemonize", "no",
            "--logfile", str(self.base / "redis.log"),
        ]  # fmt: skip
        self._popen = subprocess.Popen(
            argv, cwd=self.base, stdout=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while not self._ping():
            if self._popen.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"Redis did not answer on port {self.port}")
            time.sleep(0.05)

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM: Redis flushes and fsyncs the append-only file before it exits."""
        if self._popen is None:
            return
        if self._popen.poll() is None:
            self._popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(timeout)
        _end_group(self._popen, 5.0)
        self._popen = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def tail(self, lines: int = 20) -> str:
        log = self.base / "redis.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        self.stop()
