"""Choosing the telephony backend from the settings (`DIALER`, SPEC §7)."""

from __future__ import annotations

import logging
import os

from ttsqueue.config import DialerName, Settings
from ttsqueue.dialer.base import Dialer, DialerHealth
from ttsqueue.dialer.simulator import SimulatorDialer
from ttsqueue.errors import ConfigError

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


def build_dialer(settings: Settings) -> Dialer:
    name = resolve_dialer(settings)
    if name is DialerName.SIMULATOR:
        if settings.DIALER is DialerName.AUTO:
            log.warning(
                "no Asterisk configured: calls are simulated "
                "(set ASTERISK_AMI_HOST or a writable ASTERISK_SPOOL_DIR to place real calls)"
            )
        return SimulatorDialer(settings)
    raise ConfigError(f"DIALER={name.value} is not available in this version")


def describe_dialer(settings: Settings) -> tuple[str, DialerHealth]:
    """The backend in use and what `/health` reports as `asterisk`, for processes that do
    not dial themselves (the API)."""
    name = resolve_dialer(settings)
    if name is DialerName.SIMULATOR:
        return name.value, DialerHealth.NOT_CONFIGURED
    return name.value, DialerHealth.DISCONNECTED
