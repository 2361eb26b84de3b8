"""Redis's CPU per job, and where it goes, from Redis's own accounting.

    .venv/bin/python benchmarks/bench_redis_per_job.py [--jobs 4000] [--concurrency 32]
        [--rounds 3] [--before COMMIT]

A round preloads `--jobs` queued jobs as `bench_e2e.py` does (cached speech, zero-delay
simulator), resets Redis's statistics (`CONFIG RESETSTAT`), lets one worker drain the backlog,
then reads `INFO cpu` and `INFO commandstats`. Reported per job: Redis's CPU (user + system),
the time Redis spent running scripts (`EVALSHA`, the commands they call included), the time
of the commands called inside scripts, and the calls of each command (script calls and the
commands inside them each count).

Redis measures each command's time itself, so the split does not depend on sampling. The
figures are the server's: run it against a Redis nobody else uses meanwhile (its statistics
are reset at each round; `BENCH_REDIS_URL` points at another one).

With `--before COMMIT`, rounds of that commit (checked out into a temporary `git worktree`,
run with this venv and `PYTHONPATH` at its `src`) take turns with rounds of the current code,
and the table adds the median of each pair's ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import redis

from _common import (
    PYTHON,
    REDIS_URL,
    REPO_ROOT,
    Isolation,
    cleanup,
    machine_info,
    print_table,
    processes,
    write_result,
)
from bench_e2e import drain_backlog, ours_round, preload_backlog

FIGURES = ("redis_cpu_us", "script_us", "inside_scripts_us", "commands")
LABELS = {
    "redis_cpu_us": "Redis CPU, µs per job",
    "script_us": "running scripts (EVALSHA), µs per job",
    "inside_scripts_us": "commands called by scripts, µs per job",
    "commands": "commands per job (script calls and what they call)",
}
SCRIPT_COMMANDS = ("evalsha", "eval")
# Commands of the benchmark itself, and of Redis's own accounting.
NOT_THE_WORKERS = ("zcard", "info", "config|resetstat", "ping", "hello", "client|setname")


def one_round(jobs: int, concurrency: int) -> dict[str, Any]:
    """Figures per job of one drained backlog, with the commands' own figures."""
    server = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    iso = Isolation.new()
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as tmp:
        work = Path(tmp)
        try:
            ours_round(iso, work, 1, 1, 1, 120)  # fills the speech cache
            base = preload_backlog(iso, work, jobs, concurrency)
            with processes() as started:
                server.config_resetstat()
                cpu_before = _cpu(server)
                drain_backlog(iso, work, jobs, concurrency, base, started)
                cpu_after = _cpu(server)
                stats = server.info("commandstats")
                for proc in started:
                    proc.stop()
        finally:
            asyncio.run(cleanup(iso))
    commands = {
        name.removeprefix("cmdstat_"): (int(row["calls"]), float(row["usec"]))
        for name, row in stats.items()
    }
    worker = {k: v for k, v in commands.items() if k not in NOT_THE_WORKERS}
    scripts = [v for k, v in worker.items() if k in SCRIPT_COMMANDS]
    inside = [v for k, v in worker.items() if k not in SCRIPT_COMMANDS]
    return {
        "redis_cpu_us": (cpu_after - cpu_before) * 1e6 / jobs,
        "script_us": sum(usec for _, usec in scripts) / jobs,
        # Commands outside scripts are a few per second (heartbeats, reaper): counted here.
        "inside_scripts_us": sum(usec for _, usec in inside) / jobs,
        "commands": sum(calls for calls, _ in worker.values()) / jobs,
        "per_command": {k: {"calls": c / jobs, "usec": u / jobs} for k, (c, u) in worker.items()},
    }


def _cpu(server: redis.Redis) -> float:
    info = server.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def run_side(tree: Path | None, jobs: int, concurrency: int) -> dict[str, Any]:
    """One round of the current code (`tree` None) or of the commit checked out in `tree`."""
    if tree is None:
        return one_round(jobs, concurrency)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [PYTHON, __file__, "--single", "--jobs", str(jobs), "--concurrency", str(concurrency)],
        env={**env, "PYTHONPATH": str(tree / "src")},
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("ROUND "))
    result: dict[str, Any] = json.loads(line.removeprefix("ROUND "))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", help="a commit to take turns with")
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:  # one round, for a `--before` run in its worktree
        print("ROUND " + json.dumps(one_round(args.jobs, args.concurrency)))
        return
    machine = machine_info()
    rounds: dict[str, list[dict[str, Any]]] = {"current": [], "before": []}
    with tempfile.TemporaryDirectory(prefix="bench-redis-ab-") as tmp:
        tree = None
        if args.before:
            tree = Path(tmp) / "before"
            subprocess.run(
                ["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", "-q", str(tree),
                 args.before],
                check=True,
            )  # fmt: skip
        try:
            for i in range(args.rounds):
                sides = [("before", tree), ("current", None)] if tree else [("current", None)]
                for name, side in sides if i % 2 == 0 else reversed(sides):
                    rounds[name].append(run_side(side, args.jobs, args.concurrency))
                    print(f"  round {i + 1}, {name}: {rounds[name][-1]['redis_cpu_us']:.1f} µs")
        finally:
            if tree is not None:
                subprocess.run(
                    ["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(tree)],
                    check=True,
                )
    rows = []
    for figure in FIGURES:
        now = [r[figure] for r in rounds["current"]]
        row: list[Any] = [LABELS[figure], round(statistics.median(now), 2)]
        if tree is not None:
            before = [r[figure] for r in rounds["before"]]
            ratios = [a / b for a, b in zip(now, before, strict=True) if b]
            row += [round(statistics.median(before), 2), round(statistics.median(ratios), 3)]
        rows.append(row)
    headers = ["per job", "current (median)"]
    if tree is not None:
        headers += [f"{args.before} (median)", "ratio (median of pairs)"]
    print_table(
        f"Redis per job, {args.jobs} jobs drained by 1 worker x {args.concurrency}, "
        f"{args.rounds} rounds",
        headers,
        rows,
    )
    path = write_result(
        "bench_redis_per_job", {"machine": machine, "args": vars(args), "rounds": rounds}
    )
    print(f"result written to {path}")


if __name__ == "__main__":
    sys.exit(main())
