"""One persistent, authenticated AMI session: login, keepalive, reconnect with backoff.

Failure modes, as recorded from Asterisk 22 (`../shared/asterisk/ami/auth_*.log`):
- wrong secret or unknown user: `Response: Error` / `Authentication failed` after about 1 s,
  then the server closes. Logged as an error naming the user (never the secret), retried with a
  longer backoff: a wrong secret is not a crash loop, and fixing manager.conf heals it.
- `Event: Shutdown` then EOF when Asterisk stops: the session is down at once and comes back
  when Asterisk does.
- `Events: off` at login also hides OriginateResponse, so the session asks for the classes it
  needs (`call` for originate results and hangups, `user` for the dialplan's UserEvents,
  `system` for Shutdown); Asterisk sends only those the manager user may read.
- Asterisk accepts logins while it is still booting (modules, dialplan and channels not
  loaded), and an Originate sent then fails. Asterisk sends `Event: FullyBooted` to a new
  session with `system` read permission, at once if it has booted, else when it has: the
  session is up only after it, or after `boot_wait_s` without it (a warning: the manager user
  most likely lacks `read = system`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from ttsqueue.dialer.ami.backoff import Backoff
from ttsqueue.dialer.ami.connection import AmiConnection, EventCallback
from ttsqueue.dialer.ami.errors import (
    AmiAuthError,
    AmiConnectionClosed,
    AmiNotConnected,
    AmiProtocolError,
    AmiResponseTimeout,
)
from ttsqueue.dialer.ami.protocol import AmiMessage
from ttsqueue.logs import get_logger

log = get_logger("ttsqueue.dialer.ami")

DEFAULT_EVENTS = "call,user,system"


class SessionState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    AUTH_FAILED = "auth_failed"


@dataclass(frozen=True, slots=True)
class AmiCredentials:
    host: str
    port: int
    username: str
    secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SessionTimings:
    connect_timeout_s: float = 5.0
    login_timeout_s: float = 10.0
    keepalive_s: float = 20.0
    retry: tuple[float, float] = (0.5, 30.0)  # base, cap
    auth_retry: tuple[float, float] = (5.0, 60.0)
    boot_wait_s: float = 10.0


class AmiSession:
    def __init__(
        self,
        credentials: AmiCredentials,
        on_event: EventCallback,
        *,
        events: str = DEFAULT_EVENTS,
        timings: SessionTimings | None = None,
        on_state: Callable[[SessionState], None] | None = None,
    ) -> None:
        self.credentials = credentials
        self.timings = timings or SessionTimings()
        self._on_event = on_event
        self._events = events
        self._on_state = on_state
        self._backoff = Backoff(*self.timings.retry)
        self._auth_backoff = Backoff(*self.timings.auth_retry)
        self._conn: AmiConnection | None = None
        self._up = asyncio.Event()
        self._booted = asyncio.Event()
        # While logged in and waiting for FullyBooted: when that wait ends (the loop's clock).
        self._booting_until: float | None = None
        self._task: asyncio.Task[None] | None = None
        self.state = SessionState.DISCONNECTED
        self.connected_since: float | None = None
        self.last_error: str | None = None
        self.logins = 0

    @property
    def endpoint(self) -> str:
        return f"{self.credentials.host}:{self.credentials.port}"

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ami-session")

    async def close(self) -> None:
        task, self._task = self._task, None
        conn = self._conn
        if conn is not None and not conn.closed:
            with contextlib.suppress(Exception):
                await conn.request([("Action", "Logoff")], timeout=1.0)
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        self._set_state(SessionState.DISCONNECTED)

    async def wait_connected(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._up.wait()
        return self._up.is_set()

    async def wait_up(self, timeout: float) -> bool:
        """`wait_connected(timeout)`; past it, a session that is logged in and waits for
        Asterisk to finish booting is waited for until that wait ends (at most `boot_wait_s`
        after its login): an Asterisk that is starting takes calls once it has booted, so a
        call made meanwhile is not failed after the shorter wait."""
        if await self.wait_connected(timeout):
            return True
        until = self._booting_until
        if until is None:
            return False
        return await self.wait_connected(until - asyncio.get_running_loop().time())

    async def request(self, fields: Sequence[tuple[str, str]], timeout: float) -> AmiMessage:
        """Send an action on the live session. `AmiNotConnected`: it was not sent."""
        conn = self._conn
        if conn is None or conn.closed or self.state is not SessionState.CONNECTED:
            raise AmiNotConnected(f"no AMI session to {self.endpoint} ({self.state.value})")
        return await conn.request(fields, timeout)

    async def _run(self) -> None:
        while True:
            try:
                delay = await self._connect_once()
            except Exception as exc:  # a bug must not end the session for good
                log.exception("ami session failed", endpoint=self.endpoint)
                delay = self._connection_failed(f"unexpected error: {exc!r}")
            await asyncio.sleep(delay)

    async def _connect_once(self) -> float:
        """One connection's life; returns how long to wait before the next one."""
        self._set_state(SessionState.CONNECTING)
        self._booted.clear()
        try:
            conn = await AmiConnection.open(
                self.credentials.host,
                self.credentials.port,
                self.timings.connect_timeout_s,
                self._dispatch,
                id_prefix=f"ttsq-{os.getpid()}",
            )
        except (OSError, TimeoutError, AmiProtocolError) as exc:
            return self._connection_failed(f"cannot connect: {exc!r}")
        self._conn = conn
        try:
            return await self._live(conn)
        finally:
            await conn.close()

    async def _live(self, conn: AmiConnection) -> float:
        """Login, boot wait, then serve until the connection ends; returns the next delay."""
        try:
            await self._login(conn)
        except AmiAuthError as exc:
            return self._auth_failed(str(exc))
        except (AmiConnectionClosed, AmiNotConnected, AmiResponseTimeout, AmiProtocolError) as exc:
            return self._connection_failed(f"login did not complete: {exc}")
        lost = await self._wait_booted(conn)
        if lost is not None:
            return self._connection_failed(f"connection lost before FullyBooted: {lost}")
        self._connected()
        reason = await self._serve(conn)
        return self._connection_failed(f"connection lost: {reason}")

    async def _login(self, conn: AmiConnection) -> None:
        action = [
            ("Action", "Login"),
            ("Username", self.credentials.username),
            ("Secret", self.credentials.secret),
            ("Events", self._events),
        ]
        response = await conn.request(action, self.timings.login_timeout_s)
        self.logins += 1
        if response.name.lower() != "success":
            raise AmiAuthError(response.get("Message") or "login refused")

    async def _wait_booted(self, conn: AmiConnection) -> str | None:
        """Wait for FullyBooted, at most `boot_wait_s`; returns why the connection ended if it
        did meanwhile, else None (booted, or the bound passed)."""
        booted = asyncio.create_task(self._booted.wait())
        closed = asyncio.create_task(conn.wait_closed())
        self._booting_until = asyncio.get_running_loop().time() + self.timings.boot_wait_s
        try:
            await asyncio.wait(
                (booted, closed),
                timeout=self.timings.boot_wait_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            self._booting_until = None
            booted.cancel()
            closed.cancel()
        if conn.closed:
            return conn.close_reason
        if not self._booted.is_set():
            log.warning(
                "ami session up without FullyBooted",
                endpoint=self.endpoint,
                user=self.credentials.username,
                waited_s=self.timings.boot_wait_s,
                hint="the manager.conf user most likely lacks `system` in `read`, so Asterisk "
                "never says it has booted; originates right after an Asterisk restart may fail",
            )
        return None

    async def _serve(self, conn: AmiConnection) -> str:
        """Keep the session alive until the connection ends; returns why it ended."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.timings.keepalive_s):
                    return await conn.wait_closed()
            try:
                await conn.request([("Action", "Ping")], timeout=self.timings.connect_timeout_s)
            except AmiResponseTimeout:
                return "no answer to keepalive Ping"
            except (AmiConnectionClosed, AmiNotConnected):
                return await conn.wait_closed()

    def _dispatch(self, event: AmiMessage) -> None:
        if event.name.lower() == "fullybooted":
            self._booted.set()
        elif event.name.lower() == "shutdown":
            log.warning(
                "asterisk shutting down",
                endpoint=self.endpoint,
                shutdown=event.get("Shutdown", "?"),
                restart=event.get("Restart", "?"),
            )
            self._set_state(SessionState.DISCONNECTED)
        self._on_event(event)

    def _connected(self) -> None:
        self._backoff.reset()
        self._auth_backoff.reset()
        self.last_error = None
        self.connected_since = time.time()
        log.info(
            "ami session up",
            endpoint=self.endpoint,
            user=self.credentials.username,
            manager_version=self._conn.version if self._conn else "?",
        )
        self._set_state(SessionState.CONNECTED)

    def _connection_failed(self, why: str) -> float:
        self._drop()
        delay = self._backoff.next()
        self.last_error = why
        self._set_state(SessionState.DISCONNECTED)
        # A few failures are a restart or a blip; more say Asterisk stays away.
        say = log.warning if self._backoff.failures <= 3 else log.error
        say("ami connection failed", endpoint=self.endpoint, reason=why, retry_in_s=round(delay, 1))
        return delay

    def _auth_failed(self, message: str) -> float:
        self._drop()
        delay = self._auth_backoff.next()
        self.last_error = f"authentication failed: {message}"
        self._set_state(SessionState.AUTH_FAILED)
        log.error(
            "ami login refused",
            endpoint=self.endpoint,
            user=self.credentials.username,
            reason=message,
            retry_in_s=round(delay),
            hint="check ASTERISK_AMI_USER, ASTERISK_AMI_SECRET and the manager.conf user "
            "(permit, secret)",
        )
        return delay

    def _drop(self) -> None:
        self._conn = None
        self.connected_since = None
        self._up.clear()

    def _set_state(self, state: SessionState) -> None:
        if state is SessionState.CONNECTED:
            self._up.set()
        else:
            self._up.clear()
        if state is self.state:
            return
        self.state = state
        if self._on_state is not None:
            self._on_state(state)
