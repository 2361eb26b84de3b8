"""Script calls one by one against script calls sharing a write (store/batching.py).

    .venv/bin/python benchmarks/bench_script_batching.py [--rounds 5] [--tasks 1,8,32]
        [--calls 400]

Each round, `--tasks` coroutines of one process call a small Lua script `--calls` times each,
one call at a time per coroutine, through a client built as the product builds it (same
options, the store's pool of 64 connections): first redis-py's own client, each call its own
write (the baseline), then the store's client, whose calls made in one event-loop turn share a
write; alternating. Per call: the client process's CPU, Redis's CPU (`INFO cpu`) and Redis's
reads (`INFO stats` `total_reads_processed`); the medians are compared. With 1 task nothing
can share a write: that row is the cost of the batched path alone.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import redis.asyncio as aioredis
import uvloop

from _common import REDIS_URL, machine_info, print_table, write_result
from ttsqueue.store.connection import POOL_SIZE, BoundedPool, StoreClient, _client_options

SCRIPT = "return redis.call('EXISTS', KEYS[1])"
KINDS = ("one write per call", "shared writes")


async def redis_counters(admin: aioredis.Redis) -> tuple[float, int]:
    cpu = await admin.info("cpu")
    stats = await admin.info("stats")
    return (
        float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]),
        int(stats["total_reads_processed"]),
    )


async def one_round(kind: str, tasks: int, calls: int, admin: aioredis.Redis) -> dict[str, float]:
    pool = BoundedPool.from_url(
        REDIS_URL, max_connections=POOL_SIZE, timeout=20, **_client_options("bench-batching")
    )
    client_class = StoreClient if kind == "shared writes" else aioredis.Redis
    client = client_class.from_pool(pool)
    script = client.register_script(SCRIPT)

    async def caller(count: int) -> None:
        for _ in range(count):
            await script(keys=["bench-batching:absent"])

    try:
        await asyncio.gather(*(caller(10) for _ in range(tasks)))  # loaded, connections open
        redis_before, reads_before = await redis_counters(admin)
        start = time.process_time()
        await asyncio.gather(*(caller(calls) for _ in range(tasks)))
        client_cpu = time.process_time() - start
        redis_after, reads_after = await redis_counters(admin)
    finally:
        await client.aclose()
    total = tasks * calls
    return {
        "client_us": client_cpu / total * 1e6,
        # The two INFO calls of the measurement are a rounding error against `total`.
        "redis_us": (redis_after - redis_before) / total * 1e6,
        "reads": (reads_after - reads_before) / total,
    }


async def measure(args: argparse.Namespace) -> dict[str, dict[str, list[dict[str, float]]]]:
    admin = aioredis.Redis.from_url(REDIS_URL)
    figures: dict[str, dict[str, list[dict[str, float]]]] = {}
    try:
        for tasks in (int(t) for t in args.tasks.split(",")):
            per_kind: dict[str, list[dict[str, float]]] = {kind: [] for kind in KINDS}
            for _ in range(args.rounds):
                for kind in KINDS:
                    per_kind[kind].append(await one_round(kind, tasks, args.calls, admin))
            figures[str(tasks)] = per_kind
    finally:
        await admin.aclose()
    return figures


def median(rounds: list[dict[str, float]], name: str) -> float:
    return statistics.median(r[name] for r in rounds)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tasks", default="1,8,32", help="concurrent callers, one row each")
    parser.add_argument("--calls", type=int, default=400, help="calls per caller and round")
    args = parser.parse_args()
    machine = machine_info()
    figures = uvloop.run(measure(args))
    rows: list[list[Any]] = []
    for tasks, per_kind in figures.items():
        base = per_kind[KINDS[0]]
        for kind in KINDS:
            rounds = per_kind[kind]
            rows.append(
                [
                    tasks,
                    kind,
                    round(median(rounds, "client_us"), 1),
                    round(median(rounds, "client_us") / median(base, "client_us"), 2),
                    round(median(rounds, "redis_us"), 1),
                    round(median(rounds, "redis_us") / median(base, "redis_us"), 2),
                    round(median(rounds, "reads"), 2),
                ]
            )
    print_table(
        f"A small script called {args.calls} times by each caller, {args.rounds} alternating "
        "rounds, medians",
        ["callers", "client", "client µs CPU/call", "x one by one", "Redis µs CPU/call",
         "x one by one", "Redis reads/call"],
        rows,
    )  # fmt: skip
    path = write_result(
        "bench_script_batching", {"machine": machine, "args": vars(args), "rounds": figures}
    )
    print(f"result written to {path}")


if __name__ == "__main__":
    main()
