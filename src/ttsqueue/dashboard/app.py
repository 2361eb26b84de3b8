"""The dashboard process (SPEC §8): a small FastAPI app on DASHBOARD_HOST:DASHBOARD_PORT.

It reads the same Redis and RabbitMQ as the rest of the product and starts whether or not
they are up: Redis is connected lazily, RabbitMQ in the background, and the page shows a
banner for whichever is missing until it is back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from ttsqueue import __version__
from ttsqueue.addresses import api_base_url, api_key, env_value
from ttsqueue.backends import describe_dialer
from ttsqueue.broker.management import ManagementClient, ManagementTarget
from ttsqueue.broker.topology import QueueNames
from ttsqueue.config import Settings
from ttsqueue.dashboard.api_proxy import ApiProxy
from ttsqueue.dashboard.auth import DashboardAuth
from ttsqueue.dashboard.broker_link import BrokerLink
from ttsqueue.dashboard.context import DashboardContext
from ttsqueue.dashboard.hub import Hub
from ttsqueue.dashboard.management_view import ManagementView
from ttsqueue.dashboard.routes import MAX_CALL_BODY, router
from ttsqueue.dashboard.snapshot import SnapshotBuilder
from ttsqueue.heap import freeze_startup_objects
from ttsqueue.logs import configure_logging, get_logger
from ttsqueue.stats_snapshot import StatsSources
from ttsqueue.store.factory import build_store, connect_store
from ttsqueue.views.http import MAX_CAMPAIGN_BYTES, BodySizeLimitMiddleware
from ttsqueue.views.server import TELEMETRY_OFF

log = get_logger("ttsqueue.dashboard")

HERE = Path(__file__).resolve().parent
# Seconds uvicorn waits for open event streams on shutdown before closing them.
SHUTDOWN_GRACE_S = 2


def create_app(settings: Settings, *, api_url: str | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = connect_store(settings, client_name="dashboard")
        store = build_store(redis, settings)
        sources = StatsSources(
            redis=redis,
            store=store.jobs,
            registry=store.workers,
            stats=store.stats,
            keys=store.keys,
            servers=settings.asterisk_servers,
            dialer_state=describe_dialer(settings)[1].value,
        )
        names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
        broker = BrokerLink(settings.RABBITMQ_URL, names)
        management = ManagementView(
            ManagementClient(
                ManagementTarget.from_urls(settings.RABBITMQ_URL, settings.RABBITMQ_MANAGEMENT_URL)
            ),
            names.by_label(),
        )
        builder = SnapshotBuilder(settings, sources, broker, management)
        hub = Hub(builder, redis, store.keys.events)
        proxy = ApiProxy(api_base_url(settings, api_url), api_key(settings))
        app.state.ctx = DashboardContext(settings, redis, store.jobs, broker, hub, proxy)
        broker.start()
        hub.start()
        log.info("dashboard ready", host=settings.DASHBOARD_HOST, port=settings.DASHBOARD_PORT)
        try:
            yield
        finally:
            await hub.stop()
            await management.close()
            await broker.close()
            await proxy.aclose()
            await redis.aclose()

    app = FastAPI(
        title="tts-queue dashboard",
        version=__version__,
        lifespan=lifespan,
        telemetry=TELEMETRY_OFF,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.page = (HERE / "templates" / "index.html").read_bytes()
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    # The same limit as the API's, before any route reads a body: 413 without reading the rest.
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=MAX_CALL_BODY,
        per_path={"/api/campaigns": MAX_CAMPAIGN_BYTES},
    )
    app.add_middleware(
        DashboardAuth,
        keys=settings.API_KEYS,
        user=settings.DASHBOARD_USER,
        password=settings.DASHBOARD_PASSWORD,
    )
    return app


def run(settings: Settings) -> None:
    import uvicorn

    from ttsqueue.views.server import server_options

    configure_logging(settings, process="dashboard")
    api_url = env_value("TTSQ_API_URL", Path.cwd())
    app = create_app(settings, api_url=api_url)
    freeze_startup_objects()
    uvicorn.run(
        app,
        host=settings.DASHBOARD_HOST,
        port=settings.DASHBOARD_PORT,
        **server_options(),
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
