"""The campaign pacer against real Redis and RabbitMQ, one tick at a time: a pacer that died
mid-release leaves no row lost and none called twice, and a pause that lands between a row's
record and its release sends nothing and loses nothing once the campaign resumes."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.factories import lifecycle_for
from ttsqueue.broker.delays import DelayQueues
from ttsqueue.broker.publisher import Publisher
from ttsqueue.broker.topology import QueueNames
from ttsqueue.campaigns.overview import overview
from ttsqueue.campaigns.pacer import Pacer, build_pacer
from ttsqueue.campaigns.release import job_for_row, release
from ttsqueue.campaigns.spec import CampaignSpec, CampaignState, StoredRow, row_job_id
from ttsqueue.config import Settings
from ttsqueue.domain import JobStatus, iso, utcnow
from ttsqueue.policy.gate import build_calling_policy
from ttsqueue.store.factory import keys_for
from ttsqueue.store.jobs import JobStore
from ttsqueue.store.keys import Keys

pytestmark = pytest.mark.timeout(60)

CID = "0b13c1e2-6c1e-4f0e-9a57-2f1d8c6e9b3f"
ROWS = [StoredRow(2 + i, f"+5730050501{i:02d}", f"30050501{i:02d}", f"Hola {i}") for i in range(3)]


def spec() -> CampaignSpec:
    return CampaignSpec(
        campaign_id=CID,
        name="Citas",
        template="Hola {n}",
        language="es",
        engine="espeak",
        voice=None,
        max_retries=0,
        retry_delay=60,
        max_concurrent_calls=5,
        calls_per_minute=None,
        calling_windows=None,
        timezone=None,
        caller_id=None,
        created_at=iso(utcnow()) or "",
        total=len(ROWS),
        invalid=0,
    )


@pytest.fixture
async def pacer(settings: Settings, broker: AbstractRobustConnection, redis_client: Any) -> Pacer:
    store = JobStore(redis_client, Keys(settings.REDIS_PREFIX), settings.JOB_TTL_SECONDS)
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    built = build_pacer(
        redis_client,
        store,
        lifecycle_for(store),
        Publisher(broker, names),
        DelayQueues.of(settings),
        build_calling_policy(settings, redis_client, keys_for(settings)),
        "pacer-test",
    )
    now = utcnow()
    await built.campaigns.create(
        spec(),
        ROWS,
        [],
        state=CampaignState.RUNNING,
        now_iso=iso(now) or "",
        now_ms=int(now.timestamp() * 1000),
    )
    return built


async def release_row(pacer: Pacer, campaign: CampaignSpec, index: int, row: StoredRow) -> bool:
    """`release` of row `index` with the pacer's parts, as its tick would call it."""
    return await release(
        pacer.jobs,
        pacer.lifecycle,
        pacer.campaigns,
        pacer.publisher,
        pacer.delays,
        pacer.policy,
        campaign,
        index,
        row,
        0,
    )


async def ready_messages(broker: AbstractRobustConnection, settings: Settings) -> int:
    channel = await broker.channel()
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    queue = await channel.declare_queue(names.calls, passive=True)
    count = queue.declaration_result.message_count
    await channel.close()
    assert count is not None
    return count


async def test_a_row_created_by_a_pacer_that_died_is_released_once(
    pacer: Pacer, broker: AbstractRobustConnection, settings: Settings
) -> None:
    # The first pacer created row 0's record and died before recording the release.
    orphan = job_for_row(spec(), 0, ROWS[0], pacer.policy, utcnow())
    await pacer.lifecycle.create(orphan)
    await pacer.pace(CID)
    record = await pacer.campaigns.get(CID)
    assert record is not None
    assert record.released == 3
    assert await pacer.campaigns.inflight(CID) == sorted(row_job_id(CID, i) for i in range(3))
    assert await ready_messages(broker, settings) == 3
    unconfirmed = await pacer.jobs.unconfirmed_before(int(utcnow().timestamp() * 1000) + 1)
    assert unconfirmed == []
    # Nothing is released twice.
    await pacer.pace(CID)
    assert await ready_messages(broker, settings) == 3
    jobs = await pacer.jobs.get_many([row_job_id(CID, i) for i in range(3)])
    assert [(j.status, j.campaign_id, j.text) for j in jobs] == [
        (JobStatus.QUEUED, CID, f"Hola {i}") for i in range(3)
    ]


async def test_a_pause_between_record_and_release_sends_nothing(
    pacer: Pacer, broker: AbstractRobustConnection, settings: Settings
) -> None:
    moved = await pacer.campaigns.move(
        CID, CampaignState.PAUSED, frozenset({CampaignState.RUNNING}), at=iso(utcnow()) or ""
    )
    assert moved is CampaignState.RUNNING
    sent = await release_row(pacer, spec(), 0, ROWS[0])
    assert sent is False
    assert await pacer.jobs.get(row_job_id(CID, 0)) is None
    assert await ready_messages(broker, settings) == 0
    record = await pacer.campaigns.get(CID)
    assert record is not None
    assert record.released == 0
    # A paused campaign's tick releases nothing either.
    await pacer.pace(CID)
    assert await ready_messages(broker, settings) == 0


async def test_a_row_held_back_by_a_pause_is_released_as_a_job_on_resume(
    pacer: Pacer, broker: AbstractRobustConnection, settings: Settings
) -> None:
    at = iso(utcnow()) or ""
    await pacer.campaigns.move(CID, CampaignState.PAUSED, frozenset({CampaignState.RUNNING}), at=at)
    # The pacer read the campaign running, created row 0's record, then met the pause.
    held = await release_row(pacer, spec(), 0, ROWS[0])
    assert held is False
    resumed = await pacer.campaigns.move(
        CID, CampaignState.RUNNING, frozenset({CampaignState.PAUSED}), at=at
    )
    assert resumed is CampaignState.PAUSED
    await pacer.pace(CID)
    assert await ready_messages(broker, settings) == 3
    jobs = await pacer.jobs.get_many([row_job_id(CID, i) for i in range(3)])
    assert [(j.job_id, j.status, j.text) for j in jobs] == [
        (row_job_id(CID, i), JobStatus.QUEUED, f"Hola {i}") for i in range(3)
    ]


async def test_progress_read_while_rows_are_released_and_counted_shows_each_row_once(
    pacer: Pacer,
) -> None:
    """The progress a client polls while the pacer works: every row is pending, in flight or
    counted, never two of them at once nor none (the sum of the counts by status is the
    campaign's total at every read)."""
    total = 40
    rows = [
        StoredRow(2 + i, f"+5730060{i:05d}", f"30060{i:05d}", f"Hola {i}") for i in range(total)
    ]
    big = dataclasses.replace(
        spec(), campaign_id="6f0c3d0e-1a53-4f8e-b4a1-0d2b8f4c9e77", total=total
    )
    now = utcnow()
    await pacer.campaigns.create(
        big,
        rows,
        [],
        state=CampaignState.RUNNING,
        now_iso=iso(now) or "",
        now_ms=int(now.timestamp() * 1000),
    )
    stale = await pacer.campaigns.get(big.campaign_id)  # as a route read it before polling
    assert stale is not None
    ids = [row_job_id(big.campaign_id, i) for i in range(total)]

    async def pace_and_count() -> None:
        for index, row in enumerate(rows):
            sent = await release_row(pacer, big, index, row)
            assert sent
        for job_id in ids:
            await pacer.campaigns.count_finished(
                big.campaign_id, job_id, "completed", "answered", False
            )

    worker = asyncio.create_task(pace_and_count())
    sums: list[int] = []
    try:
        while not worker.done():
            view = await overview(pacer.campaigns, stale)
            sums.append(sum(view["counts"]["by_status"].values()))
    finally:
        await worker  # raises what the pacer side raised
    final = await overview(pacer.campaigns, stale)
    assert final["counts"]["by_status"] == {"completed": total}
    assert len(sums) > 10  # the reads did overlap the work
    assert set(sums) == {total}
