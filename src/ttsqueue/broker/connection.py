"""Robust (reconnecting) RabbitMQ connections with heartbeats, named after their process."""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractRobustConnection

HEARTBEAT_S = 30


async def connect_broker(url: str, *, name: str) -> AbstractRobustConnection:
    return await aio_pika.connect_robust(
        url,
        heartbeat=HEARTBEAT_S,
        client_properties={"connection_name": name},
        reconnect_interval=1.0,
        fail_fast=True,
    )
