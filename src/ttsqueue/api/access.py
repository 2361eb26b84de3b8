"""API keys and the per-key rate limit (SPEC §2.8), as one pure ASGI middleware.

With `API_KEYS` set, every route but `/health`, `/metrics` and the API docs (`/docs`, `/redoc`,
`/openapi.json` and their assets) needs `Authorization: Bearer <key>` or `X-API-Key: <key>`,
and each key gets `RATE_LIMIT_PER_MINUTE` requests in any minute, a burst of that size included
(api/rate_limit.py, shared by every API process through Redis; the batch route charges its
other items itself). Without keys (development) nothing is checked.

While Redis cannot run the limiter (unreachable, timing out, loading, refusing writes), keys
are still checked (they need no Redis) and then:
- reads (GET, HEAD, OPTIONS) pass without a limit: they either need no Redis (`/docs`,
  `/openapi.json`) or answer 503 themselves, and a read-only Redis may still serve them;
- everything else (submissions, cancellations) gets 503 with Retry-After at once: the job
  record could not be written anyway, and no write is attempted against a failing Redis.
Never a 500. After a failed call, Redis is not asked again for a second (requests do not
each pay the client's retries). One warning is logged when the limiter stops, one line when
it is back.
"""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Callable, Sequence

import redis.asyncio as aioredis
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from ttsqueue.api.docs_assets import open_docs_path
from ttsqueue.api.errors import RETRY_AFTER_UNAVAILABLE
from ttsqueue.api.rate_limit import RateLimiter
from ttsqueue.errors import StoreError
from ttsqueue.logs import get_logger
from ttsqueue.store.keys import Keys
from ttsqueue.views.http import error_response

log = get_logger("ttsqueue.api")

OPEN_PATHS = frozenset({"/health", "/metrics"})

# Requests let through without a limit while the limiter's Redis is unavailable.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# After a failed limiter call, how long requests go on as "limiter unavailable" untried.
RETRY_LIMITER_S = 1.0


def _open(path: str) -> bool:
    """Probes, and the API docs (they describe the API and hold no data)."""
    return path in OPEN_PATHS or open_docs_path(path)


def presented_key(headers: Headers) -> str | None:
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return headers.get("x-api-key") or None


def key_matches(candidate: str, keys: Sequence[str]) -> bool:
    # Compare against every key (no early exit) in constant time per key.
    found = False
    for key in keys:
        found |= hmac.compare_digest(candidate.encode(), key.encode())
    return found


class AccessControl:
    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: Sequence[str],
        per_minute: int,
        redis: Callable[[], aioredis.Redis | None],
        redis_keys: Keys,
    ) -> None:
        self.app = app
        self.keys = list(keys)
        self.limiter = RateLimiter(per_minute, redis_keys)
        # Resolved per request: the client is created in the lifespan, after this middleware.
        self.redis = redis
        self._limiter_down = False
        self._retry_at = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys or _open(scope["path"]):
            await self.app(scope, receive, send)
            return
        key = presented_key(Headers(scope=scope))
        if key is None or not key_matches(key, self.keys):
            response = error_response(
                401,
                "unauthorized",
                "missing or invalid API key (send Authorization: Bearer <key> or X-API-Key: <key>)",
                headers={"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        # The batch route charges its other items under the same key.
        scope.setdefault("state", {})["api_key"] = key
        wait_ms = await self._wait_ms(key)
        if wait_ms is None and scope["method"] not in SAFE_METHODS:
            response = error_response(
                503,
                "service_unavailable",
                "the job store (Redis) is unavailable; retry later",
                headers={"Retry-After": RETRY_AFTER_UNAVAILABLE},
            )
            await response(scope, receive, send)
            return
        if wait_ms is not None and wait_ms > 0:
            response = error_response(
                429,
                "rate_limited",
                "rate limit exceeded for this API key",
                headers={"Retry-After": str(max(1, math.ceil(wait_ms / 1000)))},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _wait_ms(self, key: str) -> float | None:
        """Milliseconds until this key may make a request (0: now); None when the limiter
        cannot run."""
        client = self.redis()
        if client is None:  # before the lifespan has connected: nothing is served yet
            return 0.0
        if self._limiter_down and time.monotonic() < self._retry_at:
            return None
        try:
            reply = await self.limiter.charge(client, key)
        except StoreError as exc:
            self._retry_at = time.monotonic() + RETRY_LIMITER_S
            if not self._limiter_down:
                self._limiter_down = True
                log.warning(
                    "rate limiter unavailable: reads pass unlimited, writes get 503",
                    error=repr(exc),
                )
            return None
        if self._limiter_down:
            self._limiter_down = False
            log.info("rate limiter available again")
        return float(reply)
