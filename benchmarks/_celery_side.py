"""The Celery baselines of bench_e2e.py; run inside benchmarks/.venv-celery, never the main venv.

    python _celery_side.py preload TASK N IDS_FILE   publish N tasks, write their ids
    celery -A _celery_side worker ...                the worker (same variables)

Two tasks: `noop` (Celery's best case: it returns its argument) and `bookkeeping`, which does
what a ttsqueue job does to Redis, with redis-py as a Celery user would write it: the job's
record, history entry, status indexes and counters created when it is queued (at preload),
then one atomic MULTI per state change (queued -> processing -> calling -> completed), each
writing the record, a history entry, the status indexes and a counter.

Configuration (set by bench_e2e.py): BENCH_CELERY_BROKER, BENCH_CELERY_BACKEND,
BENCH_CELERY_QUEUE (private queue and exchange name), BENCH_CELERY_PREFIX (result key prefix).
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from functools import cache
from pathlib import Path

import redis
from celery import Celery
from kombu import Exchange, Queue

QUEUE = os.environ["BENCH_CELERY_QUEUE"]

app = Celery(
    "bench_celery",
    broker=os.environ["BENCH_CELERY_BROKER"],
    backend=os.environ["BENCH_CELERY_BACKEND"],
)
app.conf.update(
    # Stored as ttsqueue's work queues are (x-queue-version 2, broker/topology.py), so that
    # RabbitMQ does the same work for both sides.
    task_queues=[
        Queue(QUEUE, Exchange(QUEUE), routing_key=QUEUE, queue_arguments={"x-queue-version": 2})
    ],
    task_default_queue=QUEUE,
    task_default_exchange=QUEUE,
    task_default_routing_key=QUEUE,
    result_backend_transport_options={"global_keyprefix": os.environ["BENCH_CELERY_PREFIX"]},
    worker_enable_remote_control=False,
    worker_send_task_events=False,
    broker_connection_retry_on_startup=True,
)


PREFIX = os.environ["BENCH_CELERY_PREFIX"]
STEPS = (("queued", "processing"), ("processing", "calling"), ("calling", "completed"))


@cache
def store() -> redis.Redis:
    """One client per worker process (a pool shared by its threads)."""
    return redis.Redis.from_url(os.environ["BENCH_CELERY_BACKEND"], decode_responses=True)


@app.task(name="bench.noop")
def noop(x: int) -> int:
    return x


def record_change(client: redis.Redis, job_id: str, previous: str | None, status: str) -> None:
    """A status change with what goes with it, atomically (MULTI/EXEC)."""
    now = time.time()
    key = f"{PREFIX}job:{job_id}"
    pipe = client.pipeline(transaction=True)
    pipe.hset(key, mapping={"status": status, "updated_at": str(now)})
    pipe.rpush(f"{key}:history", json.dumps({"status": status, "at": now}))
    if previous is not None:
        pipe.zrem(f"{PREFIX}jobs:status:{previous}", job_id)
    pipe.zadd(f"{PREFIX}jobs:status:{status}", {job_id: now})
    pipe.hincrby(f"{PREFIX}stats:metrics", status, 1)
    pipe.execute()


@app.task(name="bench.bookkeeping")
def bookkeeping(job_id: str) -> str:
    client = store()
    for previous, status in STEPS:
        record_change(client, job_id, previous, status)
    return job_id


def preload(task: str, count: int, ids_file: Path) -> None:
    start = time.monotonic()
    if task == "noop":
        ids = [noop.apply_async((i,)).id for i in range(count)]
    else:
        ids = []
        for _ in range(count):
            job_id = str(uuid.uuid4())
            record_change(store(), job_id, None, "queued")
            ids.append(bookkeeping.apply_async((job_id,)).id)
    ids_file.write_text(json.dumps(ids))
    print(json.dumps({"published": count, "seconds": round(time.monotonic() - start, 3)}))


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "preload" or sys.argv[2] not in ("noop", "bookkeeping"):
        raise SystemExit("usage: _celery_side.py preload noop|bookkeeping N IDS_FILE")
    preload(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
