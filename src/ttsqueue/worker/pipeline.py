"""The path of one message: job -> speech -> call (at most once per attempt) -> outcome."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import structlog
from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError

from ttsqueue.broker.convoy import Convoy
from ttsqueue.broker.delays import DelayQueues, is_due, park
from ttsqueue.broker.recycle import Recycler
from ttsqueue.broker.topology import delivery_limit
from ttsqueue.dialer.base import CallResult
from ttsqueue.domain import (
    AudioInfo,
    CallOutcome,
    Job,
    JobMessage,
    JobStatus,
    Priority,
    attempt_call_id,
)
from ttsqueue.errors import (
    DialerError,
    PermanentJobError,
    PoisonMessageError,
    TransientJobError,
)
from ttsqueue.logs import get_logger
from ttsqueue.policy.gate import Decision, Open, Suppressed, policy_of
from ttsqueue.store.jobs import claimed_at
from ttsqueue.store.lifecycle import Delivered, SpeechPin, Unpin
from ttsqueue.store.replication import claim_replicated
from ttsqueue.tts.service import SpeechPlan
from ttsqueue.worker.call_request import call_request
from ttsqueue.worker.claims_ahead import ClaimsAhead
from ttsqueue.worker.context import WorkerContext
from ttsqueue.worker.durable import sealed
from ttsqueue.worker.not_now import not_now, suppress
from ttsqueue.worker.outcomes import fail_job, finish_attempt, park_retry
from ttsqueue.worker.plan import Plan, plan_for
from ttsqueue.worker.reaper import abandon_call
from ttsqueue.worker.retry import technical_delay, technical_exhausted
from ttsqueue.worker.runner import following_call, waiting_for_line
from ttsqueue.worker.settle import Disposition, settle
from ttsqueue.worker.trunk import Lease

log = get_logger("ttsqueue.worker.pipeline")

# Acks of jobs that end within this window (or as soon as this many wait) leave together
# (worker/settle.py): RabbitMQ handles them, and sends the deliveries they make room for, in
# one go instead of one wake-up each. The job's next state is recorded before its ack waits.
ACK_WINDOW_S = 0.02
ACK_CONVOY_SIZE = 32


class JobHandler:
    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self.in_flight: set[str] = set()
        # Set when the worker goes from idle to busy or back: the heartbeat says so early.
        self.busy_changed = asyncio.Event()
        self.recycler = Recycler(ctx.publisher, delivery_limit(ctx.settings))
        self.acks = Convoy(ACK_WINDOW_S, ACK_CONVOY_SIZE)

    async def handle(self, message: AbstractIncomingMessage, priority: Priority) -> None:
        structlog.contextvars.clear_contextvars()
        queue = self.ctx.names.work_queue(priority)

        async def hand_back(msg: AbstractIncomingMessage) -> bool:
            return await self.recycler.hand_back(msg, queue)

        async with (
            settle(message, hand_back, self.acks) as settlement,
            sealed(self.ctx, message),
        ):
            settlement.set(await self._process(message, priority))

    async def _process(self, message: AbstractIncomingMessage, priority: Priority) -> Disposition:
        msg = _decode(message)
        structlog.contextvars.bind_contextvars(
            job_id=msg.job_id, attempt=msg.attempt, worker_id=self.ctx.worker_id
        )
        # Only deliveries of a due message count towards MAX_DELIVERIES: a call scheduled
        # days ahead comes back many times on its way, and that is not a crash loop.
        due = is_due(msg)
        # A due message is counted, read and (when it starts the job's next attempt) started
        # in one step; `started` is None when that step still has to be taken.
        started: Delivered | None = None
        speech: SpeechPlan | None = None
        if due:
            speech = self._speech_plan(msg)
            started = await self.ctx.lifecycle.deliver(
                msg.job_id,
                attempt=msg.attempt,
                tech_retries=msg.tech_retries,
                priority=priority,
                worker_id=self.ctx.worker_id,
                max_deliveries=self.ctx.settings.MAX_DELIVERIES,
                # The start pins the job's cached speech as the speech cache's lookup would.
                pin=SpeechPin(speech.keys, self.ctx.speech.lease_ttl_s) if speech else None,
            )
            job, deliveries = started.found, started.deliveries
        else:
            job, deliveries = await self.ctx.store.get(msg.job_id), 0
        if job is None:
            started = None
            job = await self.ctx.lifecycle.rebuild(msg)
        if job is None:
            raise PoisonMessageError(f"no job record for {msg.job_id}")
        if job.priority is not priority:
            raise PoisonMessageError(f"job {msg.job_id} is {job.priority}, not {priority}")
        if job.status.terminal:
            return Disposition.ACK
        work_queue = self.ctx.names.work_queue(priority)
        if not due:
            await park(self.ctx.publisher, work_queue, msg, DelayQueues.of(self.ctx.settings))
            return Disposition.ACK
        if deliveries > self.ctx.settings.MAX_DELIVERIES:
            reason = f"delivered {deliveries - 1} times without finishing"
            await self.ctx.lifecycle.give_up(job, reason, worker_id=self.ctx.worker_id)
            return Disposition.DEAD
        plan = plan_for(job, msg.attempt)
        self.in_flight.add(job.job_id)
        if len(self.in_flight) == 1:
            self.busy_changed.set()
        try:
            return await self._run_plan(plan, job, msg, work_queue, started, speech)
        finally:
            self.in_flight.discard(job.job_id)
            if not self.in_flight:
                self.busy_changed.set()

    async def _run_plan(
        self,
        plan: Plan,
        job: Job,
        msg: JobMessage,
        work_queue: str,
        started: Delivered | None,
        speech: SpeechPlan | None,
    ) -> Disposition:
        if plan is Plan.START:
            return await self._start(job, msg, work_queue, started, speech)
        if plan is Plan.RESUME:
            call_id = attempt_call_id(job.job_id, msg.attempt)
            placed_at = _originated_at(job)
            waiting_for_line()
            async with self.ctx.trunk.slot(call_id, job.priority) as line:
                following_call()
                result = await self._follow(job, msg.attempt, work_queue, placed_at, line)
            await self.ctx.policy.settle_placed(
                job.e164,
                policy_of(job),
                claimant=f"{job.job_id}:{msg.attempt}",
                placed_at=datetime.fromtimestamp(placed_at, UTC),
                answered=answered(result),
            )
        elif plan is Plan.REPARK and job.next_attempt_ms is not None:
            await park_retry(self.ctx, job.job_id, msg.attempt + 1, job.next_attempt_ms, work_queue)
        return Disposition.ACK

    async def _start(
        self,
        job: Job,
        msg: JobMessage,
        work_queue: str,
        started: Delivered | None,
        speech: SpeechPlan | None,
    ) -> Disposition:
        pinned = None
        if started is not None and started.job is not None:
            job = started.job  # started by the delivery's step (or found processing)
            pinned = started.pinned
        else:
            job = (await self.ctx.lifecycle.start(job, self.ctx.worker_id)).job
        if job.status is not JobStatus.PROCESSING:
            return Disposition.ACK  # canceled meanwhile, or another copy moved it on
        try:
            # The call request names this audio, and the move to `calling` stores it.
            audio = await self._prepare_audio(job, msg.attempt, speech, pinned)
            job = job.model_copy(update={"audio": audio})
            return await self._call(job, msg, work_queue)
        except PermanentJobError as exc:
            await fail_job(
                self.ctx,
                job,
                exc.reason or str(exc),
                outcome=CallOutcome.FAILED,
                error=f"{exc.reason}: {exc}" if exc.reason else None,
            )
        except TransientJobError as exc:
            return await self._technical_retry(job, msg, work_queue, exc)
        return Disposition.ACK

    def _speech_plan(self, msg: JobMessage) -> SpeechPlan | None:
        """The job's speech plan, from the copy of the job its message carries (a first
        attempt's message does), so that its start can pin the speech if it is cached; None
        without a usable copy (the speech cache's own lookup then pins it)."""
        record = msg.record or {}
        text, language = record.get("text"), record.get("language")
        voice, engine = record.get("voice"), record.get("engine")
        if not (isinstance(text, str) and isinstance(language, str) and isinstance(engine, str)):
            return None
        if voice is not None and not isinstance(voice, str):
            return None
        try:
            return self.ctx.speech.plan(text, language, voice, engine)
        except PermanentJobError:
            return None  # said again, with the job's record at hand, when the speech is made

    async def _prepare_audio(
        self, job: Job, attempt: int, speech: SpeechPlan | None, pinned: str | None
    ) -> AudioInfo:
        """Speech for the job, from the cache or an engine (stored with the move to calling);
        `speech`: its plan made before the start, `pinned`: the entry the start pinned."""
        # Pinned under the call's id from now until the call ends: never evicted meanwhile.
        audio = await self.ctx.speech.prepare(
            job.text,
            job.language,
            job.voice,
            job.engine,
            lease_id=attempt_call_id(job.job_id, attempt),
            pinned=pinned,
            plan=speech,
        )
        info = job.audio.model_copy(
            update={
                "url": f"/tts/audio/{job.job_id}",
                "path": str(audio.wav_path),
                "duration_s": round(audio.duration_s, 3),
                "cached": audio.cached,
                "engine": audio.engine,
                "cache_key": audio.cache_key,
            }
        )
        if job.confirm is not None:
            # The prompt is spoken by the engine and voice that spoke the message (the
            # fallback's, when it spoke), and cached alike.
            prompt = await self.ctx.speech.prepare(
                job.confirm.prompt,
                job.language,
                job.voice if audio.engine == job.engine else None,
                audio.engine,
                lease_id=attempt_call_id(job.job_id, attempt),
            )
            info = info.model_copy(
                update={
                    "prompt_path": str(prompt.wav_path),
                    "prompt_duration_s": round(prompt.duration_s, 3),
                    "prompt_cache_key": prompt.cache_key,
                }
            )
        if not audio.cached:
            await self.ctx.metrics.observe_synthesis(audio.engine, audio.synth_s)
        return info

    async def _call(self, job: Job, msg: JobMessage, work_queue: str) -> Disposition:
        ctx = self.ctx
        attempt = msg.attempt
        call_id = attempt_call_id(job.job_id, attempt)
        # A calling policy that needs nothing from Redis (window open, no contact cap) is
        # decided before each ask for a line, and the attempt's claim (with its do-not-call
        # check) rides on that ask: one round trip for both when it gets the line.
        ahead = ClaimsAhead(ctx, job, attempt)
        # Prepared: the job waits in the line queue (priority order across all workers),
        # then places and follows its call without holding a worker slot (worker/runner.py).
        waiting_for_line()
        async with self._line(job, call_id, ahead) as line:
            following_call()
            taken = ahead.last
            if line.claim is not None and taken is not None:
                decision: Decision = taken.decision
                claim = ctx.lifecycle.claim_taken(taken.request, line.claim)
                originated_at = taken.at
            else:
                # The calling policy is asked with a line in hand, just before dialing
                # (SPEC §13). An open window without a cap leaves the do-not-call lookup to
                # `claim_call`.
                decision = await ctx.policy.check(
                    job.e164, policy_of(job), claimant=f"{job.job_id}:{attempt}", defer_listed=True
                )
                if not isinstance(decision, Open) and not await ctx.store.attempt_placed(
                    job.job_id, attempt
                ):
                    await self._unpin(_leases(job, call_id))
                    await not_now(ctx, job, msg, decision, work_queue)
                    return Disposition.ACK
                originated_at = time.time()
                # At most one dial per attempt; an open window without a cap has the number
                # checked against the do-not-call list in the same step.
                unchecked = isinstance(decision, Open) and decision.listed_unchecked
                claim = await ctx.lifecycle.claim_call(
                    job.job_id,
                    attempt,
                    f"{ctx.worker_id}@{originated_at}",
                    refuse_listed=job.e164 if unchecked else None,
                )
            call = call_request(
                job,
                attempt,
                ring_timeout_s=ctx.settings.CALL_RING_TIMEOUT,
                originated_at=originated_at,
                not_before=msg.not_before_ms / 1000,
            )
            call = dataclasses.replace(call, server=line.server)  # placed where the line is
            if claim.listed:
                await self._unpin(_leases(job, call_id))
                await suppress(ctx, job, Suppressed())
                return Disposition.ACK
            if claim.claimed:
                # The claim is what stops a second dial: on replicas before the call, if asked.
                if not await claim_replicated(ctx.store.client, ctx.store.keys, ctx.settings):
                    await ctx.lifecycle.release_attempt(job.job_id, attempt)
                    raise TransientJobError("Redis replicas did not confirm the call claim")
                # Logged before the backend is asked, so the log never undercounts dials.
                log.info(
                    "originating call",
                    call_id=call.call_id,
                    backend=ctx.dialer.name,
                    server=call.server,
                )
                try:
                    await ctx.dialer.originate(call)
                except DialerError:
                    # Not handed to the backend: this attempt may be dialed again later.
                    await ctx.lifecycle.release_attempt(job.job_id, attempt)
                    raise
                detail = "call placed"
            else:
                originated_at = claimed_at(claim.holder)
                detail = "call already placed by an earlier delivery: following it"
            job = await ctx.lifecycle.mark_calling(
                job,
                attempt,
                audio=job.audio,
                backend=ctx.dialer.name,
                started_at=originated_at,
                detail=detail,
            )
            result = await self._follow(job, attempt, work_queue, originated_at, line)
        if isinstance(decision, Open):
            await ctx.policy.settle(decision, answered=answered(result))
        return Disposition.ACK

    @contextlib.asynccontextmanager
    async def _line(self, job: Job, call_id: str, ahead: ClaimsAhead) -> AsyncIterator[Lease]:
        """The trunk's slot for the call, each ask carrying `ahead`'s claim; a grant that
        fails drops the claim its last ask may have taken (its reply was lost; an ask
        answered without a line took none): no call was placed."""
        granted = False
        try:
            async with self.ctx.trunk.slot(call_id, job.priority, job.e164, claim=ahead) as line:
                granted = True
                yield line
        except BaseException:
            if not granted and ahead.last is not None:
                await self.ctx.lifecycle.drop_unplaced_claim(ahead.last.request)
            raise

    async def _unpin(self, leases: list[Unpin]) -> None:
        for cache_key, lease_id in leases:
            await self.ctx.speech.unpin(cache_key, lease_id)

    async def _follow(
        self, job: Job, attempt: int, work_queue: str, originated_at: float, line: Lease
    ) -> CallResult | None:
        """Wait for the call's outcome (bounded by CALL_MAX_DURATION) and record it; the
        recording also drops the call's audio cache leases and gives up its line."""
        ctx = self.ctx
        call = call_request(
            job, attempt, ring_timeout_s=ctx.settings.CALL_RING_TIMEOUT, originated_at=originated_at
        )
        leases = _leases(job, call.call_id)
        left = originated_at + ctx.settings.CALL_MAX_DURATION - time.time()
        try:
            async with asyncio.timeout(max(left, 0.001)):
                result = await ctx.dialer.wait_outcome(call)
        except TimeoutError:
            await abandon_call(ctx, call)
            await fail_job(
                ctx,
                job,
                "lost_track",
                outcome=CallOutcome.FAILED,
                unpin=leases,
                line=line.hand_over(),
            )
            return None
        except BaseException:
            await self._unpin(leases)
            raise
        await finish_attempt(
            ctx, job, attempt, result, work_queue, unpin=leases, line=line.hand_over()
        )
        return result

    async def _technical_retry(
        self, job: Job, msg: JobMessage, work_queue: str, exc: TransientJobError
    ) -> Disposition:
        settings = self.ctx.settings
        if technical_exhausted(msg.tech_retries, settings.TECH_MAX_RETRIES):
            await fail_job(
                self.ctx,
                job,
                f"technical error, retries exhausted: {exc}",
                outcome=CallOutcome.FAILED,
            )
            return Disposition.DEAD
        delay = technical_delay(settings.TECH_RETRY_BASE_SECONDS, msg.tech_retries)
        if (await self.ctx.lifecycle.requeue(job, f"technical retry in {delay:g}s: {exc}")).applied:
            retry = msg.model_copy(
                update={
                    "tech_retries": msg.tech_retries + 1,
                    "not_before_ms": int((time.time() + delay) * 1000),
                }
            )
            await park(self.ctx.publisher, work_queue, retry, DelayQueues.of(settings))
        log.warning("technical retry", error=str(exc), delay_s=delay)
        return Disposition.ACK


def answered(result: CallResult | None) -> bool:
    """Whether a call counts as a contact (MAX_CONTACTS_PER_DAY): somebody picked up."""
    if result is None:
        return False
    return result.outcome is CallOutcome.ANSWERED or result.answered_at is not None


def _leases(job: Job, call_id: str) -> list[Unpin]:
    """The audio cache leases the call's speech was pinned with (`_prepare_audio`)."""
    keys = (job.audio.cache_key, job.audio.prompt_cache_key)
    return [(key, call_id) for key in keys if key]


def _decode(message: AbstractIncomingMessage) -> JobMessage:
    try:
        msg = JobMessage.decode(message.body)
    except (ValidationError, ValueError) as exc:
        raise PoisonMessageError(f"unparseable message: {exc.__class__.__name__}") from None
    if message.message_id and message.message_id != msg.job_id:
        raise PoisonMessageError("message_id does not match the job id in the body")
    return msg


def _originated_at(job: Job) -> float:
    if job.call.started_at:
        return datetime.fromisoformat(job.call.started_at).timestamp()
    return time.time()
