"""The `ami` dialer: Originate (Async) on a persistent AMI session, outcome from AMI events.

Crash safety: the outcome does not live in the process that dialed. Before sending Originate,
the worker creates the call's record in Redis (`call:<call_id>`); every worker's session then
records the facts it sees about that call (OriginateResponse, Newstate Up, Hangup, the
dialplan's TTSDone / TTSFailed UserEvents), and `wait_outcome` reads them in whichever process
follows the call (`tracker.py`). When no session saw the end (every AMI link was down),
`dialer.outcome.resolve` decides from what is known once the call must be over, so the job never
stays in `calling`.

Several Asterisk servers (ASTERISK_SERVERS): one session per server, all feeding the one
tracker (a call's events come from the server it was placed on, under its ChannelId). A call
is placed on the server its trunk line belongs to (`CallRequest.server`), with that server's
channel template. A server whose session is not logged in reports down (`server_up`), so the
trunk gives its share to the others; its calls in flight are settled by the tracker as above.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import redis.asyncio as aioredis

from ttsqueue.asterisk_servers import AsteriskServer
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


def credentials_of(server: AsteriskServer) -> AmiCredentials:
    if not server.ami_host or not server.ami_user:
        raise ConfigError("DIALER=ami needs ASTERISK_AMI_HOST and ASTERISK_AMI_USER")
    return AmiCredentials(
        server.ami_host,
        server.ami_port,
        server.ami_user,
        server.ami_secret.get_secret_value(),
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
        self._servers = {server.name: server for server in settings.asterisk_servers}
        self.sessions = {
            name: AmiSession(
                credentials_of(server),
                self._tracker.on_event,
                timings=timings,
                on_state=lambda _: self._presence_changed.set(),
            )
            for name, server in self._servers.items()
        }

    @property
    def session(self) -> AmiSession:
        """The first server's session (the only one without ASTERISK_SERVERS)."""
        return next(iter(self.sessions.values()))

    def start(self) -> None:
        """Connect in the background (needs a running loop; otherwise done on first use)."""
        if self._tasks:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        for session in self.sessions.values():
            session.start()
        self._tasks = [
            asyncio.create_task(keep_running("ami-tracker", self._tracker.run), name="ami-tracker"),
            asyncio.create_task(
                presence_loop(self._presence, self._report, self._presence_changed),
                name="ami-presence",
            ),
        ]

    async def originate(self, call: CallRequest) -> None:
        self.start()
        name = call.server or next(iter(self._servers))
        server, session = self._servers.get(name), self.sessions.get(name)
        if server is None or session is None:
            raise DialerError(f"no Asterisk server {name!r} in this worker's ASTERISK_SERVERS")
        values = dial_values(self._settings, call, channel_template=server.channel)
        if not await session.wait_up(self._connect_wait_s):
            why = session.last_error or session.state.value
            raise DialerError(f"no AMI session to {name} ({session.endpoint}): {why}")
        try:
            await self._records.create(
                call.call_id,
                {
                    "originated_at": f"{call.originated_at:.3f}",
                    "job_id": values.job_id,
                    "dialed": values.channel,
                    "server": name,
                },
            )
        except StoreUnavailableError as exc:
            raise DialerError(f"call record not written, call not placed: {exc!r}") from None
        await self._send_originate(session, call, values)

    async def _send_originate(
        self, session: AmiSession, call: CallRequest, values: DialValues
    ) -> None:
        try:
            response = await session.request(originate_action(values), self._action_timeout_s)
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
        """Connected while any server's session is logged in."""
        if any(self.server_up(name) for name in self.sessions):
            return DialerHealth.CONNECTED
        return DialerHealth.DISCONNECTED

    def server_up(self, name: str) -> bool:
        session = self.sessions.get(name)
        return session is not None and session.state is SessionState.CONNECTED

    def server_states(self) -> dict[str, str]:
        return {
            name: (DialerHealth.CONNECTED if self.server_up(name) else DialerHealth.DISCONNECTED)
            for name in self.sessions
        }

    async def aclose(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(session.close() for session in self.sessions.values()))
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
            error=self._last_error(),
            servers=self.server_states(),
        )

    def _last_error(self) -> str | None:
        if len(self.sessions) == 1:
            return self.session.last_error
        errors = [f"{name}: {s.last_error}" for name, s in self.sessions.items() if s.last_error]
        return "; ".join(errors) or None
