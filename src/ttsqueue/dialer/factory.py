"""Building the telephony backend the settings choose (backends.py decides which)."""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from ttsqueue.backends import resolve_dialer
from ttsqueue.config import DialerName, Settings
from ttsqueue.dialer.base import Dialer
from ttsqueue.dialer.simulator import SimulatorDialer
from ttsqueue.store.factory import connect_store

log = logging.getLogger("ttsqueue.dialer")


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
        from ttsqueue.dialer.ami.dialer import AmiDialer

        ami = AmiDialer(settings, client, owns_redis=owns)
        ami.start()
        return ami
    from ttsqueue.dialer.callfile.dialer import CallfileDialer

    callfile = CallfileDialer(settings, client, owns_redis=owns)
    callfile.start()
    return callfile
