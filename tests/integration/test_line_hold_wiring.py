"""A worker's trunk holds a line after a call as long as its dialer asks: call files learn a
call's end from the dialplan, before Asterisk has torn the channel down; AMI and the
simulator learn it once the channel is gone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aio_pika.abc import AbstractRobustConnection

from ttsqueue.broker.publisher import Publisher
from ttsqueue.broker.topology import QueueNames
from ttsqueue.config import DialerName, Settings
from ttsqueue.dialer.callfile.dialer import LINE_HOLD_S
from ttsqueue.worker.main import build_context

pytestmark = pytest.mark.timeout(60)


async def trunk_hold(settings: Settings, broker: AbstractRobustConnection, redis: Any) -> float:
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    ctx = await build_context(settings, redis, Publisher(broker, names))
    try:
        assert ctx.dialer.line_hold_s == ctx.trunk.line_hold_s
        return ctx.trunk.line_hold_s
    finally:
        await ctx.dialer.aclose()


async def test_a_call_file_worker_holds_its_lines_after_each_call(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any, tmp_path: Path
) -> None:
    (tmp_path / "outgoing").mkdir()
    callfile = settings.model_copy(
        update={
            "DIALER": DialerName.CALLFILE,
            "ASTERISK_SPOOL_DIR": tmp_path,
            "ASTERISK_CHANNEL": "PJSIP/{number}@trunk",
        }
    )
    assert await trunk_hold(callfile, broker, redis_client) == LINE_HOLD_S > 0


async def test_a_simulated_worker_frees_its_lines_at_once(
    settings: Settings, broker: AbstractRobustConnection, redis_client: Any
) -> None:
    simulated = settings.model_copy(update={"DIALER": DialerName.SIMULATOR})
    assert await trunk_hold(simulated, broker, redis_client) == 0
