"""Strict priority holds to the dial: with every trunk line busy and normal jobs waiting in
every worker, a high-priority job takes the next free line.

Three workers run in this process against real RabbitMQ and Redis, with the simulator dialer
stretched so calls last seconds. Everything is judged from the jobs' histories in Redis: how
many normal calls started dialing between the alert's acceptance (`queued`) and its dial
(`calling`), and how many calls were ever live at once.

CALLS_PER_SECOND=1 spaces the dials, and so (calls of one length) the moments lines free, a
second apart: the one normal call the guarantee allows is the line that frees while the alert
travels from the API to a worker; a second one would need that trip to take over a second.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from tests.conftest import make_settings
from tests.in_process import eventually, running_workers
from ttsqueue.config import Settings
from ttsqueue.store.keys import Keys
from ttsqueue.worker import main as worker_main
from ttsqueue.worker.trunk import HIGH_STREAK, TrunkGuard

pytestmark = pytest.mark.timeout(180)

CALL = {"text": "Aviso", "phone_number": "3005050149"}


@dataclass(frozen=True, slots=True)
class Scenario:
    workers: int
    concurrency: int
    lines: int
    normal_jobs: int
    time_scale: float  # answered simulated call: (3 s + the audio) x this


OPERATOR = Scenario(workers=3, concurrency=4, lines=2, normal_jobs=30, time_scale=1.0)
TEN_LINES = Scenario(workers=3, concurrency=8, lines=10, normal_jobs=40, time_scale=3.5)


def scenario_settings(tmp_path: Path, scenario: Scenario) -> Settings:
    return make_settings(
        tmp_path,
        WORKER_CONCURRENCY=scenario.concurrency,
        MAX_CONCURRENT_CALLS=scenario.lines,
        CALLS_PER_SECOND=1.0,
        SIMULATOR_TIME_SCALE=scenario.time_scale,
    )


def moment(entry: dict[str, Any]) -> float:
    return datetime.fromisoformat(entry["at"]).timestamp()


def first(history: list[dict[str, Any]], status: str) -> float | None:
    return next((moment(h) for h in history if h["status"] == status), None)


def peak_live(calls: list[tuple[float, float]]) -> int:
    """The most [start, end] intervals that overlap at any moment."""
    edges = sorted([(start, 1) for start, _ in calls] + [(end, -1) for _, end in calls])
    live = peak = 0
    for _, step in edges:
        live += step
        peak = max(peak, live)
    return peak


async def run_scenario(
    api: httpx.AsyncClient, redis: aioredis.Redis, settings: Settings, scenario: Scenario
) -> None:
    keys = Keys(settings.REDIS_PREFIX)

    async def saturated() -> bool:
        live = await redis.zcount(keys.call_slots, int(time.time() * 1000), "+inf")
        return live >= scenario.lines and await redis.zcard(keys.line_waiters_normal) > 0

    normal_ids = []
    for _ in range(scenario.normal_jobs):
        response = await api.post("/tts/call", json=CALL)
        assert response.status_code == 202, response.text
        normal_ids.append(response.json()["job_id"])
    async with running_workers(settings, scenario.workers):
        await eventually(saturated, what="every line busy with normal jobs waiting")
        response = await api.post("/tts/call", json={**CALL, "priority": "high"})
        assert response.status_code == 202, response.text
        high_id = response.json()["job_id"]

        async def high_dialed() -> bool:
            body = (await api.get(f"/tts/status/{high_id}")).json()
            return first(body["history"], "calling") is not None

        await eventually(high_dialed, what="the high-priority job to dial")
        # The workers stop without waiting for the calls still live.
        stopped_at = time.time()

    high = (await api.get(f"/tts/status/{high_id}")).json()
    accepted, dialed = first(high["history"], "queued"), first(high["history"], "calling")
    assert accepted is not None
    assert dialed is not None
    calls: list[tuple[float, float]] = []
    overtaking = []
    for job_id in [*normal_ids, high_id]:
        history = (await api.get(f"/tts/status/{job_id}")).json()["history"]
        start = first(history, "calling")
        if start is None:
            continue
        end = next(
            (moment(h) for h in history if h["status"] in {"completed", "failed", "retrying"}),
            stopped_at,
        )
        calls.append((start, end))
        if job_id != high_id and accepted < start < dialed:
            overtaking.append(job_id)
    assert len(overtaking) <= 1, (
        f"{len(overtaking)} normal calls dialed in the {dialed - accepted:.2f} s between the "
        "alert's acceptance and its dial"
    )
    # The trunk limit held (each call's history interval lies inside its line lease).
    assert len(calls) > scenario.lines
    assert peak_live(calls) <= scenario.lines


@pytest.fixture(autouse=True)
def short_shutdown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_main, "SHUTDOWN_GRACE_S", 0.5)


@pytest.fixture(params=[OPERATOR, TEN_LINES], ids=["3x4-2-lines", "3x8-10-lines"])
def scenario(request: pytest.FixtureRequest) -> Scenario:
    chosen: Scenario = request.param
    return chosen


@pytest.fixture
def settings(scenario: Scenario, tmp_path: Path) -> Settings:
    return scenario_settings(tmp_path, scenario)


async def test_a_high_job_takes_the_next_free_line(
    api: httpx.AsyncClient, redis_client: aioredis.Redis, settings: Settings, scenario: Scenario
) -> None:
    await run_scenario(api, redis_client, settings, scenario)


STREAM = Scenario(workers=2, concurrency=4, lines=1, normal_jobs=3, time_scale=0.05)


@pytest.mark.parametrize("scenario", [STREAM], ids=["stream-of-alerts"])
async def test_normal_jobs_still_dial_under_a_stream_of_alerts(
    api: httpx.AsyncClient, redis_client: aioredis.Redis, settings: Settings
) -> None:
    settings = settings.model_copy(update={"CALLS_PER_SECOND": 1000.0})
    keys = Keys(settings.REDIS_PREFIX)
    # The test holds the one line until every normal job and a streak of alerts wait for it.
    holder = TrunkGuard(redis_client, keys, max_calls=1, calls_per_second=1000.0)
    assert await holder.try_acquire("held-by-the-test")
    normal_ids = []
    for _ in range(STREAM.normal_jobs):
        response = await api.post("/tts/call", json=CALL)
        assert response.status_code == 202, response.text
        normal_ids.append(response.json()["job_id"])
    async with running_workers(settings, STREAM.workers):

        async def waiting(key: str, count: int) -> bool:
            return await redis_client.zcard(key) >= count

        await eventually(
            lambda: waiting(keys.line_waiters_normal, STREAM.normal_jobs),
            what="normal jobs in line",
        )
        high_ids = []
        for _ in range(4 * HIGH_STREAK):
            response = await api.post("/tts/call", json={**CALL, "priority": "high"})
            assert response.status_code == 202, response.text
            high_ids.append(response.json()["job_id"])
        await eventually(
            lambda: waiting(keys.line_waiters_high, HIGH_STREAK), what="alerts in line"
        )
        await holder.release("held-by-the-test")

        async def all_dialed() -> bool:
            for job_id in [*normal_ids, *high_ids]:
                body = (await api.get(f"/tts/status/{job_id}")).json()
                if first(body["history"], "calling") is None:
                    return False
            return True

        await eventually(all_dialed, 120, "every job to dial")
    dials: list[tuple[float, str]] = []
    for job_id in [*normal_ids, *high_ids]:
        body = (await api.get(f"/tts/status/{job_id}")).json()
        start = first(body["history"], "calling")
        assert start is not None
        dials.append((start, "normal" if job_id in normal_ids else "high"))
    order = [kind for _, kind in sorted(dials)]
    # Every normal job dialed while alerts were still waiting, and never after more than
    # HIGH_STREAK alerts in a row.
    normal_at = [i for i, kind in enumerate(order) if kind == "normal"]
    assert "high" in order[normal_at[-1] :], order
    gaps = [b - a - 1 for a, b in itertools.pairwise([-1, *normal_at])]
    assert max(gaps) <= HIGH_STREAK, order
