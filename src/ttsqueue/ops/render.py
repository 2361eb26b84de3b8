"""Rich tables and lines for the operator commands (presentation only, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from rich.markup import escape
from rich.table import Table

from ttsqueue.ops.supervisor import ProcessInfo

STATUS_STYLES = {
    "completed": "green",
    "failed": "red",
    "canceled": "yellow",
    "retrying": "yellow",
    "calling": "cyan",
    "processing": "blue",
}


def _e(value: object) -> str:
    return escape(str(value))


def format_uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def processes_table(infos: Iterable[ProcessInfo]) -> Table:
    table = Table(title="Processes")
    for column in ("name", "pid", "alive", "uptime", "log"):
        table.add_column(column)
    for info in infos:
        alive = "[green]yes[/]" if info.alive else "[red]no (exited; see its log)[/]"
        table.add_row(info.name, str(info.pid), alive, format_uptime(info.uptime), _e(info.log))
    return table


def health_line(code: int, body: Mapping[str, Any]) -> str:
    style = "green" if code == 200 else "red"
    links = body.get("connections") or {}
    parts = ", ".join(f"{_e(name)}={_e(state)}" for name, state in links.items())
    return f"[{style}]{_e(body.get('status', 'unknown'))}[/] (HTTP {code}) {parts}"


def queues_table(stats: Mapping[str, Any]) -> Table:
    table = Table(title="Queues (ready messages)")
    queues = stats.get("queues") or {}
    for name in queues:
        table.add_column(_e(name), justify="right")
    table.add_row(*(str(count) for count in queues.values()))
    return table


def workers_table(stats: Mapping[str, Any]) -> Table:
    workers = stats.get("workers") or {}
    table = Table(
        title=f"Workers: {workers.get('total', 0)} total, {workers.get('active', 0)} active, "
        f"{workers.get('idle', 0)} idle"
    )
    for column in ("worker_id", "status", "current_jobs", "processed", "failed", "heartbeat"):
        table.add_column(column)
    for worker in workers.get("list") or []:
        table.add_row(
            _e(worker.get("worker_id", "")),
            _e(worker.get("status", "")),
            _e(",".join(worker.get("current_jobs") or []) or "-"),
            _e(worker.get("processed", 0)),
            _e(worker.get("failed", 0)),
            _e(worker.get("last_heartbeat", "")),
        )
    return table


def jobs_line(stats: Mapping[str, Any]) -> str:
    jobs = stats.get("jobs") or {}
    by_status = jobs.get("by_status") or {}
    counts = ", ".join(f"{_e(name)}={_e(count)}" for name, count in by_status.items() if count)
    line = f"jobs: {jobs.get('total', 0)} total" + (f" ({counts})" if counts else "")
    calls = stats.get("calls") or {}
    by_outcome = calls.get("by_outcome") or {}
    outcomes = ", ".join(f"{_e(name)}={_e(n)}" for name, n in sorted(by_outcome.items()) if n)
    line += f"\ncalls by outcome: {outcomes}" if outcomes else ""
    servers = ", ".join(
        f"{_e(s.get('name', ''))} {_e(s.get('state', ''))} {_e(s.get('active', 0))}/"
        f"{_e(s.get('limit', 0))}"
        for s in calls.get("servers") or []
    )
    line += f"\nasterisk servers (live/limit): {servers}" if servers else ""
    waiting = calls.get("waiting") or {}
    if waiting.get("high") or waiting.get("normal"):
        line += (
            f"\nwaiting for a line: high={_e(waiting.get('high', 0))}, "
            f"normal={_e(waiting.get('normal', 0))}"
        )
    return line


def _clock(at: object) -> str:
    """The time of day of an ISO-8601 timestamp (UTC, as the API gives it)."""
    try:
        return datetime.fromisoformat(str(at)).strftime("%H:%M:%S")
    except ValueError:
        return str(at)


def _job_facts(record: Mapping[str, Any]) -> str:
    """Worker, call outcome and error of a job, as ` key=value` pairs."""
    facts = ""
    if record.get("worker_id"):
        facts += f" worker={_e(record['worker_id'])}"
    call = record.get("call") or {}
    if call.get("outcome"):
        facts += f" outcome={_e(call['outcome'])}"
        if call.get("simulated"):
            facts += " (simulated)"
    if call.get("dtmf"):
        facts += f" keys={_e(call['dtmf'])}"
    if call.get("confirmed") is not None:
        facts += f" confirmed={'yes' if call['confirmed'] else 'no'}"
    amd = call.get("amd") or {}
    if amd.get("status"):
        facts += f" amd={_e(amd['status'])}"
        if amd.get("detect_ms") is not None:
            facts += f"/{_e(amd['detect_ms'])}ms"
    if record.get("error"):
        facts += f" error={_e(record['error'])}"
    return facts


def step_line(step: Mapping[str, Any], record: Mapping[str, Any] | None = None) -> str:
    """One line per state a job went through: status, time and detail; with `record` (the
    job at its end) also its worker, call outcome and error."""
    status = str(step.get("status", "?"))
    line = f"[{STATUS_STYLES.get(status, 'white')}]{_e(status)}[/]"
    if step.get("at"):
        line += f" {_e(_clock(step['at']))}"
    if step.get("detail"):
        line += f" {_e(step['detail'])}"
    return line + (_job_facts(record) if record is not None else "")


# (header, width) of each column of `ttsqueue jobs`; a negative width aligns right.
JOB_COLUMNS = (
    ("job_id", 36),
    ("status", 10),
    ("priority", 8),
    ("number", 15),
    ("attempts", -8),
    ("outcome", 10),
    ("created_at", 0),
)


def _cells(values: Iterable[object]) -> list[str]:
    cells = []
    for value, (_, width) in zip(values, JOB_COLUMNS, strict=True):
        text = str(value)
        cells.append(text.rjust(-width) if width < 0 else text.ljust(width))
    return cells


def jobs_lines(jobs: Iterable[Mapping[str, Any]]) -> list[str]:
    """A page of `GET /tts/jobs`, newest first: a header, then one line per job, whole
    (never squeezed to the terminal's width: ids are there to be copied, columns to be cut)."""
    lines = ["  ".join(_cells(name for name, _ in JOB_COLUMNS)).rstrip()]
    for job in jobs:
        status = str(job.get("status", ""))
        cells = [
            _e(cell)
            for cell in _cells(
                (
                    job.get("job_id", ""),
                    status,
                    job.get("priority", ""),
                    job.get("phone_number", ""),
                    job.get("attempts", 0),
                    job.get("outcome") or "-",
                    job.get("created_at", ""),
                )
            )
        ]
        cells[1] = f"[{STATUS_STYLES.get(status, 'white')}]{cells[1]}[/]"
        lines.append("  ".join(cells).rstrip())
    return lines


def job_table(record: Mapping[str, Any]) -> Table:
    table = Table(title=f"Job {_e(record.get('job_id', ''))}", show_header=False)
    table.add_column("field")
    table.add_column("value")
    for name in ("status", "phone_number", "priority", "language", "engine", "attempts"):
        table.add_row(name, _e(record.get(name, "")))
    for name in ("created_at", "processed_at", "completed_at", "worker_id", "error"):
        table.add_row(name, _e(record.get(name) or ""))
    call = record.get("call") or {}
    if call:
        table.add_row("call", _e(", ".join(f"{k}={v}" for k, v in call.items() if v is not None)))
    for step in record.get("history") or []:
        table.add_row("history", _e(f"{step.get('at', '')} {step.get('status', '')}"))
    return table


def config_table(rows: Iterable[tuple[str, str]]) -> Table:
    table = Table(title="Effective configuration")
    table.add_column("variable")
    table.add_column("value")
    for name, value in rows:
        table.add_row(name, _e(value))
    return table
