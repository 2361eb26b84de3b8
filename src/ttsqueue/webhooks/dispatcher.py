"""Delivers the webhook stream: at least once, each job's events in order, never in the way
of job processing.

Status changes of jobs with a `callback_url` are appended to a Redis stream by the status
script. One worker at a time (a renewed Redis lock) reads it through a consumer group; each
job's events go through their own sequential chain, so a receiver that fails for one job
holds back only that job's later events while it is retried with backoff. Entries are
acknowledged only after delivery (or after the last attempt), so a new leader re-delivers
whatever the previous one left unacknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from ttsqueue.config import Settings
from ttsqueue.logs import get_logger
from ttsqueue.store.keys import Keys
from ttsqueue.webhooks.addresses import RefusedTarget, Resolver, system_resolver
from ttsqueue.webhooks.delivery import DeliveryFailed, UndeliverableUrl, deliver
from ttsqueue.webhooks.guard import webhook_client

log = get_logger("ttsqueue.webhooks")

GROUP = "dispatch"
MAX_ATTEMPTS = 5
LEADER_TTL_S = 10
READ_BLOCK_MS = 1000

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) and 1 or 0
"""

Entry = tuple[str, dict[str, str]]


class WebhookDispatcher:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        settings: Settings,
        consumer: str,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.redis = redis
        self.resolver = resolver
        self.settings = settings
        self.consumer = consumer
        self.keys = keys
        self._chains: dict[str, deque[Entry]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        async with webhook_client(
            timeout=self.settings.WEBHOOK_TIMEOUT,
            allow_private=self.settings.WEBHOOK_ALLOW_PRIVATE,
            resolver=self.resolver,
        ) as client:
            self._client = client
            while True:
                try:
                    await self._ensure_group()
                    if await self._lead():
                        await self._serve()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # Redis blip: step down and try again
                    log.warning("webhook dispatcher paused", error=repr(exc))
                finally:
                    await self._drop_chains()
                await asyncio.sleep(LEADER_TTL_S / 3)

    async def _ensure_group(self) -> None:
        with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists already
            await self.redis.xgroup_create(self.keys.webhooks, GROUP, id="0", mkstream=True)

    async def _lead(self) -> bool:
        held = await self.redis.eval(
            _RENEW, 1, self.keys.webhooks_leader, self.consumer, LEADER_TTL_S
        )
        return bool(held)

    async def _serve(self) -> None:
        self._enqueue(await self._claim_pending())
        while await self._lead():
            replies: list[tuple[str, list[Entry]]] = await self.redis.xreadgroup(  # type: ignore[assignment]
                GROUP, self.consumer, {self.keys.webhooks: ">"}, count=100, block=READ_BLOCK_MS
            )
            for _stream, entries in replies:
                self._enqueue(entries)

    async def _claim_pending(self) -> list[Entry]:
        """Everything delivered to a consumer but never acknowledged, oldest first."""
        claimed: list[Entry] = []
        cursor = "0-0"
        while True:
            reply = await self.redis.xautoclaim(
                self.keys.webhooks,
                GROUP,
                self.consumer,
                min_idle_time=0,
                start_id=cursor,
                count=500,
            )
            cursor, entries = reply[0], reply[1]
            claimed.extend(entry for entry in entries if entry[1])
            if cursor in ("0-0", b"0-0"):
                return claimed

    def _enqueue(self, entries: list[Entry]) -> None:
        for entry_id, fields in entries:
            job_id = fields.get("job_id", "")
            chain = self._chains.get(job_id)
            if chain is not None:
                chain.append((entry_id, fields))
                continue
            self._chains[job_id] = deque([(entry_id, fields)])
            task = asyncio.create_task(self._run_chain(job_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run_chain(self, job_id: str) -> None:
        chain = self._chains[job_id]
        try:
            while chain:
                entry_id, fields = chain[0]
                try:
                    await self._deliver_with_retries(job_id, fields)
                except Exception as exc:  # whatever it was, this delivery is over
                    log.error("webhook failed", job_id=job_id, error=repr(exc))
                await self.redis.xack(self.keys.webhooks, GROUP, entry_id)
                await self.redis.xdel(self.keys.webhooks, entry_id)
                chain.popleft()
        finally:
            # Even if Redis failed above: a later entry of this job starts a new chain (the
            # unacknowledged ones go to the next leader).
            if self._chains.get(job_id) is chain:
                del self._chains[job_id]

    async def _deliver_with_retries(self, job_id: str, fields: dict[str, str]) -> None:
        body = fields.get("body", "").encode()
        url = fields.get("url", "")
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                await deliver(
                    self._client,
                    url,
                    body,
                    secret=self.settings.WEBHOOK_SECRET,
                    deadline_s=self.settings.WEBHOOK_TIMEOUT,
                )
                return
            except (RefusedTarget, UndeliverableUrl) as exc:
                log.warning("webhook refused", job_id=job_id, error=str(exc))
                return
            except DeliveryFailed as exc:
                if attempt == MAX_ATTEMPTS:
                    log.error("webhook dropped after retries", job_id=job_id, error=str(exc))
                    return
                delay = self.settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** (attempt - 1)
                log.info("webhook retry", job_id=job_id, attempt=attempt, error=str(exc))
                await asyncio.sleep(delay)

    async def _drop_chains(self) -> None:
        """On losing the lead: stop; unacknowledged entries go to the next leader."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._chains.clear()
