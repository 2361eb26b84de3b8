"""RabbitMQ CPU per audit message when jobs end one at a time: alone, or in convoys.

    .venv/bin/python benchmarks/bench_audit_convoy.py [--messages 1500] [--rate 300] [--rounds 3]

A worker ends its jobs one after another, and every ending publishes one persistent, confirmed
audit message to `tts_results` (off the job's path). Each round sends `--messages` of them
through the product's `Publisher.to_results`, one job ending every 1/`--rate` s, each in its
own task as the lifecycle sends them, and reads what RabbitMQ's process used meanwhile
(/proc). Two publishers alternate round by round on the same broker and queue:
- `alone` (the baseline): a convoy of one, so that each message leaves as soon as its job
  ends, as before convoys;
- `convoy`: the product's publisher, whose audit messages leave together every
  `RESULTS_WINDOW_S` (or at `RESULTS_CONVOY_SIZE`).
Also reported: this process's CPU per message, and the time from a job's ending to its
message's confirm (what the convoy adds; nothing waits for it).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import uvloop

from _common import (
    RABBITMQ_URL,
    Isolation,
    delete_broker_objects,
    machine_info,
    print_table,
    service_cpu,
    write_result,
)
from ttsqueue.broker.connection import connect_broker
from ttsqueue.broker.convoy import Convoy
from ttsqueue.broker.publisher import RESULTS_CONVOY_SIZE, RESULTS_WINDOW_S, Publisher
from ttsqueue.broker.topology import declare_topology
from ttsqueue.config import load_settings

BODY = (
    b'{"job_id":"f527dc75-2378-47e1-bf41-18c81f2bb1a7","status":"completed","attempts":1,'
    b'"call":{"backend":"simulator","outcome":"answered","reason":null,"hangup_cause":null,'
    b'"channel":null,"started_at":"2026-12-03T16:09:15.567Z","answered_at":'
    b'"2026-12-03T16:09:15.568Z","ended_at":"2026-12-03T16:09:15.570Z","talk_s":0.0,'
    b'"simulated":true},"completed_at":"2026-12-03T16:09:15.571Z","metadata":{}}'
)
# Rest between rounds, so that one round's writes are not billed to the next.
SETTLE_S = 1.0


async def one_round(publisher: Publisher, messages: int, rate: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []

    async def ending(n: int, at: float) -> None:
        await asyncio.sleep(max(0.0, at - loop.time()))
        ended = loop.time()
        await publisher.to_results(BODY, f"bench-{n}")
        latencies.append(loop.time() - ended)

    rabbit_before = service_cpu()["rabbitmq"]
    cpu_before = time.process_time()
    start = loop.time() + 0.05
    await asyncio.gather(*(ending(n, start + n / rate) for n in range(messages)))
    await asyncio.sleep(SETTLE_S)
    rabbit = service_cpu()["rabbitmq"] - rabbit_before
    cpu = time.process_time() - cpu_before
    latencies.sort()
    return {
        "rabbitmq_ms_per_message": rabbit / messages * 1e3,
        "client_ms_per_message": cpu / messages * 1e3,
        "confirm_p50_ms": latencies[len(latencies) // 2] * 1e3,
        "confirm_p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
    }


async def run(args: argparse.Namespace) -> dict[str, list[dict[str, float]]]:
    iso = Isolation.new()
    settings = load_settings(RABBITMQ_URL=RABBITMQ_URL, QUEUE_PREFIX=iso.queue_prefix)
    connection = await connect_broker(RABBITMQ_URL, name="bench-audit-convoy")
    try:
        names = await declare_topology(await connection.channel(), settings)
        publishers = {
            "alone": Publisher(connection, names, results_convoy=Convoy(RESULTS_WINDOW_S, 1)),
            "convoy": Publisher(connection, names),
        }
        figures: dict[str, list[dict[str, float]]] = {name: [] for name in publishers}
        for publisher in publishers.values():  # channels opened, broker warm
            await one_round(publisher, 50, args.rate)
        for index in range(args.rounds):
            # Alternating which goes first, so that a drift of the machine favours neither.
            order = list(publishers) if index % 2 == 0 else list(reversed(publishers))
            for name in order:
                figures[name].append(await one_round(publishers[name], args.messages, args.rate))
                print(f"  round {index + 1} {name}: {figures[name][-1]}", flush=True)
        return figures
    finally:
        await connection.close()
        await delete_broker_objects(iso.names.queues(), iso.names.exchanges())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1500)
    parser.add_argument("--rate", type=float, default=300.0, help="job endings per second")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    machine = machine_info()
    figures = uvloop.run(run(args))
    base = statistics.median(r["rabbitmq_ms_per_message"] for r in figures["alone"])
    rows: list[list[Any]] = []
    for name, rounds in figures.items():
        rabbit = [r["rabbitmq_ms_per_message"] for r in rounds]
        rows.append(
            [name, ", ".join(f"{v:.3f}" for v in rabbit), round(statistics.median(rabbit), 3),
             round(statistics.median(rabbit) / base, 2),
             round(statistics.median(r["client_ms_per_message"] for r in rounds), 3),
             round(statistics.median(r["confirm_p50_ms"] for r in rounds), 1),
             round(statistics.median(r["confirm_p99_ms"] for r in rounds), 1)]
        )  # fmt: skip
    print_table(
        f"Audit messages, {args.messages} per round at {args.rate:g} job endings/s, "
        f"{args.rounds} rounds each (convoy: {RESULTS_WINDOW_S * 1e3:g} ms or "
        f"{RESULTS_CONVOY_SIZE} messages)",
        ["publisher", "RabbitMQ CPU ms/message, each round", "median", "x alone",
         "client CPU ms/message", "ending to confirm p50 ms", "p99 ms"],
        rows,
    )  # fmt: skip
    path = write_result(
        "bench_audit_convoy",
        {
            "machine": machine,
            "args": vars(args),
            "window_s": RESULTS_WINDOW_S,
            "convoy_size": RESULTS_CONVOY_SIZE,
            "rounds": figures,
        },
    )
    print(f"result written to {path}")


if __name__ == "__main__":
    main()
