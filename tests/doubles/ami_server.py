"""An AMI server double speaking the protocol over TCP, replaying recorded Asterisk sessions.

What it reproduces, each from a recording in `recordings/ami/`:
- the banner; Login accepted (`answer.log`) or refused after 1 s then closed
  (`auth_wrongsecret.log`, `auth_nouser.log`, `badlogin.log`); actions before login:
  `Permission denied` (`auth_unauth_action.log`); Ping, Logoff, unknown actions and
  Originate's synchronous errors (`misc.log`). These answers are the recorded responses
  themselves (`ami_answers.py`), sent after the recorded delay (scaled);
- event classes: only those in both the user's read permissions and the `Events:` of the
  login (`Events: off` hides OriginateResponse too: `filter_events_off.log`);
- async Originate: the recorded call of the callee the number picks (`scenarios.py`), its
  events broadcast to every logged-in session, as Asterisk does; ChannelId uniqueness as a
  case-insensitive prefix match against live calls (`burst_a50.log`: Reason 0);
- `Event: FullyBooted` right after a login whose session may read `system` (`answer.log`);
  with `booted=False` Asterisk is still booting: logins are accepted and get no FullyBooted
  until `finish_boot()` sends it to every such session, as Asterisk does when it has booted;
- `Event: Shutdown` then EOF (`shutdown.log`), and abrupt connection drops.

Everything received is kept (`raw`, `actions`) so tests can inspect what reached "Asterisk".
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.doubles import ami_answers
from tests.doubles.ami_answers import Answer, answer
from tests.doubles.ami_replay import Adapter, Originate
from tests.doubles.recordings import ami_session
from tests.doubles.scenarios import call_script, scenario_for

ALL_CLASSES = frozenset({"system", "call", "log", "verbose", "command", "agent", "user",
                         "config", "dtmf", "reporting", "cdr", "dialplan", "originate",
                         "agi", "cc", "aoc", "test", "security", "message"})  # fmt: skip


def _banner() -> bytes:
    note = ami_session("answer")[0].note  # "BANNER b'Asterisk Call Manager/11.0.0\r\n'"
    literal = ast.literal_eval(note.removeprefix("BANNER "))
    assert isinstance(literal, bytes)
    return literal


def _message(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _classes(value: str | None) -> frozenset[str]:
    if value is None or value.strip().lower() in ("on", "all", "yes", "true"):
        return ALL_CLASSES
    if value.strip().lower() in ("off", "no", "false", ""):
        return frozenset()
    return frozenset(part.strip().lower() for part in value.split(","))


@dataclass(eq=False, slots=True)
class Session:
    writer: asyncio.StreamWriter
    logged_in: bool = False
    mask: frozenset[str] = frozenset()
    muted: bool = False

    def send(self, data: bytes) -> None:
        if not self.writer.is_closing() and not self.muted:
            self.writer.write(data)


@dataclass(slots=True)
class LiveCall:
    originate: Originate
    scenario: str
    channel_id: str | None
    started: float
    ended: float | None = None


@dataclass(slots=True)
class AmiServerDouble:
    username: str = "tts"
    secret: str = "tts_secret"
    read: frozenset[str] = ALL_CLASSES
    write: frozenset[str] = ALL_CLASSES
    time_scale: float = 0.05
    contexts: frozenset[str] = frozenset({"tts-playback"})
    scenario_of: Callable[[str], str] = scenario_for
    check_audio: bool = False  # play missingfile.log when TTS_FILE.wav does not exist
    ack_originates: bool = True  # False: the call goes ahead but its response is lost
    booted: bool = True  # False: logins accepted, FullyBooted held back until finish_boot()
    port: int = 0
    raw: bytearray = field(default_factory=bytearray)
    actions: list[list[tuple[str, str]]] = field(default_factory=list)
    calls: list[LiveCall] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)
    live_log: list[tuple[float, int]] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _sessions: set[Session] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _live: dict[str, LiveCall] = field(default_factory=dict)

    async def start(self) -> AmiServerDouble:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        await self._close_server()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def originates(self) -> list[Originate]:
        return [c.originate for c in self.calls]

    @property
    def live(self) -> int:
        return len(self._live)

    async def shutdown(self) -> None:
        """Asterisk stops: `Event: Shutdown`, EOF 14 ms later, calls gone, no new sessions."""
        shutdown = next(e for e in ami_session("shutdown") if e.event == "Shutdown")
        for session in list(self._sessions):
            if session.logged_in and "system" in session.mask:
                session.send(shutdown.wire())
        await asyncio.sleep(0.014 * self.time_scale)
        await self._close_server()
        for task in list(self._tasks):
            task.cancel()
        self._live.clear()

    async def restart(self) -> None:
        await self.start()

    async def finish_boot(self) -> None:
        """Asterisk has booted: FullyBooted to every logged-in session that reads `system`."""
        self.booted = True
        for entry in ami_session("answer"):
            if entry.event == "FullyBooted":
                self._broadcast(entry.get("Privilege"), entry.wire())

    async def drop_connections(self) -> None:
        """The network drops every session; calls in progress go on."""
        for session in list(self._sessions):
            session.writer.transport.abort()

    async def stop_answering(self) -> None:
        """Every current session goes silent without closing (a half-dead TCP link)."""
        for session in self._sessions:
            session.muted = True

    async def _close_server(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for session in list(self._sessions):
            session.writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(writer)
        self._sessions.add(session)
        writer.write(_banner())
        try:
            while not writer.is_closing():
                block = await reader.readuntil(b"\r\n\r\n")
                self.raw += block
                headers = _headers(block)
                if headers:
                    self.actions.append(headers)
                    await self._act(session, headers)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._sessions.discard(session)
            writer.close()

    async def _act(self, session: Session, headers: list[tuple[str, str]]) -> None:
        fields = {k.lower(): v for k, v in reversed(headers)}
        action = fields.get("action", "").lower()
        reply = _Reply(session, fields.get("actionid", ""), self.time_scale)
        if action == "login":
            await self._login(session, fields, reply)
        elif action == "logoff":
            await reply.send(answer(ami_answers.GOODBYE))
        elif not session.logged_in:
            await reply.send(answer(ami_answers.PERMISSION_DENIED))
        elif action == "ping":
            await reply.send(answer(ami_answers.PONG), Timestamp=f"{time.time():.6f}")
        elif action == "originate":
            await self._originate(headers, reply)
        else:
            unknown = answer(ami_answers.UNKNOWN_ACTION)
            message = (unknown.get("Message") or "").replace("NoSuchAction", fields["action"])
            await reply.send(unknown, Message=message)

    async def _login(self, session: Session, fields: dict[str, str], reply: _Reply) -> None:
        ok = fields.get("username") == self.username and fields.get("secret") == self.secret
        self.logins.append((fields.get("username", ""), ok))
        if not ok:
            await reply.send(answer(ami_answers.LOGIN_REFUSED))
            return
        session.logged_in = True
        session.mask = self.read & _classes(fields.get("events"))
        await reply.send(answer(ami_answers.LOGIN_ACCEPTED))
        for entry in ami_session("answer"):
            if entry.event not in ("FullyBooted", "SuccessfulAuth"):
                continue
            if entry.event == "FullyBooted" and not self.booted:
                continue
            if self._visible(session, entry.get("Privilege")):
                session.send(entry.wire())

    async def _originate(self, headers: list[tuple[str, str]], reply: _Reply) -> None:
        request = Originate.parse(headers)
        refusal = self._refusal(request)
        if refusal is not None:
            await reply.send(refusal)
            return
        if request.get("Async").lower() != "true":
            reply.error("this double replays async originates only")
            return
        if self.ack_originates:
            await reply.send(answer(ami_answers.ORIGINATE_QUEUED))
        task = asyncio.create_task(self._run_call(request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _refusal(self, request: Originate) -> Answer | None:
        if "originate" not in self.write:
            return answer(ami_answers.PERMISSION_DENIED)
        if not request.get("Channel"):
            return answer(ami_answers.NO_CHANNEL)
        if request.get("Timeout") and not request.get("Timeout").isdigit():
            return answer(ami_answers.BAD_TIMEOUT)
        if request.get("Context") not in self.contexts or request.get("Exten") != "s":
            return answer(ami_answers.NO_SUCH_EXTENSION)
        return None

    def _scenario(self, request: Originate) -> str:
        scenario = self.scenario_of(request.get("Channel"))
        audio = request.variables.get("TTS_FILE", "")
        if self.check_audio and scenario == "answer" and not Path(f"{audio}.wav").exists():
            return "missingfile"
        return scenario

    async def _run_call(self, request: Originate) -> None:
        channel_id = request.get("ChannelId") or None
        call = LiveCall(request, self._scenario(request), channel_id, time.monotonic())
        self.calls.append(call)
        key = channel_id.lower() if channel_id else f"anon-{len(self.calls)}"
        self._live[key] = call
        self.live_log.append((time.monotonic(), len(self._live)))
        try:
            await asyncio.sleep(0.001 * self.time_scale)  # Asterisk sets channels up in threads
            # Checked once every call of the same burst is known, as Asterisk's threads do.
            if channel_id and any(o.startswith(key) and o != key for o in self._live):
                self._broadcast_collision(request)
            else:
                await self._play(request, call)
        finally:
            call.ended = time.monotonic()
            self._live.pop(key, None)
            self.live_log.append((time.monotonic(), len(self._live)))

    async def _play(self, request: Originate, call: LiveCall) -> None:
        script = call_script(call.scenario)
        adapter = Adapter(script, request, len(self.calls), f"{int(time.time())}")
        for t, entry in script.steps:
            delay = call.started + adapter.time_of(t) * self.time_scale - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._broadcast(entry.get("Privilege"), _message(*adapter.lines(entry)))

    def _broadcast_collision(self, request: Originate) -> None:
        self._broadcast(
            "call,all",
            _message(
                "Event: OriginateResponse",
                "Privilege: call,all",
                f"ActionID: {request.get('ActionID')}",
                "Response: Failure",
                f"Channel: {request.get('Channel')}",
                f"Context: {request.get('Context')}",
                f"Exten: {request.get('Exten')}",
                "Reason: 0",
                f"Uniqueid: {request.get('ChannelId')}",
                "CallerIDNum: <unknown>",
                "CallerIDName: <unknown>",
            ),
        )

    def _visible(self, session: Session, privilege: str | None) -> bool:
        category = (privilege or "").split(",")[0].strip().lower()
        return session.logged_in and category in session.mask

    def _broadcast(self, privilege: str | None, data: bytes) -> None:
        for session in list(self._sessions):
            if self._visible(session, privilege):
                session.send(data)


@dataclass(slots=True)
class _Reply:
    session: Session
    action_id: str
    time_scale: float

    async def send(self, recorded: Answer, **values: str) -> None:
        """The recorded answer, after the recorded delay when it is noticeable (a refused
        login's 1 s); the connection closed after it when Asterisk closed it."""
        if recorded.delay_s >= 0.1:
            await asyncio.sleep(recorded.delay_s * self.time_scale)
        self.session.send(recorded.wire(self.action_id, **values))
        if recorded.closes:
            self.session.writer.close()

    def error(self, message: str) -> None:
        """An answer no recording holds (a limit of the double, not Asterisk behaviour)."""
        head = ["Response: Error", *([f"ActionID: {self.action_id}"] if self.action_id else [])]
        self.session.send(_message(*head, f"Message: {message}"))


def _headers(block: bytes) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for line in block.decode("utf-8", errors="replace").split("\r\n"):
        if line:
            key, _, value = line.partition(":")
            headers.append((key.strip(), value.removeprefix(" ")))
    return headers


def ami_dialer_settings(double: AmiServerDouble) -> dict[str, Any]:
    """Settings values that point the `ami` dialer at `double`."""
    return {
        "DIALER": "ami",
        "ASTERISK_AMI_HOST": "127.0.0.1",
        "ASTERISK_AMI_PORT": double.port,
        "ASTERISK_AMI_USER": double.username,
        "ASTERISK_AMI_SECRET": double.secret,
        "ASTERISK_CALLER_ID": '"TTS Queue" <5550100>',
    }


@contextlib.asynccontextmanager
async def running_ami_double(**options: Any) -> AsyncIterator[AmiServerDouble]:
    double = AmiServerDouble(**options)
    await double.start()
    try:
        yield double
    finally:
        await double.stop()
