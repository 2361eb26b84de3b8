"""Wipe the product's state: queue contents (or the queues), Redis keys, audio and logs."""

from __future__ import annotations

import contextlib
import re
import shutil
from pathlib import Path

from aio_pika.abc import AbstractConnection
from aio_pika.exceptions import ChannelNotFoundEntity

from ttsqueue.broker.connection import connect_plain
from ttsqueue.broker.topology import QueueNames
from ttsqueue.config import Settings
from ttsqueue.store.factory import connect_store


async def _delete_exchange(connection: AbstractConnection, name: str) -> None:
    channel = await connection.channel()
    try:
        exchange = await channel.declare_exchange(name, passive=True)
    except ChannelNotFoundEntity:
        return
    await exchange.delete(if_unused=False)
    with contextlib.suppress(Exception):
        await channel.close()


async def clear_queues(settings: Settings, *, delete: bool) -> dict[str, int | None]:
    """Purge each queue, or delete the queues and the delay exchanges whatever their arguments.

    Returns queue name -> number of ready messages removed (None: the queue did not exist).
    """
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    removed: dict[str, int | None] = {}
    connection = await connect_plain(settings.RABBITMQ_URL, name="ttsqueue-clean")
    async with connection:
        if delete:
            for exchange in names.exchanges():
                await _delete_exchange(connection, exchange)
        for name in names.queues():
            # A failed passive declare closes its channel, so each queue gets a fresh one.
            channel = await connection.channel()
            try:
                queue = await channel.declare_queue(name, passive=True)
            except ChannelNotFoundEntity:
                removed[name] = None
                continue
            if delete:
                result = await queue.delete(if_unused=False, if_empty=False)
                removed[name] = int(result.message_count or 0)
            else:
                purged = await queue.purge()
                removed[name] = int(purged.message_count or 0) if purged else 0
            with contextlib.suppress(Exception):
                await channel.close()
    return removed


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


async def clear_redis(settings: Settings, *, batch: int = 500) -> int:
    """UNLINK every key under REDIS_PREFIX, found with SCAN (never KEYS); returns the count."""
    client = connect_store(settings, client_name="ttsqueue-clean")
    removed = 0
    pending: list[str] = []
    try:
        pattern = _glob_escape(settings.REDIS_PREFIX) + "*"
        async for key in client.scan_iter(match=pattern, count=1000):
            pending.append(key)
            if len(pending) >= batch:
                removed += await client.unlink(*pending)
                pending.clear()
        if pending:
            removed += await client.unlink(*pending)
    finally:
        await client.aclose()
    return removed


def is_safe_to_empty(directory: Path, root: Path) -> bool:
    """Refuse the filesystem root, the home directory and the checkout or its parents."""
    target = directory.resolve()
    protected = {Path("/"), Path.home().resolve()}
    return (
        len(target.parts) > 2
        and target not in protected
        and target != root.resolve()
        and target not in root.resolve().parents
    )


def empty_directory(directory: Path) -> int:
    """Remove everything inside `directory` (kept itself); returns the number of entries."""
    if not directory.is_dir():
        return 0
    count = 0
    for entry in directory.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)
        count += 1
    return count
