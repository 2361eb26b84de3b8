"""The Celery baseline of bench_e2e.py; runs inside benchmarks/.venv-celery, never the main venv.

    python _celery_side.py preload N IDS_FILE   publish N `noop` tasks, write their ids
    celery -A _celery_side worker ...           the worker (configured by the same variables)

Configuration (set by bench_e2e.py): BENCH_CELERY_BROKER, BENCH_CELERY_BACKEND,
BENCH_CELERY_QUEUE (private queue and exchange name), BENCH_CELERY_PREFIX (result key prefix).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from celery import Celery

QUEUE = os.environ["BENCH_CELERY_QUEUE"]

app = Celery(
    "bench_celery",
    broker=os.environ["BENCH_CELERY_BROKER"],
    backend=os.environ["BENCH_CELERY_BACKEND"],
)
app.conf.update(
    task_default_queue=QUEUE,
    task_default_exchange=QUEUE,
    task_default_routing_key=QUEUE,
    result_backend_transport_options={"global_keyprefix": os.environ["BENCH_CELERY_PREFIX"]},
    worker_enable_remote_control=False,
    worker_send_task_events=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench.noop")
def noop(x: int) -> int:
    return x


def preload(count: int, ids_file: Path) -> None:
    start = time.monotonic()
    ids = [noop.apply_async((i,)).id for i in range(count)]
    ids_file.write_text(json.dumps(ids))
    print(json.dumps({"published": count, "seconds": round(time.monotonic() - start, 3)}))


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "preload":
        raise SystemExit("usage: _celery_side.py preload N IDS_FILE")
    preload(int(sys.argv[2]), Path(sys.argv[3]))
