"""`API_WORKERS > 1`: real `ttsqueue api` processes, each accepting on a listening socket of its
own (views/port_share.py); the parent holds the port without ever listening."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.in_process import eventually
from tests.ports import free_port
from ttsqueue.config import Settings

pytestmark = pytest.mark.timeout(120)

TTSQUEUE = Path(sys.executable).with_name("ttsqueue")
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


def api_env(settings: Settings, port: int, processes: int) -> dict[str, str]:
    values = {
        "TTSQ_ENV": "development",
        "RABBITMQ_URL": settings.RABBITMQ_URL,
        "REDIS_URL": settings.REDIS_URL,
        "REDIS_PREFIX": settings.REDIS_PREFIX,
        "QUEUE_PREFIX": settings.QUEUE_PREFIX,
        "AUDIO_DIR": str(settings.AUDIO_DIR),
        "TTS_ENGINE": "espeak",
        "TTS_FALLBACK_ENGINE": "",
        "DIALER": "simulator",
        "API_KEYS": "",
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        "API_WORKERS": str(processes),
        "LOG_FORMAT": "console",
        "LOG_LEVEL": "WARNING",
    }
    return {**{k: v for k, v in os.environ.items() if k != "WORKER_ID"}, **values}


def listening_sockets(port: int) -> list[str]:
    """Inodes of the TCP sockets listening on `port` (IPv4)."""
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if state == LISTEN and int(local.split(":")[1], 16) == port:
            found.append(inode)
    return found


def owners(inode: str, pids: set[int]) -> set[int]:
    """Which of `pids` hold socket `inode` open."""
    held = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == f"socket:[{inode}]":
                        held.add(pid)
    return held


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found.update(int(child) for child in (task / "children").read_text().split())
    return found


def listeners_by_process(parent: int, port: int) -> dict[int, str]:
    """Each child of `parent` listening on `port`, with its socket's inode; an AssertionError
    if a listening socket is shared or held by the parent. The sockets are read before the
    children, so that a child just started is known; a socket none of them holds (a child
    dying or just reaped while this reads) is left out."""
    sockets = listening_sockets(port)
    kids = children(parent)
    found: dict[int, str] = {}
    for inode in sockets:
        held = owners(inode, kids | {parent})
        if not held:
            continue
        assert parent not in held, "the parent process holds a listening socket"
        assert len(held) == 1, f"listening socket {inode} shared by {held}"
        found[held.pop()] = inode
    return found


@contextlib.contextmanager
def api_processes(
    settings: Settings, tmp_path: Path, processes: int
) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    port = free_port()
    log = tmp_path / "api.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(
            [str(TTSQUEUE), "api"],
            env=api_env(settings, port, processes),
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield popen, port, log
    finally:
        if popen.poll() is None:
            os.killpg(popen.pid, signal.SIGTERM)
            try:
                popen.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(popen.pid, signal.SIGKILL)
                popen.wait(10)


@contextlib.asynccontextmanager
async def fresh_clients(port: int, count: int) -> AsyncIterator[list[httpx.AsyncClient]]:
    """`count` clients, each with a connection of its own."""
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)
            )
            for _ in range(count)
        ]


def still_running(popen: subprocess.Popen[bytes], log: Path) -> None:
    assert popen.poll() is None, log.read_text(errors="replace")


async def serving(
    popen: subprocess.Popen[bytes], port: int, log: Path, processes: int
) -> dict[int, str]:
    """Once every process listens and answers: its listening socket by pid."""

    async def ready() -> bool:
        still_running(popen, log)
        if len(listeners_by_process(popen.pid, port)) < processes:
            return False
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            with contextlib.suppress(httpx.TransportError):
                return (await client.get("/health")).status_code == 200
        return False

    await eventually(ready, 60, f"{processes} API processes listening")
    return listeners_by_process(popen.pid, port)


async def all_answer(port: int, count: int) -> None:
    """`count` new connections at once, every one answered (none left in a queue that
    nobody accepts from)."""
    async with fresh_clients(port, count) as clients:
        replies = await asyncio.gather(*(client.get("/health") for client in clients))
    assert [reply.status_code for reply in replies] == [200] * count


async def test_each_api_process_listens_on_a_socket_of_its_own(
    settings: Settings, tmp_path: Path
) -> None:
    with api_processes(settings, tmp_path, 2) as (popen, port, log):
        listeners = await serving(popen, port, log, 2)
        assert len(set(listeners.values())) == 2  # two sockets, one per process
        await all_answer(port, 64)
        os.killpg(popen.pid, signal.SIGTERM)
        assert popen.wait(30) == 0, log.read_text(errors="replace")
    assert listening_sockets(port) == []


async def test_a_process_that_dies_is_replaced_with_a_socket_of_its_own(
    settings: Settings, tmp_path: Path
) -> None:
    with api_processes(settings, tmp_path, 2) as (popen, port, log):
        before = await serving(popen, port, log, 2)
        killed = min(before)
        os.kill(killed, signal.SIGKILL)

        async def replaced() -> bool:
            now = listeners_by_process(popen.pid, port)
            return len(now) == 2 and killed not in now

        await eventually(replaced, 60, "the dead API process replaced")
        after = listeners_by_process(popen.pid, port)
        assert set(after.values()).isdisjoint({before[killed]})
        await all_answer(port, 32)


def test_a_port_in_use_stops_the_start_at_once(settings: Settings, tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = api_env(settings, port, 2)
        started = time.monotonic()
        done = subprocess.run(
            [str(TTSQUEUE), "api"], env=env, cwd=tmp_path, capture_output=True, timeout=60
        )
    assert done.returncode != 0
    assert time.monotonic() - started < 30
    output = (done.stdout + done.stderr).decode(errors="replace")
    assert "address already in use" in output.lower()
