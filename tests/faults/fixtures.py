"""What the fault and cluster suites' fixtures share: the check that a server binary is
installed, a scratch directory, a private Redis, and removing a test's keys."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.faults.servers import RedisServer, rabbitmq_tool


def missing(binary: str) -> str:
    """Why the fault suite cannot run: it never skips, since `./manage.sh check` installs
    what it needs."""
    return (
        f"the fault suite needs {binary} to start private servers, and it is not installed: "
        f"run `./manage.sh check` as root (it installs it with apt), or `apt-get install {binary}`"
    )


def require_redis() -> None:
    if shutil.which("redis-server") is None:
        pytest.fail(missing("redis-server"), pytrace=False)


def require_rabbitmq() -> None:
    if rabbitmq_tool("rabbitmq-server") is None:
        pytest.fail(missing("rabbitmq-server"), pytrace=False)


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A fresh directory under the system's temporary one, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def private_redis(base: Path) -> Iterator[RedisServer]:
    """A private Redis (append-only) with its data in `base`, stopped afterwards."""
    require_redis()
    base.mkdir()
    server = RedisServer(base)
    try:
        server.start()
        yield server
    finally:
        server.close()


async def delete_keys(client: aioredis.Redis, prefix: str) -> None:
    """Every key under `prefix` (a test's own), whatever the client decodes."""
    async for key in client.scan_iter(match=f"{prefix}*", count=1000):
        await client.unlink(key)
