"""Dashboard push delay and CPU with jobs flowing: p95 from a status change to the page showing it.

    .venv/bin/python benchmarks/bench_dashboard.py [--rate 50] [--seconds 30] [--workers 2]
                                                    [--time-scale 0] [--screenshot PNG]

Real processes with their own Redis prefix and queue names: the API, `--workers` workers
(simulator dialer with zero delay, espeak with one shared text so speech comes from the
cache) and the dashboard, plus Debian's chromium (headless, Playwright) showing the page.
A client submits `--rate` jobs/s through `POST /tts/call`. Each status change carries the time
it was recorded (`at`, stamped by the process that made the change, same host clock); the page
records, in the animation frame after rendering a message, `now - at` for every change the
message carried (`window.ttsqDashboard.latencies`). The dashboard process's CPU is read from
/proc over the load window. Target (SPEC §8): p95 <= 1 s at 50 jobs/s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, async_playwright

from _common import (
    PYTHON,
    Isolation,
    Proc,
    cleanup,
    cpu_seconds,
    free_port,
    machine_info,
    print_table,
    processes,
    product_env,
    spawn,
    write_result,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TEXT = "Hola, este es un mensaje de prueba del sistema TTS"
TARGET_P95_MS = 1000.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="jobs submitted per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the load window")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16, help="WORKER_CONCURRENCY")
    parser.add_argument(
        "--time-scale", type=float, default=0.0, help="SIMULATOR_TIME_SCALE (0: instant calls)"
    )
    parser.add_argument("--screenshot", type=Path, default=None, help="PNG of the live page")
    return parser.parse_args()


async def wait_http(url: str, proc: Proc, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            if not proc.alive():
                raise SystemExit(f"{proc.name} exited:\n{proc.tail()}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} did not answer in {timeout}s:\n{proc.tail()}")
            await asyncio.sleep(0.2)


async def submit_at_rate(api_url: str, rate: float, seconds: float) -> tuple[int, int]:
    """Submit `rate` jobs/s for `seconds`; returns (accepted, refused)."""
    accepted = refused = 0
    total = int(rate * seconds)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=api_url, timeout=30, limits=limits) as client:

        async def one(index: int) -> None:
            nonlocal accepted, refused
            priority = "high" if index % 10 == 0 else "normal"
            body = {"text": TEXT, "phone_number": "3005050149", "priority": priority}
            try:
                reply = await client.post("/tts/call", json=body)
            except httpx.HTTPError:
                refused += 1
                return
            if reply.status_code == 202:
                accepted += 1
            else:
                refused += 1

        start = time.monotonic()
        tasks = []
        for index in range(total):
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(index)))
        await asyncio.gather(*tasks)
    return accepted, refused


async def finished_jobs(api_url: str) -> int:
    async with httpx.AsyncClient(base_url=api_url, timeout=10) as client:
        stats = (await client.get("/queue/stats")).json()["statistics"]
    return int(stats["metrics"]["succeeded"]) + int(stats["metrics"]["failed"])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(args: argparse.Namespace, iso: Isolation, work: Path) -> dict[str, Any]:
    api_port, dash_port = free_port(), free_port()
    api_url, dash_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{dash_port}"
    common = {
        "API_PORT": api_port,
        "DASHBOARD_HOST": "127.0.0.1",
        "DASHBOARD_PORT": dash_port,
        "TTSQ_API_URL": api_url,
        "WORKER_CONCURRENCY": args.concurrency,
        "SIMULATOR_TIME_SCALE": args.time_scale,
    }
    logs = work / "logs"
    logs.mkdir()
    with processes() as started:
        api = spawn(
            "api", [PYTHON, "-m", "ttsqueue.cli", "api"], product_env(iso, work, **common), logs
        )
        started.append(api)
        await wait_http(f"{api_url}/health", api)
        for n in range(args.workers):
            env = product_env(iso, work, WORKER_ID=f"bench-dash-w{n + 1}", **common)
            started.append(
                spawn(f"worker-{n + 1}", [PYTHON, "-m", "ttsqueue.cli", "worker"], env, logs)
            )
        dashboard = spawn(
            "dashboard",
            [PYTHON, "-m", "ttsqueue.cli", "dashboard"],
            product_env(iso, work, **common),
            logs,
        )
        started.append(dashboard)
        await wait_http(f"{dash_url}/healthz", dashboard)
        await submit_at_rate(api_url, 5, 1)  # warm-up: speech into the cache, connections up

        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": 1280, "height": 1000}, locale="es-CO")
            await page.goto(dash_url)
            await page.wait_for_function("window.ttsqDashboard.messages > 0")
            await page.evaluate("window.ttsqDashboard.latencies.length = 0")
            done_before = await finished_jobs(api_url)
            messages_before = await page.evaluate("window.ttsqDashboard.messages")
            cpu_before, wall_before = cpu_seconds(dashboard.popen.pid), time.monotonic()
            load = asyncio.create_task(submit_at_rate(api_url, args.rate, args.seconds))
            if args.screenshot is not None:
                await asyncio.sleep(min(10.0, args.seconds / 2))
                await screenshot(page, args.screenshot)
            accepted, refused = await load
            cpu_after, wall_after = cpu_seconds(dashboard.popen.pid), time.monotonic()
            await asyncio.sleep(2.0)  # let the last changes reach the page
            done_after = await finished_jobs(api_url)
            latencies: list[float] = await page.evaluate("window.ttsqDashboard.latencies")
            messages = await page.evaluate("window.ttsqDashboard.messages") - messages_before
            await browser.close()
    window = wall_after - wall_before
    return {
        "submitted_per_s": round(accepted / window, 1),
        "refused": refused,
        "finished_per_s": round((done_after - done_before) / window, 1),
        "changes_seen": len(latencies),
        "messages_per_s": round(messages / window, 1),
        "p50_ms": percentile(latencies, 0.50) if latencies else None,
        "p95_ms": percentile(latencies, 0.95) if latencies else None,
        "p99_ms": percentile(latencies, 0.99) if latencies else None,
        "max_ms": max(latencies) if latencies else None,
        "mean_ms": round(statistics.fmean(latencies), 1) if latencies else None,
        "dashboard_cpu_pct": round(100 * (cpu_after - cpu_before) / window, 1),
        "window_s": round(window, 1),
    }


async def screenshot(page: Page, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def main() -> None:
    args = parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit("needs Debian's chromium (apt-get install chromium)")
    iso = Isolation.new()
    info = machine_info()
    with tempfile.TemporaryDirectory(prefix="bench-dash-") as tmp:
        try:
            result = asyncio.run(measure(args, iso, Path(tmp)))
        finally:
            asyncio.run(cleanup(iso))
    print_table(
        f"dashboard push delay at {args.rate:g} jobs/s "
        f"({args.workers} workers, {os.cpu_count()} CPUs)",
        ["figure", "value"],
        [[name, value] for name, value in result.items()],
    )
    p95 = result["p95_ms"]
    verdict = "meets" if p95 is not None and p95 <= TARGET_P95_MS else "MISSES"
    print(f"\np95 {p95} ms: {verdict} the target of {TARGET_P95_MS:.0f} ms")
    write_result(
        "bench_dashboard",
        {
            "machine": info,
            "config": vars(args) | {"screenshot": str(args.screenshot)},
            "result": result,
        },
    )


if __name__ == "__main__":
    main()
