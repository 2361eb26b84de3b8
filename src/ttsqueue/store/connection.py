"""Redis connections: one bounded pool per process, replies decoded, retries on brief outages."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Commands beyond this many in flight wait for a free connection instead of failing.
POOL_SIZE = 64


def connect_redis(url: str, *, client_name: str) -> aioredis.Redis:
    """A client that retries a command a few times across a short Redis blip."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_SIZE,
        timeout=20,
        decode_responses=True,
        client_name=client_name,
        health_check_interval=15,
        socket_connect_timeout=3,
        socket_timeout=10,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    return aioredis.Redis.from_pool(pool)


REDIS_DOWN_ERRORS: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError, OSError)
