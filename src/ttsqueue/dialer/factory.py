"""Choosing the telephony backend from the settings (`DIALER`, SPEC §7), and what `/health`
reports about it."""

from __future__ import annotations

import logging
import os

import redis.asyncio as aioredis

from ttsqueue.config import DialerName, Settings
from ttsqueue.dialer.base import Dialer, DialerHealth
from ttsqueue.dialer.presence import DialerPresence
from ttsqueue.dialer.simulator import SimulatorDialer
from ttsqueue.store.connection import REDIS_DOWN_ERRORS, connect_store
from ttsqueue.store.keys import Keys

log = logging.getLogger("ttsqueue.dialer")


def spool_writable(settings: Settings) -> bool:
    spool = settings.ASTERISK_SPOOL_DIR
    return spool.is_dir() and os.access(spool, os.W_OK | os.X_OK)


def resolve_dialer(settings: Settings) -> DialerName:
    """The concrete backend `DIALER` stands for; `auto` looks at what is configured."""
    if settings.DIALER is not DialerName.AUTO:
        return settings.DIALER
    if settings.ASTERISK_AMI_HOST:
        return DialerName.AMI
    if spool_writable(settings):
        return DialerName.CALLFILE
    return DialerName.SIMULATOR


def build_dialer(settings: Settings, redis: aioredis.Redis | None = None) -> Dialer:
    """The backend for a worker. The real ones keep per-call state and their presence in
    Redis: pass the worker's client, or they open (and close) their own."""
    name = resolve_dialer(settings)
    if name is DialerName.SIMULATOR:
        if settings.DIALER is DialerName.AUTO:
            log.warning(
                "no Asterisk configured: calls are simulated "
                "(set ASTERISK_AMI_HOST or a writable ASTERISK_SPOOL_DIR to place real calls)"
            )
        return SimulatorDialer(settings)
    owns = redis is None
    client = redis or connect_store(settings, client_name=f"dialer:{settings.WORKER_ID}")
    if name is DialerName.AMI:
        from ttsqueue.dialer.ami_dialer import AmiDialer

        ami = AmiDialer(settings, client, owns_redis=owns)
        ami.start()
        return ami
    from ttsqueue.dialer.callfile import CallfileDialer

    callfile = CallfileDialer(settings, client, owns_redis=owns)
    callfile.start()
    return callfile


def describe_dialer(settings: Settings) -> tuple[str, DialerHealth]:
    """The backend in use and what `/health` reports as `asterisk` when no worker has said
    more (see `current_health`)."""
    name = resolve_dialer(settings)
    if name is DialerName.SIMULATOR:
        return name.value, DialerHealth.NOT_CONFIGURED
    if name is DialerName.CALLFILE and spool_writable(settings):
        return name.value, DialerHealth.CONNECTED
    return name.value, DialerHealth.DISCONNECTED


async def current_health(
    settings: Settings, redis: aioredis.Redis, fallback: DialerHealth
) -> DialerHealth:
    """`asterisk` for `/health`, from what live workers' dialers report: connected when one is
    (an AMI session logged in, a writable spool), disconnected when they all fail, `fallback`
    when no real dialer is running or Redis cannot tell."""
    try:
        reports = await DialerPresence(redis, Keys(settings.REDIS_PREFIX)).alive()
    except REDIS_DOWN_ERRORS:
        return fallback
    if not reports:
        return fallback
    if any(r.state == DialerHealth.CONNECTED.value for r in reports):
        return DialerHealth.CONNECTED
    return DialerHealth.DISCONNECTED
