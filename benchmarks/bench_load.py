"""Load: 200 concurrent clients for 60 s against POST /tts/call and GET /tts/status (a mix).

    .venv/bin/python benchmarks/bench_load.py [--seconds 60] [--connections 200]

Measured: the real API process (as the product starts it, private REDIS_PREFIX and
QUEUE_PREFIX) under `wrk` with `--connections` connections; each connection alternates a
submission and a status read of a job accepted earlier. Every response is classed (2xx, 4xx,
5xx) by the wrk script itself; the verdict is "no 5xx and no socket error".
Baselines (same run, same concurrency, same process): `GET /docs` (a static page: the HTTP
stack and middleware with no I/O) and `GET /health` (one Redis PING and the RabbitMQ queue
probes). No worker runs unless `--workers N`: jobs wait in the queue, which is what a burst
looks like.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from _common import (
    ENTRY,
    PYTHON,
    REDIS_URL,
    Isolation,
    Proc,
    cleanup,
    cpu_seconds,
    free_port,
    machine_info,
    print_table,
    processes,
    product_env,
    queue_depth,
    spawn,
    write_result,
)
from ttsqueue.store.keys import Keys

CALL_BODY = {
    "text": "Alerta: corte de energía programado en la sede norte a las 14:00.",
    "phone_number": "3005050149",
}

# wrk script: `-- mix <body file>` alternates POST /tts/call and GET /tts/status/<a job this
# thread saw accepted>; `-- get <path>` repeats one GET. Status classes are counted per thread
# and summed in done().
WRK_SCRIPT = r"""
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  mode = args[1]
  target = args[2]
  c2, c4, c5, posts, gets, n = 0, 0, 0, 0, 0, 0
  ids = {}
  if mode == "mix" then
    local f = assert(io.open(target, "rb"))
    body = f:read("*a")
    f:close()
  end
end

function request()
  if mode == "get" then
    return wrk.format("GET", target)
  end
  n = n + 1
  if n % 2 == 0 and #ids > 0 then
    gets = gets + 1
    return wrk.format("GET", "/tts/status/" .. ids[math.random(#ids)])
  end
  posts = posts + 1
  return wrk.format("POST", "/tts/call", {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, resp)
  if status >= 500 then c5 = c5 + 1 elseif status >= 400 then c4 = c4 + 1 else c2 = c2 + 1 end
  if status == 202 then
    local id = string.match(resp, '"job_id":"([0-9a-f%-]+)"')
    if id then
      if #ids < 1000 then table.insert(ids, id) else ids[math.random(1000)] = id end
    end
  end
end

function done(summary, latency, requests)
  local t = {c2 = 0, c4 = 0, c5 = 0, posts = 0, gets = 0}
  for _, thread in ipairs(threads) do
    for key, _ in pairs(t) do t[key] = t[key] + (thread:get(key) or 0) end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeouts":%d,"status_2xx_3xx":%d,"status_4xx":%d,"status_5xx":%d,' ..
    '"posts":%d,"gets":%d,"latency_p50_us":%d,"latency_p90_us":%d,"latency_p99_us":%d,' ..
    '"latency_max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout,
    t.c2, t.c4, t.c5, t.posts, t.gets, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
"""


def run_wrk(
    url: str, script: Path, args: list[str], seconds: float, connections: int, threads: int
) -> dict[str, Any]:
    argv = [
        "wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s",
        "--timeout", "10s", "-s", str(script), url, "--", *args,
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=seconds + 60)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            stats: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
            stats["rate"] = stats["requests"] / (stats["duration_us"] / 1e6)
            stats["socket_errors"] = sum(
                stats[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")
            )
            return stats
    raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")


def wait_ready(proc: Proc, base_url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        try:
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                reply = httpx.post(f"{base_url}/tts/call", json=CALL_BODY, timeout=10)
                if reply.status_code != 202:
                    raise RuntimeError(f"sanity POST answered {reply.status_code}: {reply.text}")
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{proc.name} not ready after {timeout}s:\n{proc.tail()}")


async def _jobs_in_redis(prefix: str) -> int:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        return int(await client.zcard(Keys(prefix).index))
    finally:
        await client.aclose()


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    iso = Isolation.new()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = product_env(
        iso, work / "audio", API_PORT=port, API_WORKERS=args.api_processes, LOG_LEVEL="ERROR"
    )
    script = work / "load.lua"
    script.write_text(WRK_SCRIPT)
    body = work / "body.json"
    body.write_bytes(json.dumps(CALL_BODY).encode())
    rounds: dict[str, dict[str, Any]] = {}
    try:
        with processes() as started:
            api = spawn("api", [PYTHON, str(ENTRY), "api"], env, work)
            started.append(api)
            for index in range(args.workers):
                started.append(spawn(f"worker-{index}", [PYTHON, str(ENTRY), "worker"], env, work))
            wait_ready(api, base_url)
            wrk = [args.connections, args.threads]
            run_wrk(base_url, script, ["mix", str(body)], args.warmup, *wrk)
            plan = [
                ("baseline GET /docs", ["get", "/docs"]),
                ("POST /tts/call + GET /tts/status", ["mix", str(body)]),
                ("baseline GET /health", ["get", "/health"]),
            ]
            for name, wrk_args in plan:
                time.sleep(1.0)
                jobs_before = asyncio.run(_jobs_in_redis(iso.redis_prefix))
                cpu_before = cpu_seconds(api.popen.pid)
                stats = run_wrk(base_url, script, wrk_args, args.seconds, *wrk)
                stats["api_cpu_s"] = round(cpu_seconds(api.popen.pid) - cpu_before, 2)
                time.sleep(1.0)
                stats["jobs_created"] = asyncio.run(_jobs_in_redis(iso.redis_prefix)) - jobs_before
                rounds[name] = stats
            queued = asyncio.run(queue_depth(iso.names.calls)) or 0
            total = asyncio.run(_jobs_in_redis(iso.redis_prefix))
    finally:
        asyncio.run(cleanup(iso))
    return {"rounds": rounds, "jobs_total": total, "messages_in_tts_calls": queued}


def report(args: argparse.Namespace, result: dict[str, Any], machine: dict[str, Any]) -> None:
    rounds = result["rounds"]
    rows = [
        [name, r["rate"], r["latency_p50_us"] / 1000, r["latency_p90_us"] / 1000,
         r["latency_p99_us"] / 1000, r["latency_max_us"] / 1000, r["status_2xx_3xx"],
         r["status_4xx"], r["status_5xx"], r["socket_errors"]]
        for name, r in rounds.items()
    ]  # fmt: skip
    print_table(
        f"{args.connections} concurrent connections, {args.seconds:g} s each, "
        f"{args.api_processes} API process(es), {args.workers} worker(s)",
        ["run", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "2xx", "4xx", "5xx",
         "socket errors"],
        rows,
    )  # fmt: skip
    mix = rounds["POST /tts/call + GET /tts/status"]
    trivial = rounds["baseline GET /docs"]
    print(
        f"\nmix: {mix['posts']:,} submissions, {mix['gets']:,} status reads; "
        f"{mix['jobs_created']:,} jobs recorded in Redis during the round; "
        f"{result['jobs_total']:,} jobs and {result['messages_in_tts_calls']:,} messages "
        "in tts_calls at the end (equal when no worker runs)"
    )
    print(
        f"mix p99 / trivial-route p99 = "
        f"{mix['latency_p99_us'] / max(trivial['latency_p99_us'], 1):.1f}; "
        f"mix req/s / trivial req/s = {mix['rate'] / max(trivial['rate'], 1):.2f}"
    )
    failures = sum(r["status_5xx"] + r["socket_errors"] for r in rounds.values())
    print("verdict:", "no 5xx, no socket error" if failures == 0 else f"{failures} FAILURES")
    path = write_result(
        "bench_load",
        {
            "machine": machine,
            "config": vars(args) | {"http_body": CALL_BODY},
            **result,
            "no_5xx": failures == 0,
        },
    )
    print(f"result written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--api-processes", type=int, default=1)
    parser.add_argument("--workers", type=int, default=0, help="worker processes during the run")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian package `wrk`)")
    machine = machine_info()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        result = measure(args, Path(tmp))
    report(args, result, machine)


if __name__ == "__main__":
    main()
