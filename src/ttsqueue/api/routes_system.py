"""Health and statistics."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends

from ttsqueue.api.context import ApiContext, get_context
from ttsqueue.api.schemas import error_responses
from ttsqueue.domain import iso, utcnow
from ttsqueue.errors import StoreError
from ttsqueue.stats_snapshot import StatsSources, queue_statistics
from ttsqueue.store.lines import server_states
from ttsqueue.store.presence import DialerPresence
from ttsqueue.views.http import JsonBody

router = APIRouter(tags=["system"])

PROBE_TIMEOUT_S = 2.0


async def _redis_ok(ctx: ApiContext) -> bool:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            return bool(await ctx.redis.ping())
    except Exception:
        return False


async def _rabbit_ok(ctx: ApiContext) -> bool:
    if ctx.broker.is_closed:
        return False
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            # The back-pressure gate's read, cached for a second: probes stay cheap under load.
            await ctx.gate.backlog()
        return True
    except Exception:
        return False


async def _server_states(ctx: ApiContext) -> dict[str, str]:
    servers = ctx.settings.asterisk_servers
    fallback = ctx.dialer_health.value
    try:
        return await server_states(ctx.redis, ctx.store.keys, servers, fallback)
    except StoreError:
        return {server.name: fallback for server in servers}


@router.get("/health")
async def health(ctx: Annotated[ApiContext, Depends(get_context)]) -> JsonBody:
    redis_ok, rabbit_ok = await asyncio.gather(_redis_ok(ctx), _rabbit_ok(ctx))
    tts = "ok"
    asterisk = ctx.dialer_health
    servers = {server.name: asterisk.value for server in ctx.settings.asterisk_servers}
    if redis_ok:
        workers = await ctx.registry.alive()
        if any(w.tts == "degraded" for w in workers):
            tts = "degraded"
        asterisk = await DialerPresence(ctx.redis, ctx.store.keys).health(ctx.dialer_health)
        servers = await _server_states(ctx)
    healthy = redis_ok and rabbit_ok
    body = {
        "success": healthy,
        "status": "healthy" if healthy else "unhealthy",
        "timestamp": iso(utcnow()),
        "connections": {
            "redis": "connected" if redis_ok else "disconnected",
            "rabbitmq": "connected" if rabbit_ok else "disconnected",
            "asterisk": asterisk.value,
            "tts": tts,
        },
        "dialer": ctx.dialer_name,
        # Each Asterisk server (ASTERISK_SERVERS; `default` without it), as workers see it.
        "asterisk_servers": servers,
    }
    return JsonBody(body, status_code=200 if healthy else 503)


@router.get("/queue/stats", responses=error_responses(401, 429, 503))
async def queue_stats(ctx: Annotated[ApiContext, Depends(get_context)]) -> JsonBody:
    sources = StatsSources(
        redis=ctx.redis,
        store=ctx.store,
        registry=ctx.registry,
        stats=ctx.stats,
        keys=ctx.store.keys,
        servers=ctx.settings.asterisk_servers,
        dialer_state=ctx.dialer_health.value,
    )
    statistics = await queue_statistics(sources, ctx.inspector)
    return JsonBody({"success": True, "timestamp": iso(utcnow()), "statistics": statistics})
