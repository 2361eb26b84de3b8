"""Helpers shared by the benchmarks: isolated settings, product processes, cleanup, output.

Every run gets its own REDIS_PREFIX and QUEUE_PREFIX, so a benchmark can run next to a live
system or the test suite; everything it created is deleted afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import pstats
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import redis.asyncio as aioredis

import ttsqueue

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests import ports  # noqa: E402
from ttsqueue.broker.topology import QueueNames  # noqa: E402

RESULTS_DIR = BENCH_DIR / "results"
PYTHON = sys.executable
ENTRY = BENCH_DIR / "_entry.py"
TOOLS_VENV = BENCH_DIR / ".venv-tools"

RABBITMQ_URL = os.environ.get("BENCH_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

# High enough that neither the trunk guard nor back-pressure takes part in a throughput run.
UNTHROTTLED = 100_000


@dataclass(frozen=True, slots=True)
class Isolation:
    """One private namespace in Redis and RabbitMQ."""

    tag: str
    redis_prefix: str
    queue_prefix: str

    @classmethod
    def new(cls) -> Isolation:
        tag = uuid.uuid4().hex[:10]
        return cls(tag=tag, redis_prefix=f"bench:{tag}:", queue_prefix=f"bench{tag}_")

    @property
    def names(self) -> QueueNames:
        return QueueNames.from_prefix(self.queue_prefix)


def free_port() -> int:
    """A port for a private server, below the kernel's ephemeral range (tests/ports.py): a
    port from bind(0) may be taken by an outgoing connection before the server binds it."""
    return ports.free_port()


def product_values(iso: Isolation, audio_dir: Path, **overrides: object) -> dict[str, str]:
    """The settings of an API or worker process of this benchmark run, as variables."""
    values: dict[str, object] = {
        "TTSQ_ENV": "development",
        "RABBITMQ_URL": RABBITMQ_URL,
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": iso.redis_prefix,
        "QUEUE_PREFIX": iso.queue_prefix,
        "AUDIO_DIR": audio_dir,
        "TTS_ENGINE": "espeak",
        "TTS_FALLBACK_ENGINE": "",
        "DIALER": "simulator",
        "SIMULATOR_TIME_SCALE": 0,
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "console",
        "MAX_CONCURRENT_CALLS": UNTHROTTLED,
        "CALLS_PER_SECOND": UNTHROTTLED,
        "RATE_LIMIT_PER_MINUTE": 100_000_000,
        "MAX_QUEUE_DEPTH": 10_000_000,
        "API_KEYS": "",
        "WEBHOOKS_ENABLED": "false",
        "API_HOST": "127.0.0.1",
    }
    values.update(overrides)
    return {name: str(value) for name, value in values.items()}


def product_env(iso: Isolation, audio_dir: Path, **overrides: object) -> dict[str, str]:
    """The full environment of a product process: ours over the inherited one."""
    return {**os.environ, **product_values(iso, audio_dir, **overrides)}


@dataclass
class Proc:
    """A child process whose output goes to a log file (read back when it fails)."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    started: float = field(default_factory=time.monotonic)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait, then SIGKILL: only this process (and its own process group)."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        return int(self.popen.returncode)


@functools.cache
def compile_product() -> None:
    """Byte-compile the product package these benchmarks import, as `./manage.sh` does after
    installing it: an editable install gets no bytecode from pip, and where
    PYTHONDONTWRITEBYTECODE is set every spawned process would compile it again, while the
    baselines' packages (Celery's) come compiled by pip. Only what changed is rewritten."""
    package = Path(ttsqueue.__file__).parent
    subprocess.run(
        [PYTHON, "-m", "compileall", "-q", str(package)], check=True, stdout=subprocess.DEVNULL
    )


def spawn(
    name: str, argv: Sequence[str], env: dict[str, str], log_dir: Path, cwd: Path = REPO_ROOT
) -> Proc:
    compile_product()
    log_path = log_dir / f"{name}.log"
    log_file = log_path.open("wb")
    popen = subprocess.Popen(
        list(argv),
        env=env,
        cwd=cwd,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log_file.close()
    return Proc(name, popen, log_path)


@contextlib.contextmanager
def processes() -> Iterator[list[Proc]]:
    """Collects started processes and stops every one of them, whatever happens."""
    started: list[Proc] = []
    try:
        yield started
    finally:
        for proc in started:
            proc.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process and its live children (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        this_pid = int(stat.parent.name)
        ppid = int(fields[1])
        if this_pid == pid or ppid == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


# The shared services, by process name in /proc (read-only: they are not ours to touch).
SERVICES = {"beam.smp": "rabbitmq", "redis-server": "redis"}


def redis_traffic() -> tuple[int, int]:
    """Reads and commands Redis has served so far (INFO stats `total_reads_processed`,
    `total_commands_processed`). What one client wrote at once is one read, so reads count
    round trips; commands count what Redis ran, those a script runs included (its work)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        stats = client.info("stats")
        return int(stats["total_reads_processed"]), int(stats["total_commands_processed"])
    finally:
        client.close()


def service_cpu() -> dict[str, float]:
    """CPU seconds used so far by RabbitMQ and Redis, to see where a round's CPU went."""
    tick = os.sysconf("SC_CLK_TCK")
    totals = dict.fromkeys(SERVICES.values(), 0.0)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.find("(") + 1 : text.rfind(")")]
        if name in SERVICES:
            fields = text.rsplit(")", 1)[1].split()
            totals[SERVICES[name]] += (int(fields[11]) + int(fields[12])) / tick
    return totals


def py_spy_argv(
    pid: int, dump: Path, duration_s: float | None = None, rate: int = 200
) -> list[str]:
    """Sample `pid` into py-spy's raw format (each stack starting with its thread), until it
    exits or for `duration_s`. Sampling pauses the process for a moment each time (accurate
    stacks); lower `rate` for a process with many threads."""
    argv = [str(py_spy()), "record", "--pid", str(pid), "--format", "raw", "--rate", str(rate),
            "--full-filenames", "--threads", "--output", str(dump)]  # fmt: skip
    if duration_s is not None:
        argv += ["--duration", str(max(1, round(duration_s)))]
    return argv


def py_spy() -> Path:
    """py-spy from PATH or benchmarks/.venv-tools (created on demand), never the product's venv."""
    found = shutil.which("py-spy")
    if found:
        return Path(found)
    binary = TOOLS_VENV / "bin" / "py-spy"
    if not binary.exists():
        print(f"creating {TOOLS_VENV} (py-spy) ...", flush=True)
        subprocess.run([PYTHON, "-m", "venv", "--clear", str(TOOLS_VENV)], check=True)
        subprocess.run([str(TOOLS_VENV / "bin" / "pip"), "install", "-q", "py-spy"], check=True)
    return binary


# Cleanup ------------------------------------------------------------------------------------
async def delete_redis_prefix(url: str, prefix: str) -> int:
    client = aioredis.Redis.from_url(url)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                deleted += await client.unlink(*batch)
                batch.clear()
        if batch:
            deleted += await client.unlink(*batch)
    finally:
        await client.aclose()
    return deleted


async def delete_broker_objects(queues: Sequence[str], exchanges: Sequence[str] = ()) -> None:
    connection = await aio_pika.connect(RABBITMQ_URL)
    try:
        for queue in queues:
            channel = await connection.channel()
            with contextlib.suppress(Exception):
                await channel.queue_delete(queue)
            with contextlib.suppress(Exception):
                await channel.close()
        for exchange in exchanges:
            channel = await connection.channel()
            with contextlib.suppress(Exception):
                await channel.exchange_delete(exchange)
            with contextlib.suppress(Exception):
                await channel.close()
    finally:
        await connection.close()


async def cleanup(iso: Isolation) -> None:
    names = iso.names
    await delete_broker_objects(names.queues(), names.exchanges())
    await delete_redis_prefix(REDIS_URL, iso.redis_prefix)


async def queue_depth(queue: str) -> int | None:
    """Ready messages in `queue`, or None when it does not exist."""
    connection = await aio_pika.connect(RABBITMQ_URL)
    try:
        channel = await connection.channel()
        try:
            declared = await channel.declare_queue(queue, passive=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return None
        return int(declared.declaration_result.message_count or 0)
    finally:
        await connection.close()


# Output -------------------------------------------------------------------------------------
def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    line = "+".join("-" * (w + 2) for w in widths)
    print(f"\n{title}")
    print(line)
    for index, row in enumerate(cells):
        print(
            " | ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if index == 0:
            print(line)
    print(line)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def machine_info() -> dict[str, Any]:
    load1, load5, _ = os.getloadavg()
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_1m_at_start": round(load1, 2),
        "loadavg_5m_at_start": round(load5, 2),
        "platform": platform.platform(),
    }


def profile_summary(path: Path, top: int = 25) -> dict[str, list[dict[str, Any]]]:
    """The heaviest functions of a cProfile dump: ours (src/ttsqueue) and overall."""
    stats = pstats.Stats(str(path))
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values()) or 1.0
    rows = []
    for (filename, line, func), (_, calls, tottime, cumtime, _) in raw.items():
        where = filename
        if "/src/ttsqueue/" in filename:
            where = "ttsqueue/" + filename.split("/src/ttsqueue/", 1)[1]
        elif "site-packages/" in filename:
            where = filename.split("site-packages/", 1)[1]
        rows.append(
            {
                "function": f"{where}:{line}:{func}",
                "ours": "/src/ttsqueue/" in filename,
                "calls": calls,
                "tottime_s": round(tottime, 3),
                "tottime_pct": round(100 * tottime / total, 1),
                "cumtime_s": round(cumtime, 3),
            }
        )
    ours = [r for r in rows if r["ours"]]
    return {
        "ours_by_cumtime": sorted(ours, key=lambda r: -r["cumtime_s"])[:top],
        "ours_by_tottime": sorted(ours, key=lambda r: -r["tottime_s"])[:top],
        "all_by_tottime": sorted(rows, key=lambda r: -r["tottime_s"])[:top],
    }


# Leaf frames of a pool thread waiting for work (py-spy does not always see them as idle).
IDLE_LEAVES = ("Condition.wait", "Queue.get", "futures/thread.py:81", "_worker (")


def sample_summary(path: Path, anchor: str, top: int = 25) -> dict[str, Any]:
    """Views of py-spy's raw output (`--threads`: each stack starts with its thread).

    Only main-thread stacks that pass through `anchor` (the process's run function) count for
    the rankings; start-up imports and other threads (executor / AnyIO pools: busy, or idle
    waiting for work) are counted apart, under `threads`.
    `ours_by_cumtime`: samples with the function anywhere on the stack; `ours_by_tottime`:
    samples whose deepest frame of ours is the function, i.e. its own code plus the library
    code it calls (redis-py, pydantic, aio-pika...); `all_by_tottime`: leaf frames."""
    inclusive: dict[str, int] = {}
    owning: dict[str, int] = {}
    leaves: dict[str, int] = {}
    packages: dict[str, int] = {}
    threads = {"event_loop": 0, "other_threads_busy": 0, "start_up_imports": 0, "idle_or_other": 0}
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        raw_frames = stack.split(";")
        thread_name = raw_frames[0].partition(": ")[2]
        if "importlib._bootstrap" in stack:
            threads["start_up_imports"] += count
            continue
        if thread_name not in ("", "MainThread"):
            idle = any(mark in raw_frames[-1] for mark in IDLE_LEAVES)
            threads["idle_or_other" if idle else "other_threads_busy"] += count
            continue
        if anchor not in stack:
            threads["idle_or_other"] += count
            continue
        threads["event_loop"] += count
        frames = [_frame_name(frame) for frame in raw_frames[1:]]
        ours = [f for f in frames if f.startswith("ttsqueue/")]
        for name in set(ours):
            inclusive[name] = inclusive.get(name, 0) + count
        if ours:
            owning[ours[-1]] = owning.get(ours[-1], 0) + count
        leaves[frames[-1]] = leaves.get(frames[-1], 0) + count
        package = _package(frames[-1])
        packages[package] = packages.get(package, 0) + count
    total = threads["event_loop"]

    def rows(counts: dict[str, int]) -> list[dict[str, Any]]:
        ranked = sorted(counts.items(), key=lambda item: -item[1])[:top]
        return [
            {"function": name, "samples": n, "tottime_pct": round(100 * n / max(total, 1), 1)}
            for name, n in ranked
        ]

    return {
        "total_samples": total,
        "threads": threads,
        "ours_by_cumtime": rows(inclusive),
        "ours_by_tottime": rows(owning),
        "all_by_tottime": rows(leaves),
        "by_package": rows(packages),
    }


def _package(frame: str) -> str:
    """Who owns a leaf frame: `ttsqueue`, a library (`redis`, `aiormq`...) or `stdlib/asyncio`."""
    path = frame.rsplit(":", 1)[0]
    parts = path.split("/")
    if parts[0] == "stdlib":
        return "stdlib/" + parts[1].removesuffix(".py") if len(parts) > 2 else "stdlib"
    return parts[0].removesuffix(".py")


def _frame_name(frame: str) -> str:
    """`func (/path/file.py:12)` -> `ttsqueue/x/file.py:func` or `lib/file.py:func`."""
    func, _, where = frame.partition(" (")
    filename = where.rstrip(")").rsplit(":", 1)[0]
    if "/src/ttsqueue/" in filename:
        filename = "ttsqueue/" + filename.split("/src/ttsqueue/", 1)[1]
    elif "site-packages/" in filename:
        filename = filename.split("site-packages/", 1)[1]
    elif "/lib/python3" in filename:
        filename = "stdlib/" + filename.split("/lib/python3", 1)[1].split("/", 1)[-1]
    return f"{filename}:{func}"


def print_profile(title: str, summary: dict[str, Any], top: int = 15) -> None:
    sampled = "total_samples" in summary
    if sampled:
        print(f"\n{title}: samples by thread: {summary['threads']}")
    labels = {
        "ours_by_cumtime": "our code, inclusive (anywhere on the stack)",
        "ours_by_tottime": "our code, own + the libraries it calls directly"
        if sampled
        else "our code by own time",
        "all_by_tottime": "everything by own (leaf) time",
    }
    if sampled:
        labels["by_package"] = "leaf samples by package"
    for key, label in labels.items():
        if sampled:
            headers = ["function", "samples", "% of event-loop samples"]
            rows = [[r["function"], r["samples"], r["tottime_pct"]] for r in summary[key][:top]]
        else:
            headers = ["function", "calls", "own s", "own %", "cum s"]
            rows = [
                [r["function"], r["calls"], r["tottime_s"], r["tottime_pct"], r["cumtime_s"]]
                for r in summary[key][:top]
            ]
        print_table(f"{title}: {label}", headers, rows)


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    result = {"benchmark": name, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **result}
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path
