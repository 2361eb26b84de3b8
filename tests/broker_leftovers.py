"""Queues and exchanges the tests' own topologies left on the shared RabbitMQ, removed when a
test process ends.

A test that declares its topology through the `broker` fixture deletes it afterwards; one whose
API, worker or dashboard declares it (a live server, a browser test) would leave six queues
behind. Every test's queue prefix is remembered when its settings are made, and at the end of
the process (each xdist worker has its own) the management API lists what is left under those
prefixes and deletes it: no test of this process runs any more, and other processes use other
prefixes.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import httpx

_PREFIXES: set[str] = set()


def remember(queue_prefix: str) -> None:
    _PREFIXES.add(queue_prefix)


def remove_remembered(amqp_url: str) -> int:
    """Delete what is left under the remembered prefixes; how many queues and exchanges.
    Nothing when the management API cannot be reached (the tests' results stand)."""
    if not _PREFIXES:
        return 0
    parts = urlsplit(amqp_url)
    vhost = quote(parts.path.lstrip("/") or "/", safe="")
    auth = (parts.username or "guest", parts.password or "guest")
    removed = 0
    try:
        with httpx.Client(
            base_url=f"http://{parts.hostname or '127.0.0.1'}:15672/api", auth=auth, timeout=10
        ) as api:
            for kind in ("queues", "exchanges"):
                listed = api.get(f"/{kind}/{vhost}", params={"columns": "name"})
                listed.raise_for_status()
                for item in listed.json():
                    name = str(item["name"])
                    if any(name.startswith(prefix) for prefix in _PREFIXES):
                        api.delete(f"/{kind}/{vhost}/{quote(name, safe='')}")
                        removed += 1
    except httpx.HTTPError:
        return removed
    _PREFIXES.clear()
    return removed
