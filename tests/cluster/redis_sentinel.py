"""Redis with two replicas and three Sentinels on this machine, for failover tests.

The master and its replicas are `RedisServer`s of the fault suite (append-only, own ports and
directories); two replicas, so that with REDIS_WAIT_REPLICAS=1 writes still reach a replica
after the master is lost; three `redis-server --sentinel` processes
watch them under MASTER_NAME with a one-second down-after, so that a killed master is
replaced within a few seconds. Sentinels rewrite their own config files (they must be
writable) and turn a restarted old master into a replica of the new one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.faults.servers import RedisServer, _end_group
from tests.ports import free_port

MASTER_NAME = "ttsq"
DOWN_AFTER_MS = 1000


def _command(port: int, *args: str) -> str:
    """One inline command to 127.0.0.1:port; the raw reply line."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.sendall((" ".join(args) + "\r\n").encode())
        return sock.recv(65536).decode(errors="replace")


def _fields(reply: str) -> dict[str, str]:
    """A flat RESP array of names and values (`SENTINEL master`) as a dict."""
    values = [line for line in reply.split("\r\n") if line and line[0] not in "*$"]
    return dict(zip(values[::2], values[1::2], strict=False))


class Replica(RedisServer):
    """A RedisServer started as a replica of `of` (Sentinel may re-point it later)."""

    def __init__(self, base: Path, of: RedisServer) -> None:
        super().__init__(base)
        self.of = of

    def start(self, timeout: float = 30.0) -> None:
        super().start(timeout)
        _command(self.port, "REPLICAOF", "127.0.0.1", str(self.of.port))


class SentinelProcess:
    def __init__(self, base: Path, master_port: int) -> None:
        self.base = base
        self.port = free_port()
        self.config = base / "sentinel.conf"
        self.config.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            f"dir {base}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER_NAME} 10000\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n"
        )
        self._popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        with (self.base / "sentinel.out").open("ab") as out:
            self._popen = subprocess.Popen(
                [binary, str(self.config), "--sentinel"],
                cwd=self.base,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                if "PONG" in _command(self.port, "PING"):
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"sentinel on {self.port} did not answer")
            time.sleep(0.05)

    def master_port(self) -> int | None:
        reply = _command(self.port, "SENTINEL", "get-master-addr-by-name", MASTER_NAME)
        lines = reply.split("\r\n")
        # *2 $9 127.0.0.1 $5 port
        return int(lines[4]) if len(lines) > 4 and lines[4].isdigit() else None

    def close(self) -> None:
        if self._popen is not None:
            _end_group(self._popen, 5.0)
            self._popen = None


class SentinelGroup:
    def __init__(self, base: Path) -> None:
        for name in ("a", "b", "c", "s1", "s2", "s3"):
            (base / name).mkdir(parents=True)
        self.master = RedisServer(base / "a")
        self.master.start()
        self.replicas = [Replica(base / name, self.master) for name in ("b", "c")]
        for replica in self.replicas:
            replica.start()
        self.sentinels = [SentinelProcess(base / f"s{i}", self.master.port) for i in (1, 2, 3)]
        for sentinel in self.sentinels:
            sentinel.start()
        self.wait_synced()

    @property
    def servers(self) -> list[RedisServer]:
        return [self.master, *self.replicas]

    @property
    def setting(self) -> str:
        """REDIS_SENTINELS for the product."""
        return ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)

    def current_master(self) -> RedisServer:
        port = self.sentinels[0].master_port()
        return next(server for server in self.servers if server.port == port)

    def wait_synced(self, timeout: float = 60.0) -> None:
        """Until the master has both replicas online and every Sentinel knows them and the
        other two Sentinels (a kill needs two of them to agree)."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError, StopIteration, ValueError):
                master = self.current_master()
                info = _command(master.port, "INFO", "replication")
                views = [
                    _fields(_command(s.port, "SENTINEL", "master", MASTER_NAME))
                    for s in self.sentinels
                ]
                if (
                    "connected_slaves:2" in info
                    and info.count("state=online") == 2
                    and all(v.get("num-slaves") == "2" for v in views)
                    and all(v.get("num-other-sentinels") == "2" for v in views)
                    and all(v.get("port") == str(master.port) for v in views)
                ):
                    return
            if time.monotonic() > deadline:
                raise TimeoutError("the replica and the Sentinels did not settle")
            time.sleep(0.2)

    def failover(self) -> RedisServer:
        """SENTINEL FAILOVER: the replica is promoted (no agreement needed); the new master."""
        old = self.current_master()
        _command(self.sentinels[0].port, "SENTINEL", "FAILOVER", MASTER_NAME)
        return self.wait_new_master(old)

    def kill_master(self) -> tuple[RedisServer, RedisServer]:
        """SIGKILL the master; (the killed one, the replica the Sentinels promoted)."""
        old = self.current_master()
        popen = old._popen
        if popen is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGKILL)
            popen.wait(10)
            old._popen = None
        return old, self.wait_new_master(old)

    def wait_new_master(self, old: RedisServer, timeout: float = 60.0) -> RedisServer:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError, StopIteration):
                current = self.current_master()
                if current is not old and "role:master" in _command(
                    current.port, "INFO", "replication"
                ):
                    return current
            if time.monotonic() > deadline:
                raise TimeoutError("the Sentinels did not promote the replica")
            time.sleep(0.2)

    def close(self) -> None:
        for sentinel in self.sentinels:
            sentinel.close()
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.close()
