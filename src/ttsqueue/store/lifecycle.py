"""The one owner of a job's state: every write to a job record, named after what happened.

Each operation is one Redis call (a script under `store/lua/`) that changes the record, its
history, the status indexes, the counters and histograms, the webhook stream and the live
event together. Callers say what happened (`start`, `mark_calling`, `schedule_retry`,
`finish`, `cancel`, ...); only this module knows how a job is stored. A job that ends, by a
worker or by a client's cancel, takes the same path: one audit message in `tts_results`.

A Redis failover can lose the newest writes (a replica lags its master): possibly the record
of a job the API has just accepted, whose message is safe in RabbitMQ. Every job message
carries the job as accepted, and `rebuild` recreates the record from it, unless the job's
submission was refused (`discard` marks it so).
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import msgpack
import orjson
import redis.asyncio as aioredis

from ttsqueue.domain import (
    CANCELABLE,
    AudioInfo,
    CallInfo,
    CallOutcome,
    HistoryEntry,
    Job,
    JobMessage,
    JobStatus,
    Priority,
    attempt_call_id,
    iso,
    utcnow,
)
from ttsqueue.errors import ConnectionLostError, StoreError
from ttsqueue.logs import get_logger
from ttsqueue.store import journal
from ttsqueue.store.confirms import ConfirmBatcher
from ttsqueue.store.job_change import Change, Hop, count_processing, encode
from ttsqueue.store.keys import Keys
from ttsqueue.store.scripts import Scripts

log = get_logger("ttsqueue.store.lifecycle")

IDEMPOTENCY_TTL_S = 24 * 3600
# How long a refused submission stays marked: longer than any message can wait unseen.
REFUSED_TTL_S = 7 * 24 * 3600
# The job hash field naming its idempotency key digest (so the sweeper can confirm it).
IDEMPOTENCY_FIELD = "idempotency_key"

_TO_QUEUED = frozenset({JobStatus.SCHEDULED, JobStatus.RETRYING})
_LIVE = frozenset({JobStatus.PROCESSING, JobStatus.CALLING})

# Publishes one audit message (body, message id) for a job that ended: `tts_results`.
ResultSink = Callable[[bytes, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """An `Idempotency-Key` digest and the digest of the body it was sent with."""

    key_digest: str
    body_digest: str


@dataclass(frozen=True, slots=True)
class CreateResult:
    created: bool
    job_id: str
    # Set when the idempotency key was already used: the body digest it was first sent with.
    original_body_digest: str | None = None
    # The first request with that key is still waiting for RabbitMQ's confirm.
    pending: bool = False
    # The job's submission was refused (`discard`): its record must not come back.
    refused: bool = False
    # Asked with `refuse_listed`: the number is on the do-not-call list (nothing written).
    listed: bool = False


@dataclass(frozen=True, slots=True)
class Moved:
    """What a status change found: applied or not, the status before it and the status now."""

    applied: bool
    previous: JobStatus | None
    status: JobStatus | None = None


@dataclass(frozen=True, slots=True)
class Started:
    """The job as it is after `start`, and whether this call moved it to processing."""

    job: Job
    applied: bool


@dataclass(frozen=True, slots=True)
class Delivered:
    """What `deliver` found: the job as it was (None: no record), how many times this message
    has now been delivered, and the job after the call (processing when `started`)."""

    found: Job | None
    deliveries: int
    started: bool
    job: Job | None
    # The audio cache entry the start touched and pinned under the attempt's call id (asked
    # with a `SpeechPin`), or None: none of its keys was cached, or the job did not start.
    pinned: str | None = None


@dataclass(frozen=True, slots=True)
class SpeechPin:
    """Asked of `deliver`: when it starts the job, touch the first of `keys` (audio cache
    entries, in the order the speech service tries them) that the cache indexes, and lease it
    to the attempt's call for `ttl_s`, as the cache's own lookup would."""

    keys: Sequence[str]
    ttl_s: float


@dataclass(frozen=True, slots=True)
class CallClaim:
    """What `claim_call` found: `claimed` (the caller may dial now), or the claim's `holder`
    when an earlier delivery holds it, or `listed` (asked to check the number: it is on the
    do-not-call list, nothing claimed)."""

    claimed: bool
    holder: str = ""
    listed: bool = False


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """An attempt's claim as `claim_call.lua` takes it (keys, args), to be taken in another
    step (the line grant, `line_acquire_claim.lua`); `JobLifecycle.claim_taken` reads its
    reply."""

    keys: list[str]
    args: list[str | int]


# An audio cache lease to drop with a change: (cache key, lease id).
Unpin = tuple[str, str]
# A trunk line to give up with a change (the call is over): (server name, lease id).
HeldLine = tuple[str, str]


@dataclass(frozen=True, slots=True)
class _Reply:
    moved: Moved
    count: int
    record: dict[str, str]
    pinned: str  # the audio cache entry a start pinned ("pin"), or ""


def idempotency_value(job_id: str, body_digest: str, *, pending: bool) -> str:
    value: dict[str, object] = {"job_id": job_id, "body": body_digest}
    if pending:
        value["pending"] = True
    return orjson.dumps(value).decode()


def _epoch_iso(value: float) -> str:
    return iso(datetime.fromtimestamp(value, UTC)) or ""


def _ended_call(job: Job, outcome: CallOutcome, reason: str, **more: object) -> CallInfo:
    """The job's call as an ending leaves it: its outcome and short reason code."""
    return job.call.model_copy(update={"outcome": outcome, "reason": reason, **more})


class JobLifecycle:
    """Every change of a job's record; nothing else in the product writes one."""

    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        ttl_seconds: int,
        results: ResultSink | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._now = now
        self._client = client
        self._keys = keys
        self._ttl_seconds = ttl_seconds
        self._results = results
        self._scripts = Scripts.register(client)
        self._confirms = ConfirmBatcher(self._scripts.confirm_job, keys)
        # Audit publishes and confirms that nobody waits for (kept referenced until done).
        self._background: set[asyncio.Task[None]] = set()

    # Acceptance --------------------------------------------------------------------------
    async def create(
        self, job: Job, *, claim: IdempotencyClaim | None = None, refuse_listed: bool = False
    ) -> CreateResult:
        """Record a new job (unconfirmed until its first message is confirmed); with
        `refuse_listed`, not when its number is on the do-not-call list (same step)."""
        k = self._keys
        created_ms = int(time.time() * 1000)
        idem_value = idempotency_value(job.job_id, claim.body_digest, pending=True) if claim else ""
        event = {
            "job_id": job.job_id,
            "status": job.status.value,
            "previous_status": None,
            "at": job.created_at,
        }
        flat: list[str] = []
        for name, value in job.to_redis().items():
            flat += [name, value]
        if claim:
            flat += [IDEMPOTENCY_FIELD, claim.key_digest]
        reply = await self._scripts.create_job(
            keys=[
                k.job(job.job_id),
                k.history(job.job_id),
                k.index,
                k.status_index(job.status),
                k.priority_index(job.priority),
                k.idempotency(claim.key_digest) if claim else k.idempotency("-"),
                k.status_priority_index(job.status, job.priority),
                k.expiry_index,
                k.refused(job.job_id),
                k.dnc,
            ],
            args=[
                job.job_id,
                created_ms,
                self.record_ttl(job, created_ms / 1000),
                HistoryEntry.row(job.status, job.created_at, "accepted"),
                idem_value,
                IDEMPOTENCY_TTL_S,
                k.events,
                orjson.dumps(event).decode(),
                k.prefix,
                job.priority.value,
                job.e164 if refuse_listed else "",
                *flat,
            ],
        )
        if reply[0] == "duplicate":
            original = orjson.loads(reply[1])
            if original["job_id"] != job.job_id:
                return CreateResult(
                    False,
                    str(original["job_id"]),
                    str(original["body"]),
                    pending=bool(original.get("pending")),
                )
        if reply[0] == "refused":
            return CreateResult(False, job.job_id, refused=True)
        if reply[0] == "listed":
            return CreateResult(False, job.job_id, listed=True)
        journal.note(functools.partial(self.create, job, claim=claim))
        # "created"; or "exists" / the key holding this very id: the script already ran for
        # this fresh UUID and its reply was lost before redis-py retried. Still created, so the
        # caller publishes the message instead of reporting a job that would never run.
        return CreateResult(True, job.job_id)

    def record_ttl(self, job: Job, now_s: float) -> int:
        """Seconds a new job's record is kept: JOB_TTL_SECONDS counted from when it is due,
        so that a call scheduled weeks ahead still has its record when its message arrives."""
        ahead = 0.0
        if job.scheduled_for:
            ahead = max(0.0, datetime.fromisoformat(job.scheduled_for).timestamp() - now_s)
        return self._ttl_seconds + math.ceil(ahead)

    async def confirm(self, job_id: str, idempotency_digest: str | None = None) -> bool:
        """The job's first message is confirmed by RabbitMQ: only now does its idempotency key
        lead to it. True when the job was still waiting for this."""
        return await self._confirms.confirm(job_id, idempotency_digest)

    def confirm_later(self, job_id: str, idempotency_digest: str | None = None) -> None:
        """`confirm`, off the caller's path: the job is durable once its message is confirmed,
        and a confirm lost with this process is written by the sweeper once a worker has
        started the job (worker/sweeper.py)."""
        self._confirms.confirm_soon(job_id, idempotency_digest)

    def _spawn(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for the confirms and audit publishes still in flight (before shutting down)."""
        while True:
            await self._confirms.drain()
            if not self._background:
                return
            await asyncio.gather(*self._background, return_exceptions=True)

    async def discard(self, job_id: str, *, claim: IdempotencyClaim | None = None) -> None:
        """Forget a job whose submission failed (its message not confirmed by RabbitMQ, or its
        record not on enough replicas), and mark it refused: a message that reached RabbitMQ
        anyway must not bring it back through `rebuild`."""
        await self._delete(job_id, claim, REFUSED_TTL_S)

    async def forget_unsent(self, job_id: str) -> None:
        """Forget a job no message was ever sent of (a campaign row held back by a pause), with
        no refused mark: the same job id is created again when the row is released."""
        await self._delete(job_id, None, 0)

    async def _delete(self, job_id: str, claim: IdempotencyClaim | None, refused_s: int) -> None:
        k = self._keys
        await self._scripts.delete_job(
            keys=[
                k.job(job_id),
                k.history(job_id),
                k.index,
                k.idempotency(claim.key_digest) if claim else k.idempotency("-"),
                k.refused(job_id),
            ],
            args=[k.prefix, job_id, "1" if claim else "0", refused_s],
        )

    async def rebuild(self, msg: JobMessage) -> Job | None:
        """Recreate the missing record of `msg`'s job from the copy the message carries (the
        record was lost by Redis, e.g. a write not yet replicated when a failover promoted a
        replica). None when the message carries no copy of that job, the job's submission was
        refused, or it is older than the records' lifetime (its record expired: the job is
        long over). The rebuilt job is confirmed: the sweeper does not send it again."""
        if msg.record is None:
            return None
        job = Job.model_validate(msg.record)
        if job.job_id != msg.job_id:
            return None
        created = datetime.fromisoformat(job.created_at).timestamp()
        if time.time() - created > self._ttl_seconds:
            return None
        if (await self.create(job)).refused:
            return None
        await self.confirm(job.job_id, None)
        log.warning(
            "job record rebuilt from its message (lost by Redis)",
            job_id=job.job_id,
            status=job.status.value,
        )
        return job

    async def touch(self, job_id: str) -> bool:
        """Mark the job as looked after now (its status unchanged); False if it is gone."""
        reply = await self._scripts.touch_job(
            keys=[self._keys.job(job_id)], args=[iso(self._now()) or ""]
        )
        return bool(reply)

    # A worker's attempt ----------------------------------------------------------------
    async def start(self, job: Job, worker_id: str) -> Started:
        """scheduled|retrying -> queued -> processing, in one step; the job as it is now.

        A job already `processing` (a redelivery after a worker was lost) is taken as it is.
        """
        now = iso(self._now()) or ""
        moved = await self._apply(job.job_id, _start_change(worker_id, now))
        if moved.applied:
            update = {"status": JobStatus.PROCESSING, "processed_at": now, "worker_id": worker_id}
            return Started(job.model_copy(update=update), True)
        return Started(job.model_copy(update={"status": moved.status or job.status}), False)

    async def deliver(
        self,
        job_id: str,
        *,
        attempt: int,
        tech_retries: int,
        priority: Priority,
        worker_id: str,
        max_deliveries: int,
        pin: SpeechPin | None = None,
    ) -> Delivered:
        """A due message of (attempt, technical retry) arrived: count the delivery, read the
        job and, when this attempt is the job's next one, of `priority`, and the delivery
        within `max_deliveries`, `start` it, all in one step; a start also takes `pin`."""
        k = self._keys
        now = iso(self._now()) or ""
        change = _start_change(worker_id, now)
        change.extras = {
            "count": {"key": k.deliveries(job_id, attempt, tech_retries), "ttl": self._ttl_seconds},
            "read": True,
            "guard": {"priority": priority.value, "attempt": attempt, "max_count": max_deliveries},
        }
        if pin is not None and pin.keys:
            now_ms = int(time.time() * 1000)
            change.extras["pin"] = {
                "keys": list(pin.keys),
                "lease": attempt_call_id(job_id, attempt),
                "now": str(now_ms),
                "expiry": str(now_ms + int(pin.ttl_s * 1000)),
                "lru": k.cache_lru,
                "sizes": k.cache_sizes,
                "stats": k.cache_stats,
                "in_use": k.cache_in_use_prefix,
            }
        reply = await self._call(job_id, change)
        found = Job.from_redis(reply.record) if reply.record else None
        if found is None or not reply.moved.applied:
            return Delivered(found, reply.count, False, found)
        update = {"status": JobStatus.PROCESSING, "processed_at": now, "worker_id": worker_id}
        return Delivered(
            found, reply.count, True, found.model_copy(update=update), reply.pinned or None
        )

    async def claim_call(
        self, job_id: str, attempt: int, owner: str, *, refuse_listed: str | None = None
    ) -> CallClaim:
        """The attempt's claim (`SET NX`), taken just before its call is originated: at most
        one dial per attempt. With `refuse_listed` (a number), nothing is claimed when that
        number is on the do-not-call list, in the same step."""
        request = self.claim_request(job_id, attempt, owner, refuse_listed=refuse_listed)
        reply = await self._scripts.claim_call(keys=request.keys, args=request.args)
        return self.claim_taken(request, reply)

    def claim_request(
        self, job_id: str, attempt: int, owner: str, *, refuse_listed: str | None = None
    ) -> ClaimRequest:
        """`claim_call`'s claim, for a step that takes it along with something else."""
        return ClaimRequest(
            [self._keys.attempt(job_id, attempt), self._keys.dnc],
            [owner, self._ttl_seconds, refuse_listed or ""],
        )

    def claim_taken(self, request: ClaimRequest, reply: Sequence[object]) -> CallClaim:
        """What the claim script replied to `request` (wherever it ran): the claim, noted for
        a replay when taken."""
        claim = CallClaim(bool(reply[0]), str(reply[1] or ""), bool(reply[2]))
        if claim.claimed:
            # Made again after a failover, the claim stands whatever the list says by then.
            owner, ttl, _ = request.args
            journal.note(
                functools.partial(
                    self._scripts.claim_call, keys=request.keys, args=[owner, ttl, ""]
                )
            )
        return claim

    async def drop_unplaced_claim(self, request: ClaimRequest) -> None:
        """Undo `request`'s claim if it was taken (its owner holds it) and no call was placed:
        the reply of the step that carried it was lost, so whether it was taken is not
        known. Quiet when Redis fails too: the claim then expires."""
        owner = request.args[0]
        try:
            await self._scripts.release_claim(keys=request.keys[:1], args=[owner])
        except (ConnectionLostError, StoreError) as exc:
            log.warning("call claim not released, it will expire", error=repr(exc))

    async def release_attempt(self, job_id: str, attempt: int) -> None:
        """Undo a claim whose call never reached the backend."""
        key = self._keys.attempt(job_id, attempt)
        owner = await self._client.getdel(key)
        if owner is not None:
            # Made again elsewhere, it releases this claim only, never a later one.
            journal.note(functools.partial(self._scripts.release_claim, keys=[key], args=[owner]))

    async def mark_calling(
        self,
        job: Job,
        attempt: int,
        *,
        audio: AudioInfo,
        backend: str,
        started_at: float,
        detail: str,
    ) -> Job:
        """processing -> calling: the attempt's call is with the backend."""
        info = _calling_info(job, backend, started_at)
        moved = await self._apply(
            job.job_id,
            Change(
                [Hop(frozenset({JobStatus.PROCESSING}), JobStatus.CALLING, detail)],
                fields={
                    "attempts": str(attempt),
                    "call": info.model_dump_json(),
                    "audio": audio.model_dump_json(),
                },
            ),
        )
        status = JobStatus.CALLING if moved.applied else (moved.status or job.status)
        return job.model_copy(
            update={"status": status, "attempts": attempt, "call": info, "audio": audio}
        )

    async def hold(self, job: Job, until: datetime, detail: str) -> Moved:
        """processing -> scheduled: the calling policy holds the job until `until` (the next
        opening of its window, after a holiday or the daily contact cap); nothing was dialed."""
        return await self._apply(
            job.job_id,
            Change(
                [Hop(frozenset({JobStatus.PROCESSING}), JobStatus.SCHEDULED, detail)],
                fields={"scheduled_for": iso(until) or ""},
            ),
        )

    async def requeue(self, job: Job, detail: str) -> Moved:
        """processing -> queued: a technical retry of the same attempt."""
        return await self._apply(
            job.job_id,
            Change([Hop(frozenset({JobStatus.PROCESSING}), JobStatus.QUEUED, detail)]),
        )

    async def schedule_retry(
        self,
        job: Job,
        call: CallInfo,
        due_ms: int,
        detail: str,
        *,
        unpin: Sequence[Unpin] = (),
        line: HeldLine | None = None,
    ) -> Moved:
        """calling -> retrying: the call did not get through; the next attempt is due then.
        `unpin` and `line` are given up in the same step, whatever it finds."""
        change = Change(
            [Hop(frozenset({JobStatus.CALLING}), JobStatus.RETRYING, detail)],
            fields={"call": call.model_dump_json(), "next_attempt_ms": str(due_ms)},
            outcome=call.outcome,
        )
        self._release(change, unpin, line)
        return await self._apply(job.job_id, change)

    # Endings ---------------------------------------------------------------------------
    async def finish(
        self,
        job: Job,
        status: JobStatus,
        call: CallInfo,
        *,
        worker_id: str,
        detail: str,
        error: str | None = None,
        expected: frozenset[JobStatus] = frozenset({JobStatus.CALLING}),
        unpin: Sequence[Unpin] = (),
        line: HeldLine | None = None,
    ) -> Moved:
        """A worker ends the job (completed or failed) with its counters; `unpin` drops the
        call's audio cache leases and `line` gives up its trunk line in the same step."""
        hops = [Hop(expected, status, detail)]
        return await self._end(
            job, hops, call, error=error, worker_id=worker_id, unpin=unpin, line=line
        )

    async def fail(
        self,
        job: Job,
        reason: str,
        *,
        worker_id: str,
        outcome: CallOutcome = CallOutcome.FAILED,
        error: str | None = None,
        unpin: Sequence[Unpin] = (),
        line: HeldLine | None = None,
    ) -> Moved:
        """Give up on a job in processing or calling (errors, exhausted technical retries).

        `reason` is the short code kept in `call.reason`; `error`, when given, the full message."""
        return await self.finish(
            job,
            JobStatus.FAILED,
            _ended_call(job, outcome, reason),
            worker_id=worker_id,
            detail=error or reason,
            error=error or reason,
            expected=_LIVE,
            unpin=unpin,
            line=line,
        )

    async def give_up(self, job: Job, reason: str, *, worker_id: str) -> Moved:
        """Fail a job whatever non-terminal state it is in (its message is being dropped):
        scheduled|retrying -> queued -> processing -> failed, as far as needed, in one step."""
        return await self._fail_unfinished(
            job, reason, worker_id=worker_id, taken_by=f"worker {worker_id}", untaken_only=False
        )

    async def refuse_unconfirmed(
        self, job: Job, reason: str, idempotency_digest: str | None, *, worker_id: str
    ) -> Moved:
        """Fail a job whose first message RabbitMQ never confirmed (its client was told 503,
        or told nothing), only while no worker has taken it: scheduled|retrying -> queued ->
        processing -> failed. Its Idempotency-Key, still pending, is freed for a retry. Not
        applied when a worker started the job meanwhile (its message existed after all)."""
        moved = await self._fail_unfinished(
            job, reason, worker_id=worker_id, taken_by=f"sweeper on {worker_id}", untaken_only=True
        )
        if moved.applied:
            k = self._keys
            digest = idempotency_digest or "-"
            await self._scripts.drop_unconfirmed(
                keys=[k.unconfirmed, k.idempotency(digest)], args=[job.job_id]
            )
        return moved

    async def suppress(self, job: Job, reason: str, *, worker_id: str) -> Moved:
        """processing -> failed, never dialed: the number went on the do-not-call list after
        the job was accepted (`call.outcome = suppressed`)."""
        info = _ended_call(job, CallOutcome.SUPPRESSED, reason, ended_at=iso(self._now()))
        return await self.finish(
            job,
            JobStatus.FAILED,
            info,
            worker_id=worker_id,
            detail=f"suppressed: {reason}",
            error=f"not called: the number is on the do-not-call list ({reason})",
            expected=frozenset({JobStatus.PROCESSING}),
        )

    async def cancel(self, job: Job, detail: str = "canceled by client") -> Moved:
        """A job that has not started its call (scheduled, queued, retrying) is canceled: by
        its client, or because its campaign was (`detail` says which)."""
        info = _ended_call(job, CallOutcome.CANCELED, "canceled")
        hops = [Hop(CANCELABLE, JobStatus.CANCELED, detail)]
        return await self._end(job, hops, info, error=None, worker_id=None)

    async def _fail_unfinished(
        self, job: Job, reason: str, *, worker_id: str, taken_by: str, untaken_only: bool
    ) -> Moved:
        """Fail a job not ended yet: scheduled|retrying -> queued -> processing (`taken_by`,
        for `worker_id`) -> failed, as far as needed, in one step. With `untaken_only` the
        step to processing is required: a job already in processing or calling is left alone."""
        now = iso(self._now()) or ""
        hops = [
            *_taking_hops(worker_id, now, taken_by, optional=not untaken_only),
            Hop(_LIVE, JobStatus.FAILED, reason),
        ]
        info = _ended_call(job, CallOutcome.FAILED, reason)
        return await self._end(job, hops, info, error=reason, worker_id=worker_id)

    async def _end(
        self,
        job: Job,
        hops: list[Hop],
        call: CallInfo,
        *,
        error: str | None,
        worker_id: str | None,
        unpin: Sequence[Unpin] = (),
        line: HeldLine | None = None,
    ) -> Moved:
        """The one ending path: terminal status, counters, then the audit message (published
        in the background: the ending is recorded, nothing waits for its audit copy)."""
        status = hops[-1].target
        now = self._now()
        completed_at = iso(now) or ""
        call_json = call.model_dump_json()
        change = Change(
            hops,
            fields={"completed_at": completed_at, "call": call_json},
            outcome=call.outcome,
            finished=f"{status.value}|{call.outcome.value if call.outcome else 'none'}",
        )
        if error is not None:
            change.fields["error"] = error
        if worker_id is not None:
            count_processing(change, job, now, worker_id, status is JobStatus.COMPLETED)
        self._release(change, unpin, line)
        moved = await self._apply(job.job_id, change)
        if moved.applied and self._results is not None:
            self._spawn(self._publish_result(job, status, call_json, completed_at))
        return moved

    def _release(self, change: Change, leases: Sequence[Unpin], line: HeldLine | None) -> None:
        """What the change gives up whatever it finds: audio cache leases, a trunk line."""
        held = [[self._keys.cache_in_use(key), lease] for key, lease in leases]
        if line is not None:
            server, lease_id = line
            held.append([self._keys.server_lines(server), lease_id])
        if held:
            change.extras["release"] = held

    async def _publish_result(
        self, job: Job, status: JobStatus, call_json: str, completed_at: str
    ) -> None:
        """One audit message per terminal state in tts_results (built from what is in memory;
        the call as the record holds it, already JSON)."""
        if self._results is None:
            return
        body = orjson.dumps(
            {
                "job_id": job.job_id,
                "status": status.value,
                "attempts": job.attempts,
                "call": orjson.Fragment(call_json),
                "completed_at": completed_at,
                "metadata": job.metadata,
            }
        )
        try:
            await self._results(body, job.job_id)
        except Exception as exc:
            # The ending is recorded; only its audit copy is missing.
            log.warning("result not published", job_id=job.job_id, error=repr(exc))

    # The one script behind every status change --------------------------------------------
    async def _apply(self, job_id: str, change: Change) -> Moved:
        return (await self._call(job_id, change)).moved

    async def _call(self, job_id: str, change: Change) -> _Reply:
        payload = encode(change, self._keys, self._now())
        transition = functools.partial(
            self._scripts.transition,
            keys=[self._keys.job(job_id), self._keys.history(job_id)],
            args=[self._keys.prefix, job_id, msgpack.packb(payload)],
        )
        reply = await transition()
        if reply[0]:
            journal.note(transition, at=str(payload["at"]), status=str(reply[2]))
        previous = JobStatus(reply[1]) if reply[1] else None
        status = JobStatus(reply[2]) if reply[2] else None
        flat = [str(v) for v in reply[5:]]
        record = dict(zip(flat[::2], flat[1::2], strict=True))
        return _Reply(Moved(bool(reply[0]), previous, status), int(reply[3]), record, str(reply[4]))


def _start_change(worker_id: str, now: str) -> Change:
    """scheduled|retrying -> queued -> processing (the first hop only when needed)."""
    return Change(_taking_hops(worker_id, now, f"worker {worker_id}"))


def _taking_hops(worker_id: str, now: str, detail: str, *, optional: bool = False) -> list[Hop]:
    """scheduled|retrying -> queued (only when needed) -> processing by `worker_id` at `now`
    (also only when needed if `optional`)."""
    return [
        Hop(_TO_QUEUED, JobStatus.QUEUED, "due", optional=True),
        Hop(
            frozenset({JobStatus.QUEUED}),
            JobStatus.PROCESSING,
            detail,
            {"processed_at": now, "worker_id": worker_id},
            optional=optional,
        ),
    ]


def _calling_info(job: Job, backend: str, started_at: float) -> CallInfo:
    return job.call.model_copy(
        update={
            "backend": backend,
            "started_at": _epoch_iso(started_at),
            "outcome": None,
            "reason": None,
            "simulated": backend == "simulator",
        }
    )
