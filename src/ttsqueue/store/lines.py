"""The trunk lines as `/queue/stats`, `/metrics`, `/health` and the dashboard show them: each
Asterisk server's live calls, limits and state (from the workers' dialer heartbeats), and the
jobs waiting for a line, by priority. Read only; worker/trunk.py writes these keys.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from ttsqueue.asterisk_servers import AsteriskServer
from ttsqueue.store.keys import Keys
from ttsqueue.store.presence import DialerPresence


@dataclass(frozen=True, slots=True)
class ServerLines:
    name: str
    # A DialerHealth value: connected when a live worker's AMI session to it is logged in.
    state: str
    active: int
    limit: int
    calls_per_second: float
    prefixes: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "active": self.active,
            "limit": self.limit,
            "calls_per_second": self.calls_per_second,
            "prefixes": list(self.prefixes),
        }


@dataclass(frozen=True, slots=True)
class LineFigures:
    servers: list[ServerLines]
    waiting_high: int
    waiting_normal: int

    @property
    def active(self) -> int:
        return sum(s.active for s in self.servers)

    @property
    def limit(self) -> int:
        return sum(s.limit for s in self.servers)

    @property
    def waiting(self) -> dict[str, int]:
        return {"high": self.waiting_high, "normal": self.waiting_normal}


async def server_states(
    redis: aioredis.Redis, keys: Keys, servers: Sequence[AsteriskServer], fallback: str
) -> dict[str, str]:
    """Each configured server's state; `fallback` (what `/health` says of the backend) for a
    server no live worker reports (no worker yet, or a backend without AMI sessions)."""
    reported = await DialerPresence(redis, keys).server_health()
    return {server.name: reported.get(server.name, fallback) for server in servers}


async def read_lines(
    redis: aioredis.Redis, keys: Keys, servers: Sequence[AsteriskServer], fallback: str
) -> LineFigures:
    now_ms = int(time.time() * 1000)
    async with redis.pipeline(transaction=False) as pipe:
        for server in servers:
            pipe.zcount(keys.server_lines(server.name), now_ms, "+inf")
        pipe.zcard(keys.line_waiters_high)
        pipe.zcard(keys.line_waiters_normal)
        counts = await pipe.execute()
    states = await server_states(redis, keys, servers, fallback)
    rows = [
        ServerLines(
            name=server.name,
            state=states[server.name],
            active=int(active),
            limit=server.max_concurrent_calls,
            calls_per_second=server.calls_per_second,
            prefixes=tuple(server.prefixes),
        )
        for server, active in zip(servers, counts, strict=False)
    ]
    return LineFigures(rows, int(counts[-2]), int(counts[-1]))
