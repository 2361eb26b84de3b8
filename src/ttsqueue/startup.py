"""Connecting at start-up: wait for Redis and RabbitMQ instead of crashing when they are late."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection

from ttsqueue.broker.connection import connect_broker
from ttsqueue.config import Settings
from ttsqueue.errors import StoreUnavailableError
from ttsqueue.logs import get_logger
from ttsqueue.store.factory import connect_store

log = get_logger("ttsqueue.startup")

MAX_BACKOFF_S = 5.0


async def wait_for_redis(settings: Settings, *, client_name: str) -> aioredis.Redis:
    delay = 0.2
    while True:
        client = connect_store(settings, client_name=client_name)
        try:
            await client.ping()
            return client
        except StoreUnavailableError as exc:
            await client.aclose()
            log.warning("waiting for Redis", error=repr(exc), retry_in_s=delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_BACKOFF_S)


async def wait_for_broker(settings: Settings, *, name: str) -> AbstractRobustConnection:
    delay = 0.2
    while True:
        try:
            return await connect_broker(settings.RABBITMQ_URL, name=name)
        except (ConnectionError, OSError) as exc:
            log.warning("waiting for RabbitMQ", error=repr(exc), retry_in_s=delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_BACKOFF_S)
