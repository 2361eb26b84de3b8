"""A worker process: connect, declare, consume until SIGTERM, then shut down gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from redis.asyncio import Redis

from ttsqueue.broker.consumer import PriorityConsumer
from ttsqueue.broker.delays import DelayQueues
from ttsqueue.broker.publisher import Publisher
from ttsqueue.broker.topology import declare_topology
from ttsqueue.campaigns.pacer import build_pacer, pacer_loop
from ttsqueue.config import Settings
from ttsqueue.dialer.factory import build_dialer
from ttsqueue.heap import freeze_startup_objects
from ttsqueue.logs import configure_logging, get_logger
from ttsqueue.policy.clock import Clock
from ttsqueue.policy.gate import build_calling_policy
from ttsqueue.startup import wait_for_broker, wait_for_redis
from ttsqueue.store.factory import build_store
from ttsqueue.tts.service import SpeechService, build_engines
from ttsqueue.worker.context import WorkerContext
from ttsqueue.worker.heartbeat import heartbeat_loop
from ttsqueue.worker.pipeline import JobHandler
from ttsqueue.worker.reaper import reaper_loop
from ttsqueue.worker.runner import Runner, prefetch_for
from ttsqueue.worker.sweeper import sweeper_loop
from ttsqueue.worker.trunk import TrunkGuard, line_servers

# How long a stopping worker waits for the audit messages still being published.
DRAIN_S = 10.0

log = get_logger("ttsqueue.worker")

SHUTDOWN_GRACE_S = 25.0
# How long a cancelled background loop may take to end before it is cancelled again.
CANCEL_AGAIN_S = 1.0


async def build_context(
    settings: Settings, redis: Redis, publisher: Publisher, clock: Clock | None = None
) -> WorkerContext:
    """Everything the pipeline needs, from settings and the two connections (`clock`: where
    calling windows read the time; the system's by default)."""
    store = build_store(redis, settings, results=publisher.to_results)
    dialer = build_dialer(settings, store)
    return WorkerContext(
        settings=settings,
        redis=redis,
        store=store.jobs,
        lifecycle=store.lifecycle,
        workers=store.workers,
        publisher=publisher,
        names=publisher.names,
        speech=SpeechService(settings, redis, store.keys, await build_engines(settings)),
        dialer=dialer,
        trunk=TrunkGuard(redis, store.keys, servers=line_servers(settings), is_up=dialer.server_up),
        metrics=store.metrics,
        policy=build_calling_policy(settings, redis, store.keys, clock),
    )


async def serve(
    settings: Settings, stop: asyncio.Event | None = None, clock: Clock | None = None
) -> None:
    """Run one worker until `stop` is set (or SIGTERM/SIGINT when run as a process)."""
    redis = await wait_for_redis(settings, client_name=f"worker:{settings.WORKER_ID}")
    connection = await wait_for_broker(settings, name=f"worker:{settings.WORKER_ID}")
    try:
        channel = await connection.channel()
        names = await declare_topology(channel, settings)
        await channel.close()
    except BaseException:
        # A conflicting queue (TopologyMismatchError) must leave no connection behind, or its
        # pending tasks print a traceback over the clear message the CLI gives.
        await connection.close()
        await redis.aclose()
        raise
    ctx = await build_context(settings, redis, Publisher(connection, names), clock)
    dialer = ctx.dialer
    handler = JobHandler(ctx)
    registry = ctx.workers
    runner = Runner(
        PriorityConsumer(
            connection,
            names,
            # Calls it may follow: every line of every Asterisk server.
            prefetch_for(settings.WORKER_CONCURRENCY, settings.call_limit),
            handler.recycler,
        ),
        handler,
        settings.WORKER_CONCURRENCY,
        SHUTDOWN_GRACE_S,
    )
    background = [
        asyncio.create_task(
            heartbeat_loop(
                registry,
                settings.WORKER_ID,
                settings.WORKER_CONCURRENCY,
                handler,
                ctx.speech.health,
            )
        ),
        asyncio.create_task(reaper_loop(ctx)),
        asyncio.create_task(sweeper_loop(ctx)),
        asyncio.create_task(
            pacer_loop(
                build_pacer(
                    redis,
                    ctx.store,
                    ctx.lifecycle,
                    ctx.publisher,
                    DelayQueues.of(settings),
                    ctx.policy,
                    settings.WORKER_ID,
                )
            )
        ),
    ]
    if settings.WEBHOOKS_ENABLED:
        # Imported only here: its HTTP client (httpx) is a tenth of a worker's start-up, for
        # a loop that a worker without webhooks never runs.
        from ttsqueue.webhooks.dispatcher import WebhookDispatcher

        dispatcher = WebhookDispatcher(redis, ctx.store.keys, settings, consumer=settings.WORKER_ID)
        background.append(asyncio.create_task(dispatcher.run()))
    if stop is not None:
        background.append(asyncio.create_task(_relay(stop, runner)))
    log.info(
        "worker started",
        worker_id=settings.WORKER_ID,
        dialer=dialer.name,
        concurrency=settings.WORKER_CONCURRENCY,
    )
    try:
        await runner.run()
    finally:
        await _cancel_all(background)
        # Audit messages of jobs that ended just before the stop.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(DRAIN_S):
                await ctx.lifecycle.drain()
        with contextlib.suppress(Exception):
            await registry.deregister(settings.WORKER_ID)
        await dialer.aclose()
        await connection.close()
        await redis.aclose()
        log.info("worker stopped", worker_id=settings.WORKER_ID)


async def _cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel the background loops and wait for them, cancelling again those still running:
    redis-py's asyncio client can swallow a cancellation that lands mid-command
    (redis/redis-py#2028), and a loop that lost it would keep the worker from ever stopping."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=CANCEL_AGAIN_S)
    await asyncio.gather(*tasks, return_exceptions=True)


async def _relay(stop: asyncio.Event, runner: Runner) -> None:
    await stop.wait()
    runner.request_stop()


async def _main(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve(settings, stop)


def run(settings: Settings) -> None:
    configure_logging(settings, process="worker")
    import uvloop

    freeze_startup_objects()
    uvloop.run(_main(settings))
