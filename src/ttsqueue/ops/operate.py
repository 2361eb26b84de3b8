"""The process verbs behind `ttsqueue start|stop|scale|status`: supervisor calls plus reporting.

Each function prints to the given console and returns the command's exit code.
"""

from __future__ import annotations

import json
import time

from rich.console import Console
from rich.markup import escape

from ttsqueue.addresses import api_base_url, api_key, dashboard_url
from ttsqueue.config import Settings
from ttsqueue.ops import render
from ttsqueue.ops.client import (
    ApiClient,
    ApiClientError,
    Record,
    port_in_use,
    wait_for_health,
)
from ttsqueue.ops.processes import tail_lines
from ttsqueue.ops.supervisor import ProcessInfo, StopResult, Supervisor, dashboard_available

# A process that survives this long after start is considered to have started well.
SETTLE_SECONDS = 2.0


def _report_dead(console: Console, supervisor: Supervisor, names: list[str]) -> bool:
    """Print the log tail of each named process that is no longer running."""
    dead = [name for name in names if supervisor.pid_of(name) is None]
    for name in dead:
        log = supervisor.layout.log_file(name)
        console.print(f"[red]{name} exited right after start[/]; last lines of {log}:")
        for line in tail_lines(log, 15):
            console.print(f"  {line}", markup=False, highlight=False)
    return bool(dead)


def drift_line(console: Console, supervisor: Supervisor) -> None:
    """One line when the caller's settings differ from the recorded ones (names, never values)."""
    names = supervisor.drift()
    if names:
        console.print(
            "[yellow]note:[/] your environment differs from the configuration recorded at start "
            f"({', '.join(names)}); processes use the recorded one. To change it: "
            "./manage.sh restart (or stop, then start)",
            highlight=False,
        )


def start(
    console: Console, supervisor: Supervisor, settings: Settings, workers: int, timeout: float
) -> int:
    if supervisor.pid_of("api") is None and port_in_use(settings.API_HOST, settings.API_PORT):
        console.print(
            f"[red]port {settings.API_PORT} is already in use by another program[/]; "
            "stop it or set API_PORT"
        )
        return 1
    began = time.monotonic()
    result = supervisor.start(workers, dashboard=dashboard_available())
    for name, (pid, started) in result.items():
        state = "[green]started[/]" if started else "already running"
        console.print(f"{name:<10} pid {pid:<8} {state}")
    drift_line(console, supervisor)
    base_url = api_base_url(settings)
    with ApiClient(base_url, key=api_key(settings)) as client:
        health = wait_for_health(
            client, timeout=timeout, alive=lambda: supervisor.pid_of("api") is not None
        )
    time.sleep(max(0.0, SETTLE_SECONDS - (time.monotonic() - began)))
    failed = _report_dead(console, supervisor, [n for n, (_, new) in result.items() if new])
    if health is None:
        if not failed:
            console.print(f"[red]the API did not answer at {base_url}/health within {timeout}s[/]")
        return 1
    console.print("health:", render.health_line(*health))
    console.print(f"API        {base_url}")
    console.print(f"API docs   {base_url}/docs")
    if "dashboard" in result:
        console.print(f"Dashboard  {dashboard_url(settings)}")
    return 1 if failed else 0


def _print_stop(console: Console, result: StopResult) -> None:
    for name in result.stopped:
        console.print(f"{name:<10} stopped")
    for name in result.killed:
        console.print(f"{name:<10} [yellow]killed (did not exit in time)[/]")


def stop(console: Console, supervisor: Supervisor, timeout: float) -> int:
    result = supervisor.stop(timeout=timeout)
    if not result.stopped and not result.killed:
        console.print("nothing is running")
    _print_stop(console, result)
    return 0


def restart(
    console: Console, supervisor: Supervisor, settings: Settings, workers: int, timeout: float
) -> int:
    """Stop everything, then start with the caller's configuration (recorded anew)."""
    _print_stop(console, supervisor.stop(timeout=timeout))
    return start(console, supervisor, settings, workers, timeout)


def scale(console: Console, supervisor: Supervisor, target: int, timeout: float) -> int:
    drift_line(console, supervisor)
    started, stopped = supervisor.scale(target, timeout=timeout)
    for name in started:
        console.print(f"{name:<10} [green]started[/]")
    _print_stop(console, stopped)
    if started:
        time.sleep(SETTLE_SECONDS)
    failed = _report_dead(console, supervisor, started)
    console.print(f"workers running: {len(supervisor.live_workers())}")
    return 1 if failed else 0


def _process_rows(survey: list[ProcessInfo]) -> list[dict[str, object]]:
    return [
        {
            "name": info.name,
            "pid": info.pid,
            "alive": info.alive,
            "uptime_s": None if info.uptime is None else round(info.uptime, 1),
            "log": str(info.log),
        }
        for info in survey
    ]


def status(console: Console, supervisor: Supervisor, client: ApiClient, as_json: bool) -> int:
    """Processes, health, queues and workers. Exit 0 when the API answers healthy and every
    process with a PID file is alive; 1 otherwise, the API not answering included."""
    survey = supervisor.survey()
    code: int | None = None
    body: Record = {}
    stats: Record = {}
    error = None
    try:
        code, body = client.health()
        stats = client.stats().get("statistics") or {}
    except ApiClientError as exc:
        error = str(exc)
    ok = error is None and code == 200 and all(info.alive for info in survey)
    if as_json:
        report = {
            "success": ok,
            "api_url": client.base_url,
            "processes": _process_rows(survey),
            "health": None if code is None else {"http_status": code, **body},
            "statistics": stats or None,
            "error": error,
        }
        console.out(json.dumps(report, ensure_ascii=False, indent=2), highlight=False)
        return 0 if ok else 1
    if survey:
        console.print(render.processes_table(survey))
    else:
        console.print(f"no processes running (state in {supervisor.layout.var_dir})")
    if code is not None:
        console.print("health:", render.health_line(code, body))
    if error is not None:
        console.print(f"[red]{escape(error)}[/]")
        return 1
    console.print(render.queues_table(stats))
    console.print(render.workers_table(stats))
    console.print(render.jobs_line(stats))
    return 0 if ok else 1
