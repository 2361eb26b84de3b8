"""The client verbs behind `ttsqueue campaign create|status|pause|resume|cancel|results|list`.

Exit codes as the other client verbs: 0 done, 2 refused (bad file or field, no valid row,
wrong state, 401), 3 the API could not be reached.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ttsqueue.ops.calls import EXIT_REQUEST, print_json
from ttsqueue.ops.client import ApiClient, Record

SHOWN_ERRORS = 20
POLL_S = 0.5
FINISHED = frozenset({"completed", "canceled"})


def _row_error(error: dict[str, Any]) -> str:
    where = f"line {error['line']}" if "line" in error else f"row {error.get('index')}"
    return f"  {where} ({error.get('field')}): {error.get('message')}"


def counts_line(campaign: Record) -> str:
    """`completed 12 · failed 1 · pending 30 | answered 12, busy 1 | ETA 40 s`."""
    counts = campaign.get("counts") or {}
    statuses = " · ".join(f"{k} {v}" for k, v in (counts.get("by_status") or {}).items())
    outcomes = ", ".join(f"{k} {v}" for k, v in (counts.get("by_outcome") or {}).items())
    eta = campaign.get("eta_s")
    parts = [statuses or "no rows", outcomes or "no outcome yet"]
    if eta is not None and campaign.get("status") not in FINISHED:
        parts.append(f"ETA {eta:.0f} s")
    return " | ".join(parts)


def show(console: Console, campaign: Record) -> None:
    progress = campaign.get("progress") or {}
    console.print(
        f"[bold]{escape(str(campaign.get('name')))}[/] {campaign.get('campaign_id')} "
        f"[cyan]{campaign.get('status')}[/] {progress.get('done')}/{progress.get('total')} "
        f"({progress.get('percent')}%)"
    )
    console.print(escape(counts_line(campaign)), highlight=False)


def create(
    console: Console,
    err: Console,
    client: ApiClient,
    source: str,
    fields: dict[str, str],
    *,
    wait: bool,
    as_json: bool,
) -> int:
    try:
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        err.print(f"[red]cannot read {escape(source)}: {escape(exc.strerror or str(exc))}[/]")
        return EXIT_REQUEST
    body = client.campaign_create(Path(source).name or "rows.csv", data, fields)
    if as_json and not wait:
        print_json(console, body)
        return 0
    console.print(
        f"{body['valid']} rows accepted, "
        f"[{'red' if body['invalid'] else 'green'}]{body['invalid']} refused[/]"
    )
    errors: list[dict[str, Any]] = body.get("errors") or []
    for error in errors[:SHOWN_ERRORS]:
        console.print(escape(_row_error(error)), highlight=False)
    if len(errors) > SHOWN_ERRORS:
        console.print(f"  ... and {len(errors) - SHOWN_ERRORS} more (--json lists them)")
    campaign = body.get("campaign")
    if campaign is None:  # a dry run
        return 0
    show(console, campaign)
    if wait:
        final = follow(console, client, str(campaign["campaign_id"]))
        if as_json:
            print_json(console, final)
    return 0


def follow(console: Console, client: ApiClient, campaign_id: str) -> Record:
    """A live progress bar until the campaign is completed or canceled."""
    campaign = client.campaign(campaign_id)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[counts]}"),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(
            str(campaign.get("status")),
            total=(campaign.get("progress") or {}).get("total") or 1,
            counts="",
        )
        while True:
            progress = campaign.get("progress") or {}
            bar.update(
                task,
                completed=progress.get("done", 0),
                description=escape(str(campaign.get("status"))),
                counts=escape(counts_line(campaign)),
            )
            if campaign.get("status") in FINISHED:
                break
            time.sleep(POLL_S)
            campaign = client.campaign(campaign_id)
    return campaign


def status(console: Console, client: ApiClient, campaign_id: str | None, as_json: bool) -> int:
    found = (
        [client.campaign(campaign_id)]
        if campaign_id
        else list(client.campaigns().get("campaigns") or [])
    )
    if as_json:
        print_json(console, found[0] if campaign_id else found)
        return 0
    for campaign in found:
        show(console, campaign)
    if not found:
        console.print("no campaign yet")
    return 0


def act(console: Console, client: ApiClient, campaign_id: str, verb: str, as_json: bool) -> int:
    campaign = client.campaign_action(campaign_id, verb)
    if as_json:
        print_json(console, campaign)
    else:
        show(console, campaign)
    return 0


def results(console: Console, client: ApiClient, campaign_id: str, output: str | None) -> int:
    data = client.campaign_results(campaign_id)
    if output is None or output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        Path(output).write_bytes(data)
        console.print(f"results written to {escape(output)}")
    return 0
