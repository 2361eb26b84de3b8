"""Fault f: a queue that already exists on the broker with other arguments (an older version,
another tool, a hand-made queue). Each process refuses to start (exit 2) with a message that
names the queue and the fix, `./manage.sh clean --queues`; after that fix the same processes
start and jobs complete. Neither the API nor the worker prints a traceback on that path.
"""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any

import aio_pika
import httpx
import pytest
import redis.asyncio as aioredis

from tests.faults.stack import TTSQUEUE, Stack, accepted_ids, post_calls, wait_terminal
from tests.figures import record

pytestmark = pytest.mark.timeout(180)

# (label, which queue, the arguments someone else declared it with)
CONFLICTS: list[tuple[str, str, dict[str, Any]]] = [
    ("results bounded differently", "results", {"x-max-length": 7}),
    ("dead letters as a quorum queue", "dead", {"x-queue-type": "quorum"}),
    ("work queue without dead-lettering", "calls", {}),
]


async def refusal(stack: Stack, role: str) -> str:
    """Run `ttsqueue <role>`, which must exit 2 (refused) by itself; its output."""
    proc = stack.spawn(f"{role}-refused", [str(TTSQUEUE), role])
    try:
        code = await asyncio.to_thread(proc.popen.wait, 60)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{role} kept running:\n{proc.tail()}") from None
    text = proc.log.read_text(errors="replace")
    assert code == 2, f"{role} exited {code}:\n{text}"
    return text


@pytest.mark.parametrize(("label", "which", "arguments"), CONFLICTS, ids=[c[0] for c in CONFLICTS])
async def test_a_conflicting_queue_stops_each_process_with_the_fix(
    stack: Stack, fault_redis: aioredis.Redis, label: str, which: str, arguments: dict[str, Any]
) -> None:
    queue = getattr(stack.names, which)
    connection = await aio_pika.connect(stack.rabbit.url)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(queue, durable=True, arguments=arguments)

    refused, tracebacks = [], 0
    for role in ("worker", "api"):
        text = await refusal(stack, role)
        assert repr(queue) in text, text
        assert "./manage.sh clean --queues" in text, text
        refused.append(role)
        tracebacks += text.count("Traceback")

    # The fix the message names, on this stack only (its own var dir, prefixes and audio).
    fix = await asyncio.to_thread(
        subprocess.run,
        [str(TTSQUEUE), "clean", "-y", "--queues"],
        env=stack.env(TTSQ_VAR_DIR=stack.tmp / "var"),
        cwd=stack.tmp,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert fix.returncode == 0, fix.stdout + fix.stderr
    assert f"queue {queue}: deleted" in fix.stdout

    await stack.start_api()
    worker = stack.start_worker("w1")
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        ids = accepted_ids(await post_calls(client, 3))
    try:
        final = await wait_terminal(fault_redis, stack.keys, ids, timeout=60)
    except BaseException:
        stack.dump_logs()
        raise
    assert len(ids) == 3
    assert set(final.values()) == {"completed"}
    assert worker.alive()
    record(
        "f_topology_mismatch", conflict=label, refused=refused, tracebacks=tracebacks, fixed=True
    )


@pytest.mark.parametrize("role", ["api", "worker"])
async def test_the_refusal_carries_no_traceback(stack: Stack, role: str) -> None:
    connection = await aio_pika.connect(stack.rabbit.url)
    async with connection:
        channel = await connection.channel()
        bounded: dict[str, Any] = {"x-max-length": 7}
        await channel.declare_queue(stack.names.results, durable=True, arguments=bounded)
    text = await refusal(stack, role)
    assert "./manage.sh clean --queues" in text, text
    assert "Traceback" not in text, text
