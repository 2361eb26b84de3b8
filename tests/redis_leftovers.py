"""A test's keys on the shared Redis, deleted by prefix once nothing of the test runs."""

from __future__ import annotations

import redis


def wipe(redis_url: str, prefix: str) -> None:
    """Delete every key under `prefix`; nothing to do when Redis is down (a test's own
    keys cannot be left on a server that is not there)."""
    client = redis.Redis.from_url(redis_url, socket_timeout=10)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.ConnectionError:
        return
    finally:
        client.close()
