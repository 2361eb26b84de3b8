"""DIALER=auto builds the real backends, and `/health`'s `asterisk` follows what the workers'
dialers report through Redis (connected, disconnected, or the API's own view when none runs)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.conftest import make_settings
from tests.doubles.ami_server import running_ami_double
from tests.in_process import eventually
from ttsqueue.backends import describe_dialer
from ttsqueue.config import Settings
from ttsqueue.dialer.ami.dialer import AmiDialer
from ttsqueue.dialer.callfile.dialer import CallfileDialer
from ttsqueue.dialer.factory import build_dialer
from ttsqueue.domain import DialerHealth
from ttsqueue.errors import ConfigError
from ttsqueue.store.factory import build_store, keys_for
from ttsqueue.store.keys import Keys
from ttsqueue.store.presence import DialerPresence, PresenceReport

pytestmark = pytest.mark.timeout(30)


async def current_health(
    settings: Settings, redis: aioredis.Redis, fallback: DialerHealth
) -> DialerHealth:
    """`/health`'s `asterisk`, as the API reads it from the workers' reports."""
    return await DialerPresence(redis, Keys(settings.REDIS_PREFIX)).health(fallback)


async def test_auto_builds_ami_and_reports_its_session(
    tmp_path: Path, settings: Settings, redis_client: aioredis.Redis
) -> None:
    async with running_ami_double() as double:
        ami = make_settings(
            tmp_path,
            REDIS_PREFIX=settings.REDIS_PREFIX,
            DIALER="auto",
            ASTERISK_AMI_HOST="127.0.0.1",
            ASTERISK_AMI_PORT=double.port,
            ASTERISK_AMI_USER="tts",
            ASTERISK_AMI_SECRET="tts_secret",
        )
        assert describe_dialer(ami) == ("ami", DialerHealth.DISCONNECTED)
        dialer = build_dialer(ami)
        assert isinstance(dialer, AmiDialer)
        try:

            async def connected() -> bool:
                health = await current_health(ami, redis_client, DialerHealth.DISCONNECTED)
                return health is DialerHealth.CONNECTED

            await eventually(connected)
            await double.stop()

            async def down() -> bool:
                health = await current_health(ami, redis_client, DialerHealth.CONNECTED)
                return health is DialerHealth.DISCONNECTED

            await eventually(down)
        finally:
            await dialer.aclose()
    reports = await DialerPresence(redis_client, Keys(ami.REDIS_PREFIX)).alive()
    assert reports == []


async def test_auto_builds_callfile_when_the_spool_is_writable(
    tmp_path: Path, settings: Settings, redis_client: aioredis.Redis
) -> None:
    spool = tmp_path / "spool"
    (spool / "outgoing").mkdir(parents=True)
    cf = make_settings(
        tmp_path, REDIS_PREFIX=settings.REDIS_PREFIX, DIALER="auto", ASTERISK_SPOOL_DIR=spool
    )
    assert describe_dialer(cf) == ("callfile", DialerHealth.CONNECTED)
    dialer = build_dialer(cf, build_store(redis_client, cf))
    assert isinstance(dialer, CallfileDialer)
    try:
        assert (spool / "outgoing_done").is_dir()
        assert (spool / "tts-staging").is_dir()

        async def reported() -> bool:
            health = await current_health(cf, redis_client, DialerHealth.DISCONNECTED)
            return health is DialerHealth.CONNECTED

        await eventually(reported)
    finally:
        await dialer.aclose()


def test_callfile_needs_an_outgoing_directory(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, DIALER="callfile", ASTERISK_SPOOL_DIR=tmp_path)
    with pytest.raises(ConfigError, match="outgoing"):
        CallfileDialer(settings, aioredis.Redis(), keys_for(settings))


def test_ami_needs_a_host_and_a_user(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, DIALER="ami")
    with pytest.raises(ConfigError, match="ASTERISK_AMI_HOST"):
        build_dialer(settings, build_store(aioredis.Redis(), settings))


async def test_stale_and_broken_reports_are_ignored(
    settings: Settings, redis_client: aioredis.Redis
) -> None:
    presence = DialerPresence(redis_client, Keys(settings.REDIS_PREFIX))
    now = time.time()
    await presence.publish(PresenceReport("gone", "ami", "connected", now - 60))
    await presence.publish(PresenceReport("ancient", "ami", "connected", now - 7200))
    await redis_client.hset(Keys(settings.REDIS_PREFIX).dialer_presence, "junk", "{not json")
    fallback = DialerHealth.NOT_CONFIGURED
    assert await current_health(settings, redis_client, fallback) is fallback
    remaining = await redis_client.hkeys(Keys(settings.REDIS_PREFIX).dialer_presence)
    assert remaining == ["gone"]
    await presence.publish(PresenceReport("w1", "ami", "disconnected", now, "auth failed"))
    health = await current_health(settings, redis_client, fallback)
    assert health is DialerHealth.DISCONNECTED
    await presence.publish(PresenceReport("w2", "ami", "connected", now))
    assert await current_health(settings, redis_client, fallback) is DialerHealth.CONNECTED
