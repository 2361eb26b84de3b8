"""Client CPU per script call: commands packed by hiredis against redis-py's Python packer.

    .venv/bin/python benchmarks/bench_redis_packing.py [--rounds 6] [--tasks 32] [--calls 300]

The call is shaped like the API's record creation (`JobLifecycle.create`): `EVALSHA` with 10
keys and 49 arguments, a new job's record among them field by field. The script only counts
its arguments, so the figure is the client's side.
- Packing alone: µs per call of redis-py's asyncio `Connection.pack_command` and of the
  store's connections (`store/packing.py`, `hiredis.pack_command`), same arguments.
- Through Redis: `--tasks` coroutines of one process each make `--calls` script calls through
  a client built as the product builds it (pool, options, shared writes), once with redis-py's
  connection class and once with the store's, alternating for `--rounds`. Process CPU time per
  call; the medians are compared.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import timeit
import uuid
from datetime import UTC, datetime
from typing import Any

import uvloop
from redis.asyncio.connection import Connection

from _common import REDIS_URL, machine_info, print_table, write_result
from ttsqueue.domain import Job, JobStatus, Priority
from ttsqueue.store.connection import POOL_SIZE, BoundedPool, StoreClient, _client_options
from ttsqueue.store.packing import packed_by_hiredis

COUNT_ARGS = "return #ARGV"
PACKERS = {"redis-py packer": Connection, "hiredis packer": packed_by_hiredis(Connection)}


def creation_args() -> tuple[list[str], list[str | int]]:
    """Keys and arguments of the shape `JobLifecycle.create` sends."""
    stamp = datetime.now(UTC).isoformat()
    job = Job(
        job_id=str(uuid.uuid4()),
        status=JobStatus.QUEUED,
        text="Hola, este es un mensaje de prueba del benchmark.",
        phone_number="3005050149",
        e164="+573005050149",
        dial_number="3005050149",
        language="es",
        engine="espeak",
        priority=Priority.NORMAL,
        max_retries=2,
        retry_delay=10,
        created_at=stamp,
        updated_at=stamp,
    )
    keys = [f"bench-packing:{job.job_id}:{n}" for n in range(10)]
    head: list[str | int] = [job.job_id, 1_764_000_000_000, 86_400, '{"status":"queued"}', ""]
    head += [86_400, "bench-packing:events", '{"job_id":"x"}', "bench-packing:", "normal"]
    head += ["+573005050149"]
    flat = [part for pair in job.to_redis().items() for part in pair]
    return keys, head + flat


def packing_alone(keys: list[str], args: list[str | int], number: int) -> dict[str, float]:
    command = ("EVALSHA", "0" * 40, len(keys), *keys, *args)
    figures: dict[str, float] = {}
    for name, connection_class in PACKERS.items():
        connection = connection_class()
        seconds = timeit.timeit(lambda c=connection: c.pack_command(*command), number=number)
        figures[name] = seconds / number * 1e6
    return figures


async def one_round(
    connection_class: type[Connection], keys: list[str], args: list[str | int], tasks: int,
    calls: int,
) -> float:  # fmt: skip
    pool = BoundedPool.from_url(
        REDIS_URL, max_connections=POOL_SIZE, timeout=20, **_client_options("bench-packing")
    )
    pool.connection_class = connection_class
    client = StoreClient.from_pool(pool)
    script = client.register_script(COUNT_ARGS)

    async def caller(count: int) -> None:
        for _ in range(count):
            await script(keys=keys, args=args)

    try:
        await asyncio.gather(*(caller(10) for _ in range(tasks)))  # connections opened
        start = time.process_time()
        await asyncio.gather(*(caller(calls) for _ in range(tasks)))
        return (time.process_time() - start) / (tasks * calls) * 1e6
    finally:
        await client.aclose()


async def through_redis(
    keys: list[str], args: list[str | int], ns: argparse.Namespace
) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {name: [] for name in PACKERS}
    for _ in range(ns.rounds):
        for name, connection_class in PACKERS.items():
            figures[name].append(await one_round(connection_class, keys, args, ns.tasks, ns.calls))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    machine = machine_info()
    keys, script_args = creation_args()
    alone = packing_alone(keys, script_args, 20_000)
    figures = uvloop.run(through_redis(keys, script_args, args))
    base_alone = alone["redis-py packer"]
    base = statistics.median(figures["redis-py packer"])
    rows: list[list[Any]] = []
    for name, values in figures.items():
        median = statistics.median(values)
        rows.append(
            [name, round(alone[name], 1), round(alone[name] / base_alone, 2),
             ", ".join(f"{v:.1f}" for v in values), round(median, 1), round(median / base, 2)]
        )  # fmt: skip
    print_table(
        f"Client CPU per script call of {len(keys)} keys and {len(script_args)} arguments: "
        f"packing alone, then through Redis ({args.tasks} tasks x {args.calls} calls, "
        f"{args.rounds} rounds)",
        ["connections", "µs to pack", "x redis-py", "µs CPU per call, each round", "median",
         "x redis-py"],
        rows,
    )  # fmt: skip
    path = write_result(
        "bench_redis_packing",
        {
            "machine": machine,
            "args": vars(args),
            "arguments_per_call": len(keys) + len(script_args) + 3,
            "us_to_pack": alone,
            "us_cpu_per_call": figures,
        },
    )
    print(f"result written to {path}")


if __name__ == "__main__":
    main()
