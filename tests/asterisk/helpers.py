"""Shared by the real-Asterisk tests: jobs published in bulk, waiting for them to end, and
live calls counted by Asterisk itself while a test runs."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable
from types import TracebackType

from aio_pika.abc import AbstractRobustConnection

from tests.asterisk.instance import PrivateAsterisk
from tests.in_process import publish_job
from ttsqueue.config import Settings
from ttsqueue.domain import Job, JobStatus
from ttsqueue.store.jobs import JobStore

TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED})


def call_id(job_id: str, attempt: int = 1) -> str:
    return f"{job_id.replace('-', '')}{attempt:02d}"


async def publish_many(
    broker: AbstractRobustConnection,
    settings: Settings,
    store: JobStore,
    phones: Iterable[str],
    **job_args: object,
) -> list[str]:
    return [await publish_job(broker, settings, store, phone=phone, **job_args) for phone in phones]


async def wait_jobs(
    store: JobStore, ids: list[str], wanted: frozenset[JobStatus] = TERMINAL, timeout: float = 60
) -> dict[str, Job]:
    """The jobs once every one is in `wanted`; AssertionError with their statuses otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = {job_id: await store.get(job_id) for job_id in ids}
        if all(job is not None and job.status in wanted for job in jobs.values()):
            return {job_id: job for job_id, job in jobs.items() if job is not None}
        if time.monotonic() > deadline:
            late = {i: j and j.status for i, j in jobs.items() if not j or j.status not in wanted}
            raise AssertionError(f"{len(late)} jobs not {set(wanted)} in {timeout}s: {late}")
        await asyncio.sleep(0.1)


class LiveCallSampler:
    """Counts the calls not yet hung up (`PrivateAsterisk.calls_not_hung_up`, from `core show
    channels concise`) in a thread, every `every_s`."""

    def __init__(self, pbx: PrivateAsterisk, every_s: float = 0.05) -> None:
        self.pbx = pbx
        self.every_s = every_s
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-calls", daemon=True)

    @property
    def peak(self) -> int:
        return max(self.samples, default=0)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(len(self.pbx.calls_not_hung_up()))
            self._stop.wait(self.every_s)

    def __enter__(self) -> LiveCallSampler:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(30)
