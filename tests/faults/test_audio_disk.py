"""Fault g: the audio directory full or read-only.

AUDIO_DIR is a 64 KiB tmpfs mounted by the test, filled to the last byte or mounted
read-only. Jobs that need new audio fail with a reason naming the audio directory and the
system's error; the API and the worker keep running; once space is back, the same text is
synthesized again and its call completes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from tests.faults.stack import Stack, accepted_ids, wait_terminal
from tests.figures import record

pytestmark = pytest.mark.timeout(120)

JOBS = 4
REASONS = {"full": "No space left on device", "read-only": "Read-only file system"}


def mount(target: Path, options: str) -> None:
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")


def fill(directory: Path) -> None:
    """Write until the file system refuses another byte."""
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (4096, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
        with pytest.raises(OSError, match="No space left") as refused:
            os.write(fd, b"\0")
        assert refused.value.errno == errno.ENOSPC
    finally:
        os.close(fd)


@pytest.fixture(params=["full", "read-only"])
def broken_audio_dir(request: pytest.FixtureRequest, stack: Stack) -> Iterator[str]:
    target = stack.tmp / "audio"
    target.mkdir()
    mount(target, "size=64k" + (",ro" if request.param == "read-only" else ""))
    try:
        if request.param == "full":
            fill(target)
        yield request.param
    finally:
        stack.close()
        with contextlib.suppress(subprocess.SubprocessError):
            subprocess.run(["umount", "-l", str(target)], check=True, timeout=30)


def repair(stack: Stack, kind: str) -> None:
    target = stack.tmp / "audio"
    if kind == "full":
        (target / "filler").unlink()
    else:
        subprocess.run(["mount", "-o", "remount,rw", str(target)], check=True, timeout=30)


async def test_audio_disk_full_or_read_only(
    broken_audio_dir: str, stack: Stack, fault_redis: aioredis.Redis
) -> None:
    kind = broken_audio_dir
    await stack.start_api()
    worker = stack.start_worker("w1")
    texts = [f"Mensaje número {n} para el disco de audio." for n in range(JOBS)]
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        replies = [
            await client.post("/tts/call", json={"text": text, "phone_number": "3005050149"})
            for text in texts
        ]
        ids = accepted_ids(replies)
        assert len(ids) == JOBS
        try:
            final = await wait_terminal(fault_redis, stack.keys, ids, timeout=90)
        except AssertionError:
            stack.dump_logs()
            raise
        assert set(final.values()) == {"failed"}
        errors = [await fault_redis.hget(stack.keys.job(job_id), "error") for job_id in ids]
        for error in errors:
            assert error is not None
            assert "audio" in error
            assert REASONS[kind] in error, error
        assert (await client.get("/health")).status_code == 200
        assert worker.alive()

        repair(stack, kind)
        body = {"text": texts[0], "phone_number": "3005050149"}
        again = await client.post("/tts/call", json=body)
        assert again.status_code == 202
        done = await wait_terminal(fault_redis, stack.keys, [again.json()["job_id"]], timeout=60)
        assert list(done.values()) == ["completed"]
    record(
        f"g_audio_{kind.replace('-', '_')}",
        jobs=JOBS,
        failed_with_clear_reason=len(errors),
        reason=errors[0],
        jobs_lost=0,
        recovered=True,
        http_5xx=sum(r.status_code >= 500 for r in replies),
    )
