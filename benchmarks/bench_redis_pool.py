"""Client CPU per Redis command: the store's pool against redis-py's blocking pool.

    .venv/bin/python benchmarks/bench_redis_pool.py [--rounds 6] [--tasks 32] [--commands 500]

Each round, `--tasks` coroutines of one process send `--commands` `GET`s each, one at a time,
through a client built as the product builds it (same options, 64 connections), first with
redis-py's `BlockingConnectionPool`, then with `store.connection.BoundedPool` (the blocking
pool with a fast path when a connection is free), alternating. The process CPU time of the
round divided by the commands sent is the figure; the medians are compared.
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

POOLS: dict[str, type[aioredis.BlockingConnectionPool]] = {
    "redis-py BlockingConnectionPool": aioredis.BlockingConnectionPool,
    "BoundedPool": BoundedPool,
}


async def one_round(
    pool_class: type[aioredis.BlockingConnectionPool], tasks: int, commands: int
) -> float:
    pool = pool_class.from_url(
        REDIS_URL, max_connections=POOL_SIZE, timeout=20, **_client_options("bench-redis-pool")
    )
    client = StoreClient.from_pool(pool)

    async def sender(count: int) -> None:
        for _ in range(count):
            await client.get("bench-redis-pool:absent")

    try:
        await asyncio.gather(*(sender(20) for _ in range(tasks)))  # connections opened
        start = time.process_time()
        await asyncio.gather(*(sender(commands) for _ in range(tasks)))
        return (time.process_time() - start) / (tasks * commands) * 1e6
    finally:
        await client.aclose()


async def measure(args: argparse.Namespace) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {name: [] for name in POOLS}
    for _ in range(args.rounds):
        for name, pool_class in POOLS.items():
            figures[name].append(await one_round(pool_class, args.tasks, args.commands))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--commands", type=int, default=500)
    args = parser.parse_args()
    machine = machine_info()
    figures = uvloop.run(measure(args))
    baseline = statistics.median(figures["redis-py BlockingConnectionPool"])
    rows: list[list[Any]] = []
    for name, values in figures.items():
        median = statistics.median(values)
        rows.append(
            [
                name,
                ", ".join(f"{v:.1f}" for v in values),
                round(median, 1),
                round(median / baseline, 2),
            ]
        )
    print_table(
        f"Client CPU per GET, {args.tasks} tasks x {args.commands} commands, {args.rounds} rounds",
        ["pool", "µs CPU per command, each round", "median", "x blocking pool"],
        rows,
    )
    path = write_result(
        "bench_redis_pool",
        {"machine": machine, "args": vars(args), "us_cpu_per_command": figures},
    )
    print(f"result written to {path}")


if __name__ == "__main__":
    main()
