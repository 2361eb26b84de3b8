"""Trunk lines of several Asterisk servers on real Redis, shared by two TrunkGuard users (two
connections, as two workers): each server's max_concurrent_calls and calls_per_second hold,
a number only reaches the servers of its prefix, the most free server is chosen, a server that
is down is skipped, and priority still decides who gets a freed line."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import cast

import pytest
import redis.asyncio as aioredis
from aio_pika.abc import AbstractRobustConnection

from tests.asterisk.helpers import wait_jobs
from tests.conftest import in_process_api
from tests.in_process import publish_job, running_worker
from ttsqueue.asterisk_servers import AsteriskServer
from ttsqueue.config import DialerName, Settings
from ttsqueue.domain import JobStatus, Priority
from ttsqueue.store.factory import build_store
from ttsqueue.store.keys import Keys
from ttsqueue.worker.trunk import LineServer, TrunkGuard, line_servers

pytestmark = pytest.mark.timeout(60)

FAST = 1_000_000.0
HIGH, NORMAL = Priority.HIGH, Priority.NORMAL
CO, US = "+573005550006", "+12125550100"


def two_guards(
    first: aioredis.Redis,
    second: aioredis.Redis,
    keys: Keys,
    servers: list[LineServer],
    is_up: Callable[[str], bool] = lambda _: True,
) -> tuple[TrunkGuard, TrunkGuard]:
    return (
        TrunkGuard(first, keys, servers=servers, is_up=is_up),
        TrunkGuard(second, keys, servers=servers, is_up=is_up),
    )


async def test_each_servers_limit_holds_across_workers_and_the_freest_is_chosen(
    redis_client: aioredis.Redis, other_client: aioredis.Redis, keys: Keys
) -> None:
    servers = [LineServer("a", 3, FAST), LineServer("b", 1, FAST)]
    one, two = two_guards(redis_client, other_client, keys, servers)
    # Most free lines first: a (3 free), a (2 free) ... then a or b with one each.
    granted = [await (one if n % 2 else two).try_grant(f"call-{n}", NORMAL, CO) for n in range(6)]
    assert granted[:2] == ["a", "a"]
    assert Counter(granted[:4]) == {"a": 3, "b": 1}
    assert granted[4:] == [None, None]  # every line of both servers taken
    assert await one.active_by_server() == {"a": 3, "b": 1}
    assert await redis_client.zcard(keys.server_lines("a")) == 3
    assert await redis_client.zcard(keys.server_lines("b")) == 1
    # A line freed on b goes to the next waiter, on b.
    b_holder = f"call-{granted.index('b')}"
    await two.release(b_holder)
    assert await one.try_grant("call-4", NORMAL, CO) == "b"
    assert await two.try_grant("call-5", NORMAL, CO) is None
    assert await one.active() == 4


async def test_each_servers_rate_holds_across_workers(
    redis_client: aioredis.Redis, other_client: aioredis.Redis, keys: Keys
) -> None:
    # a: one call per 2 s; b: no rate to speak of. Only a serves Colombia.
    servers = [LineServer("a", 10, 0.5, ("+57",)), LineServer("b", 10, FAST)]
    one, two = two_guards(redis_client, other_client, keys, servers)
    assert await one.try_grant("co-1", NORMAL, CO) == "a"
    started = time.monotonic()
    # The next Colombian call waits for a's rate, whichever worker asks; b's calls do not.
    assert await two.try_grant("co-2", NORMAL, CO) == "b"  # b is a candidate too (no prefixes)
    await two.release("co-2")
    only_a = [LineServer("a", 10, 0.5, ("+57",)), LineServer("b", 10, FAST, ("+1",))]
    three, four = two_guards(redis_client, other_client, keys, only_a)
    assert await four.try_grant("co-3", NORMAL, CO) is None
    assert await three.try_grant("us-1", NORMAL, US) == "b"
    assert await four.try_grant("us-2", NORMAL, US) == "b"
    assert await four.acquire("co-3", NORMAL, CO) == "a"
    assert time.monotonic() - started >= 1.5  # a's 2 s spacing, less the time already gone
    rate_a = cast(
        list[tuple[str, float]],
        await redis_client.zrange(keys.server_rate("a"), 0, -1, withscores=True),
    )
    assert len(rate_a) == 2
    assert rate_a[1][1] - rate_a[0][1] >= 1999


async def test_a_number_reaches_only_the_servers_of_its_prefix(
    redis_client: aioredis.Redis, other_client: aioredis.Redis, keys: Keys
) -> None:
    servers = [LineServer("co", 2, FAST, ("+57",)), LineServer("us", 2, FAST, ("+1",))]
    one, two = two_guards(redis_client, other_client, keys, servers)
    assert [await one.try_grant(f"co-{n}", NORMAL, CO) for n in range(3)] == ["co", "co", None]
    # Colombia's lines are full: a US call still gets one, on the US server only.
    assert await two.try_grant("us-1", NORMAL, US) == "us"
    assert await two.try_grant("co-2", NORMAL, CO) is None
    assert await one.active_by_server() == {"co": 2, "us": 1}


async def test_a_server_that_is_down_is_skipped_and_its_share_moves(
    redis_client: aioredis.Redis, other_client: aioredis.Redis, keys: Keys
) -> None:
    down: set[str] = set()
    servers = [LineServer("a", 5, FAST), LineServer("b", 2, FAST)]
    one, two = two_guards(redis_client, other_client, keys, servers, lambda n: n not in down)
    assert await one.try_grant("c1", NORMAL, CO) == "a"  # a has the most free lines
    down.add("a")
    # a looks freest, but it is down: b takes the calls, then nobody until a line frees.
    assert [await two.try_grant(f"c{n}", NORMAL, CO) for n in (2, 3, 4)] == ["b", "b", None]
    assert await one.active_by_server() == {"a": 1, "b": 2}
    down.discard("a")
    assert await two.try_grant("c4", NORMAL, CO) == "a"  # back up: its share comes back


async def test_a_waiter_for_a_full_server_does_not_hold_up_another_servers_line(
    redis_client: aioredis.Redis, other_client: aioredis.Redis, keys: Keys
) -> None:
    servers = [LineServer("co", 1, FAST, ("+57",)), LineServer("us", 1, FAST, ("+1",))]
    one, two = two_guards(redis_client, other_client, keys, servers)
    assert await one.try_grant("co-held", NORMAL, CO) == "co"
    # An alert for Colombia waits first (co is full) ...
    assert await one.try_grant("co-alert", HIGH, CO) is None
    # ... yet a normal US call behind it takes the free US line: it cannot use co's.
    assert await two.try_grant("us-normal", NORMAL, US) == "us"
    # On a shared server, priority still decides: the alert goes before an older normal call.
    await one.release("co-held")
    assert await two.try_grant("co-normal", NORMAL, CO) is None
    assert await one.try_grant("co-alert", HIGH, CO) == "co"
    waiting = await one.waiting()
    assert waiting == {HIGH: [], NORMAL: ["co-normal"]}


async def test_priority_across_shared_servers_and_leases_renewed_where_held(
    redis_client: aioredis.Redis, other_client: aioredis.Redis, keys: Keys
) -> None:
    servers = [LineServer("a", 1, FAST), LineServer("b", 1, FAST)]
    one, two = two_guards(redis_client, other_client, keys, servers)
    held = {await one.try_grant("h1", NORMAL, CO), await two.try_grant("h2", NORMAL, CO)}
    assert held == {"a", "b"}
    # Two normal waiters, then an alert: the alert takes the first freed line, whichever.
    assert await one.try_grant("n1", NORMAL, CO) is None
    assert await two.try_grant("n2", NORMAL, CO) is None
    assert await one.try_grant("alert", HIGH, CO) is None
    await two.release("h2")
    assert await one.try_grant("n1", NORMAL, CO) is None
    alert_server = await two.try_grant("alert", HIGH, CO)
    assert alert_server is not None
    # A placed call's line is found again wherever it is (a redelivery follows it).
    assert await one.try_grant("alert", HIGH, None) == alert_server
    assert await one.renew("alert", alert_server)
    await one.release("h1")
    assert await two.try_grant("n1", NORMAL, CO) is not None
    assert await one.active() == 2


async def test_slots_spread_concurrent_calls_over_both_servers(
    redis_client: aioredis.Redis, other_client: aioredis.Redis, keys: Keys
) -> None:
    servers = [LineServer("a", 2, FAST), LineServer("b", 3, FAST)]
    one, two = two_guards(redis_client, other_client, keys, servers)
    live: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    used: Counter[str] = Counter()

    async def call(guard: TrunkGuard, n: int) -> None:
        async with guard.slot(f"call-{n}", HIGH if n % 4 == 0 else NORMAL, CO) as line:
            live[line.server] += 1
            used[line.server] += 1
            peak[line.server] = max(peak[line.server], live[line.server])
            await asyncio.sleep(0.05)
            live[line.server] -= 1

    await asyncio.wait_for(
        asyncio.gather(*(call(one if n % 2 else two, n) for n in range(30))), timeout=40
    )
    assert peak == {"a": 2, "b": 3}
    assert used["a"] > 0
    assert used["b"] > 0
    assert used.total() == 30
    assert await one.active_by_server() == {"a": 0, "b": 0}
    assert await one.waiting() == {HIGH: [], NORMAL: []}
    assert await redis_client.hlen(keys.line_waiter_servers) == 0


@pytest.fixture
def servers_settings(settings: Settings) -> Settings:
    def server(name: str, limit: int) -> AsteriskServer:
        return AsteriskServer(
            name=name,
            ami_host="127.0.0.1",
            ami_user="tts",
            max_concurrent_calls=limit,
            calls_per_second=FAST / 1000,
            prefixes=("+57",),
        )

    return settings.model_copy(
        update={
            "DIALER": DialerName.SIMULATOR,
            # Both call Colombia only (+57).
            "ASTERISK_SERVERS": [server("pbx-a", 2), server("pbx-b", 1)],
        }
    )


async def test_stats_and_metrics_show_each_servers_lines_and_the_line_queue(
    servers_settings: Settings, broker: AbstractRobustConnection, redis_client: aioredis.Redis
) -> None:
    keys = Keys(servers_settings.REDIS_PREFIX)
    guard = TrunkGuard(redis_client, keys, servers=line_servers(servers_settings))
    # acquire: three grants within a server's 1 ms rate spacing would find no token.
    granted = [await guard.acquire(f"c{n}", NORMAL, CO) for n in range(3)]
    assert Counter(granted) == {"pbx-a": 2, "pbx-b": 1}
    assert await guard.try_grant("alert", HIGH, CO) is None
    assert await guard.try_grant("late", NORMAL, CO) is None
    async with in_process_api(servers_settings) as api:
        stats = (await api.get("/queue/stats")).json()["statistics"]["calls"]
        metrics = (await api.get("/metrics")).text
        health = (await api.get("/health")).json()
    assert (stats["active"], stats["limit"]) == (3, 3)
    assert [(s["name"], s["active"], s["limit"]) for s in stats["servers"]] == [
        ("pbx-a", 2, 2),
        ("pbx-b", 1, 1),
    ]
    assert stats["waiting"] == {"high": 1, "normal": 1}
    # No worker reports sessions (the simulator has none): what /health says of the backend.
    assert health["asterisk_servers"] == {"pbx-a": "not_configured", "pbx-b": "not_configured"}
    for line in (
        'ttsq_asterisk_calls_active{server="pbx-a"} 2.0',
        'ttsq_asterisk_calls_limit{server="pbx-b"} 1.0',
        'ttsq_asterisk_up{server="pbx-a"} 0.0',
        'ttsq_line_waiters{priority="high"} 1.0',
        'ttsq_line_waiters{priority="normal"} 1.0',
        "ttsq_calls_limit 3.0",
    ):
        assert line in metrics, line


async def test_a_worker_places_simulated_calls_on_every_servers_lines(
    servers_settings: Settings, broker: AbstractRobustConnection, redis_client: aioredis.Redis
) -> None:
    settings = servers_settings.model_copy(
        update={"SIMULATOR_TIME_SCALE": 0.05, "WORKER_CONCURRENCY": 4}
    )
    store = build_store(redis_client, settings).jobs
    ids = [await publish_job(broker, settings, store, phone="3005050149") for _ in range(9)]
    # Spain: no server's prefixes match (the API refuses it; a job that got this far fails).
    spain = await publish_job(broker, settings, store, phone="600000000", e164="+34600000000")
    keys = Keys(settings.REDIS_PREFIX)
    peak: Counter[str] = Counter()

    async def sample_lines() -> None:
        while True:
            for name in ("pbx-a", "pbx-b"):
                live = await redis_client.zcount(
                    keys.server_lines(name), int(time.time() * 1000), "+inf"
                )
                peak[name] = max(peak[name], live)
            await asyncio.sleep(0.005)

    async with running_worker(settings):
        sampler = asyncio.create_task(sample_lines())
        try:
            jobs = await wait_jobs(store, [*ids, spain], timeout=60)
        finally:
            sampler.cancel()
    assert {jobs[j].status for j in ids} == {JobStatus.COMPLETED}
    # Every call took a line of one of the servers (each origination is in its rate window).
    originations = {
        name: await redis_client.zcard(keys.server_rate(name)) for name in ("pbx-a", "pbx-b")
    }
    assert sum(originations.values()) == 9
    assert originations["pbx-a"] > 0
    assert originations["pbx-b"] > 0
    assert peak["pbx-a"] <= 2
    assert peak["pbx-b"] <= 1
    assert jobs[spain].status is JobStatus.FAILED
    assert "no_asterisk_server" in str(jobs[spain].error), jobs[spain]
