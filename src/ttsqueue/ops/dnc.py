"""The client verbs behind `ttsqueue dnc add|remove|import|list` (the do-not-call list).

Exit codes as the other client verbs: 0 done, 2 refused (invalid number, not listed, no valid
number in a file, 401), 3 the API could not be reached.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from ttsqueue.ops.calls import EXIT_REQUEST, print_json
from ttsqueue.ops.client import ApiClient, Record

# Per-line problems printed after an import (all of them are in --json).
SHOWN_PROBLEMS = 20


def add(console: Console, client: ApiClient, number: str, as_json: bool) -> int:
    body = client.dnc_add(number)
    if as_json:
        print_json(console, body)
    elif body.get("created"):
        console.print(f"{escape(str(body['phone_number']))} [green]listed[/]")
    else:
        since = escape(str(body.get("added_at")))
        console.print(f"{escape(str(body['phone_number']))} was already listed (since {since})")
    return 0


def remove(console: Console, client: ApiClient, number: str, as_json: bool) -> int:
    body = client.dnc_remove(number)
    if as_json:
        print_json(console, body)
    else:
        console.print(f"{escape(str(body['phone_number']))} [yellow]unlisted[/]")
    return 0


def _read(source: str) -> tuple[bytes, str]:
    """A file's bytes (`-`: standard input) and the media type to send them as."""
    data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    is_json = source.lower().endswith(".json") or data.lstrip()[:1] == b"{"
    return data, "application/json" if is_json else "text/csv"


def _problem_line(problem: dict[str, Any]) -> str:
    where = f"line {problem['line']}" if "line" in problem else f"item {problem.get('index')}"
    value = f" ({problem['value']!r})" if problem.get("value") else ""
    return f"  {where}{value}: {problem.get('message')}"


def import_file(
    console: Console, err: Console, client: ApiClient, source: str, as_json: bool
) -> int:
    try:
        data, media_type = _read(source)
    except OSError as exc:
        err.print(f"[red]cannot read {escape(source)}: {escape(exc.strerror or str(exc))}[/]")
        return EXIT_REQUEST
    body = client.dnc_import(data, media_type)
    if as_json:
        print_json(console, body)
        return 0
    console.print(
        f"{body['valid']} valid of {body['received']}: [green]{body['added']} listed[/], "
        f"{body['already_listed']} already listed, {body['duplicates']} repeated, "
        f"[{'red' if body['invalid'] else 'green'}]{body['invalid']} invalid[/]"
    )
    problems: list[dict[str, Any]] = body.get("errors") or []
    for problem in problems[:SHOWN_PROBLEMS]:
        console.print(escape(_problem_line(problem)), highlight=False)
    if body["invalid"] > SHOWN_PROBLEMS:
        console.print(f"  ... and {body['invalid'] - SHOWN_PROBLEMS} more (--json lists them)")
    return 0


def _page_lines(page: Record) -> list[str]:
    lines = []
    for entry in page.get("numbers") or []:
        cells = (
            entry.get("phone_number"),
            entry.get("added_at"),
            entry.get("added_by"),
            entry.get("via"),
        )
        lines.append(
            "  ".join(
                str(cell or "-").ljust(width)
                for cell, width in zip(cells, (16, 25, 17, 6), strict=True)
            ).rstrip()
        )
    return lines


def listing(
    console: Console,
    client: ApiClient,
    *,
    limit: int,
    cursor: str | None,
    every: bool,
    as_json: bool,
) -> int:
    """One page (or every page with `every`), in number order."""
    while True:
        page = client.dnc_list(limit=limit, cursor=cursor)
        if as_json:
            print_json(console, page)
        else:
            for line in _page_lines(page):
                console.print(escape(line), highlight=False)
        cursor = page.get("next_cursor")
        if cursor is None or not every:
            break
    if not as_json:
        shown = "" if every or cursor is None else f"; more: ttsqueue dnc list --cursor {cursor}"
        console.print(escape(f"{page.get('total', 0)} numbers on the list{shown}"), highlight=False)
    return 0
