#!/usr/bin/env python3
"""Container health check of the tts-queue image: `ttsq-healthcheck [api|dashboard|worker]`.

Without an argument the role is the one of the `ttsqueue <role>` process in the container.
api: `GET /health` answers 200 (RabbitMQ and Redis reachable); dashboard: `GET /healthz`
answers 200; worker: a worker on this host has a live heartbeat in Redis. Exit status 0 when
healthy, 1 when not (what Docker expects), 2 when the role cannot be told.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from ttsqueue.config import Settings, load_settings
from ttsqueue.store.factory import build_store, connect_store

ROLES = ("api", "dashboard", "worker")
TIMEOUT_S = 4.0


def role_in(argv: Sequence[str]) -> str | None:
    """`.../ttsqueue worker` or `python -m ttsqueue.cli worker` -> "worker"."""
    for program, role in itertools.pairwise(argv):
        if (program.endswith("/ttsqueue") or program in ("ttsqueue", "ttsqueue.cli")) and (
            role in ROLES
        ):
            return role
    return None


def detect_role(proc: Path = Path("/proc")) -> str | None:
    for cmdline in proc.glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().decode("utf-8", "replace").split("\0")
        except OSError:  # the process ended meanwhile
            continue
        role = role_in(argv)
        if role is not None:
            return role
    return None


def answers_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as reply:
            return int(reply.status) == 200
    except (urllib.error.URLError, OSError):  # HTTPError (non-2xx) is a URLError too
        return False


def _local(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


async def worker_beating(settings: Settings) -> bool:
    client = connect_store(settings, client_name="healthcheck")
    try:
        workers = await asyncio.wait_for(build_store(client, settings).workers.alive(), TIMEOUT_S)
    except Exception:  # Redis down or slow: not healthy
        return False
    finally:
        await client.aclose()
    host = socket.gethostname()
    return any(worker.host == host for worker in workers)


def healthy(role: str, settings: Settings) -> bool:
    if role == "api":
        return answers_ok(f"http://{_local(settings.API_HOST)}:{settings.API_PORT}/health")
    if role == "dashboard":
        return answers_ok(
            f"http://{_local(settings.DASHBOARD_HOST)}:{settings.DASHBOARD_PORT}/healthz"
        )
    return asyncio.run(worker_beating(settings))


def main(argv: Sequence[str]) -> int:
    role = argv[0] if argv else detect_role()
    if role not in ROLES:
        print(f"usage: ttsq-healthcheck [{'|'.join(ROLES)}] (no ttsqueue process found)")
        return 2
    ok = healthy(role, load_settings())
    print(f"{role}: {'healthy' if ok else 'unhealthy'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
