"""The `ami` dialer: Originate (Async) on a persistent AMI session, outcome from AMI events.

Crash safety: the outcome does not live in the process that dialed. Before sending Originate,
the worker creates the call's record in Redis (`call:<call_id>`); every worker's session then
records the facts it sees about that call (OriginateResponse, Newstate Up, Hangup, the
dialplan's TTSDone / TTSFailed UserEvents), and `wait_outcome` reads them in whichever process
follows the call (`tracker.py`). When no session saw the end (every AMI link was down),
`dialer.outcome.resolve` decides from what is known once the call must be over, so the job never
stays in `calling`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import redis.asyncio as aioredis

from ttsqueue.config import Settings
from ttsqueue.dialer.ami import (
    AmiConnectionClosed,
    AmiCredentials,
    AmiNotConnected,
    AmiResponseTimeout,
    AmiSession,
    SessionState,
    SessionTimings,
)
from ttsqueue.dialer.ami.call_records import CallRecords
from ttsqueue.dialer.ami.tracker import CallTracker
from ttsqueue.dialer.base import CallRequest, CallResult
from ttsqueue.dialer.dial_values import DialValues, check_dial_settings, dial_values
from ttsqueue.dialer.outcome import Deadlines
from ttsqueue.dialer.presence import presence_loop
from ttsqueue.domain import DialerHealth
from ttsqueue.errors import ConfigError, DialerError, StoreUnavailableError
from ttsqueue.logs import get_logger
from ttsqueue.store.keys import Keys
from ttsqueue.store.presence import DialerPresence, PresenceReport
from ttsqueue.supervised import keep_running

log = get_logger("ttsqueue.dialer.ami")

CONNECT_WAIT_S = 5.0
ACTION_TIMEOUT_S = 10.0


def originate_action(values: DialValues) -> list[tuple[str, str]]:
    fields = [
        ("Action", "Originate"),
        ("ActionID", f"orig-{values.call_id}"),
        ("Channel", values.channel),
        ("Context", values.context),
        ("Exten", "s"),
        ("Priority", "1"),
        ("Timeout", str(values.ring_timeout_s * 1000)),
    ]
    if values.caller_id:
        fields.append(("CallerID", values.caller_id))
    fields += [
        ("Async", "true"),
        ("Variable", f"TTS_FILE={values.tts_file}"),
        ("Variable", f"TTS_JOB_ID={values.job_id}"),
        ("Variable", f"TTS_CALL_ID={values.call_id}"),
        *[("Variable", f"{name}={value}") for name, value in values.listen_vars],
        ("ChannelId", values.call_id),
    ]
    return fields


def credentials_of(settings: Settings) -> AmiCredentials:
    if not settings.ASTERISK_AMI_HOST or not settings.ASTERISK_AMI_USER:
        raise ConfigError("DIALER=ami needs ASTERISK_AMI_HOST and ASTERISK_AMI_USER")
    return AmiCredentials(
        settings.ASTERISK_AMI_HOST,
        settings.ASTERISK_AMI_PORT,
        settings.ASTERISK_AMI_USER,
        settings.ASTERISK_AMI_SECRET,
    )


class AmiDialer:
    name = "ami"

    def __init__(
        self,
        settings: Settings,
        redis: aioredis.Redis,
        keys: Keys,
        *,
        owns_redis: bool = False,
        timings: SessionTimings | None = None,
        deadlines: Deadlines | None = None,
        connect_wait_s: float = CONNECT_WAIT_S,
        action_timeout_s: float = ACTION_TIMEOUT_S,
    ) -> None:
        check_dial_settings(settings)
        self._settings = settings
        self._redis = redis
        self._owns_redis = owns_redis
        self._connect_wait_s = connect_wait_s
        self._action_timeout_s = action_timeout_s
        self._records = CallRecords(redis, keys, settings.CALL_MAX_DURATION + 3600)
        self._tracker = CallTracker(self._records, deadlines)
        self._presence = DialerPresence(redis, keys)
        self._presence_changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.session = AmiSession(
            credentials_of(settings),
            self._tracker.on_event,
            timings=timings,
            on_state=lambda _: self._presence_changed.set(),
        )

    def start(self) -> None:
        """Connect in the background (needs a running loop; otherwise done on first use)."""
        if self._tasks:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self.session.start()
        self._tasks = [
            asyncio.create_task(keep_running("ami-tracker", self._tracker.run), name="ami-tracker"),
            asyncio.create_task(
                presence_loop(self._presence, self._report, self._presence_changed),
                name="ami-presence",
            ),
        ]

    async def originate(self, call: CallRequest) -> None:
        self.start()
        values = dial_values(self._settings, call)
        if not await self.session.wait_connected(self._connect_wait_s):
            why = self.session.last_error or self.session.state.value
            raise DialerError(f"no AMI session to {self.session.endpoint}: {why}")
        try:
            await self._records.create(
                call.call_id,
                {
                    "originated_at": f"{call.originated_at:.3f}",
                    "job_id": values.job_id,
                    "dialed": values.channel,
                },
            )
        except StoreUnavailableError as exc:
            raise DialerError(f"call record not written, call not placed: {exc!r}") from None
        await self._send_originate(call, values)

    async def _send_originate(self, call: CallRequest, values: DialValues) -> None:
        try:
            response = await self.session.request(originate_action(values), self._action_timeout_s)
        except AmiNotConnected as exc:
            raise DialerError(str(exc)) from None
        except (AmiConnectionClosed, AmiResponseTimeout) as exc:
            # It may have been queued: never send it again, follow it from its events.
            log.warning("originate sent but not confirmed", call_id=call.call_id, error=str(exc))
            return
        if response.name.lower() != "success":
            message = response.get("Message") or "no message"
            raise DialerError(f"Asterisk refused Originate: {message}")

    async def wait_outcome(self, call: CallRequest) -> CallResult:
        self.start()
        return await self._tracker.wait(call)

    async def abandon(self, call: CallRequest) -> bool:
        """Nothing to take back: an Originate once sent cannot be withdrawn, and hanging the
        channel up would need `write = call`, which the least-privilege AMI user does not have
        (deploy/asterisk/manager_tts.conf). Asterisk ends the call itself at its ring timeout."""
        return False

    def health(self) -> DialerHealth:
        if self.session.state is SessionState.CONNECTED:
            return DialerHealth.CONNECTED
        return DialerHealth.DISCONNECTED

    async def aclose(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.session.close()
        with contextlib.suppress(Exception):
            await self._presence.remove(self._settings.WORKER_ID)
        if self._owns_redis:
            await self._redis.aclose()

    def _report(self) -> PresenceReport:
        return PresenceReport(
            worker_id=self._settings.WORKER_ID,
            backend=self.name,
            state=self.health().value,
            beat=time.time(),
            error=self.session.last_error,
        )
