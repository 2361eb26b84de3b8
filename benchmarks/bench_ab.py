"""Before and after, taking turns: `bench_e2e.py`'s own rounds (1 and 2 workers) for two commits.

    .venv/bin/python benchmarks/bench_ab.py --before 9a31e22 [--after HEAD] [--pairs 8]
        [--jobs 3000] [--concurrency 32]

On two shared cores the same code runs 1.5x faster or slower from one minute to the next, so a
change of a tenth only shows when the two commits take turns and each pair is compared on its
own. Each commit is checked out into a temporary `git worktree` and run with this checkout's
venv (`PYTHONPATH` pointing at the worktree's `src`, its own `benchmarks/bench_e2e.py`); the
before commit goes first in odd pairs, the after one in even pairs. No Celery rounds: the
baseline is the before commit. Reported per worker count: the medians of jobs/s, worker, Redis
and RabbitMQ CPU per job and Redis reads per job, the median of each pair's after/before ratio,
and in how many pairs the figure went down.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from _common import PYTHON, REPO_ROOT, machine_info, print_table, write_result

FIGURES = ("rate", "worker_cpu_ms", "redis_cpu_ms", "rabbitmq_cpu_ms", "redis_reads")

# Run inside a worktree: its bench_e2e's rounds of ours only, one JSON line out.
DRIVER = """
import argparse, json, sys, tempfile
from pathlib import Path
sys.path.insert(0, "benchmarks")
import bench_e2e
args = argparse.Namespace(jobs={jobs}, concurrency="{concurrency}", timeout=300.0,
                          profile=None, profile_out=None)
args.machine = bench_e2e.machine_info()
with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
    rounds, _ = bench_e2e.run_ours(args, Path(tmp))
print("ROUNDS " + json.dumps(rounds))
"""


def worktree(commit: str, into: Path) -> Path:
    subprocess.run(
        ["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", "-q", str(into), commit],
        check=True,
    )
    return into


def one_run(tree: Path, jobs: int, concurrency: int) -> dict[int, dict[str, float]]:
    """Figures per worker count of one run of the commit checked out in `tree`."""
    done = subprocess.run(
        [PYTHON, "-c", DRIVER.format(jobs=jobs, concurrency=concurrency)],
        cwd=tree,
        env={**_environment(), "PYTHONPATH": str(tree / "src")},
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("ROUNDS "))
    figures: dict[int, dict[str, float]] = {}
    for r in json.loads(line.removeprefix("ROUNDS ")):
        jobs_done = r["jobs"]
        figures[r["workers"]] = {
            "rate": r["rate"],
            "worker_cpu_ms": r["worker_cpu_ms_per_job"],
            "redis_cpu_ms": r["service_cpu_s"]["redis"] / jobs_done * 1000,
            "rabbitmq_cpu_ms": r["service_cpu_s"]["rabbitmq"] / jobs_done * 1000,
            "redis_reads": r["redis_reads"] / jobs_done,
        }
    return figures


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def compare(pairs: list[dict[str, dict[int, dict[str, float]]]]) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for workers in (1, 2):
        for name in FIGURES:
            before = [p["before"][workers][name] for p in pairs]
            after = [p["after"][workers][name] for p in pairs]
            ratios = [a / b for a, b in zip(after, before, strict=True) if b]
            rows.append(
                [
                    workers,
                    name,
                    round(statistics.median(before), 3),
                    round(statistics.median(after), 3),
                    round(statistics.median(ratios), 3) if ratios else "-",
                    f"{sum(a < b for a, b in zip(after, before, strict=True))} of {len(pairs)}",
                ]
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--before", required=True, help="commit measured as the baseline")
    parser.add_argument("--after", default="HEAD", help="commit measured against it")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    machine = machine_info()
    pairs: list[dict[str, dict[int, dict[str, float]]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ab-trees-") as tmp:
        trees = {
            "before": worktree(args.before, Path(tmp) / "before"),
            "after": worktree(args.after, Path(tmp) / "after"),
        }
        try:
            for number in range(1, args.pairs + 1):
                order = ("before", "after") if number % 2 else ("after", "before")
                pair = {side: one_run(trees[side], args.jobs, args.concurrency) for side in order}
                pairs.append(pair)
                print(
                    f"  pair {number}: jobs/s 1 worker {pair['before'][1]['rate']:,.0f} -> "
                    f"{pair['after'][1]['rate']:,.0f}, 2 workers {pair['before'][2]['rate']:,.0f}"
                    f" -> {pair['after'][2]['rate']:,.0f}",
                    flush=True,
                )
        finally:
            for tree in trees.values():
                subprocess.run(
                    ["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(tree)],
                    check=False,
                )
    rows = compare(pairs)
    print_table(
        f"{args.before} -> {args.after}, {args.pairs} alternating pairs of {args.jobs} jobs "
        f"(workers x {args.concurrency})",
        ["workers", "figure", "before, median", "after, median", "after / before, median",
         "after lower in"],
        rows,
    )  # fmt: skip
    path = write_result(
        "bench_ab",
        {"machine": machine, "args": vars(args), "pairs": pairs, "table": rows},
    )
    print(f"result written to {path}")


if __name__ == "__main__":
    main()
