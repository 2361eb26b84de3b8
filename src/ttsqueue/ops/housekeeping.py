"""The verbs `ttsqueue logs` and `ttsqueue clean`."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from aio_pika.exceptions import AMQPError
from rich.console import Console
from rich.markup import escape

from ttsqueue.config import Settings
from ttsqueue.errors import StoreError
from ttsqueue.ops import clean as wipe
from ttsqueue.ops.layout import Layout
from ttsqueue.ops.supervisor import Supervisor

LOG_GROUPS = ("api", "dashboard", "worker")


def log_files(layout: Layout, which: str | None) -> list[Path]:
    """The log files of one group (`worker` means every worker) or of everything."""
    if which not in (None, *LOG_GROUPS):
        raise ValueError(f"unknown log group {which!r}; use one of {', '.join(LOG_GROUPS)}")
    if not layout.log_dir.is_dir():
        return []
    pattern = (
        "*.log" if which is None else ("worker-*.log" if which == "worker" else which + ".log")
    )
    return sorted(layout.log_dir.glob(pattern))


def logs(console: Console, layout: Layout, which: str | None, lines: int, follow: bool) -> int:
    files = log_files(layout, which)
    if not files:
        console.print(f"no {which or ''} logs yet in {escape(str(layout.log_dir))}")
        return 1
    argv = ["tail", "-n", str(lines), *(["-F"] if follow else []), *map(str, files)]
    # tail replaces this process: Ctrl-C stops it directly, like `tail -F` would.
    os.execvp("tail", argv)


def _audio_dir(settings: Settings, layout: Layout) -> Path:
    audio = settings.AUDIO_DIR
    return audio if audio.is_absolute() else layout.root / audio


def clean(console: Console, supervisor: Supervisor, settings: Settings, delete_queues: bool) -> int:
    """Stop everything, then wipe queues, Redis keys, audio and logs; 1 if a step failed."""
    failed = False
    stopped = supervisor.stop()
    console.print(f"stopped {len(stopped.stopped) + len(stopped.killed)} process(es)")
    try:
        removed = asyncio.run(wipe.clear_queues(settings, delete=delete_queues))
        verb = "deleted" if delete_queues else "purged"
        for name, count in removed.items():
            state = "absent" if count is None else f"{verb} ({count} messages)"
            console.print(f"queue {escape(name)}: {state}")
    except (OSError, TimeoutError, AMQPError) as exc:  # reported; the other steps still run
        console.print(f"[red]RabbitMQ: {escape(str(exc) or type(exc).__name__)}[/]")
        failed = True
    try:
        count = asyncio.run(wipe.clear_redis(settings))
        console.print(f"redis: removed {count} keys under {escape(settings.REDIS_PREFIX)}")
    except (OSError, TimeoutError, StoreError) as exc:
        console.print(f"[red]Redis: {escape(str(exc) or type(exc).__name__)}[/]")
        failed = True
    layout = supervisor.layout
    for label, directory in (("audio", _audio_dir(settings, layout)), ("logs", layout.log_dir)):
        if not wipe.is_safe_to_empty(directory, layout.root):
            console.print(f"[red]refusing to empty {escape(str(directory))}[/]")
            failed = True
            continue
        count = wipe.empty_directory(directory)
        console.print(f"{label}: removed {count} entries from {escape(str(directory))}")
    return 1 if failed else 0
