"""Calling policy costs: do-not-call import, campaign CSV parsing, and the per-job checks.

    .venv/bin/python benchmarks/bench_policy.py [--numbers 100000] [--rows 10000] [--checks 3000]

1. Do-not-call import of `--numbers` numbers (text/csv) through `POST /dnc` of a real API
   process, then through the store alone (`DncList.add_many`, numbers already normalized).
   Baselines, same run: normalizing the numbers alone (`parse_phone`), and Redis alone
   (pipelined plain `ZADD`s of the same numbers, 2,000 a command).
2. A campaign CSV of `--rows` rows (BOM, `;`, quoted fields, one placeholder-filled message
   each) read and checked by `rows_from_csv`. Baseline: `csv.reader` plus `parse_phone` on
   each row, the part no implementation can skip.
3. The per-job cost of the checks a worker makes before dialing, `CallingPolicy.check` under
   `co-ley-2300` (do-not-call lookup, window and holidays in the callee's zone, contact-cap
   claim): open (inside the window, claim taken) and closed (Sunday: next opening computed),
   one job after another. Baseline: `parse_phone` of the number plus one Redis GET.
4. Creating a campaign of `--rows` rows from that CSV through `POST /campaigns` (multipart) of
   a real API process, until its 201. Baseline, same run and same API: the plain submission
   path for the same rows, `POST /tts/calls` in batches of 1,000 (one job and one confirmed
   message each).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import redis.asyncio as aioredis

from _common import (
    ENTRY,
    PYTHON,
    REDIS_URL,
    Isolation,
    Proc,
    cleanup,
    free_port,
    machine_info,
    print_table,
    processes,
    product_env,
    spawn,
    write_result,
)
from ttsqueue.campaigns.rows import RowRules, rows_from_csv
from ttsqueue.campaigns.template import parse_template
from ttsqueue.config import load_settings
from ttsqueue.phone import parse_phone
from ttsqueue.policy.clock import FixedClock
from ttsqueue.policy.gate import Open, WaitUntil, build_calling_policy
from ttsqueue.policy.rules import JobPolicy
from ttsqueue.store.dnc import DncList
from ttsqueue.store.factory import keys_for
from ttsqueue.store.keys import Keys

BOGOTA = ZoneInfo("America/Bogota")
TEMPLATE = "Hola {nombre}, le recordamos su cita del {fecha} en {sede}. Responda 1 para confirmar."


def numbers(count: int, start: int = 0) -> list[str]:
    """Distinct, valid Colombian mobile numbers written as people write them."""
    return [f"300 {n // 10_000:03d} {n % 10_000:04d}" for n in range(start, start + count)]


def campaign_csv(rows: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["Nombre", "Phone Number", "Fecha", "Sede"])
    for n, number in enumerate(numbers(rows)):
        writer.writerow([f"Persona {n}", number, f"lunes {n % 28 + 1}", "Sede Norte, piso 2"])
    return ("\ufeff" + out.getvalue()).encode()


def timed(action: Any, *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action(*args)
    return time.perf_counter() - started, result


async def atimed(action: Any, *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await action(*args)
    return time.perf_counter() - started, result


# 1. Do-not-call import ------------------------------------------------------------------------
def start_api(iso: Isolation, audio: Path, started: list[Proc]) -> str:
    port = free_port()
    env = product_env(iso, audio, API_PORT=port)
    proc = spawn("api", [PYTHON, str(ENTRY), "api"], env, audio)
    started.append(proc)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"the API exited:\n{proc.tail()}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the API did not start:\n{proc.tail()}")


async def raw_zadd(redis: aioredis.Redis, key: str, e164s: list[str]) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for start in range(0, len(e164s), 2000):
            pipe.zadd(key, dict.fromkeys(e164s[start : start + 2000], 0))
        await pipe.execute()


async def dnc_import(count: int, iso: Isolation, audio: Path) -> dict[str, Any]:
    raw = numbers(count, start=1_000_000)
    parse_s, parsed = timed(lambda: [parse_phone(n, "CO", False).e164 for n in raw])
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        zadd_s, _ = await atimed(raw_zadd, redis, f"{iso.redis_prefix}baseline", parsed)
        store = DncList(redis, Keys(iso.redis_prefix + "store:"))
        store_s, stored = await atimed(store.add_many, parsed, "bench")
        assert stored.added == count, stored
        body = "\n".join(["phone_number", *raw]).encode()
        with processes() as started:
            url = start_api(iso, audio, started)
            async with httpx.AsyncClient(base_url=url, timeout=600) as client:
                started_at = time.perf_counter()
                reply = await client.post(
                    "/dnc", content=body, headers={"Content-Type": "text/csv"}
                )
                http_s = time.perf_counter() - started_at
        answer = reply.json()
        assert reply.status_code == 200, reply.text
        assert answer["added"] == count, answer
    finally:
        await redis.aclose()
    baseline = parse_s + zadd_s
    return {
        "numbers": count,
        "csv_bytes": len(body),
        "http_import_s": round(http_s, 3),
        "store_only_s": round(store_s, 3),
        "baseline_parse_s": round(parse_s, 3),
        "baseline_raw_zadd_s": round(zadd_s, 3),
        "http_vs_parse_plus_zadd": round(http_s / baseline, 2),
        "store_vs_raw_zadd": round(store_s / zadd_s, 2),
    }


# 2. Campaign CSV ------------------------------------------------------------------------------
def baseline_rows(data: bytes) -> int:
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=";")
    next(reader)
    return sum(1 for row in reader if parse_phone(row[1], "CO", False))


def campaign(rows: int) -> dict[str, Any]:
    data = campaign_csv(rows)
    rules = RowRules(parse_template(TEMPLATE), region="CO")
    runs = [timed(rows_from_csv, data, rules) for _ in range(5)]
    parse_s = min(seconds for seconds, _ in runs)
    parsed = runs[0][1]
    assert not parsed.errors, parsed.errors[:3]
    assert len(parsed.rows) == rows
    base_s = min(timed(baseline_rows, data)[0] for _ in range(5))
    return {
        "rows": rows,
        "csv_bytes": len(data),
        "rows_from_csv_s": round(parse_s, 3),
        "baseline_csv_reader_plus_parse_phone_s": round(base_s, 3),
        "ratio": round(parse_s / base_s, 2),
    }


# 3. Per-job checks ----------------------------------------------------------------------------
async def per_job(checks: int, iso: Isolation, audio: Path) -> dict[str, Any]:
    settings = load_settings(
        REDIS_URL=REDIS_URL,
        REDIS_PREFIX=iso.redis_prefix + "checks:",
        CALLING_WINDOWS="co-ley-2300",
    )
    redis = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    clock = FixedClock(datetime(2026, 3, 10, 10, 0, tzinfo=BOGOTA))  # a Tuesday
    policy = build_calling_policy(settings, redis, keys_for(settings), clock)
    targets = [parse_phone(n, "CO", False).e164 for n in numbers(checks, start=2_000_000)]
    await policy.dnc.add_many(targets[::50], "bench")  # a few listed, as in real life
    job = JobPolicy()
    open_at = datetime(2026, 3, 10, 10, 0, tzinfo=BOGOTA)
    closed_at = datetime(2026, 3, 15, 10, 0, tzinfo=BOGOTA)  # Sunday
    samples: dict[str, list[float]] = {"baseline": [], "open": [], "closed": [], "window": []}

    def sample(name: str, started: float) -> None:
        samples[name].append(time.perf_counter() - started)

    try:
        await redis.set(f"{iso.redis_prefix}probe", "1")
        # Interleaved, one of each per number, so that the machine's load drifts alike for all.
        for n, (raw, e164) in enumerate(zip(numbers(checks, 2_000_000), targets, strict=True)):
            started = time.perf_counter()
            parse_phone(raw, "CO", False)
            await redis.get(f"{iso.redis_prefix}probe")
            sample("baseline", started)
            clock.set(open_at)
            started = time.perf_counter()
            opened = await policy.check(e164, job, claimant=f"open-{n}:1")
            sample("open", started)
            clock.set(closed_at)
            started = time.perf_counter()
            closed = await policy.check(e164, job, claimant=f"closed-{n}:1")
            sample("closed", started)
            started = time.perf_counter()
            policy.opening(e164, job)  # still Sunday: the next opening, no I/O
            sample("window", started)
            listed = n % 50 == 0
            assert listed or isinstance(opened, Open), opened
            assert listed or isinstance(closed, WaitUntil), closed
    finally:
        await redis.aclose()
    base_us = statistics.median(samples["baseline"]) * 1e6
    summary: dict[str, Any] = {"checks": checks, "baseline_parse_plus_get_us": round(base_us, 1)}
    for label, name in [("open", "open"), ("closed", "closed"), ("window_only_closed", "window")]:
        median_us = statistics.median(samples[name]) * 1e6
        summary[f"{label}_us"] = round(median_us, 1)
        summary[f"{label}_vs_baseline"] = round(median_us / base_us, 2)
    return summary


# 4. Campaign creation through the API ---------------------------------------------------------
async def campaign_http(rows: int, iso: Isolation, audio: Path) -> dict[str, Any]:
    data = campaign_csv(rows)
    calls = [
        {"text": f"Hola Persona {n}, le recordamos su cita.", "phone_number": number}
        for n, number in enumerate(numbers(rows, start=3_000_000))
    ]
    with processes() as started:
        url = start_api(iso, audio, started)
        async with httpx.AsyncClient(base_url=url, timeout=600) as client:
            started_at = time.perf_counter()
            reply = await client.post(
                "/campaigns",
                data={"name": "bench", "template": TEMPLATE, "paused": "true"},
                files={"file": ("bench.csv", data, "text/csv")},
            )
            create_s = time.perf_counter() - started_at
            assert reply.status_code == 201, reply.text[:500]
            assert reply.json()["valid"] == rows
            started_at = time.perf_counter()
            for first in range(0, rows, 1000):
                batch = await client.post("/tts/calls", json={"calls": calls[first : first + 1000]})
                assert batch.status_code == 202, batch.text[:500]
                assert batch.json()["accepted"] == len(calls[first : first + 1000])
            batch_s = time.perf_counter() - started_at
    return {
        "rows": rows,
        "create_campaign_s": round(create_s, 3),
        "baseline_batch_submission_s": round(batch_s, 3),
        "ratio": round(create_s / batch_s, 3),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    # First, while the process is fresh: a heap holding earlier sections' objects slows every
    # garbage collection and would blur a comparison of two CPU-bound loops.
    rows = campaign(args.rows)
    iso = Isolation.new()
    with tempfile.TemporaryDirectory() as tmp:
        audio = Path(tmp)
        try:
            imported = await dnc_import(args.numbers, iso, audio)
            checks = await per_job(args.checks, iso, audio)
            created = await campaign_http(args.rows, iso, audio)
        finally:
            await cleanup(iso)
    return {
        "dnc_import": imported,
        "campaign_csv": rows,
        "per_job_checks": checks,
        "campaign_create": created,
    }


def report(result: dict[str, Any]) -> None:
    imported, rows, checks = result["dnc_import"], result["campaign_csv"], result["per_job_checks"]
    print_table(
        f"Do-not-call import, {imported['numbers']:,} numbers",
        ["path", "seconds", "ratio"],
        [
            ["POST /dnc (text/csv, real API process)", imported["http_import_s"],
             f"{imported['http_vs_parse_plus_zadd']} x (parse + raw ZADD)"],
            ["store alone (DncList.add_many)", imported["store_only_s"],
             f"{imported['store_vs_raw_zadd']} x raw ZADD"],
            ["baseline: parse_phone alone", imported["baseline_parse_s"], ""],
            ["baseline: pipelined raw ZADD", imported["baseline_raw_zadd_s"], ""],
        ],
    )  # fmt: skip
    print_table(
        f"Campaign CSV, {rows['rows']:,} rows",
        ["path", "seconds", "ratio"],
        [
            ["rows_from_csv (read, check, render)", rows["rows_from_csv_s"], f"{rows['ratio']} x"],
            ["baseline: csv.reader + parse_phone", rows["baseline_csv_reader_plus_parse_phone_s"],
             ""],
        ],
    )  # fmt: skip
    print_table(
        f"Checks before dialing, per job (median of {checks['checks']:,}, co-ley-2300)",
        ["check", "microseconds", "x baseline"],
        [
            ["open: DNC + window + cap claim", checks["open_us"], checks["open_vs_baseline"]],
            ["closed: DNC + next opening", checks["closed_us"], checks["closed_vs_baseline"]],
            ["window alone, closed (no I/O)", checks["window_only_closed_us"],
             checks["window_only_closed_vs_baseline"]],
            ["baseline: parse_phone + one Redis GET", checks["baseline_parse_plus_get_us"], 1.0],
        ],
    )  # fmt: skip
    created = result["campaign_create"]
    print_table(
        f"Creating a campaign of {created['rows']:,} rows (real API process)",
        ["path", "seconds", "ratio"],
        [
            ["POST /campaigns (CSV upload)", created["create_campaign_s"], f"{created['ratio']} x"],
            ["baseline: POST /tts/calls, same rows, 1,000 a batch",
             created["baseline_batch_submission_s"], ""],
        ],
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--numbers", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--checks", type=int, default=3_000)
    args = parser.parse_args()
    machine = machine_info()
    result = asyncio.run(run(args))
    report(result)
    path = write_result("bench_policy", {"machine": machine, **result})
    print(f"\nfigures written to {path}")


if __name__ == "__main__":
    main()
