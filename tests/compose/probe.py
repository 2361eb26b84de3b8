"""What scripts/compose-ci.sh checks in the running Compose stack, from the host, over the
published ports, as a client and an operator would.

    probe.py --api URL --dashboard URL --api-key KEY --dashboard-auth USER:PASS calls --workers N
    probe.py ... surfaces

`no-trunk`: the stack as shipped, without a trunk: a call reaches Asterisk through the shared
spool and ends at once (Asterisk has no route for it) instead of waiting in `calling`.
`calls`: waits for N live workers and a connected Asterisk, places calls through the API (fake
phones that answer, and one that is busy) and waits for each to end as Asterisk said.
`surfaces`: /health, /metrics, the dashboard (page, snapshot, recent jobs) and the API docs.
Exit status 0 when everything holds, 1 with the reason otherwise.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
TERMINAL = {"completed", "failed", "canceled"}
# Generous: the machine running CI may be loaded; nothing here measures speed.
WAIT_S = 240.0
ANSWERS = "30050{:05d}"  # fake phones that answer (tests/compose/images/asterisk)
BUSY = "3005550001"
# Far below CALL_MAX_DURATION (600 s), the wait a call file nobody reads would cause.
NO_TRUNK_S = 120.0


class ProbeError(Exception):
    pass


def wait_for(what: str, attempt: Callable[[], T | None], timeout: float = WAIT_S) -> T:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            found = attempt()
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            found, last = None, exc
        if found is not None:
            return found
        time.sleep(1.0)
    raise ProbeError(f"timed out waiting for {what}" + (f" (last error: {last!r})" if last else ""))


def series(text: str, name: str, labels: str = "") -> float | None:
    """The value of one sample in a Prometheus text scrape (labels: exact `k="v",...`)."""
    pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "") + r" (\S+)"
    found = re.search("^" + pattern + "$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


class Stack:
    def __init__(self, args: argparse.Namespace) -> None:
        self.api = httpx.Client(
            base_url=args.api, headers={"X-API-Key": args.api_key}, timeout=20.0
        )
        user, _, password = args.dashboard_auth.partition(":")
        self.dashboard = httpx.Client(base_url=args.dashboard, auth=(user, password), timeout=20.0)

    def metrics(self) -> str:
        reply = self.api.get("/metrics")
        reply.raise_for_status()
        return reply.text

    def health(self) -> dict[str, Any]:
        reply = self.api.get("/health")
        body: dict[str, Any] = reply.json()
        return body

    def submit(self, number: str, text: str) -> str:
        body = {"text": text, "phone_number": number, "max_retries": 0, "language": "es"}
        reply = self.api.post("/tts/call", json=body)
        if reply.status_code != 202:
            raise ProbeError(f"POST /tts/call answered {reply.status_code}: {reply.text}")
        return str(reply.json()["job_id"])

    def job(self, job_id: str) -> dict[str, Any]:
        reply = self.api.get(f"/tts/status/{job_id}")
        reply.raise_for_status()
        body: dict[str, Any] = reply.json()
        return body


def ready(stack: Stack, workers: int) -> None:
    def alive() -> bool | None:
        return series(stack.metrics(), "ttsq_workers_alive") == workers or None

    wait_for(f"{workers} live worker(s) in /metrics", alive)

    def connected() -> dict[str, Any] | None:
        body = stack.health()
        return body if body["connections"]["asterisk"] == "connected" else None

    health = wait_for("/health to report Asterisk connected", connected)
    if health["dialer"] != "callfile" or health["status"] != "healthy":
        raise ProbeError(f"/health: {health}")


def finished(stack: Stack, job_id: str, timeout: float = WAIT_S) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        record = stack.job(job_id)
        return record if record["status"] in TERMINAL else None

    return wait_for(f"job {job_id} to end", done, timeout)


def check_answered(record: dict[str, Any]) -> None:
    call = record.get("call") or {}
    got = (record["status"], call.get("outcome"), call.get("backend"), call.get("simulated"))
    if got != ("completed", "answered", "callfile", False):
        raise ProbeError(f"job {record['job_id']} did not complete through Asterisk: {record}")


def no_trunk(stack: Stack) -> None:
    ready(stack, 1)
    began = time.monotonic()
    job_id = stack.submit("3005050149", "Sin troncal, esta llamada no puede salir.")
    record = finished(stack, job_id, timeout=NO_TRUNK_S)
    call = record.get("call") or {}
    if (record["status"], call.get("backend"), call.get("simulated")) != (
        "failed",
        "callfile",
        False,
    ):
        raise ProbeError(f"without a trunk the call should fail through Asterisk: {record}")
    print(
        f"probe: without a trunk the call ended in {time.monotonic() - began:.0f} s "
        f"({call.get('outcome')}, {call.get('reason')})"
    )


def calls(stack: Stack, workers: int, count: int, busy: bool) -> None:
    ready(stack, workers)
    run = uuid.uuid4().int % 10_000
    answered = [
        stack.submit(ANSWERS.format(run * 10 + i), f"Aviso de prueba número {i}, lote {run}.")
        for i in range(count)
    ]
    busy_job = stack.submit(BUSY, "Nadie contesta esta llamada.") if busy else None
    for job_id in answered:
        check_answered(finished(stack, job_id))
    if busy_job is not None:
        record = finished(stack, busy_job)
        call = record.get("call") or {}
        if record["status"] != "failed" or call.get("outcome") == "answered":
            raise ProbeError(f"the busy fake phone did not fail the call: {record}")
    print(f"probe: {count} call(s) completed through Asterisk with {workers} worker(s)")


def surfaces(stack: Stack, api_url: str) -> None:
    health = stack.health()
    if health["status"] != "healthy":
        raise ProbeError(f"/health: {health}")
    scrape = stack.metrics()
    checks = {
        "broker up": series(scrape, "ttsq_broker_up") == 1,
        "jobs answered": (
            series(scrape, "ttsq_jobs_finished_total", 'outcome="answered",status="completed"') or 0
        )
        >= 1,
        "queue depth": series(scrape, "ttsq_queue_depth", 'queue="normal"') is not None,
        "workers": (series(scrape, "ttsq_workers_alive") or 0) >= 1,
    }
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        raise ProbeError(f"/metrics lacks {failed}:\n{scrape}")
    page = stack.dashboard.get("/")
    if page.status_code != 200 or "chart.umd.min.js" not in page.text:
        raise ProbeError(f"dashboard page answered {page.status_code}")
    if stack.dashboard.get("/", auth=None).status_code != 401:
        raise ProbeError("the dashboard answered without credentials")
    snapshot = stack.dashboard.get("/api/snapshot").json()
    if snapshot["health"] != {"redis": "up", "rabbitmq": "up"} or snapshot["dialer"] != {
        "name": "callfile",
        "simulated": False,
    }:
        raise ProbeError(f"dashboard snapshot: {snapshot}")
    if not snapshot["management"]["available"]:
        raise ProbeError("the dashboard cannot read the RabbitMQ management API")
    recent = stack.dashboard.get("/api/jobs").json()
    if not any(row.get("status") == "completed" for row in recent.get("jobs", [])):
        raise ProbeError(f"no completed job among the dashboard's recent jobs: {recent}")
    check_docs(api_url)
    print("probe: /health, /metrics, the dashboard and the API docs answer as expected")


def check_docs(api_url: str) -> None:
    """The docs pages load their assets from this server only (no CDN: offline operators)."""
    for path in ("/docs", "/redoc"):
        page = httpx.get(api_url + path, timeout=20.0)
        if page.status_code != 200:
            raise ProbeError(f"{path} answered {page.status_code}")
        for url in re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text):
            if url.startswith(("http://", "https://", "//")):
                raise ProbeError(f"{path} loads {url} from another server")
            if httpx.get(api_url + url, timeout=20.0).status_code != 200:
                raise ProbeError(f"{path}: {url} does not load")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", required=True)
    parser.add_argument("--dashboard", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--dashboard-auth", required=True)
    sub = parser.add_subparsers(dest="command", required=True)
    place = sub.add_parser("calls")
    place.add_argument("--workers", type=int, required=True)
    place.add_argument("--count", type=int, default=2)
    place.add_argument("--no-busy", action="store_true")
    sub.add_parser("no-trunk")
    sub.add_parser("surfaces")
    args = parser.parse_args(argv)
    stack = Stack(args)
    try:
        if args.command == "calls":
            calls(stack, args.workers, args.count, busy=not args.no_busy)
        elif args.command == "no-trunk":
            no_trunk(stack)
        else:
            surfaces(stack, args.api)
    except (ProbeError, httpx.HTTPError) as exc:
        print(f"probe failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
