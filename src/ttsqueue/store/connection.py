"""Redis connections: one bounded pool per process, replies decoded, retries on brief outages,
and the store's own errors at its edge.

Whatever redis-py raises leaves the store as one of two errors: `StoreUnavailableError` when
Redis cannot be reached or refuses writes for a while (down, restarting, loading, out of
memory, a read-only replica after a failover), `StoreError` for any other refusal. Callers
never catch redis-py's exceptions.
"""

from __future__ import annotations

from typing import Any, NoReturn

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline, PubSub
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import (
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError

from ttsqueue.errors import StoreError, StoreUnavailableError

# Commands beyond this many in flight wait for a free connection instead of failing.
POOL_SIZE = 64

# Redis is out of reach, or refuses writes for a while: retrying later may work.
_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OutOfMemoryError, ReadOnlyError, OSError)


def _raise_store_error(exc: BaseException) -> NoReturn:
    if isinstance(exc, _UNAVAILABLE):
        raise StoreUnavailableError(f"Redis is unavailable: {exc!r}") from exc
    raise StoreError(f"Redis refused the command: {exc!r}") from exc


def _translated(exc: Exception) -> bool:
    # NOSCRIPT stays redis-py's: its script objects catch it to load the script again.
    return isinstance(exc, (RedisError, OSError)) and not isinstance(exc, NoScriptError)


class StorePipeline(Pipeline):
    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        try:
            return await super().execute(raise_on_error)
        except Exception as exc:
            if _translated(exc):
                _raise_store_error(exc)
            raise


class StorePubSub(PubSub):
    async def execute_command(self, *args: Any) -> Any:
        try:
            return await super().execute_command(*args)
        except Exception as exc:
            if _translated(exc):
                _raise_store_error(exc)
            raise

    async def get_message(
        self, ignore_subscribe_messages: bool = False, timeout: float | None = 0.0
    ) -> Any:
        try:
            return await super().get_message(ignore_subscribe_messages, timeout)
        except Exception as exc:
            if _translated(exc):
                _raise_store_error(exc)
            raise


class StoreClient(aioredis.Redis):
    """A redis-py client whose failures are the store's errors (commands, pipelines, pub/sub)."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        except Exception as exc:
            if _translated(exc):
                _raise_store_error(exc)
            raise

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        return StorePipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)

    def pubsub(self, **kwargs: Any) -> PubSub:
        return StorePubSub(self.connection_pool, event_dispatcher=self._event_dispatcher, **kwargs)


def connect_redis(url: str, *, client_name: str) -> StoreClient:
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
    client = StoreClient.from_pool(pool)
    assert isinstance(client, StoreClient)
    return client
