"""Where a `POST /tts/call` spends its time, and what bounds the rate, by requests in flight.

    .venv/bin/python benchmarks/bench_request_phases.py [--in-flight 8,32,64] [--requests 12800]

The product's app in process, driven as ASGI calls the way `bench_api_inprocess.py` drives
it (no HTTP), `--in-flight` requests at a time. Each request's wall time is split into its
two waits on the services and the rest:
- the record's creation in Redis (`JobLifecycle.create`, wrapped for the run);
- the first message's publish until RabbitMQ confirms it (`submission.send_first_message`);
- the rest: validation, building the job, the middlewares, and waiting for the event loop.
With the requests per second and the process's CPU: per request, and as a share of the wall
clock (1.0: the one process is busy all the time, so the rate cannot rise, and more requests
in flight only wait longer: Little's law, latency = in flight / rate).

Baseline, same run: RabbitMQ alone with as many confirmed publishes in flight (one
connection, the API's own message, each task publishing and awaiting its confirm in turn):
its rate and confirm latency, the broker's side of the publish wait.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import aio_pika
import uvloop
from aio_pika.abc import DeliveryMode

from _common import (
    RABBITMQ_URL,
    Isolation,
    cleanup,
    delete_broker_objects,
    machine_info,
    print_table,
    product_values,
    write_result,
)
from bench_api_inprocess import WARMUP_PER_TASK, Scope, drive
from ttsqueue.broker.topology import CLASSIC_QUEUE_VERSION, VERSION_ARGUMENT

RAW_WARMUP_S = 1.0
# The raw queue is stored as the product's work queues are (broker/topology.py).
LIKE_WORK_QUEUES = {VERSION_ARGUMENT: CLASSIC_QUEUE_VERSION}
PHASES = ("whole request", "record in Redis", "publish until confirmed", "the rest")


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    count = len(ordered)
    return {
        "mean_ms": statistics.fmean(ordered) * 1000,
        "p50_ms": ordered[count // 2] * 1000,
        "p90_ms": ordered[int(count * 0.9)] * 1000,
        "p99_ms": ordered[int(count * 0.99)] * 1000,
    }


# The phases of the request the current task is serving (each driver task serves its
# requests one after another, and the app's awaits run in that task).
_current: ContextVar[dict[str, float]] = ContextVar("request_phases")


def _timed(label: str, call: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await call(*args, **kwargs)
        finally:
            phases = _current.get(None)
            if phases is not None:
                phases[label] = phases.get(label, 0.0) + time.perf_counter() - started

    return timed


async def api_round(requests: int, in_flight: int) -> dict[str, Any]:
    """The app's phases at `in_flight` requests at a time."""
    iso = Isolation.new()
    waits: dict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="bench-phases-") as audio:
        for name, value in product_values(iso, Path(audio)).items():
            os.environ[name] = str(value)
        from ttsqueue.api import submission
        from ttsqueue.api.app import create_app
        from ttsqueue.config import load_settings
        from ttsqueue.logs import configure_logging
        from ttsqueue.store.lifecycle import JobLifecycle

        settings = load_settings()
        configure_logging(settings, process="api")
        app = create_app(settings)
        create, publish = JobLifecycle.create, submission.send_first_message
        JobLifecycle.create = _timed("record in Redis", create)  # type: ignore[method-assign]
        submission.send_first_message = _timed("publish until confirmed", publish)

        async def measured(scope: Scope, receive: Any, send: Any) -> None:
            phases: dict[str, float] = {}
            _current.set(phases)
            started = time.perf_counter()
            await app(scope, receive, send)
            whole = time.perf_counter() - started
            waits["whole request"].append(whole)
            for name in ("record in Redis", "publish until confirmed"):
                waits[name].append(phases.get(name, 0.0))
            waits["the rest"].append(whole - sum(phases.values()))

        try:
            async with app.router.lifespan_context(app):
                await drive(app, in_flight * WARMUP_PER_TASK, in_flight, 0)
                wall, cpu = time.perf_counter(), time.process_time()
                _, statuses = await drive(measured, requests, in_flight, 0)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        finally:
            JobLifecycle.create = create  # type: ignore[method-assign]
            submission.send_first_message = publish
            await cleanup(iso)
    answered = sum(statuses.values())
    if statuses.get(202) != answered:
        raise SystemExit(f"expected only answers 202, got {dict(statuses)}")
    return {
        "in_flight": in_flight,
        "rate": answered / wall,
        "cpu_us_per_request": cpu / answered * 1e6,
        "busy_share": cpu / wall,
        "phases": {name: _percentiles(waits[name]) for name in PHASES},
    }


async def raw_round(body: bytes, in_flight: int, seconds: float) -> dict[str, Any]:
    """RabbitMQ alone: `in_flight` tasks each publishing and awaiting its confirm in turn."""
    queue_name = f"bench{uuid.uuid4().hex[:10]}_phases"
    latencies: list[float] = []
    connection = await aio_pika.connect(RABBITMQ_URL)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(queue_name, durable=True, arguments=LIKE_WORK_QUEUES)
        exchange = channel.default_exchange
        stop_at = time.monotonic() + RAW_WARMUP_S

        async def publisher(record: bool) -> None:
            while time.monotonic() < stop_at:
                message = aio_pika.Message(
                    body,
                    message_id=str(uuid.uuid4()),
                    content_type="application/json",
                    delivery_mode=DeliveryMode.PERSISTENT,
                )
                started = time.perf_counter()
                await exchange.publish(message, routing_key=queue_name, mandatory=True)
                if record:
                    latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(publisher(False) for _ in range(in_flight)))
        stop_at = time.monotonic() + seconds
        wall = time.perf_counter()
        await asyncio.gather(*(publisher(True) for _ in range(in_flight)))
        wall = time.perf_counter() - wall
    finally:
        await connection.close()
        await delete_broker_objects([queue_name])
    return {"in_flight": in_flight, "rate": len(latencies) / wall, **_percentiles(latencies)}


def _message_body() -> bytes:
    """A first message as the API sends it, the job's copy included."""
    from tests.factories import make_job
    from ttsqueue.domain import JobMessage

    job = make_job(text="Hola, este es un mensaje de prueba del benchmark.")
    return JobMessage(job_id=job.job_id, attempt=1, record=job.model_dump(mode="json")).encode()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--in-flight", default="8,32,64", help="requests at a time, each a round")
    parser.add_argument("--requests", type=int, default=12800)
    parser.add_argument("--raw-seconds", type=float, default=4.0)
    args = parser.parse_args()
    machine = machine_info()
    body = _message_body()
    rounds, raws = [], []
    for in_flight in (int(n) for n in args.in_flight.split(",")):
        rounds.append(uvloop.run(api_round(args.requests, in_flight)))
        raws.append(uvloop.run(raw_round(body, in_flight, args.raw_seconds)))
    rows = []
    for result, raw in zip(rounds, raws, strict=True):
        phases = result["phases"]
        for name in PHASES:
            figures = phases[name]
            rows.append(
                [result["in_flight"], name, round(figures["mean_ms"], 1),
                 round(figures["p50_ms"], 1), round(figures["p99_ms"], 1)]
            )  # fmt: skip
        rows.append(
            [raw["in_flight"], "baseline: RabbitMQ alone, confirm", round(raw["mean_ms"], 1),
             round(raw["p50_ms"], 1), round(raw["p99_ms"], 1)]
        )  # fmt: skip
    print_table(
        f"POST /tts/call in process, {args.requests} requests: wall time per request",
        ["in flight", "phase", "mean ms", "p50 ms", "p99 ms"],
        rows,
    )
    print_table(
        "Rate and what bounds it",
        ["in flight", "req/s", "API CPU µs per request", "API busy share of wall time",
         "baseline: RabbitMQ alone, confirmed msg/s"],
        [
            [r["in_flight"], round(r["rate"]), round(r["cpu_us_per_request"]),
             round(r["busy_share"], 2), round(raw["rate"])]
            for r, raw in zip(rounds, raws, strict=True)
        ],
    )  # fmt: skip
    path = write_result(
        "bench_request_phases",
        {"machine": machine, "args": vars(args), "rounds": rounds, "raw": raws},
    )
    print(f"result written to {path}")


if __name__ == "__main__":
    main()
