"""Redis commands per job of one worker, counted with MONITOR on the run's own prefix.

    .venv/bin/python benchmarks/bench_round_trips.py [--jobs 300] [--concurrency 8]

N queued jobs are preloaded as in bench_e2e.py (cached speech, zero-delay simulator), then one
worker drains them while `redis-cli MONITOR` records every command. Commands a script runs
inside Redis are left out; each remaining line is one command the worker sent, so a
pipeline's commands count one each (the report names them). Commands of the worker's
background loops (heartbeats, reaper, sweeper) are in the count too, well under 0.1 per job.
Needs `redis-cli` on PATH. MONITOR sees every client of the server: only lines naming this
run's prefix are counted.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import subprocess
import tempfile
import time
from pathlib import Path

from _common import Isolation, cleanup, processes
from bench_e2e import drain_backlog, ours_round, preload_backlog
from ttsqueue.store.scripts import lua_source

LUA_DIR = Path(__file__).resolve().parent.parent / "src" / "ttsqueue" / "store" / "lua"


def script_names() -> dict[str, str]:
    """EVALSHA digest -> script name, for the product's scripts."""
    return {
        hashlib.sha1(lua_source(path.stem).encode()).hexdigest(): path.stem
        for path in LUA_DIR.glob("*.lua")
    }


def count(monitor_log: Path, prefix: str) -> collections.Counter[str]:
    names = script_names()
    counts: collections.Counter[str] = collections.Counter()
    for line in monitor_log.read_text(errors="replace").splitlines():
        parts = line.split(" ")
        # `<time> [<db> <client>] "<command>" ...`; the client is `lua]` inside a script.
        if prefix not in line or len(parts) < 5 or parts[2] == "lua]":
            continue
        command = parts[3].strip('"').upper()
        if command == "ZCARD":
            continue  # the benchmark's own progress polling
        if command == "EVALSHA":
            digest = parts[4].strip('"')
            command = f"script {names.get(digest, digest[:12])}"
        counts[command] += 1
    return counts


def run(jobs: int, concurrency: int, work: Path) -> collections.Counter[str]:
    iso = Isolation.new()
    try:
        ours_round(iso, work, 1, 1, 1, 120)  # fills the speech cache
        base = preload_backlog(iso, work, jobs, concurrency)
        log_path = work / "monitor.txt"
        with log_path.open("w") as out, processes() as started:
            monitor = subprocess.Popen(["redis-cli", "MONITOR"], stdout=out)
            try:
                time.sleep(0.5)
                drain_backlog(iso, work, jobs, concurrency, base, started)
                for proc in started:
                    proc.stop()
            finally:
                monitor.terminate()
                monitor.wait(10)
        return count(log_path, iso.redis_prefix)
    finally:
        asyncio.run(cleanup(iso))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-rt-") as tmp:
        counts = run(args.jobs, args.concurrency, Path(tmp))
    total = sum(counts.values())
    print(
        f"{args.jobs} jobs, 1 worker x {args.concurrency}: {total / args.jobs:.2f} commands per job"
    )
    for command, n in counts.most_common():
        print(f"  {command:<24} {n / args.jobs:6.2f} per job")


if __name__ == "__main__":
    main()
