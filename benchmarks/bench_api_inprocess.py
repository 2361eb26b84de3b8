"""The API's own cost per `POST /tts/call`, without HTTP: the real app driven in process.

    .venv/bin/python benchmarks/bench_api_inprocess.py [--requests 4000] [--concurrency 64]
    .venv/bin/python benchmarks/bench_api_inprocess.py --callgrind [--requests 1280]

The app is the product's (`create_app`, its lifespan, middlewares and routes), against the
real Redis and RabbitMQ; each request is handed to it as an ASGI call, `--concurrency` at a
time, so the figure leaves out uvicorn and the sockets of HTTP. Every answer must be 202.
- Default: process CPU time per request (after a warm-up), several rounds, median.
- `--callgrind`: instructions per request counted by valgrind's callgrind, which does not
  depend on what else the machine is doing: the run is made twice (64 requests, then
  `--requests`), each under callgrind, and the difference is divided by the extra requests,
  so that start-up and imports cancel out. About a minute per run.

Baseline (same run): a FastAPI app with one `POST` route that validates the same body with
pydantic and answers 202 with no I/O, driven the same way: the framework's floor.

To compare two commits, run this script from a `git worktree` of the other one with the same
venv and `PYTHONPATH=<worktree>/src`, alternately.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import uvloop
from fastapi import FastAPI
from pydantic import BaseModel

from _common import Isolation, cleanup, machine_info, print_table, product_values, write_result

CALL_BODY = {
    "text": "Hola, este es un mensaje de prueba del benchmark.",
    "phone_number": "3005050149",
}
WARMUP_PER_TASK = 20

Scope = MutableMapping[str, Any]
Asgi = Callable[[Scope, Any, Any], Awaitable[None]]


class FloorBody(BaseModel):
    text: str
    phone_number: str


def floor_app() -> FastAPI:
    app = FastAPI()

    @app.post("/tts/call", status_code=202)
    async def accept(body: FloorBody) -> dict[str, str]:
        return {"status": "queued", "phone_number": body.phone_number}

    return app


async def drive(
    app: Asgi, requests: int, concurrency: int, warmup: int
) -> tuple[float, Counter[int]]:
    """CPU seconds per request over `requests` after `warmup` per task, and the statuses."""
    body = json.dumps(CALL_BODY).encode()
    scope: Scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/tts/call", "raw_path": b"/tts/call", "query_string": b"",
        "root_path": "", "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 40000),
        "headers": [(b"host", b"bench"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
    }  # fmt: skip
    statuses: Counter[int] = Counter()

    async def one() -> None:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # the client never goes away
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses[message["status"]] += 1

        await app(dict(scope), receive, send)

    async def task(count: int) -> None:
        for _ in range(count):
            await one()

    await asyncio.gather(*(task(warmup) for _ in range(concurrency)))
    statuses.clear()
    started = time.process_time()
    await asyncio.gather(*(task(requests // concurrency) for _ in range(concurrency)))
    used = time.process_time() - started
    return used / max(sum(statuses.values()), 1), statuses


async def measure(kind: str, requests: int, concurrency: int, warmup: int) -> float:
    """CPU seconds per request of `kind` ("product" or "floor")."""
    if kind == "floor":
        per_request, statuses = await drive(floor_app(), requests, concurrency, warmup)
        _check(statuses, requests, concurrency)
        return per_request
    iso = Isolation.new()
    with tempfile.TemporaryDirectory(prefix="bench-api-") as audio:
        for name, value in product_values(iso, Path(audio)).items():
            os.environ[name] = str(value)
        from ttsqueue.api.app import create_app
        from ttsqueue.config import load_settings
        from ttsqueue.logs import configure_logging

        settings = load_settings()
        configure_logging(settings, process="api")  # as `ttsqueue api` does, at WARNING
        app = create_app(settings)
        try:
            async with app.router.lifespan_context(app):
                per_request, statuses = await drive(app, requests, concurrency, warmup)
        finally:
            await cleanup(iso)
    _check(statuses, requests, concurrency)
    return per_request


def _check(statuses: Counter[int], requests: int, concurrency: int) -> None:
    expected = requests // concurrency * concurrency
    if statuses != Counter({202: expected}):
        raise SystemExit(f"expected {expected} answers 202, got {dict(statuses)}")


def callgrind_instructions(kind: str, requests: int, concurrency: int) -> int:
    """Instructions of one whole run of this script under callgrind."""
    with tempfile.TemporaryDirectory(prefix="bench-api-cg-") as tmp:
        out = Path(tmp) / "callgrind.out"
        argv = [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
            sys.executable, __file__, "--single", kind, "--requests", str(requests),
            "--concurrency", str(concurrency), "--warmup", "2",
        ]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        found = re.search(r"Collected : (\d+)", done.stderr)
        if done.returncode != 0 or found is None:
            raise SystemExit(f"callgrind run failed:\n{done.stdout}\n{done.stderr[-3000:]}")
        return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5, help="CPU-time rounds, alternating")
    parser.add_argument("--warmup", type=int, default=WARMUP_PER_TASK, help="requests per task")
    parser.add_argument("--callgrind", action="store_true", help="instructions per request")
    parser.add_argument("--single", choices=["product", "floor"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:  # one run, inside callgrind
        uvloop.run(measure(args.single, args.requests, args.concurrency, args.warmup))
        return
    machine = machine_info()
    figures: dict[str, list[float]] = {"product": [], "floor": []}
    if args.callgrind:
        small = args.concurrency
        unit = "instructions per request"
        for kind in figures:
            extra = args.requests - small
            total = callgrind_instructions(kind, args.requests, args.concurrency)
            base = callgrind_instructions(kind, small, args.concurrency)
            figures[kind].append((total - base) / extra)
    else:
        unit = "µs CPU per request"
        for _ in range(args.rounds):
            for kind in figures:
                cpu = uvloop.run(measure(kind, args.requests, args.concurrency, args.warmup))
                figures[kind].append(cpu * 1e6)
    product = statistics.median(figures["product"])
    floor = statistics.median(figures["floor"])
    print_table(
        f"POST /tts/call in process, {args.requests} requests, {args.concurrency} at a time: "
        f"{unit}",
        ["app", "each round", "median", "x floor"],
        [
            ["tts-queue (record in Redis + confirmed publish)",
             ", ".join(f"{v:,.0f}" for v in figures["product"]), round(product),
             round(product / floor, 2)],
            ["FastAPI floor (validate, 202, no I/O)",
             ", ".join(f"{v:,.0f}" for v in figures["floor"]), round(floor), 1.0],
        ],
    )  # fmt: skip
    path = write_result(
        "bench_api_inprocess",
        {"machine": machine, "args": vars(args), "unit": unit, "figures": figures},
    )
    print(f"result written to {path}")


if __name__ == "__main__":
    main()
