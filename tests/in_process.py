"""The whole stack in the test's own process, shared by the suites that drive it (the API app
is the `api` fixture of tests/conftest.py): a worker running until the block ends, polling the
API until a job or a resource gets somewhere (or any check until it holds), and a job
published the way the API does it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection

from tests.factories import lifecycle_for, make_job
from ttsqueue.broker.publisher import Publisher
from ttsqueue.broker.topology import QueueNames
from ttsqueue.config import Settings
from ttsqueue.domain import JobMessage
from ttsqueue.policy.clock import Clock
from ttsqueue.store.jobs import JobStore
from ttsqueue.worker.main import serve

TERMINAL = frozenset({"completed", "failed", "canceled"})


@contextlib.asynccontextmanager
async def running_worker(
    settings: Settings, clock: Clock | None = None, worker_id: str | None = None
) -> AsyncIterator[None]:
    """A worker of `settings` (its WORKER_ID replaced by `worker_id` if given; its calling
    windows read `clock`), stopped gracefully when the block ends."""
    if worker_id is not None:
        settings = settings.model_copy(update={"WORKER_ID": worker_id})
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop, clock))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@contextlib.asynccontextmanager
async def running_workers(settings: Settings, count: int) -> AsyncIterator[None]:
    """`count` workers of `settings` (WORKER_IDs suffixed -0, -1, ...), all told to stop
    together when the block ends."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(
            serve(settings.model_copy(update={"WORKER_ID": f"{settings.WORKER_ID}-{n}"}), stop)
        )
        for n in range(count)
    ]
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 60)


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 60.0, what: str = "condition"
) -> None:
    """Await `check` until it is true; an AssertionError naming `what` if it never is."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.05)


async def connections_closed(admin: aioredis.Redis, client_name: str, timeout: float = 10) -> None:
    """Wait until Redis lists no connection named `client_name` (a client closed for good)."""

    async def none_left() -> bool:
        return all(entry.get("name") != client_name for entry in await admin.client_list())

    await eventually(none_left, timeout, f"connections of {client_name} closed")


async def until(
    client: httpx.AsyncClient,
    path: str,
    done: Callable[[dict[str, Any]], bool],
    timeout: float = 90.0,
) -> dict[str, Any]:
    """GET `path` until its body satisfies `done`; the last body in the error if it never does."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = (await client.get(path)).json()
        if done(body):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} did not get there in {timeout}s: {body}")


async def wait_for(
    client: httpx.AsyncClient,
    job_id: str,
    done: Callable[[dict[str, Any]], bool],
    timeout: float = 60.0,
) -> dict[str, Any]:
    """The job's status once it satisfies `done`."""
    return await until(client, f"/tts/status/{job_id}", done, timeout)


def terminal(body: dict[str, Any]) -> bool:
    return body["status"] in TERMINAL


async def publish_job(
    broker: AbstractRobustConnection, settings: Settings, store: JobStore, **job_args: Any
) -> str:
    """A job created the way the API does, but with values the API would not accept
    (a 1-second retry delay keeps retry tests short)."""
    job = make_job(**job_args)
    await lifecycle_for(store).create(job)
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    await Publisher(broker, names).to_work_queue(
        names.work_queue(job.priority), JobMessage(job_id=job.job_id).encode(), job.job_id
    )
    return job.job_id
