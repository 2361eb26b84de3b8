"""Real product processes (`ttsqueue api`, `ttsqueue worker`) against the private servers,
with the checks every fault case shares: jobs by status, originations per call, queue depths.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import orjson
import redis.asyncio as aioredis

from tests.faults.servers import RabbitServer, RedisServer
from tests.ports import free_port
from ttsqueue.broker.topology import QueueNames
from ttsqueue.domain import JobStatus
from ttsqueue.store.keys import Keys

TTSQUEUE = Path(sys.executable).with_name("ttsqueue")
TERMINAL = frozenset({JobStatus.COMPLETED.value, JobStatus.FAILED.value, JobStatus.CANCELED.value})
CALL_BODY = {"text": "Alerta de prueba: evacúe el edificio.", "phone_number": "3005050149"}


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 40.0) -> int:
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait(10)
        return int(self.popen.returncode)

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Stack:
    """One isolated deployment: its own prefixes and audio dir on the private servers."""

    rabbit: RabbitServer
    redis: RedisServer
    tmp: Path
    overrides: dict[str, object] = field(default_factory=dict)
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    procs: list[Proc] = field(default_factory=list)
    api_port: int = field(default_factory=free_port)

    @property
    def redis_prefix(self) -> str:
        return f"ttsqfault:{self.tag}:"

    @property
    def names(self) -> QueueNames:
        return QueueNames.from_prefix(f"f{self.tag}_")

    @property
    def keys(self) -> Keys:
        return Keys(self.redis_prefix)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def log_dir(self) -> Path:
        path = self.tmp / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def env(self, **extra: object) -> dict[str, str]:
        values: dict[str, object] = {
            "TTSQ_ENV": "development",
            "RABBITMQ_URL": self.rabbit.url,
            "REDIS_URL": self.redis.url,
            "REDIS_PREFIX": self.redis_prefix,
            "QUEUE_PREFIX": f"f{self.tag}_",
            "AUDIO_DIR": self.tmp / "audio",
            "TTS_ENGINE": "espeak",
            "TTS_FALLBACK_ENGINE": "",
            "DIALER": "simulator",
            "SIMULATOR_TIME_SCALE": 0.05,
            "MAX_CONCURRENT_CALLS": 10_000,
            "CALLS_PER_SECOND": 10_000,
            "WORKER_CONCURRENCY": 8,
            "WEBHOOKS_ENABLED": "false",
            "API_KEYS": "",
            "API_HOST": "127.0.0.1",
            "API_PORT": self.api_port,
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
        }
        values.update(self.overrides)
        values.update(extra)
        inherited = {k: v for k, v in os.environ.items() if k not in ("WORKER_ID", ".env")}
        return {**inherited, **{name: str(value) for name, value in values.items()}}

    def spawn(self, name: str, argv: list[str], **extra: object) -> Proc:
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                argv,
                env=self.env(**extra),
                cwd=self.tmp,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def start_worker(self, name: str, **extra: object) -> Proc:
        return self.spawn(name, [str(TTSQUEUE), "worker"], WORKER_ID=f"{self.tag}-{name}", **extra)

    async def start_api(self, **extra: object) -> Proc:
        proc = self.spawn("api", [str(TTSQUEUE), "api"], **extra)
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(base_url=self.api_url, timeout=5) as client:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/health")).status_code == 200:
                        return proc
                if not proc.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"the API did not start:\n{proc.tail()}")
                await asyncio.sleep(0.1)

    def close(self) -> None:
        for proc in self.procs:
            proc.stop(timeout=30)

    def worker_logs(self) -> list[Path]:
        return sorted(self.log_dir.glob("w*.log"))

    def dump_logs(self) -> None:
        for proc in self.procs:
            print(f"--- {proc.name} (exit {proc.popen.poll()})\n{proc.tail(15)}")


class Submitter:
    """POSTs until `target` jobs are accepted (a few more, from requests in flight) and any
    outage begun meanwhile is over; keeps every status code, those answered while `outage` was
    set, and the accepted job ids. (On a loaded machine stopping a server can take longer than
    the rest of the submissions: they must not be over before the server is down.)"""

    def __init__(self, client: httpx.AsyncClient, target: int) -> None:
        self.client = client
        self.target = target
        self.codes: collections.Counter[int] = collections.Counter()
        self.transport_errors: list[str] = []
        self.accepted: list[str] = []
        self.during_outage: collections.Counter[int] = collections.Counter()
        self.outage = False
        self._progress = asyncio.Event()

    async def run(self, concurrency: int = 4, pause_s: float = 0.03) -> None:
        await asyncio.gather(*(self._loop(pause_s) for _ in range(concurrency)))

    def other_5xx(self) -> int:
        return sum(n for code, n in self.codes.items() if code >= 500 and code != 503)

    async def until_accepted(self, count: int) -> None:
        while len(self.accepted) < count:
            self._progress.clear()
            await self._progress.wait()

    async def _loop(self, pause_s: float) -> None:
        while len(self.accepted) < self.target or self.outage:
            outage = self.outage
            try:
                reply = await self.client.post("/tts/call", json=CALL_BODY)
            except httpx.TransportError as exc:
                self.transport_errors.append(repr(exc))
                continue
            self.codes[reply.status_code] += 1
            if outage and self.outage:
                self.during_outage[reply.status_code] += 1
            if reply.status_code == 202:
                self.accepted.append(reply.json()["job_id"])
                self._progress.set()
            else:
                assert reply.json()["success"] is False
            await asyncio.sleep(pause_s if reply.status_code == 202 else 0.2)


async def outage(
    submitter: Submitter,
    client: httpx.AsyncClient,
    stop: Callable[[], None],
    start: Callable[[], None],
    down_s: float,
) -> list[int]:
    """Run `stop`, keep the service down `down_s` seconds while probing /health, `start`.
    Returns the /health status codes seen meanwhile."""
    submitter.outage = True
    await asyncio.to_thread(stop)
    codes = []
    deadline = time.monotonic() + down_s
    while time.monotonic() < deadline:
        codes.append((await client.get("/health")).status_code)
        await asyncio.sleep(0.5)
    await asyncio.to_thread(start)
    submitter.outage = False
    return codes


async def health_after_recovery(client: httpx.AsyncClient, within_s: float = 30.0) -> int:
    """/health once the service is back: its status code when it first says 200, or the last
    one seen within `within_s` (connections are re-established in the background, and a loaded
    machine can take a few seconds)."""
    deadline = time.monotonic() + within_s
    while True:
        code = (await client.get("/health")).status_code
        if code == 200 or time.monotonic() > deadline:
            return code
        await asyncio.sleep(0.5)


# The worker's line just before it asks the dialer, and the simulator's record of each
# origination it receives.
WORKER_ORIGINATES = "originating call"
DIALER_PLACED = "simulated call placed"


def originations(logs: Iterable[Path], event: str = WORKER_ORIGINATES) -> collections.Counter[str]:
    """Log lines of `event` by call id, across every log given."""
    counts: collections.Counter[str] = collections.Counter()
    needle = orjson.dumps(event)
    for log in logs:
        for line in log.read_bytes().splitlines():
            if needle in line:
                entry = orjson.loads(line)
                if entry.get("event") == event:
                    counts[entry["call_id"]] += 1
    return counts


async def statuses(client: aioredis.Redis, keys: Keys, ids: list[str]) -> dict[str, str | None]:
    async with client.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hget(keys.job(job_id), "status")
        replies = await pipe.execute()
    return dict(zip(ids, replies, strict=True))


async def wait_terminal(
    client: aioredis.Redis, keys: Keys, ids: list[str], timeout: float
) -> dict[str, str | None]:
    """Every job's status once all are terminal; the last seen statuses in the error if not."""
    deadline = time.monotonic() + timeout
    while True:
        now = await statuses(client, keys, ids)
        if all(status in TERMINAL for status in now.values()):
            return now
        if time.monotonic() > deadline:
            left = collections.Counter(s for s in now.values() if s not in TERMINAL)
            raise AssertionError(f"not terminal after {timeout}s: {dict(left)}")
        await asyncio.sleep(0.25)


async def post_calls(
    client: httpx.AsyncClient, count: int, concurrency: int = 16, body: dict[str, Any] | None = None
) -> list[httpx.Response]:
    """`count` POST /tts/call, `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> httpx.Response:
        async with gate:
            return await client.post("/tts/call", json=body or CALL_BODY)

    return list(await asyncio.gather(*(one() for _ in range(count))))


def accepted_ids(replies: Iterable[httpx.Response]) -> list[str]:
    return [reply.json()["job_id"] for reply in replies if reply.status_code == 202]


async def counts_are_exact(client: aioredis.Redis, keys: Keys) -> dict[str, int]:
    """Index sizes and lifetime counters, read back; the caller compares them."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.index)
        for status in JobStatus:
            pipe.zcard(keys.status_index(status))
        pipe.hgetall(keys.metrics)
        replies = await pipe.execute()
    by_status = {s.value: int(n) for s, n in zip(JobStatus, replies[1:-1], strict=True)}
    metrics = {name: int(float(value)) for name, value in replies[-1].items()}
    return {
        "total": int(replies[0]),
        **by_status,
        **{f"metrics.{k}": v for k, v in metrics.items()},
    }


async def depths(url: str, names: QueueNames) -> dict[str, int]:
    """Ready messages in each of the stack's queues (0 for a queue not declared yet)."""
    found: dict[str, int] = {}
    connection = await aio_pika.connect(url)
    async with connection:
        for label, queue in names.by_label().items():
            channel = await connection.channel()
            try:
                declared = await channel.declare_queue(queue, passive=True)
            except aio_pika.exceptions.ChannelNotFoundEntity:
                found[label] = 0
                continue
            found[label] = int(declared.declaration_result.message_count or 0)
            await channel.close()
    return found


async def wait_depths(
    url: str, names: QueueNames, wanted: dict[str, int], timeout: float = 15.0
) -> dict[str, int]:
    """Queue depths once the labels in `wanted` have those values (a redelivered copy may
    still be on its way back to a worker); the last reading otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        found = await depths(url, names)
        if all(found[label] == n for label, n in wanted.items()) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.2)
