"""The FastAPI application: resources in the lifespan, routes thin, errors mapped at the edge."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from redis.asyncio import Redis

from ttsqueue import __version__
from ttsqueue.api.access import AccessControl
from ttsqueue.api.backpressure import BacklogGate
from ttsqueue.api.call_lane import CallLane
from ttsqueue.api.context import ApiContext, context_of_app
from ttsqueue.api.dnc_import import MAX_IMPORT_BYTES
from ttsqueue.api.docs_assets import install_docs
from ttsqueue.api.errors import install_error_handlers
from ttsqueue.api.routes_batch import batch_body_limit
from ttsqueue.api.routes_batch import router as batch_router
from ttsqueue.api.routes_calls import router as calls_router
from ttsqueue.api.routes_campaigns import router as campaigns_router
from ttsqueue.api.routes_dnc import router as dnc_router
from ttsqueue.api.routes_jobs import router as jobs_router
from ttsqueue.api.routes_metrics import router as metrics_router
from ttsqueue.api.routes_system import router as system_router
from ttsqueue.backends import describe_dialer
from ttsqueue.broker.publisher import Publisher
from ttsqueue.broker.topology import QueueInspector, declare_topology
from ttsqueue.config import Settings, load_settings
from ttsqueue.heap import freeze_startup_objects
from ttsqueue.logs import configure_logging, get_logger
from ttsqueue.policy.clock import Clock
from ttsqueue.policy.gate import build_calling_policy
from ttsqueue.startup import wait_for_broker, wait_for_redis
from ttsqueue.store.factory import build_store, keys_for
from ttsqueue.store.fence import MasterFence
from ttsqueue.tts.catalog import language_catalog
from ttsqueue.views.http import MAX_CAMPAIGN_BYTES, BodySizeLimitMiddleware
from ttsqueue.views.server import TELEMETRY_OFF

log = get_logger("ttsqueue.api")

# A client gets its 503 within 5 s when RabbitMQ drops packets: at most ADMIT_WAIT_S for the
# backlog read, then this for the publish (channel opening and confirm included).
PUBLISH_DEADLINE_S = 3.5
# How long a stopping API waits for the confirms still being written.
DRAIN_S = 5.0
# SPEC §2.8: 64 KB for every body but the batch's, which holds up to 1000 calls.
MAX_BODY_BYTES = 64 * 1024


def create_app(settings: Settings, clock: Clock | None = None) -> FastAPI:
    """The API app; `clock` (default the system's) is where calling windows read the time."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = await wait_for_redis(settings, client_name="api")
        broker = await wait_for_broker(settings, name="api")
        channel = await broker.channel()
        names = await declare_topology(channel, settings)
        await channel.close()
        inspector = QueueInspector(broker, names)
        dialer_name, dialer_health = describe_dialer(settings)
        publisher = Publisher(broker, names, deadline_s=PUBLISH_DEADLINE_S)
        store = build_store(redis, settings, results=publisher.to_results)
        app.state.ctx = ApiContext(
            settings=settings,
            redis=redis,
            broker=broker,
            names=names,
            store=store.jobs,
            lifecycle=store.lifecycle,
            publisher=publisher,
            inspector=inspector,
            registry=store.workers,
            stats=store.stats,
            languages=language_catalog(settings),
            dialer_name=dialer_name,
            dialer_health=dialer_health,
            gate=BacklogGate(inspector, settings.MAX_QUEUE_DEPTH),
            metrics=store.metrics,
            dnc=store.dnc,
            policy=build_calling_policy(settings, redis, store.keys, clock),
            fence=MasterFence(store.jobs.client),
        )
        log.info("api ready", host=settings.API_HOST, port=settings.API_PORT)
        try:
            yield
        finally:
            # Confirms still being written for jobs already answered 202.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(DRAIN_S):
                    await store.lifecycle.drain()
            await inspector.close()
            await broker.close()
            await redis.aclose()

    app = FastAPI(
        title="tts-queue",
        version=__version__,
        description="Spoken messages delivered by phone: queue a text and a number, "
        "follow the call to its outcome.",
        lifespan=lifespan,
        telemetry=TELEMETRY_OFF,
        docs_url=None,  # served from vendored assets by install_docs
        redoc_url=None,
    )
    # Added first, so it runs innermost: after the body limit and the API-key check.
    app.add_middleware(CallLane, context=lambda: context_of_app(app))
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=MAX_BODY_BYTES,
        per_path={
            "/tts/calls": batch_body_limit(settings.MAX_TEXT_LENGTH),
            "/dnc": MAX_IMPORT_BYTES,
            "/campaigns": MAX_CAMPAIGN_BYTES,
        },
    )

    def redis_of_app() -> Redis | None:
        ctx: ApiContext | None = getattr(app.state, "ctx", None)
        return ctx.redis if ctx is not None else None

    app.add_middleware(
        AccessControl,
        keys=settings.API_KEYS,
        per_minute=settings.RATE_LIMIT_PER_MINUTE,
        redis=redis_of_app,
        redis_keys=keys_for(settings),
    )
    install_error_handlers(app)
    app.include_router(calls_router)
    app.include_router(batch_router)
    app.include_router(jobs_router)
    app.include_router(system_router)
    app.include_router(metrics_router)
    app.include_router(dnc_router)
    app.include_router(campaigns_router)
    install_docs(app)
    return app


def app_from_environment() -> FastAPI:
    """Factory for uvicorn's worker processes."""
    settings = load_settings()
    configure_logging(settings, process="api")
    app = create_app(settings)
    freeze_startup_objects()
    return app


async def preflight(settings: Settings) -> None:
    """Declare the topology before serving, so that a conflicting queue stops the process with
    a clear TopologyMismatchError instead of a lifespan traceback."""
    broker = await wait_for_broker(settings, name="api-preflight")
    try:
        await declare_topology(await broker.channel(), settings)
    finally:
        await broker.close()


def run(settings: Settings) -> None:
    import asyncio

    import uvicorn

    from ttsqueue.views.server import server_options

    configure_logging(settings, process="api")
    asyncio.run(preflight(settings))
    if settings.API_WORKERS > 1:
        from ttsqueue.views.port_share import run_processes

        # Each process builds its own app from the same environment, and accepts on a
        # listening socket of its own (views/port_share.py).
        run_processes(
            uvicorn.Config(
                "ttsqueue.api.app:app_from_environment",
                factory=True,
                workers=settings.API_WORKERS,
                host=settings.API_HOST,
                port=settings.API_PORT,
                **server_options(),
            )
        )
        return
    app = create_app(settings)
    freeze_startup_objects()
    uvicorn.run(app, host=settings.API_HOST, port=settings.API_PORT, **server_options())
