"""Several Asterisk servers (ASTERISK_SERVERS) against two real private Asterisks: calls spread
over both, each server's max_concurrent_calls held (counted by each Asterisk itself), numbers
placed on the server of their prefix (submitted through the API), and one
server stopped mid-run: its calls in flight end with a clear outcome, its share moves to the
other, no job is lost or stuck and no call is dialed twice. `/health`, `/queue/stats` and
`/metrics` tell each server's state."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.asterisk.fake_phones import CHANNEL_TEMPLATE, number
from tests.asterisk.helpers import (
    LiveCallSampler,
    call_id,
    publish_many,
    wait_jobs,
)
from tests.asterisk.install import AsteriskInstall
from tests.asterisk.instance import PrivateAsterisk
from tests.conftest import in_process_api
from tests.e2e.test_asterisk_crash import until
from tests.in_process import eventually, running_worker
from ttsqueue.asterisk_servers import AsteriskServer
from ttsqueue.config import DialerName, Settings
from ttsqueue.domain import Job, JobStatus
from ttsqueue.store.factory import build_store
from ttsqueue.store.keys import Keys
from ttsqueue.store.presence import DialerPresence

pytestmark = pytest.mark.timeout(240)

LIMIT = 2
NAMES = ("pbx-a", "pbx-b")
# About 7 s of speech: still playing when an Asterisk goes away.
LONG = (
    "Aviso de la administración: mañana se suspende el servicio de agua entre las ocho "
    "y las doce del día por mantenimiento de la red."
)
PLAYED = ("completed", "answered", "played")


@pytest.fixture
def pbxs(asterisk_install: AsteriskInstall) -> Iterator[dict[str, PrivateAsterisk]]:
    with (
        PrivateAsterisk(asterisk_install, name="ttsq-ast-a-") as first,
        PrivateAsterisk(asterisk_install, name="ttsq-ast-b-") as second,
    ):
        yield dict(zip(NAMES, (first, second), strict=True))


def server_of(name: str, pbx: PrivateAsterisk) -> AsteriskServer:
    return AsteriskServer(
        name=name,
        ami_host="127.0.0.1",
        ami_port=pbx.ami_port,
        ami_user=pbx.ami_user,
        ami_secret=pbx.ami_secret,
        channel=CHANNEL_TEMPLATE,
        max_concurrent_calls=LIMIT,
        calls_per_second=50.0,
    )


@pytest.fixture
def settings(settings: Settings, pbxs: dict[str, PrivateAsterisk]) -> Settings:
    return settings.model_copy(
        update={
            "DIALER": DialerName.AMI,
            "ASTERISK_SERVERS": [server_of(name, pbx) for name, pbx in pbxs.items()],
            "WORKER_CONCURRENCY": 10,
            "CALL_RING_TIMEOUT": 5,
            "TECH_RETRY_BASE_SECONDS": 1.0,
            "TECH_MAX_RETRIES": 5,
        }
    )


async def servers_are(settings: Settings, redis: Any, wanted: dict[str, str]) -> None:
    presence = DialerPresence(redis, Keys(settings.REDIS_PREFIX))

    async def reached() -> bool:
        return await presence.server_health() == wanted

    await eventually(reached, 40, f"Asterisk servers {wanted}")


async def placed_on(redis: Any, settings: Settings, job_ids: list[str]) -> dict[str, str]:
    """The server each job's first attempt was placed on, from its call record."""
    keys = Keys(settings.REDIS_PREFIX)
    return {
        job_id: str(await redis.hget(keys.call_record(call_id(job_id)), "server"))
        for job_id in job_ids
    }


def rings(pbxs: dict[str, PrivateAsterisk], job_ids: list[str]) -> dict[str, dict[str, int]]:
    """Dials of each job's first attempt as each Asterisk logged them."""
    counted = {name: pbx.rings() for name, pbx in pbxs.items()}
    return {name: {j: found[call_id(j)] for j in job_ids} for name, found in counted.items()}


async def test_calls_spread_over_both_servers_within_each_limit(
    settings: Settings,
    broker: AbstractRobustConnection,
    redis_client: Any,
    pbxs: dict[str, PrivateAsterisk],
) -> None:
    store = build_store(redis_client, settings).jobs
    ids = await publish_many(
        broker, settings, store, [number("0006")] * 12, max_retries=0, text="Hola, buenos días."
    )
    with LiveCallSampler(pbxs["pbx-a"]) as on_a, LiveCallSampler(pbxs["pbx-b"]) as on_b:
        async with running_worker(settings):
            await servers_are(settings, redis_client, dict.fromkeys(NAMES, "connected"))
            jobs = await wait_jobs(store, ids, timeout=150)
    assert {(j.status, j.call.outcome, j.call.reason) for j in jobs.values()} == {PLAYED}
    # Each Asterisk's own count of live calls: never above its limit, and both kept busy.
    assert on_a.peak == LIMIT, collections.Counter(on_a.samples)
    assert on_b.peak == LIMIT, collections.Counter(on_b.samples)
    # Each call rang once, on the server its line was granted on, and never on the other.
    where = await placed_on(redis_client, settings, ids)
    dialed = rings(pbxs, ids)
    for job_id in ids:
        other = NAMES[1 - NAMES.index(where[job_id])]
        assert (dialed[where[job_id]][job_id], dialed[other][job_id]) == (1, 0), job_id
    spread = collections.Counter(where.values())
    assert set(spread) == set(NAMES)
    assert min(spread.values()) >= 3, spread
    assert pbxs["pbx-a"].live_calls() == pbxs["pbx-b"].live_calls() == []


def ended_clearly(job: Job) -> bool:
    """A call cut when its Asterisk went away: answered and cut short (the end seen, or
    settled once the message must be over), or given up as lost once it must be over."""
    if job.status is JobStatus.COMPLETED:
        return job.call.outcome == "answered" and job.call.reason in {
            "played",
            "hangup_during_playback",
            "hangup_not_seen",
        }
    return (job.status, job.call.outcome, job.call.reason) == ("failed", "failed", "lost_track")


@pytest.mark.parametrize("how", ["stop", "kill"])
async def test_a_server_stopped_mid_run_gives_its_share_to_the_other(
    api: httpx.AsyncClient,
    settings: Settings,
    broker: AbstractRobustConnection,
    redis_client: Any,
    pbxs: dict[str, PrivateAsterisk],
    how: str,
) -> None:
    """`stop`: Asterisk hangs its calls up on the way down (the Hangups reach the workers);
    `kill`: SIGKILL, nothing more is heard of its calls, which are settled once their message
    must be over."""
    store = build_store(redis_client, settings).jobs
    a, b = pbxs["pbx-a"], pbxs["pbx-b"]
    async with running_worker(settings):
        await servers_are(settings, redis_client, dict.fromkeys(NAMES, "connected"))
        first = await publish_many(
            broker, settings, store, [number("0006")] * (2 * LIMIT), max_retries=0, text=LONG
        )
        await wait_jobs(store, first, frozenset({JobStatus.CALLING}), timeout=60)
        await until(lambda: len(a.live_calls()) == len(b.live_calls()) == LIMIT, timeout=30)
        await asyncio.to_thread(a.stop if how == "stop" else a.kill)
        await servers_are(settings, redis_client, {"pbx-a": "disconnected", "pbx-b": "connected"})
        started = time.monotonic()
        with LiveCallSampler(b) as on_b:
            later = await publish_many(
                broker, settings, store, [number("0006")] * 6, max_retries=0, text="Hola."
            )
            jobs = await wait_jobs(store, first + later, timeout=150)
        health = (await api.get("/health")).json()
        stats = (await api.get("/queue/stats")).json()["statistics"]
        metrics = (await api.get("/metrics")).text
    where = await placed_on(redis_client, settings, first + later)
    dialed = rings(pbxs, first + later)
    # The calls up on a when it stopped ended clearly; those on b played to the end.
    on_a = [j for j in first if where[j] == "pbx-a"]
    assert len(on_a) == LIMIT
    for job_id in on_a:
        assert ended_clearly(jobs[job_id]), jobs[job_id].call
    for job_id in first:
        if where[job_id] == "pbx-b":
            assert (jobs[job_id].status, jobs[job_id].call.reason) == ("completed", "played")
    # Everything after the stop went to b, within b's limit, and played.
    for job_id in later:
        job = jobs[job_id]
        assert (job.status, job.call.outcome, job.call.reason) == PLAYED, job.call
        assert where[job_id] == "pbx-b"
    assert on_b.peak <= LIMIT, collections.Counter(on_b.samples)
    assert time.monotonic() - started < 150
    # Every job dialed exactly once, on one server only.
    for job_id in first + later:
        assert dialed["pbx-a"][job_id] + dialed["pbx-b"][job_id] == 1, job_id
    assert all(dialed["pbx-a"][j] == 0 for j in later)
    # Each server's state, as the API shows it.
    assert health["asterisk_servers"] == {"pbx-a": "disconnected", "pbx-b": "connected"}
    assert health["connections"]["asterisk"] == "connected"
    servers = {row["name"]: row for row in stats["calls"]["servers"]}
    assert servers["pbx-a"]["state"] == "disconnected"
    assert (servers["pbx-b"]["state"], servers["pbx-b"]["limit"]) == ("connected", LIMIT)
    assert stats["calls"]["waiting"] == {"high": 0, "normal": 0}
    assert 'ttsq_asterisk_up{server="pbx-a"} 0.0' in metrics
    assert 'ttsq_asterisk_up{server="pbx-b"} 1.0' in metrics


async def test_numbers_are_placed_on_the_server_of_their_prefix(
    settings: Settings,
    broker: AbstractRobustConnection,
    redis_client: Any,
    pbxs: dict[str, PrivateAsterisk],
) -> None:
    colombia, usa = (
        server.model_copy(update={"prefixes": (prefix,)})
        for server, prefix in zip(settings.ASTERISK_SERVERS, ("+57", "+1"), strict=True)
    )
    settings = settings.model_copy(update={"ASTERISK_SERVERS": [colombia, usa]})
    store = build_store(redis_client, settings).jobs
    phones = {"pbx-a": [number("0006")] * 3, "pbx-b": ["+1 212 555 0006"] * 3}
    submitted: dict[str, list[str]] = {}
    async with in_process_api(settings) as client, running_worker(settings):
        for name, numbers in phones.items():
            submitted[name] = []
            for phone in numbers:
                reply = await client.post(
                    "/tts/call", json={"text": "Hola.", "phone_number": phone, "max_retries": 0}
                )
                assert reply.status_code == 202, reply.text
                submitted[name].append(reply.json()["job_id"])
        # Spain: no server calls it, refused before it is queued.
        spain = await client.post(
            "/tts/call", json={"text": "Hola.", "phone_number": "+34 600 000 006"}
        )
        jobs = await wait_jobs(store, [*submitted["pbx-a"], *submitted["pbx-b"]], timeout=90)
    assert spain.status_code == 422
    assert spain.json()["code"] == "no_asterisk_server"
    assert {(j.status, j.call.reason) for j in jobs.values()} == {("completed", "played")}
    for name, ids in submitted.items():
        other = NAMES[1 - NAMES.index(name)]
        assert await placed_on(redis_client, settings, ids) == dict.fromkeys(ids, name)
        dialed = rings(pbxs, ids)
        assert (sum(dialed[name].values()), sum(dialed[other].values())) == (3, 0), name
    # What each Asterisk dialed: national numbers of its own country only.
    assert set(pbxs["pbx-a"].rings_by_number()) == {number("0006")}
    assert set(pbxs["pbx-b"].rings_by_number()) == {"2125550006"}
