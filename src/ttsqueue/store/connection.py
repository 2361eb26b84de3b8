"""Redis connections: one bounded pool per process, replies decoded, retries on brief outages.

With `REDIS_SENTINELS` set, the client asks the Sentinels for the current master before each
new connection and drops connections to a master that was demoted, so a failover costs a few
retried commands rather than a restart.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ttsqueue.config import Settings

# Commands beyond this many in flight wait for a free connection instead of failing.
POOL_SIZE = 64
# How long one Sentinel may take to answer "who is the master?" before the next is asked.
SENTINEL_TIMEOUT_S = 1.0
# How often a process re-reads the master's address from the Sentinels while it works.
MASTER_CHECK_S = 1.0


def _client_options(client_name: str) -> dict[str, Any]:
    return {
        "decode_responses": True,
        "client_name": client_name,
        "health_check_interval": 15,
        "socket_connect_timeout": 3,
        "socket_timeout": 10,
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
    }


def connect_redis(url: str, *, client_name: str) -> aioredis.Redis:
    """A client that retries a command a few times across a short Redis blip."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=POOL_SIZE, timeout=20, **_client_options(client_name)
    )
    return aioredis.Redis.from_pool(pool)


class BlockingSentinelPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """The Sentinel-backed pool with the blocking pool's bound: callers beyond POOL_SIZE wait
    for a connection instead of failing.

    redis-py asks the Sentinels only when it opens a connection, so pooled connections would
    keep writing to a demoted master that still answers (until Sentinel reconfigures it,
    up to ~10 s, and those writes are then lost). Here the master's address is checked at
    most once a second as connections are taken: when it changed, idle connections to the
    old one are closed and busy ones are not returned to the pool.
    """

    _master_checked = 0.0

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        now = time.monotonic()
        if now - self._master_checked >= MASTER_CHECK_S:
            self._master_checked = now
            with contextlib.suppress(RedisError, OSError):
                await self.get_master_address()  # type: ignore[no-untyped-call]
        return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]


def connect_sentinel_master(
    sentinels: list[tuple[str, int]], master: str, *, url: str, client_name: str
) -> aioredis.Redis:
    """A client of the master the Sentinels name; `url` gives the password and database."""
    parts = urlsplit(url)
    db = parts.path.strip("/")
    auth: dict[str, Any] = {"db": int(db) if db.isdigit() else 0}
    if parts.password is not None:
        auth["password"] = unquote(parts.password)
        if parts.username:
            auth["username"] = unquote(parts.username)
    manager = Sentinel(  # type: ignore[no-untyped-call]
        sentinels,
        sentinel_kwargs={
            "socket_timeout": SENTINEL_TIMEOUT_S,
            "socket_connect_timeout": SENTINEL_TIMEOUT_S,
        },
    )
    client: aioredis.Redis = manager.master_for(
        master,
        redis_class=aioredis.Redis,
        connection_pool_class=BlockingSentinelPool,
        max_connections=POOL_SIZE,
        timeout=20,
        **auth,
        **_client_options(client_name),
    )
    return client


def connect_store(settings: Settings, *, client_name: str) -> aioredis.Redis:
    """The Redis of the settings: through the Sentinels when REDIS_SENTINELS is set, else
    REDIS_URL."""
    if settings.sentinels:
        return connect_sentinel_master(
            settings.sentinels,
            settings.REDIS_SENTINEL_MASTER,
            url=settings.REDIS_URL,
            client_name=client_name,
        )
    return connect_redis(settings.REDIS_URL, client_name=client_name)


REDIS_DOWN_ERRORS: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError, OSError)
