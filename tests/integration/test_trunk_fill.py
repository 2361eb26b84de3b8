"""Workers on the default WORKER_CONCURRENCY fill every trunk line: a followed call holds a
line, not a worker slot, so three workers of one slot each keep ten calls live."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from tests.conftest import make_settings
from tests.in_process import eventually, running_workers
from ttsqueue.config import Settings
from ttsqueue.store.keys import Keys
from ttsqueue.worker import main as worker_main

pytestmark = pytest.mark.timeout(120)

LINES = 10
CALL = {"text": "Aviso", "phone_number": "3005050149"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # WORKER_CONCURRENCY is left at its default.
    return make_settings(
        tmp_path, MAX_CONCURRENT_CALLS=LINES, CALLS_PER_SECOND=50.0, SIMULATOR_TIME_SCALE=2.0
    )


async def test_three_workers_on_the_defaults_keep_every_line_busy(
    api: httpx.AsyncClient,
    redis_client: aioredis.Redis,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_main, "SHUTDOWN_GRACE_S", 0.5)
    assert settings.WORKER_CONCURRENCY == 1  # the default
    keys = Keys(settings.REDIS_PREFIX)
    for _ in range(2 * LINES):
        assert (await api.post("/tts/call", json=CALL)).status_code == 202
    peak = 0

    async def all_lines_live() -> bool:
        nonlocal peak
        live = await redis_client.zcount(keys.call_slots, int(time.time() * 1000), "+inf")
        peak = max(peak, live)
        return live == LINES

    async with running_workers(settings, 3):
        await eventually(all_lines_live, what=f"{LINES} live calls from 3 workers of one slot")
    assert peak == LINES
