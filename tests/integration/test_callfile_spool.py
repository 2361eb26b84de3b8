"""The `callfile` dialer against the recorded spool: placement (renamed in, owned, never twice,
never over another file), scheduling by mtime, every recorded outcome, the dialplan's report in
either order, files that never come back, and taking back a file Asterisk has not started."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import stat
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.conftest import make_settings
from tests.doubles.inotify import Watch
from tests.doubles.recordings import callfile_record
from tests.doubles.spool import SpoolDouble, running_spool_double
from tests.doubles.spool_timeline import appended, timeline
from ttsqueue.config import Settings
from ttsqueue.dialer.base import CallRequest
from ttsqueue.dialer.callfile import dialer as callfile_module
from ttsqueue.dialer.callfile.dialer import CallfileDialer, place_call_file, prepare_spool
from ttsqueue.dialer.callfile.format import (
    call_file_name,
    parse_report,
    parse_spool_file,
    report_complete,
    spool_result,
)
from ttsqueue.dialer.callfile.rename_noreplace import rename_noreplace
from ttsqueue.dialer.callfile.spool_watcher import SpoolPaths, overdue_unstarted
from ttsqueue.dialer.outcome import Deadlines
from ttsqueue.domain import CallOutcome, DialerHealth
from ttsqueue.errors import ConfigError
from ttsqueue.store.factory import keys_for

pytestmark = pytest.mark.timeout(45)


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
async def double(spool: Path) -> AsyncIterator[SpoolDouble]:
    async with running_spool_double(spool, time_scale=0.05) as running:
        yield running


@pytest.fixture
def cf_settings(tmp_path: Path, settings: Settings, spool: Path) -> Settings:
    return make_settings(
        tmp_path,
        REDIS_PREFIX=settings.REDIS_PREFIX,
        DIALER="callfile",
        ASTERISK_SPOOL_DIR=spool,
        ASTERISK_CALLER_ID='"TTS Queue" <5550100>',
    )


@pytest.fixture
async def dialer(
    double: SpoolDouble, cf_settings: Settings, redis_client: aioredis.Redis
) -> AsyncIterator[CallfileDialer]:
    callfile = CallfileDialer(cf_settings, redis_client, keys_for(cf_settings))
    try:
        yield callfile
    finally:
        await callfile.aclose()


def make_call(number: str = "3005050149", ring_timeout_s: int = 10) -> CallRequest:
    return CallRequest(
        job_id=str(uuid.uuid4()),
        attempt=1,
        number=number,
        e164=f"+57{number}",
        caller_id=None,
        audio_path="/var/lib/asterisk/sounds/tts/abc",
        audio_duration_s=3.0,
        ring_timeout_s=ring_timeout_s,
        originated_at=time.time(),
    )


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def epochs_hidden(text: str) -> str:
    return re.sub(r"\(\d+\)", "(t)", text)


def recorded_final(source: str, name: str) -> str:
    event = callfile_record(source, name)["events"][-1]
    assert event[1] == "appeared in outgoing_done/"
    return str(event[2])


def rename_in(spool: Path, name: str, body: str, mtime: float | None = None) -> float:
    """Stage a file, optionally with an mtime, and rename it into outgoing/ (no dialer)."""
    staged = spool / f"{name}.tmp"
    staged.write_text(body)
    if mtime is not None:
        os.utime(staged, (mtime, mtime))
    os.rename(staged, spool / "outgoing" / name)
    return time.time()


async def place(dialer: CallfileDialer, call: CallRequest) -> tuple[CallOutcome, str | None]:
    await dialer.originate(call)
    result = await asyncio.wait_for(dialer.wait_outcome(call), 20)
    return result.outcome, result.reason


@pytest.mark.parametrize(
    ("number", "outcome", "reason"),
    [
        ("3005050149", CallOutcome.ANSWERED, "played"),
        ("3005550007", CallOutcome.ANSWERED, "hangup_during_playback"),
        ("3005550008", CallOutcome.FAILED, "playback_failed"),
        ("3005550001", CallOutcome.BUSY, "5"),
        ("3005550003", CallOutcome.CONGESTION, "8"),
        ("3005550002", CallOutcome.NO_ANSWER, "3"),
    ],
)
async def test_each_recorded_callee(
    dialer: CallfileDialer, double: SpoolDouble, number: str, outcome: CallOutcome, reason: str
) -> None:
    call = make_call(number)
    assert await place(dialer, call) == (outcome, reason)
    name = call_file_name(call)
    assert double.handovers[name] == 1
    archived = (double.done / name).read_text()
    assert archived.startswith(double.received[name])
    assert "\nStartRetry: " in archived
    assert not list(dialer.paths.staging.iterdir())


async def test_without_the_dialplan_report_expired_is_an_honest_no_answer(
    dialer: CallfileDialer, double: SpoolDouble
) -> None:
    call = make_call("3005550001")
    original = dialer.paths
    assert original.done == double.done
    # A dialplan that reports nothing: the double writes no status file without TTS_REPORT.
    double.scenario_of = lambda channel: "busy"
    content = (
        f"Channel: PJSIP/{call.number}@trunk\nWaitTime: 10\nMaxRetries: 0\n"
        "Context: tts-playback\nExtension: s\nPriority: 1\nArchive: yes\n"
    )
    await asyncio.to_thread(place_call_file, original, call_file_name(call), content)
    result = await asyncio.wait_for(dialer.wait_outcome(call), 10)
    assert (result.outcome, result.reason) == (CallOutcome.NO_ANSWER, "expired")


@pytest.mark.parametrize(
    ("number", "outcome", "reason"),
    [("3005050149", CallOutcome.ANSWERED, "played"), ("3005550003", CallOutcome.CONGESTION, "8")],
)
async def test_a_report_written_after_the_archive_is_still_read(
    dialer: CallfileDialer, double: SpoolDouble, number: str, outcome: CallOutcome, reason: str
) -> None:
    double.report_after_archive = True
    assert await place(dialer, make_call(number)) == (outcome, reason)


async def test_the_file_is_handed_over_once_owned_and_readable_by_asterisk(
    dialer: CallfileDialer, double: SpoolDouble
) -> None:
    double.paused = True
    os.chown(double.outgoing, 4242, 4343)
    call = make_call()
    await dialer.originate(call)
    await dialer.originate(call)  # a redelivered message: same name, not placed again
    target = double.outgoing / call_file_name(call)
    info = target.stat()
    if os.geteuid() == 0:
        assert (info.st_uid, info.st_gid) == (4242, 4343)
    assert stat.S_IMODE(info.st_mode) == 0o664
    assert info.st_mtime <= time.time()
    assert info.st_nlink == 1  # the staging link is gone
    double.paused = False
    result = await asyncio.wait_for(dialer.wait_outcome(call), 10)
    assert result.outcome is CallOutcome.ANSWERED
    await dialer.originate(call)  # even after it was archived
    await asyncio.sleep(0.1)
    assert double.handovers[call_file_name(call)] == 1


async def test_another_process_follows_a_file_it_did_not_place(
    double: SpoolDouble, cf_settings: Settings, redis_client: aioredis.Redis
) -> None:
    first = CallfileDialer(cf_settings, redis_client, keys_for(cf_settings))
    second = CallfileDialer(cf_settings, redis_client, keys_for(cf_settings))
    try:
        call = make_call("3005550002")
        await first.originate(call)
        await first.aclose()
        result = await asyncio.wait_for(second.wait_outcome(call), 10)
        assert (result.outcome, result.reason) == (CallOutcome.NO_ANSWER, "3")
    finally:
        await second.aclose()


async def test_a_file_deleted_behind_our_back_is_lost_track(
    dialer: CallfileDialer, double: SpoolDouble
) -> None:
    double.paused = True
    call = make_call()
    await dialer.originate(call)
    (double.outgoing / call_file_name(call)).unlink()
    result = await asyncio.wait_for(dialer.wait_outcome(call), 10)
    assert (result.outcome, result.reason) == (CallOutcome.FAILED, "lost_track")


async def test_a_file_asterisk_never_starts_is_taken_back_before_the_reaper(
    double: SpoolDouble, tmp_path: Path, settings: Settings, redis_client: aioredis.Redis
) -> None:
    double.paused = True  # Asterisk is down
    short = make_settings(
        tmp_path,
        REDIS_PREFIX=settings.REDIS_PREFIX,
        ASTERISK_SPOOL_DIR=double.spool,
        CALL_MAX_DURATION=6,
    )
    dialer = CallfileDialer(short, redis_client, keys_for(short))
    try:
        call = make_call()
        await dialer.originate(call)
        result = await asyncio.wait_for(dialer.wait_outcome(call), 10)
        # Never rung: said so, and /health keeps saying Asterisk does not take call files.
        assert (result.outcome, result.reason) == (CallOutcome.FAILED, "not_dialed")
        assert not (double.outgoing / call_file_name(call)).exists()
        assert dialer.health() is DialerHealth.DISCONNECTED
        double.paused = False
        await asyncio.sleep(0.1)
        assert call_file_name(call) not in double.handovers
        # Until Asterisk archives a call again.
        answered = make_call()
        await dialer.originate(answered)
        assert (await asyncio.wait_for(dialer.wait_outcome(answered), 10)).reason == "played"
        assert dialer.health() is DialerHealth.CONNECTED
    finally:
        await dialer.aclose()


async def test_health_says_when_asterisk_does_not_take_the_files(
    double: SpoolDouble, cf_settings: Settings, redis_client: aioredis.Redis
) -> None:
    double.paused = True  # Asterisk is down
    dialer = CallfileDialer(cf_settings, redis_client, keys_for(cf_settings), stalled_after_s=0.5)
    try:
        call = make_call()
        await dialer.originate(call)
        await until(lambda: dialer.health() is DialerHealth.DISCONNECTED, timeout=10)
        double.paused = False  # back: it dials what waited in outgoing/
        assert (await asyncio.wait_for(dialer.wait_outcome(call), 10)).reason == "played"
        await until(lambda: dialer.health() is DialerHealth.CONNECTED, timeout=10)
    finally:
        await dialer.aclose()


async def test_an_answered_call_whose_end_never_came_is_settled_once_it_must_be_over(
    double: SpoolDouble, cf_settings: Settings, redis_client: aioredis.Redis
) -> None:
    """Asterisk died mid-call (SIGKILL, measured on a real one): the file stays in outgoing/
    with its StartRetry line, the status file has only the line written at answer time."""
    double.paused = True
    dialer = CallfileDialer(
        cf_settings, redis_client, keys_for(cf_settings), deadlines=Deadlines(talk_grace_s=0.5)
    )
    try:
        call = dataclasses.replace(make_call(), audio_duration_s=1.0)
        await dialer.originate(call)
        path = double.outgoing / call_file_name(call)
        answered = time.time()
        with path.open("a") as handle:
            handle.write(f"StartRetry: 4242 1 ({int(answered)})\n")
        (double.done / f"{call.call_id}.status").write_text(f"answered={answered:.3f}\n")
        result = await asyncio.wait_for(dialer.wait_outcome(call), 10)
        assert (result.outcome, result.reason) == (CallOutcome.ANSWERED, "hangup_not_seen")
        assert result.answered_at == pytest.approx(answered, abs=0.01)
        assert time.time() >= answered + 0.5 + 1.0 + 0.5  # not before the message was over
    finally:
        await dialer.aclose()


async def test_health_follows_the_spool(dialer: CallfileDialer, double: SpoolDouble) -> None:
    assert dialer.health() is DialerHealth.CONNECTED
    if os.geteuid() != 0:
        double.outgoing.chmod(0o500)
        assert dialer.health() is DialerHealth.DISCONNECTED


def test_the_recorded_lifecycles_cut_to_one_attempt() -> None:
    """Our files say MaxRetries: 0; cut from the 3-attempt recording, busy matches the
    recording made with MaxRetries: 0 line for line."""
    record = callfile_record("maxretries0", "tts-busy-mr0.call")
    final = record["events"][-1][2]
    recorded_tail = final[len(record["body"]) :]
    (step,) = [s for s in timeline("busy", 1) if s.status]
    epochs = re.compile(r"\(\d+\)")
    assert epochs.sub("(t)", appended(step.lines, step.status)) == epochs.sub("(t)", recorded_tail)
    noanswer = timeline("noanswer", 1)[-1]
    assert noanswer.status == "Expired"
    assert noanswer.lines[0].startswith("StartRetry: ")
    assert all(" 1 (" in line or " 0 (" in line for line in noanswer.lines)


@pytest.mark.parametrize(
    ("record", "status", "outcome", "reason"),
    [
        (("callees", "tts-answer.call"), "Completed", CallOutcome.ANSWERED, "completed"),
        (("callees", "tts-busy.call"), "Expired", CallOutcome.NO_ANSWER, "expired"),
        (("malformed", "bad-nochannel.call"), "Failed", CallOutcome.FAILED, "invalid_call_file"),
        (("malformed", "bad-badcontext.call"), "Completed", CallOutcome.ANSWERED, "completed"),
    ],
)
def test_recorded_archives_parse_to_their_status(
    record: tuple[str, str], status: str, outcome: CallOutcome, reason: str
) -> None:
    text = callfile_record(*record)["events"][-1][2]
    spool = parse_spool_file(text)
    assert spool.status == status
    result = spool_result(spool, {}, 1.0)
    assert (result.outcome, result.reason) == (outcome, reason)


def test_an_answered_call_archived_expired_after_a_restart_stays_answered() -> None:
    """pbx_spool, back after dying mid-call, archives the half-done file as Expired (without
    dialing again): the status file's line written at answer time says what happened."""
    report = parse_report("answered=1700000000.250\n")
    spool = parse_spool_file("Channel: Local/1@x\nStartRetry: 1 1 (1)\nStatus: Expired\n")
    assert report_complete("Expired", report)
    result = spool_result(spool, report, 1700000400.0)
    assert (result.outcome, result.reason) == (CallOutcome.ANSWERED, "hangup_not_seen")
    assert result.answered_at == 1700000000.25


def test_overdue_unstarted_files_tell_that_asterisk_does_not_take_them(tmp_path: Path) -> None:
    paths = SpoolPaths.under(tmp_path)
    paths.outgoing.mkdir()
    now = time.time()
    files = {
        "late.call": ("Channel: Local/1@x\n", now - 30),
        "started.call": ("Channel: Local/1@x\nStartRetry: 1 1 (1)\n", now - 60),
        "scheduled.call": ("Channel: Local/1@x\n", now + 600),
        "fresh.call": ("Channel: Local/1@x\n", now - 1),
        "later.call": ("Channel: Local/1@x\n", now - 10),
    }
    for name, (text, mtime) in files.items():
        (paths.outgoing / name).write_text(text)
        os.utime(paths.outgoing / name, (mtime, mtime))
    found = overdue_unstarted(paths, now, 5.0)
    assert found is not None
    assert found[0] == "late.call"
    assert found[1] == pytest.approx(30, abs=0.1)
    (paths.outgoing / "late.call").unlink()
    (paths.outgoing / "later.call").unlink()
    assert overdue_unstarted(paths, now, 5.0) is None


def test_reports_merge_lines_and_keep_the_first_value() -> None:
    report = parse_report(
        "reason=5\nanswered=10 ended=14 playback=SUCCESS done= cause=16\nreason=8\n"
    )
    assert report == {
        "reason": "5",
        "answered": "10",
        "ended": "14",
        "playback": "SUCCESS",
        "cause": "16",
    }


def _mount_tmpfs(target: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(target)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


@pytest.fixture
def staging_elsewhere(tmp_path: Path) -> Iterator[SpoolPaths]:
    """A spool whose staging directory is a filesystem of its own."""
    paths = SpoolPaths.under(tmp_path / "spool")
    paths.outgoing.mkdir(parents=True)
    paths.staging.mkdir()
    _mount_tmpfs(paths.staging)
    try:
        yield paths
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            subprocess.run(["umount", "-l", str(paths.staging)], check=True, timeout=30)


def test_staging_must_share_the_spool_filesystem(staging_elsewhere: SpoolPaths) -> None:
    paths = staging_elsewhere
    assert paths.staging.stat().st_dev != paths.outgoing.stat().st_dev
    with pytest.raises(ConfigError, match="on different filesystems"):
        prepare_spool(paths)
    # Without the check a rename could not work at all: it cannot cross filesystems.
    (paths.staging / "x.call").write_text("Channel: Local/1@x\n")
    with pytest.raises(OSError, match="cross-device"):
        rename_noreplace(paths.staging / "x.call", paths.outgoing / "x.call")
    subprocess.run(["umount", "-l", str(paths.staging)], check=True, timeout=30)
    prepare_spool(paths)  # one filesystem again: accepted


async def test_the_call_file_arrives_by_rename_and_is_dialed_at_once(
    dialer: CallfileDialer, double: SpoolDouble
) -> None:
    """pbx_spool acts on IN_MOVED_TO at once; an IN_CREATE nobody opens (a hard link) waits."""
    call = make_call()
    name = call_file_name(call)
    with Watch(double.outgoing) as watch:
        placed = time.time()
        await dialer.originate(call)
        await until(lambda: name in double.dialed)
        seen = [event.kind for event in watch.read() if event.name == name]
    assert seen[0] == "moved_to", seen
    assert "create" not in seen
    assert double.arrived[name] == "moved_to"
    assert double.dialed[name] - placed < double.create_wait_s / 2
    result = await asyncio.wait_for(dialer.wait_outcome(call), 10)
    assert result.outcome is CallOutcome.ANSWERED


async def test_a_hard_linked_file_waits_as_pbx_spool_makes_it(
    double: SpoolDouble, tmp_path: Path
) -> None:
    source = tmp_path / "linked.call"
    source.write_text(callfile_record("callees", "tts-answer.call")["body"])
    linked = time.time()
    os.link(source, double.outgoing / "linked.call")
    await until(lambda: "linked.call" in double.dialed)
    assert double.arrived["linked.call"] == "create"
    assert double.dialed["linked.call"] - linked >= double.create_wait_s - 0.01


async def test_a_file_placed_meanwhile_by_someone_else_is_never_replaced(
    dialer: CallfileDialer, double: SpoolDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the existence check and the rename another worker places the same name: the
    rename refuses to replace it (RENAME_NOREPLACE), and nothing is left in staging."""
    double.paused = True
    name = "race-1.call"
    target = double.outgoing / name
    write = callfile_module._write_staged

    def racing_write(staged: Path, content: str, owner: os.stat_result) -> None:
        write(staged, content, owner)
        target.write_text("placed by the other worker\n")

    monkeypatch.setattr(callfile_module, "_write_staged", racing_write)
    assert place_call_file(dialer.paths, name, "Channel: Local/1@x\n") is False
    assert target.read_text() == "placed by the other worker\n"
    assert not list(dialer.paths.staging.iterdir())


async def test_a_file_asterisk_already_has_is_left_alone(
    dialer: CallfileDialer, double: SpoolDouble
) -> None:
    double.paused = True
    call = make_call()
    target = double.outgoing / call_file_name(call)
    target.write_text("Channel: PJSIP/3005050149@trunk\n\nStartRetry: 1 1 (1)\n")
    await dialer.originate(call)
    assert target.read_text() == "Channel: PJSIP/3005050149@trunk\n\nStartRetry: 1 1 (1)\n"
    assert not list(dialer.paths.staging.iterdir())


async def test_a_scheduled_attempt_is_dialed_at_its_instant_not_when_delivered(
    dialer: CallfileDialer, double: SpoolDouble
) -> None:
    """The broker hands a scheduled message over up to a few ms early; the call file carries
    the instant itself as its mtime, and Asterisk dials it then."""
    due = time.time() + 0.8
    call = dataclasses.replace(make_call(), not_before=due)
    name = call_file_name(call)
    await dialer.originate(call)
    assert abs((double.outgoing / name).stat().st_mtime - due) < 0.001
    await asyncio.sleep(max(0.0, due - time.time() - 0.2))
    assert name not in double.dialed
    result = await asyncio.wait_for(dialer.wait_outcome(call), 10)
    assert result.outcome is CallOutcome.ANSWERED
    assert due <= double.dialed[name] < due + 0.5


async def test_an_instant_already_past_is_dialed_now(
    dialer: CallfileDialer, double: SpoolDouble
) -> None:
    double.paused = True
    call = dataclasses.replace(make_call(), not_before=time.time() - 3600)
    before = time.time()
    await dialer.originate(call)
    mtime = (double.outgoing / call_file_name(call)).stat().st_mtime
    assert before - 0.01 <= mtime <= time.time()


async def test_the_recorded_future_file_waits_for_its_mtime(
    double: SpoolDouble, spool: Path
) -> None:
    """future.json: moved in with mtime now+15 s, untouched until then, dialed at that instant
    (the double keeps the time but shortens the wait), StartRetry carrying the dial time plus
    RetryTime, then Completed as an answered call."""
    record = callfile_record("future", "tts-future.call")
    assert "mtime=now+15s" in record["events"][1][1]
    name = record["name"]
    paths = SpoolPaths.under(spool)
    paths.staging.mkdir()
    due = time.time() + 1.0
    assert place_call_file(paths, name, record["body"], not_before=due)
    await asyncio.sleep(max(0.0, due - time.time() - 0.25))
    assert name not in double.dialed
    assert (double.outgoing / name).read_text() == record["body"]
    await until(lambda: (double.done / name).exists())
    assert due <= double.dialed[name] < due + 0.5
    archived = (double.done / name).read_text()
    assert epochs_hidden(archived) == epochs_hidden(recorded_final("future", name))
    epoch = int(re.findall(r"StartRetry: \d+ 1 \((\d+)\)", archived)[0])
    assert abs(epoch - (double.dialed[name] + 5)) <= 1.5  # RetryTime: 5
    spool_file = parse_spool_file(archived)
    assert (spool_file.status, spool_file.attempts) == ("Completed", 1)
    assert spool_result(spool_file, {}, 1.0).outcome is CallOutcome.ANSWERED


async def test_the_recorded_past_file_is_dialed_at_once(double: SpoolDouble, spool: Path) -> None:
    record = callfile_record("past", "tts-past.call")
    assert record["events"][1][0] < 0.01  # StartRetry 3 ms after the move
    name = record["name"]
    moved = rename_in(spool, name, record["body"], mtime=time.time() - 3600)
    await until(lambda: (double.done / name).exists())
    assert double.dialed[name] - moved < 0.5
    archived = (double.done / name).read_text()
    assert epochs_hidden(archived) == epochs_hidden(recorded_final("past", name))
    assert parse_spool_file(archived).status == "Completed"


async def test_the_recorded_in_place_write_is_read_only_once_closed(double: SpoolDouble) -> None:
    """inplace.json: a file written in outgoing/ itself (0.5 s between creating and closing
    it) was dialed 50 ms after it was closed, never half-written."""
    record = callfile_record("inplace", "tts-inplace.call")
    name, body = record["name"], record["body"]
    written = next(e[0] for e in record["events"] if "content changed" in e[1])
    started = next(e[0] for e in record["events"] if "StartRetry" in (e[2:] or [""])[0])
    assert 0 < started - written < 0.1
    with (double.outgoing / name).open("w") as handle:
        handle.write(body[: len(body) // 2])
        handle.flush()
        await asyncio.sleep(written)
        assert name not in double.dialed
        handle.write(body[len(body) // 2 :])
    closed = time.time()
    await until(lambda: (double.done / name).exists())
    assert double.arrived[name] == "close_write"
    assert closed <= double.dialed[name] < closed + 0.5
    assert double.received[name] == body
    archived = (double.done / name).read_text()
    assert epochs_hidden(archived) == epochs_hidden(recorded_final("inplace", name))


async def test_the_recorded_file_without_archive_leaves_no_trace_and_is_lost_track(
    dialer: CallfileDialer, double: SpoolDouble, spool: Path
) -> None:
    """noarchive.json: without `Archive: yes` the file is removed from outgoing/ and never
    appears in outgoing_done/. Our files always say `Archive: yes`; one without it ends as
    `lost_track`, the only honest answer."""
    record = callfile_record("noarchive", "tts-noarchive.call")
    assert record["events"][-1][1] == "removed from outgoing/ and NOT in outgoing_done/"
    assert "Archive" not in record["body"]
    call = make_call()
    name = call_file_name(call)
    rename_in(spool, name, record["body"])
    result = await asyncio.wait_for(dialer.wait_outcome(call), 15)
    assert (result.outcome, result.reason) == (CallOutcome.FAILED, "lost_track")
    assert double.handovers[name] == 1
    assert not (double.outgoing / name).exists()
    assert not (double.done / name).exists()


async def test_abandon_takes_back_a_file_asterisk_has_not_started(
    dialer: CallfileDialer, double: SpoolDouble
) -> None:
    double.paused = True  # Asterisk down
    call = make_call()
    name = call_file_name(call)
    await dialer.originate(call)
    assert await dialer.abandon(call) is True
    assert not (double.outgoing / name).exists()
    assert (dialer.paths.staging / f"{name}.withdrawn").exists()
    assert await dialer.abandon(call) is False  # nothing left to take back
    double.paused = False
    await asyncio.sleep(0.3)
    assert name not in double.handovers


async def test_abandon_leaves_a_call_asterisk_is_dialing(
    dialer: CallfileDialer, double: SpoolDouble
) -> None:
    call = make_call("3005550002", ring_timeout_s=60)  # rings about 3 s at this time scale
    name = call_file_name(call)
    await dialer.originate(call)
    await until(lambda: "StartRetry" in _text_or_empty(double.outgoing / name))
    assert await dialer.abandon(call) is False
    assert (double.outgoing / name).exists()
    result = await asyncio.wait_for(dialer.wait_outcome(call), 15)
    assert result.outcome is CallOutcome.NO_ANSWER


def _text_or_empty(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""
