"""Releasing a campaign's rows as jobs at its pace, in every worker (one at a time per campaign).

Each tick, for each active campaign whose lock it gets, a worker
1. counts the campaign's jobs that finished since the last tick (status, outcome, confirmed);
2. when the campaign is running, releases the next rows: no more than `max_concurrent_calls`
   of its jobs waiting or in progress at once (jobs between telephony retries excepted), and
   no faster than `calls_per_minute`;
3. completes the campaign once every row is released and every job finished, and retires a
   canceled one once its last job is counted.

Campaign jobs go to the normal queue a few at a time, so a `priority: high` call (or any
single call) never waits behind a campaign's backlog.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

from ttsqueue.broker.delays import DelayQueues
from ttsqueue.broker.publisher import Publisher
from ttsqueue.campaigns.release import release
from ttsqueue.campaigns.spec import CampaignState
from ttsqueue.campaigns.store import CampaignRecord, CampaignStore
from ttsqueue.domain import CANCELABLE, JobStatus, iso, utcnow
from ttsqueue.errors import StoreUnavailableError
from ttsqueue.logs import get_logger
from ttsqueue.policy.gate import CallingPolicy
from ttsqueue.store.jobs import JobStore
from ttsqueue.store.lifecycle import JobLifecycle

log = get_logger("ttsqueue.campaigns.pacer")

TICK_S = 0.25
LOCK_MS = 10_000
# Jobs of a campaign not counted against its concurrency: waiting for a telephony retry.
_NOT_ACTIVE = frozenset({JobStatus.RETRYING.value})
_TERMINAL = frozenset(s.value for s in JobStatus if s.terminal)


@dataclass(slots=True)
class Pacer:
    campaigns: CampaignStore
    jobs: JobStore
    lifecycle: JobLifecycle
    publisher: Publisher
    delays: DelayQueues
    policy: CallingPolicy
    owner: str

    @property
    def redis(self) -> aioredis.Redis:
        return self.campaigns.redis

    async def tick(self) -> None:
        for campaign_id in await self.campaigns.active_ids():
            if not await self.campaigns.lock(campaign_id, self.owner, LOCK_MS):
                continue
            try:
                await self.pace(campaign_id)
            finally:
                await self.campaigns.unlock(campaign_id, self.owner)

    async def _settle_finished(self, campaign_id: str) -> int:
        """Count the jobs that finished; how many of the rest are waiting or in progress."""
        ids = await self.campaigns.inflight(campaign_id)
        if not ids:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hmget(self.jobs.keys.job(job_id), ["status", "call"])
            replies = await pipe.execute()
        active = 0
        for job_id, (status, call) in zip(ids, replies, strict=True):
            if status is None:  # expired or never created: nothing more will happen to it
                await self.campaigns.count_finished(campaign_id, job_id, "failed", None, False)
            elif status in _TERMINAL:
                info = orjson.loads(call) if call else {}
                await self.campaigns.count_finished(
                    campaign_id,
                    job_id,
                    status,
                    info.get("outcome"),
                    info.get("confirmed") is True,
                )
            elif status not in _NOT_ACTIVE:
                active += 1
        return active

    async def pace(self, campaign_id: str) -> None:
        record = await self.campaigns.get(campaign_id)
        if record is None:
            await self.campaigns.retire(campaign_id)
            return
        active = await self._settle_finished(campaign_id)
        if record.state is CampaignState.CANCELED:
            await self._cancel_waiting(campaign_id)
        if record.state is CampaignState.RUNNING:
            await self._release(record, active)
            record = await self.campaigns.get(campaign_id) or record
        if record.pending == 0 or record.state is CampaignState.CANCELED:
            if await self.campaigns.inflight(campaign_id):
                return
            if record.state is CampaignState.RUNNING:
                await self.campaigns.finish(campaign_id, iso(utcnow()) or "")
                log.info("campaign completed", campaign_id=campaign_id)
            if record.state is not CampaignState.PAUSED:
                await self.campaigns.retire(campaign_id)

    async def _cancel_waiting(self, campaign_id: str) -> None:
        """A canceled campaign's jobs that have not started their call are canceled (the
        cancel route does it too; this catches a row released while it ran)."""
        for job in await self.jobs.get_many(await self.campaigns.inflight(campaign_id)):
            if job.status in CANCELABLE:
                await self.lifecycle.cancel(job, "campaign canceled")

    async def _release(self, record: CampaignRecord, active: int) -> None:
        spec = record.spec
        free = min(spec.max_concurrent_calls - active, record.pending)
        if free <= 0:
            return
        now_ms = int(time.time() * 1000)
        interval_ms = 60_000 // spec.calls_per_minute if spec.calls_per_minute else 0
        next_ms = record.next_release_ms
        if interval_ms:
            if now_ms < next_ms:
                return
            free = 1  # strictly paced: one call per interval
        rows = await self.campaigns.rows(spec.campaign_id, record.released, free)
        for offset, row in enumerate(rows):
            next_ms = max(now_ms, next_ms) + interval_ms
            released = await release(
                self.jobs,
                self.lifecycle,
                self.campaigns,
                self.publisher,
                self.delays,
                self.policy,
                spec,
                record.released + offset,
                row,
                next_ms,
            )
            if not released:  # paused or canceled meanwhile
                return


async def pacer_loop(pacer: Pacer, tick_s: float = TICK_S) -> None:
    """Pace every active campaign until cancelled; Redis or broker trouble waits a tick (and
    is logged once per outage, not every tick)."""
    failing = False
    while True:
        try:
            await pacer.tick()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Redis or broker down, or a bad record: try again next tick
            if not failing:
                redis_down = isinstance(exc, StoreUnavailableError)
                log.warning("campaign pacer paused", error=repr(exc), redis_down=redis_down)
            failing = True
        else:
            if failing:
                log.info("campaign pacer resumed")
            failing = False
        await asyncio.sleep(tick_s)


def build_pacer(
    redis: aioredis.Redis,
    jobs: JobStore,
    lifecycle: JobLifecycle,
    publisher: Publisher,
    delays: DelayQueues,
    policy: CallingPolicy,
    owner: str,
) -> Pacer:
    return Pacer(CampaignStore(redis, jobs.keys), jobs, lifecycle, publisher, delays, policy, owner)
