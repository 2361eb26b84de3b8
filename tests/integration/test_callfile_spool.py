"""The `callfile` dialer against the recorded spool: placement (atomic, owned, never twice),
every recorded outcome, the dialplan's report in either order, and files that never come back."""

from __future__ import annotations

import asyncio
import os
import re
import stat
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.conftest import make_settings
from tests.doubles.recordings import callfile_record
from tests.doubles.spool import SpoolDouble, running_spool_double
from tests.doubles.spool_timeline import appended, timeline
from ttsqueue.config import Settings
from ttsqueue.dialer.base import CallRequest, DialerHealth
from ttsqueue.dialer.callfile import CallfileDialer, place_call_file
from ttsqueue.dialer.callfile_format import (
    call_file_name,
    parse_report,
    parse_spool_file,
    spool_result,
)
from ttsqueue.dialer.spool_watcher import SpoolPaths
from ttsqueue.domain import CallOutcome

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
    callfile = CallfileDialer(cf_settings, redis_client)
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


async def place(dialer: CallfileDialer, call: CallRequest) -> tuple[CallOutcome, str | None]:
    await dialer.originate(call)
    result = await asyncio.wait_for(dialer.wait_outcome(call), 20)
    return result.outcome, result.reason


@pytest.mark.parametrize(
    ("number", "outcome", "reason"),
    [
        ("3005050149", CallOutcome.ANSWERED, "played"),
        ("3005550005", CallOutcome.ANSWERED, "hangup_during_playback"),
        ("3005550006", CallOutcome.FAILED, "playback_failed"),
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
    first = CallfileDialer(cf_settings, redis_client)
    second = CallfileDialer(cf_settings, redis_client)
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
    dialer = CallfileDialer(short, redis_client)
    try:
        call = make_call()
        await dialer.originate(call)
        result = await asyncio.wait_for(dialer.wait_outcome(call), 10)
        assert (result.outcome, result.reason) == (CallOutcome.FAILED, "lost_track")
        assert not (double.outgoing / call_file_name(call)).exists()
        double.paused = False
        await asyncio.sleep(0.1)
        assert call_file_name(call) not in double.handovers
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


def test_staging_must_share_the_spool_filesystem(tmp_path: Path) -> None:
    paths = SpoolPaths.under(tmp_path)
    assert paths.staging.parent == paths.outgoing.parent
