"""Which telephony backend the settings choose (`DIALER`, SPEC §7), and what `/health`
says about it before any worker has reported: decided from the settings alone, so that the
API and the dashboard know it without importing a dialer."""

from __future__ import annotations

import os

from ttsqueue.config import DialerName, Settings
from ttsqueue.domain import DialerHealth


def spool_writable(settings: Settings) -> bool:
    spool = settings.ASTERISK_SPOOL_DIR
    return spool.is_dir() and os.access(spool, os.W_OK | os.X_OK)


def resolve_dialer(settings: Settings) -> DialerName:
    """The concrete backend `DIALER` stands for; `auto` looks at what is configured."""
    if settings.DIALER is not DialerName.AUTO:
        return settings.DIALER
    if settings.ASTERISK_AMI_HOST or settings.ASTERISK_SERVERS:
        return DialerName.AMI
    if spool_writable(settings):
        return DialerName.CALLFILE
    return DialerName.SIMULATOR


def describe_dialer(settings: Settings) -> tuple[str, DialerHealth]:
    """The backend in use and what `/health` reports as `asterisk` when no worker has said
    more (see `DialerPresence.health`)."""
    name = resolve_dialer(settings)
    if name is DialerName.SIMULATOR:
        return name.value, DialerHealth.NOT_CONFIGURED
    if name is DialerName.CALLFILE and spool_writable(settings):
        return name.value, DialerHealth.CONNECTED
    return name.value, DialerHealth.DISCONNECTED
