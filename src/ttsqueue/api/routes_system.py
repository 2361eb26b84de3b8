"""Health and statistics."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from ttsqueue.api.context import ApiContext, get_context
from ttsqueue.api.responses import JsonBody
from ttsqueue.domain import iso, utcnow
from ttsqueue.store.keys import Keys

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
            await ctx.inspector.depths()
        return True
    except Exception:
        return False


@router.get("/health")
async def health(ctx: Annotated[ApiContext, Depends(get_context)]) -> JsonBody:
    redis_ok, rabbit_ok = await asyncio.gather(_redis_ok(ctx), _rabbit_ok(ctx))
    tts = "ok"
    if redis_ok:
        workers = await ctx.registry.alive()
        if any(w.tts == "degraded" for w in workers):
            tts = "degraded"
    healthy = redis_ok and rabbit_ok
    body = {
        "success": healthy,
        "status": "healthy" if healthy else "unhealthy",
        "timestamp": iso(utcnow()),
        "connections": {
            "redis": "connected" if redis_ok else "disconnected",
            "rabbitmq": "connected" if rabbit_ok else "disconnected",
            "asterisk": ctx.dialer_health.value,
            "tts": tts,
        },
        "dialer": ctx.dialer_name,
    }
    return JsonBody(body, status_code=200 if healthy else 503)


@router.get("/queue/stats")
async def queue_stats(ctx: Annotated[ApiContext, Depends(get_context)]) -> JsonBody:
    depths, (total, by_status), workers, metrics, cache, active_calls = await asyncio.gather(
        ctx.inspector.depths(),
        ctx.store.counts_by_status(),
        ctx.registry.alive(),
        ctx.stats.job_metrics(),
        ctx.redis.hgetall(Keys(ctx.settings.REDIS_PREFIX).cache_stats),
        _active_calls(ctx),
    )
    busy = sum(1 for w in workers if w.current_jobs)
    hits, misses = int(cache.get("hits", 0)), int(cache.get("misses", 0))
    entries = await ctx.redis.zcard(Keys(ctx.settings.REDIS_PREFIX).cache_lru)
    statistics: dict[str, Any] = {
        "queues": depths,
        "redis": {"total_jobs": total, "active_workers": len(workers)},
        "workers": {
            "total": len(workers),
            "active": busy,
            "idle": len(workers) - busy,
            "list": [
                {
                    "worker_id": w.worker_id,
                    "status": "busy" if w.current_jobs else "idle",
                    "current_jobs": w.current_jobs,
                    "processed": w.processed,
                    "failed": w.failed,
                    "concurrency": w.concurrency,
                    "started_at": w.started_at,
                    "last_heartbeat": w.last_heartbeat,
                }
                for w in workers
            ],
        },
        "jobs": {"total": total, "by_status": by_status},
        "metrics": {
            "processed": metrics.processed,
            "succeeded": metrics.succeeded,
            "failed": metrics.failed,
            "success_rate": metrics.success_rate,
            "avg_processing_ms": metrics.avg_processing_ms,
            "throughput_per_min": metrics.throughput_per_min,
        },
        "calls": {
            "active": active_calls,
            "limit": ctx.settings.MAX_CONCURRENT_CALLS,
            "by_outcome": metrics.by_outcome,
        },
        "tts_cache": {
            "hits": hits,
            "misses": misses,
            "hit_rate": round(hits / (hits + misses), 4) if hits + misses else 0.0,
            "entries": int(entries),
            "bytes": int(cache.get("bytes", 0)),
        },
    }
    return JsonBody({"success": True, "timestamp": iso(utcnow()), "statistics": statistics})


async def _active_calls(ctx: ApiContext) -> int:
    import time

    key = Keys(ctx.settings.REDIS_PREFIX).call_slots
    return int(await ctx.redis.zcount(key, int(time.time() * 1000), "+inf"))
