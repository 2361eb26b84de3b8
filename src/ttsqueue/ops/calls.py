"""The client verbs behind `ttsqueue call|test|status JOB_ID|stats|jobs`.

Exit codes: 0 success (a waited-for call `completed`), 1 the call failed, was canceled or did
not finish in time, 2 the API refused the request (or the command line was wrong), 3 the API
could not be reached.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape

from ttsqueue.ops import render
from ttsqueue.ops.client import (
    TERMINAL,
    ApiClient,
    ApiConnectionError,
    ApiRequestError,
    Record,
    follow_job,
)

TEST_TEXT = (
    "Hola, esta es una llamada de prueba del sistema de mensajes de voz. "
    "Si escucha este mensaje, todo funciona correctamente."
)
TEST_NUMBER = "3005050149"
EXIT_FAILED, EXIT_REQUEST, EXIT_CONNECTION = 1, 2, 3


def guarded(err: Console, action: Callable[[], int]) -> int:
    """Run a client action, turning API errors into a red message and their exit code."""
    try:
        return action()
    except ApiRequestError as exc:
        err.print(f"[red]request refused: {escape(str(exc))}[/]")
        return EXIT_REQUEST
    except ApiConnectionError as exc:
        err.print(f"[red]{escape(str(exc))}[/]")
        return EXIT_CONNECTION


def print_json(console: Console, data: Any) -> None:
    console.out(json.dumps(data, ensure_ascii=False, indent=2), highlight=False)


def follow(console: Console, client: ApiClient, job_id: str, timeout: float) -> Record:
    """Print every state the job goes through until it is terminal, with a live spinner."""
    with console.status("waiting for a worker...") as spinner:

        def on_step(step: Record, record: Record) -> None:
            # The job's worker, outcome and error go on the line of its final state.
            history = record.get("history") or [step]
            final = step is history[-1] and record.get("status") in TERMINAL
            console.print(render.step_line(step, record if final else None))
            spinner.update(f"{escape(str(record.get('status')))}...")

        return follow_job(client, job_id, timeout=timeout, on_step=on_step)


def outcome_code(console: Console, record: Record, timeout: float) -> int:
    status = record.get("status")
    if status == "completed":
        return 0
    if status not in TERMINAL:
        console.print(f"[yellow]still {escape(str(status))} after {timeout:.0f}s[/]")
    return EXIT_FAILED


def place_call(
    console: Console,
    client: ApiClient,
    *,
    text: str,
    number: str,
    priority: str,
    language: str | None,
    wait: bool,
    as_json: bool,
    timeout: float,
    max_retries: int | None = None,
    extra: Record | None = None,
) -> int:
    accepted = client.submit_call(
        text, number, priority=priority, language=language, max_retries=max_retries, extra=extra
    )
    job_id = str(accepted.get("job_id", ""))
    if not wait:
        if as_json:
            print_json(console, accepted)
        else:
            console.print(f"job {escape(job_id)} {escape(str(accepted.get('status')))}")
        return 0
    if as_json:
        record = follow_job(client, job_id, timeout=timeout, on_step=lambda *_: None)
        print_json(console, record)
        return 0 if record.get("status") == "completed" else EXIT_FAILED
    console.print(f"job {escape(job_id)} accepted (queue {escape(str(accepted.get('queue')))})")
    record = follow(console, client, job_id, timeout)
    return outcome_code(console, record, timeout)


def run_test_call(console: Console, client: ApiClient, timeout: float) -> int:
    console.print(f"test call to {TEST_NUMBER} through {client.base_url}")
    return place_call(
        console,
        client,
        text=TEST_TEXT,
        number=TEST_NUMBER,
        priority="normal",
        language="es",
        wait=True,
        as_json=False,
        timeout=timeout,
    )


def job_status(console: Console, client: ApiClient, job_id: str, as_json: bool) -> int:
    record = client.job(job_id)
    if as_json:
        print_json(console, record)
    else:
        console.print(render.job_table(record))
    return 0


def stats(console: Console, client: ApiClient, as_json: bool) -> int:
    body = client.stats()
    if as_json:
        print_json(console, body)
        return 0
    statistics = body.get("statistics") or {}
    console.print(render.queues_table(statistics))
    console.print(render.workers_table(statistics))
    console.print(render.jobs_line(statistics))
    return 0


def jobs(
    console: Console,
    client: ApiClient,
    *,
    status: str | None,
    priority: str | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> int:
    """One page of recent jobs; the command for the next page is printed under it."""
    body = client.jobs(status=status, priority=priority, limit=limit, cursor=cursor)
    if as_json:
        print_json(console, body)
        return 0
    listed = body.get("jobs") or []
    if not listed:
        console.print("no jobs" + (" on this page" if cursor is not None else ""))
        return 0
    for line in render.jobs_lines(listed):
        console.print(line, highlight=False)
    next_cursor = body.get("next_cursor")
    if next_cursor is not None:
        filters = {"--status": status, "--priority": priority, "--limit": limit}
        again = "".join(f" {flag} {value}" for flag, value in filters.items() if value)
        hint = f"more: ttsqueue jobs{again} --cursor {next_cursor}"
        console.print(escape(hint), highlight=False)
    return 0
