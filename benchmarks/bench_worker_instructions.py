"""Instructions per job of one worker process, counted by valgrind's callgrind.

    .venv/bin/python benchmarks/bench_worker_instructions.py [--jobs 100,400] [--concurrency 1]

The same preloaded backlog as `bench_e2e.py` (cached speech, zero-delay simulator), drained by
one worker process that runs under `valgrind --tool=callgrind`. Once the last job is
`completed` in Redis, the counters are dumped (`callgrind_control --dump`) and the worker is
killed, so its shutdown is not counted. The run is made for two backlog sizes, each with a
fresh worker; the difference in instructions divided by the difference in jobs is the cost
of a job, with start-up and imports cancelled out.

With the default `WORKER_CONCURRENCY=1` every job takes the same path, and two runs agree
within about 1.5%. With more jobs at once, how many Redis calls and audit messages share a
write depends on timing, and runs differ by up to 10% (`--concurrency 32`, `--jobs 200,1000`).

A count of instructions does not depend on what else the machine is doing, unlike the CPU
seconds of `bench_e2e.py` and `bench_ab.py`, so one run of each side compares two commits.
Run it from a `git worktree` of the other commit with the same venv and
`PYTHONPATH=<worktree>/src`, alternately. It leaves out the kernel's work (system calls) and
Redis and RabbitMQ; the timers a worker runs while it waits add a little, in proportion to the
run's length. Each size takes 1-3 minutes (a Python process runs 30-50 times slower under
callgrind).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    ENTRY,
    PYTHON,
    Isolation,
    cleanup,
    machine_info,
    print_table,
    processes,
    write_result,
)
from bench_e2e import drain_backlog, ours_round, preload_backlog

DUMP_WAIT_S = 120.0
SUMMARY = re.compile(rb"^(?:summary|totals): (\d+)", re.MULTILINE)


def instructions_of_round(iso: Isolation, work: Path, jobs: int, concurrency: int) -> int:
    """Instructions one worker under callgrind spent from its start to its `jobs`-th job."""
    base = preload_backlog(iso, work, jobs, concurrency)
    out = work / f"callgrind-{jobs}.out"
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", PYTHON, str(ENTRY)]
    with processes() as started:
        worker = drain_backlog(
            iso, work, jobs, concurrency, base, started,
            command=argv, timeout=1800.0, WORKER_ID=f"cg-{iso.tag}",
        )  # fmt: skip
        dumped = subprocess.run(
            ["callgrind_control", "--dump", str(worker.popen.pid)],
            capture_output=True,
            text=True,
            timeout=DUMP_WAIT_S,
            check=False,
        )
        if dumped.returncode != 0:
            raise SystemExit(f"callgrind_control failed: {dumped.stdout}{dumped.stderr}")
        total = _dumped_total(out)
        worker.stop(timeout=1.0)  # killed: its shutdown is not part of the count
    return total


def _dumped_total(out: Path) -> int:
    """The instructions in the dump `callgrind_control --dump` wrote (`<out>.1`)."""
    deadline = time.monotonic() + DUMP_WAIT_S
    while time.monotonic() < deadline:
        for path in sorted(out.parent.glob(f"{out.name}.*")):
            found = SUMMARY.search(path.read_bytes())
            if found:
                return int(found.group(1))
        time.sleep(0.5)
    raise SystemExit(f"no callgrind dump appeared next to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--jobs", default="100,400", help="the two backlog sizes")
    parser.add_argument("--concurrency", type=int, default=1, help="WORKER_CONCURRENCY")
    args = parser.parse_args()
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found (Debian package valgrind)")
    small, large = sorted(int(n) for n in args.jobs.split(","))
    iso = Isolation.new()
    totals: dict[int, int] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-worker-cg-") as tmp:
            work = Path(tmp)
            # One job through a plain worker: the one synthesis every measured job reuses.
            ours_round(iso, work, 1, 1, 1, timeout=120.0)
            for jobs in (small, large):
                totals[jobs] = instructions_of_round(iso, work, jobs, args.concurrency)
                print(f"  {jobs} jobs: {totals[jobs]:,} instructions", flush=True)
    finally:
        asyncio.run(cleanup(iso))
    per_job = (totals[large] - totals[small]) / (large - small)
    print_table(
        f"One worker x {args.concurrency}, cached speech, zero-delay simulator: instructions "
        "counted by callgrind",
        ["backlog", "instructions in all", "per job (difference)"],
        [
            [small, f"{totals[small]:,}", ""],
            [large, f"{totals[large]:,}", f"{per_job:,.0f}"],
        ],
    )
    result: dict[str, Any] = {
        "machine": machine_info(),
        "config": vars(args),
        "totals": totals,
        "instructions_per_job": round(per_job),
    }
    print(f"result written to {write_result('bench_worker_instructions', result)}")


if __name__ == "__main__":
    main()
