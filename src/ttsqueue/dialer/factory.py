"""Building the telephony backend the settings choose (backends.py decides which)."""

from __future__ import annotations

from ttsqueue.backends import resolve_dialer
from ttsqueue.config import DialerName, Settings
from ttsqueue.dialer.base import Dialer
from ttsqueue.dialer.simulator import SimulatorDialer
from ttsqueue.logs import get_logger
from ttsqueue.store.factory import Store, build_store, connect_store

log = get_logger("ttsqueue.dialer")


def build_dialer(settings: Settings, store: Store | None = None) -> Dialer:
    """The backend for a worker. The real ones keep per-call state and their presence in
    Redis: pass the worker's store, or they open (and close) their own client."""
    name = resolve_dialer(settings)
    if name is DialerName.SIMULATOR:
        if settings.DIALER is DialerName.AUTO:
            log.warning(
                "no asterisk configured: calls are simulated",
                hint="set ASTERISK_AMI_HOST or a writable ASTERISK_SPOOL_DIR to place real calls",
            )
        return SimulatorDialer(settings)
    owns = store is None
    if store is None:
        store = build_store(
            connect_store(settings, client_name=f"dialer:{settings.WORKER_ID}"), settings
        )
    client, keys = store.client, store.keys
    if name is DialerName.AMI:
        from ttsqueue.dialer.ami.dialer import AmiDialer

        ami = AmiDialer(settings, client, keys, owns_redis=owns)
        ami.start()
        return ami
    from ttsqueue.dialer.callfile.dialer import CallfileDialer

    callfile = CallfileDialer(settings, client, keys, owns_redis=owns)
    callfile.start()
    return callfile
