"""The AMI session against the recorded server over TCP: login and its failure modes, event
classes, Shutdown, EOF and dropped connections, reconnect with backoff, secrets kept out of logs.
The double's answers are checked against the recorded sessions they come from (the recorded
client's bytes in, the recorded server's messages out)."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from structlog.testing import capture_logs

from tests.doubles import ami_answers
from tests.doubles.ami_server import ALL_CLASSES, AmiServerDouble, running_ami_double
from tests.doubles.recordings import Entry, ami_session
from tests.doubles.scenarios import call_script
from ttsqueue.dialer.ami import (
    AmiCredentials,
    AmiMessage,
    AmiNotConnected,
    AmiSession,
    SessionState,
    SessionTimings,
)
from ttsqueue.dialer.ami.connection import AmiConnection
from ttsqueue.dialer.ami.protocol import read_banner, read_message

pytestmark = pytest.mark.timeout(30)

SECRET = "s3cret-Üñí-value"
FAST = SessionTimings(
    connect_timeout_s=2.0, keepalive_s=0.3, retry=(0.05, 0.2), auth_retry=(0.3, 2.0)
)


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


@pytest.fixture
async def double() -> AsyncIterator[AmiServerDouble]:
    async with running_ami_double(secret=SECRET, time_scale=0.05) as server:
        yield server


def session_to(
    double: AmiServerDouble,
    secret: str = SECRET,
    events: list[AmiMessage] | None = None,
    timings: SessionTimings = FAST,
) -> AmiSession:
    sink = events if events is not None else []
    credentials = AmiCredentials("127.0.0.1", double.port, "tts", secret)
    return AmiSession(credentials, sink.append, timings=timings)


def logged_in(double: AmiServerDouble, count: int = 1) -> Callable[[], bool]:
    return lambda: sum(ok for _, ok in double.logins) >= count


async def test_login_asks_only_for_the_event_classes_it_needs(double: AmiServerDouble) -> None:
    session = session_to(double)
    session.start()
    try:
        assert await session.wait_connected(5)
        assert session.state is SessionState.CONNECTED
        login = dict(double.actions[0])
        assert login["Action"] == "Login"
        assert login["Events"] == "call,user,system"
        pong = await session.request([("Action", "Ping")], timeout=2)
        assert pong.get("Ping") == "Pong"
    finally:
        await session.close()
    assert double.actions[-1][0] == ("Action", "Logoff")


async def test_no_action_is_sent_until_asterisk_says_it_has_booted(
    double: AmiServerDouble,
) -> None:
    """Asterisk accepts logins while still booting; an Originate sent then fails. The session
    is up, and a caller waiting for it sends its action, only after `Event: FullyBooted`."""
    double.booted = False
    session = session_to(double)

    async def first_action() -> AmiMessage:
        assert await session.wait_connected(15)
        return await session.request([("Action", "Ping")], timeout=5)

    session.start()
    caller = asyncio.create_task(first_action())
    try:
        await until(logged_in(double))
        # Well past several keepalive periods, still well inside boot_wait_s.
        assert not await session.wait_connected(1.0)
        assert session.state is SessionState.CONNECTING
        with pytest.raises(AmiNotConnected):
            await session.request([("Action", "Ping")], timeout=1)
        assert [dict(a)["Action"] for a in double.actions] == ["Login"]
        assert not caller.done()
        await double.finish_boot()
        assert (await asyncio.wait_for(caller, 5)).get("Ping") == "Pong"
    finally:
        caller.cancel()
        await session.close()
    assert [dict(a)["Action"] for a in double.actions][:2] == ["Login", "Ping"]


async def test_without_system_read_the_session_goes_up_after_the_boot_wait_and_says_why(
    double: AmiServerDouble,
) -> None:
    """Asterisk sends FullyBooted only to sessions that may read `system`: without it the
    session does not wait forever, and the warning names the likely cause."""
    double.read = ALL_CLASSES - {"system"}
    session = session_to(double, timings=dataclasses.replace(FAST, boot_wait_s=0.5))
    started = time.monotonic()
    with capture_logs() as logs:
        session.start()
        try:
            assert await session.wait_connected(10)
            took = time.monotonic() - started
            pong = await session.request([("Action", "Ping")], timeout=2)
        finally:
            await session.close()
    assert pong.get("Ping") == "Pong"
    assert took >= 0.5
    warnings = [e for e in logs if e["event"] == "ami session up without FullyBooted"]
    assert len(warnings) == 1, logs
    assert warnings[0]["log_level"] == "warning"
    assert "`system` in `read`" in warnings[0]["hint"]
    assert double.logins == [("tts", True)]


async def test_a_connection_lost_while_asterisk_boots_is_retried(double: AmiServerDouble) -> None:
    double.booted = False
    session = session_to(double)
    session.start()
    try:
        await until(logged_in(double))
        await double.drop_connections()
        await until(logged_in(double, 2))
        assert session.last_error is not None
        assert "before FullyBooted" in session.last_error
        await double.finish_boot()
        assert await session.wait_connected(5)
    finally:
        await session.close()


async def test_a_wrong_secret_is_a_clear_error_with_backoff_not_a_crash_loop(
    double: AmiServerDouble,
) -> None:
    session = session_to(double, secret="WRONG-secret-42")
    with capture_logs() as logs:
        session.start()
        await _refused_then_retried(double, session)
    errors = [e for e in logs if e["log_level"] == "error"]
    assert errors
    assert (errors[0]["event"], errors[0]["reason"]) == (
        "ami login refused",
        "Authentication failed",
    )
    assert errors[0]["user"] == "tts"
    assert "WRONG-secret-42" not in repr(logs)


async def _refused_then_retried(double: AmiServerDouble, session: AmiSession) -> None:
    try:
        await until(lambda: session.state is SessionState.AUTH_FAILED)
        await asyncio.sleep(1.0)
        assert not await session.wait_connected(0.01)
        # Refused after the recorded 1 s (scaled), then retried with a growing delay.
        assert 2 <= len(double.logins) <= 4, double.logins
        assert session.last_error == "authentication failed: Authentication failed"
        with pytest.raises(AmiNotConnected):
            await session.request([("Action", "Ping")], timeout=1)
    finally:
        await session.close()


async def test_an_unknown_user_is_refused_the_same_way(double: AmiServerDouble) -> None:
    credentials = AmiCredentials("127.0.0.1", double.port, "nosuchuser", "x")
    session = AmiSession(credentials, lambda _: None, timings=FAST)
    session.start()
    try:
        await until(lambda: session.state is SessionState.AUTH_FAILED)
    finally:
        await session.close()
    assert double.logins[0] == ("nosuchuser", False)


async def test_actions_before_login_are_denied(double: AmiServerDouble) -> None:
    conn = await AmiConnection.open("127.0.0.1", double.port, 2, lambda _: None, "pre")
    try:
        reply = await conn.request([("Action", "Originate"), ("Channel", "Local/1@x")], 2)
        assert (reply.name, reply.get("Message")) == ("Error", "Permission denied")
    finally:
        await conn.close()


async def _originate_and_collect(double: AmiServerDouble, events_header: str) -> list[str]:
    seen: list[AmiMessage] = []
    conn = await AmiConnection.open("127.0.0.1", double.port, 2, seen.append, "f")
    try:
        login = [("Action", "Login"), ("Username", "tts"), ("Secret", SECRET)]
        assert (await conn.request([*login, ("Events", events_header)], 2)).name == "Success"
        originate = [
            ("Action", "Originate"),
            ("Channel", "PJSIP/3005050149@trunk"),
            ("Context", "tts-playback"),
            ("Exten", "s"),
            ("Priority", "1"),
            ("Timeout", "30000"),
            ("Async", "true"),
            ("ChannelId", "0f8e4a523c1d4b7a9e6f1a2b3c4d5e6f01"),
        ]
        assert (await conn.request(originate, 2)).get("Message") == (
            "Originate successfully queued"
        )
        await until(lambda: bool(double.calls) and double.calls[-1].ended is not None)
        await asyncio.sleep(0.05)  # the call's last events are on their way
    finally:
        await conn.close()
    return [m.name for m in seen]


async def test_events_off_hides_the_originate_response(double: AmiServerDouble) -> None:
    assert "OriginateResponse" not in await _originate_and_collect(double, "off")
    names = await _originate_and_collect(double, "call,user")
    assert {"OriginateResponse", "Hangup", "UserEvent"} <= set(names)
    assert not {"VarSet", "Newexten", "Cdr", "FullyBooted"} & set(names)


async def test_asterisk_shutdown_then_restart_reconnects(
    double: AmiServerDouble,
) -> None:
    states: list[SessionState] = []
    credentials = AmiCredentials("127.0.0.1", double.port, "tts", SECRET)
    session = AmiSession(credentials, lambda _: None, timings=FAST, on_state=states.append)
    session.start()
    try:
        assert await session.wait_connected(5)
        with capture_logs() as logs:
            await double.shutdown()
            await until(lambda: session.state is not SessionState.CONNECTED)
        shutdowns = [e for e in logs if e["event"] == "asterisk shutting down"]
        assert [(e["shutdown"], e["restart"]) for e in shutdowns] == [("Cleanly", "False")]
        await asyncio.sleep(0.3)
        assert session.state is not SessionState.CONNECTED
        # Back, and taking logins, but still booting: not up until it says it has booted.
        double.booted = False
        await double.restart()
        await until(logged_in(double, 2))
        assert not await session.wait_connected(0.5)
        await double.finish_boot()
        assert await session.wait_connected(5)
    finally:
        await session.close()
    assert states.count(SessionState.CONNECTED) == 2


@pytest.mark.parametrize("cut", ["drop", "stop_answering"])
async def test_a_lost_connection_is_noticed_and_rebuilt(double: AmiServerDouble, cut: str) -> None:
    session = session_to(double)
    session.start()
    try:
        assert await session.wait_connected(5)
        logins = len(double.logins)
        breaker: Callable[[], Awaitable[None]] = (
            double.drop_connections if cut == "drop" else double.stop_answering
        )
        await breaker()
        await until(lambda: len(double.logins) > logins, timeout=8)
        assert await session.wait_connected(5)
    finally:
        await session.close()


def lines_of(message: AmiMessage) -> list[str]:
    return [f"{key}: {value}" for key, value in message.headers]


async def replay_client(
    double: AmiServerDouble, entries: tuple[Entry, ...], expect: int
) -> tuple[list[AmiMessage], bool, float]:
    """Send the recorded client's actions as recorded, in one go; collect up to `expect`
    messages. Returns them, whether the server closed the connection, and the time taken."""
    reader, writer = await asyncio.open_connection("127.0.0.1", double.port)
    received: list[AmiMessage] = []
    closed = False
    try:
        await read_banner(reader)
        started = time.monotonic()
        writer.write(b"".join(e.wire() for e in entries if e.sent_by_client and e.lines))
        while len(received) < expect:
            try:
                received.append(await asyncio.wait_for(read_message(reader), 5))
            except asyncio.IncompleteReadError:
                closed = True
                break
        if not closed:
            try:
                await asyncio.wait_for(read_message(reader), 0.2)
            except asyncio.IncompleteReadError:
                closed = True
            except TimeoutError:
                pass
        return received, closed, time.monotonic() - started
    finally:
        writer.close()


def recorded_server_messages(entries: tuple[Entry, ...]) -> list[Entry]:
    return [e for e in entries if not e.sent_by_client and e.lines]


@pytest.mark.parametrize("recorded", ami_answers.LOGIN_REFUSALS, ids=lambda r: r[0])
async def test_a_refused_login_is_answered_as_recorded(
    double: AmiServerDouble, recorded: tuple[str, str]
) -> None:
    """auth_wrongsecret, auth_nouser, badlogin: `Authentication failed` after about 1 s, then
    EOF; in badlogin.log the client's Ping and second Login, sent after that, get nothing."""
    entries = ami_session(recorded[0])
    assert any(e.note.startswith("EOF") for e in entries)
    answers, closed, took = await replay_client(double, entries, expect=5)
    expected = recorded_server_messages(entries)
    assert [lines_of(m) for m in answers] == [list(e.lines) for e in expected]
    assert closed
    assert took >= ami_answers.answer(recorded).delay_s * double.time_scale * 0.9
    assert ami_answers.answer(recorded).delay_s >= 1.0
    assert all(not ok for _, ok in double.logins)


async def test_actions_before_login_are_answered_as_recorded() -> None:
    """auth_unauth_action.log: Originate and Ping before login get `Permission denied`; the
    login after them succeeds and the session then gets the login events."""
    entries = ami_session("auth_unauth_action")
    expected = recorded_server_messages(entries)
    async with running_ami_double(secret="tts_secret", time_scale=0.05) as server:
        answers, _, _ = await replay_client(server, entries, expect=len(expected))
    responses = [lines_of(m) for m in answers if m.kind == "response"]
    assert responses == [list(e.lines) for e in expected if e.lines[0].startswith("Response:")]
    assert [m.name for m in answers if m.kind == "event"] == [e.event for e in expected if e.event]
    assert not server.originates


async def test_ping_unknown_actions_and_logoff_are_answered_as_recorded(
    double: AmiServerDouble,
) -> None:
    """The end of misc.log: Ping, an unknown action, Logoff (then EOF)."""
    entries = ami_session("misc")
    tail = entries[next(i for i, e in enumerate(entries) if e.get("ActionID") == "ping-1") :]
    login = Entry(0.0, True, ("Action: Login", "Username: tts", f"Secret: {SECRET}"))
    answers, closed, _ = await replay_client(double, (login, *tail), expect=10)
    responses = [lines_of(m) for m in answers if m.kind == "response"]
    recorded = [list(e.lines) for e in tail if e.lines and e.lines[0].startswith("Response:")]
    assert responses[0] == ["Response: Success", "Message: Authentication accepted"]
    stamp = next(i for i, line in enumerate(recorded[0]) if line.startswith("Timestamp: "))
    assert responses[1][stamp].startswith("Timestamp: ")
    responses[1][stamp] = recorded[0][stamp]
    assert responses[1:] == recorded
    assert closed


async def test_events_call_user_are_what_asterisk_sent(double: AmiServerDouble) -> None:
    """filter_events_call_user.log: with `Events: call,user` a real Asterisk sent these events
    for an answered call (no VarSet, Newexten or Cdr); the double's replay of answer.log,
    filtered by the same classes, sends the same ones (the order of some differs: Asterisk
    gives none)."""
    recorded = collections.Counter(e.event for _, e in call_script("filter_events_call_user").steps)
    assert "VarSet" not in recorded
    assert recorded["OriginateResponse"] == 1
    sent = collections.Counter(await _originate_and_collect(double, "call,user"))
    assert sent == recorded
