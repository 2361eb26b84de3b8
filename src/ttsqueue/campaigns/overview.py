"""A campaign as the API and the dashboard show it: its record, the counts of finished jobs and
the live status of the jobs in flight (`progress.campaign_view`)."""

from __future__ import annotations

from typing import Any

from ttsqueue.campaigns.progress import campaign_view
from ttsqueue.campaigns.store import CampaignRecord, CampaignStore
from ttsqueue.domain import utcnow


async def overview(store: CampaignStore, record: CampaignRecord) -> dict[str, Any]:
    """`record` as it is now: read again with its jobs at one instant (as given if gone)."""
    seen = await store.snapshot(record.spec.campaign_id)
    if seen is not None:
        record = seen.record
    inflight, counts = (seen.inflight, seen.counts) if seen is not None else ([], {})
    statuses: list[str] = []
    if inflight:
        async with store.redis.pipeline(transaction=False) as pipe:
            for job_id in inflight:
                pipe.hget(store.keys.job(job_id), "status")
            statuses = [str(s) for s in await pipe.execute() if s is not None]
    return campaign_view(record, counts, statuses, utcnow())


async def recent_overviews(store: CampaignStore, limit: int) -> list[dict[str, Any]]:
    """The most recent campaigns first."""
    found = []
    for cid in await store.list_ids(limit):
        record = await store.get(cid)
        if record is not None:
            found.append(await overview(store, record))
    return found
