"""Redis connections: one bounded pool per process, replies decoded, retries on brief outages,
and the store's own errors at its edge.

Whatever redis-py raises leaves the store as one of two errors: `StoreUnavailableError` when
Redis cannot be reached or refuses writes for a while (down, restarting, loading, out of
memory, a read-only replica after a failover), `StoreError` for any other refusal. Callers
never catch redis-py's exceptions.

With `REDIS_SENTINELS` set, the client asks the Sentinels for the current master before each
new connection and drops connections to a master that was demoted, so a failover costs a few
retried commands rather than a restart (store/factory.py chooses which client a process gets).
Writes that may still have reached the old master meanwhile are caught by store/fence.py.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, NoReturn
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline, PubSub
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import (
    MaxConnectionsError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError

from ttsqueue.errors import StoreError, StoreUnavailableError
from ttsqueue.store.batching import BATCHED, ScriptBatcher
from ttsqueue.store.packing import pack_with_hiredis

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


# Redis is out of reach, or refuses writes for a while: retrying later may work.
_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OutOfMemoryError, ReadOnlyError, OSError)


def _store_error(exc: BaseException) -> StoreError:
    error: StoreError
    if isinstance(exc, _UNAVAILABLE):
        error = StoreUnavailableError(f"Redis is unavailable: {exc!r}")
    else:
        error = StoreError(f"Redis refused the command: {exc!r}")
    error.__cause__ = exc
    return error


def _raise_store_error(exc: BaseException) -> NoReturn:
    raise _store_error(exc)


def _translated(exc: BaseException) -> bool:
    # NOSCRIPT stays redis-py's: its script objects catch it to load the script again.
    return isinstance(exc, (RedisError, OSError)) and not isinstance(exc, NoScriptError)


def _as_store_error(exc: BaseException) -> BaseException:
    return _store_error(exc) if _translated(exc) else exc


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
    """A redis-py client whose failures are the store's errors (commands, pipelines, pub/sub),
    and whose script calls made in one turn of the event loop share a write (store/batching.py)."""

    _batcher: ScriptBatcher | None = None

    @property
    def batcher(self) -> ScriptBatcher:
        if self._batcher is None:
            self._batcher = ScriptBatcher(self, _as_store_error)
        return self._batcher

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if args[0] in BATCHED and self.connection is None:
            return await self.batcher.call(args, options)
        try:
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        except Exception as exc:
            if _translated(exc):
                _raise_store_error(exc)
            raise

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        return StorePipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        if self._batcher is not None:
            await self._batcher.aclose()
        pool = self.connection_pool
        closing_pool = close_connection_pool or (
            close_connection_pool is None and self.auto_close_connection_pool
        )
        if closing_pool and isinstance(pool, BoundedPool):
            pool.closed = True
        await super().aclose(close_connection_pool)

    def pubsub(self, **kwargs: Any) -> PubSub:
        return StorePubSub(self.connection_pool, event_dispatcher=self._event_dispatcher, **kwargs)


class SentinelStoreClient(StoreClient):
    """A `StoreClient` of the master the Sentinels name; closing it also closes its
    connections to the Sentinels."""

    sentinels: tuple[aioredis.Redis, ...] = ()
    master_name = ""
    # Sentinels (by id) that did not answer the fence, and until when they are not asked.
    sentinel_quiet: dict[int, float]

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        try:
            await super().aclose(close_connection_pool)
        finally:
            for sentinel in self.sentinels:
                await sentinel.aclose()


class BoundedPool(aioredis.BlockingConnectionPool):
    """redis-py's blocking pool (callers beyond POOL_SIZE wait for a connection instead of
    failing) without the cost of the wait when a connection is free: the blocking path takes a
    condition and arms a timeout for every command: a fifth of the client's CPU per command
    (`benchmarks/bench_redis_pool.py`). Callers that find one free take it, as they do
    in the blocking path (its condition checks for a free connection before it waits)."""

    # Set when its client is closed: a task still running then (an audit write, a confirm)
    # gets the store's error instead of opening a connection that nothing would close.
    closed = False

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        if self.closed:
            raise StoreUnavailableError("the Redis client was closed")
        if self.can_get_connection():
            # Checked and taken with nothing in between that yields, unless the pool's lock is
            # held (a connection being given back): then the last one may be gone meanwhile.
            with contextlib.suppress(MaxConnectionsError):
                return await aioredis.ConnectionPool.get_connection(self)  # type: ignore[no-untyped-call]
        return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]


def connect_redis(url: str, *, client_name: str) -> StoreClient:
    """A client that retries a command a few times across a short Redis blip."""
    pool = BoundedPool.from_url(
        url, max_connections=POOL_SIZE, timeout=20, **_client_options(client_name)
    )
    pack_with_hiredis(pool)
    client = StoreClient.from_pool(pool)
    assert isinstance(client, StoreClient)
    return client


class BlockingSentinelPool(SentinelConnectionPool, BoundedPool):
    """The Sentinel-backed pool with the blocking pool's bound: callers beyond POOL_SIZE wait
    for a connection instead of failing.

    redis-py asks the Sentinels only when it opens a connection, so pooled connections would
    keep writing to a demoted master that still answers (until Sentinel reconfigures it,
    up to ~10 s, and those writes are then lost). Here the master's address is checked at
    most once a second as connections are taken: when it changed, idle connections to the
    old one are closed, and a connection still open to it is closed when it is taken or
    given back (redis-py would hand it out again). `switches` counts the changes seen, so
    that store/fence.py can tell that writes may have gone to two masters.
    """

    _master_checked = 0.0
    switches = 0

    async def get_master_address(self) -> Any:
        before = self.master_address
        address = await super().get_master_address()  # type: ignore[no-untyped-call]
        if before is not None and address != before:
            self.switches += 1
        return address

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        now = time.monotonic()
        if now - self._master_checked >= MASTER_CHECK_S:
            self._master_checked = now
            with contextlib.suppress(RedisError, OSError):
                await self.get_master_address()
        connection = await super().get_connection(*args, **kwargs)
        if self._stale(connection):
            # Reconnected here: redis-py's own reconnect mid-command reuses the old address.
            await connection.disconnect()
            await connection.connect()
        return connection

    async def release(self, connection: Any) -> None:
        if self._stale(connection):
            await connection.disconnect()
        await super().release(connection)

    def _stale(self, connection: Any) -> bool:
        """Connected to a server that is no longer the master (it reconnects on next use)."""
        return (
            self.master_address is not None
            and connection.is_connected
            and (connection.host, connection.port) != self.master_address
        )


class FailoverAwareSentinel(Sentinel):
    """Names a master only from a Sentinel that is not failing it over: during a failover the
    leading Sentinel still reports the old master (SENTINEL MASTERS) for seconds after it
    promoted a replica, while the others already name the new one."""

    def check_master_state(self, state: dict[str, Any], service_name: str) -> bool:
        if "failover_in_progress" in str(state.get("flags", "")):
            return False
        return bool(super().check_master_state(state, service_name))


def connect_sentinel_master(
    sentinels: list[tuple[str, int]], master: str, *, url: str, client_name: str
) -> SentinelStoreClient:
    """A client of the master the Sentinels name; `url` gives the password and database."""
    parts = urlsplit(url)
    db = parts.path.strip("/")
    auth: dict[str, Any] = {"db": int(db) if db.isdigit() else 0}
    if parts.password is not None:
        auth["password"] = unquote(parts.password)
        if parts.username:
            auth["username"] = unquote(parts.username)
    manager = FailoverAwareSentinel(  # type: ignore[no-untyped-call, unused-ignore]
        sentinels,
        sentinel_kwargs={
            "socket_timeout": SENTINEL_TIMEOUT_S,
            "socket_connect_timeout": SENTINEL_TIMEOUT_S,
        },
    )
    client = manager.master_for(
        master,
        redis_class=SentinelStoreClient,
        connection_pool_class=BlockingSentinelPool,
        max_connections=POOL_SIZE,
        timeout=20,
        **auth,
        **_client_options(client_name),
    )
    assert isinstance(client, SentinelStoreClient)
    pack_with_hiredis(client.connection_pool)
    client.sentinels = tuple(manager.sentinels)
    client.master_name = master
    client.sentinel_quiet = {}
    return client
