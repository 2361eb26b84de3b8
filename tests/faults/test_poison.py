"""Fault e: poison published straight to the work queues of a running worker process.

Malformed bodies, wrong schemas, a well-formed message for a job that has no record, a
message whose id names another job than its body, and a job's message on the queue of the
other priority hit a real `ttsqueue worker` process while good jobs flow: each goes to
`tts_dead`, the same process keeps going (never restarted), every good job submitted after
them completes, and a stray copy of a finished job's message is acknowledged without
dialing again.
"""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import httpx
import orjson
import pytest
import redis.asyncio as aioredis

from tests.faults.stack import (
    DIALER_PLACED,
    Stack,
    accepted_ids,
    depths,
    originations,
    post_calls,
    wait_terminal,
)
from tests.figures import record
from ttsqueue.domain import JobMessage

pytestmark = pytest.mark.timeout(120)

GOOD_JOBS = 40


def poison_bodies(known_job: str, other_job: str) -> list[tuple[str, bytes, str | None]]:
    """(label, body, message id) of messages no worker can act on. `known_job` is finished:
    a valid message for it would be acknowledged, not dead-lettered."""
    fake, unknown = str(uuid.uuid4()), str(uuid.uuid4())
    return [
        ("unknown job", JobMessage(job_id=unknown).encode(), unknown),
        ("message id of another job", JobMessage(job_id=known_job).encode(), other_job),
        ("empty body", b"", None),
        ("invalid UTF-8", b"\xff\xfe\x00garbage", None),
        ("JSON array", b'["job_id", 1]', None),
        ("JSON null", b"null", None),
        ("one megabyte", b"{" + b"x" * 1_000_000, None),
        ("extra field", orjson.dumps({"job_id": fake, "attempt": 1, "shell": "rm -rf /"}), fake),
        ("attempt 0", orjson.dumps({"job_id": known_job, "attempt": 0}), known_job),
        ("attempt 10^9", orjson.dumps({"job_id": known_job, "attempt": 10**9}), known_job),
        ("id not a uuid", orjson.dumps({"job_id": "x" * 36}), "x" * 36),
        ("CRLF in id", orjson.dumps({"job_id": "\r\nAction: Originate\r\n" + "a" * 15}), None),
    ]


async def test_poison_on_a_running_worker(stack: Stack, fault_redis: aioredis.Redis) -> None:
    await stack.start_api()
    worker = stack.start_worker("w1")
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client:
        first = accepted_ids(await post_calls(client, GOOD_JOBS // 2))
        await wait_terminal(fault_redis, stack.keys, first[:1], timeout=60)
        known = first[0]
        names = stack.names
        connection = await aio_pika.connect(stack.rabbit.url)
        async with connection:
            channel = await connection.channel()
            poison = poison_bodies(known, first[1])
            for label, body, message_id in poison:
                await channel.default_exchange.publish(
                    aio_pika.Message(body, message_id=message_id, headers={"case": label}),
                    routing_key=names.calls,
                )
            # A normal job's message on the high-priority queue: refused as poison.
            stray = JobMessage(job_id=first[-1]).encode()
            await channel.default_exchange.publish(
                aio_pika.Message(stray, message_id=first[-1]), routing_key=names.priority
            )
            # A copy of a finished job's message: acknowledged, never dialed again.
            copy = JobMessage(job_id=known).encode()
            await channel.default_exchange.publish(
                aio_pika.Message(copy, message_id=known), routing_key=names.calls
            )
        second = accepted_ids(await post_calls(client, GOOD_JOBS - len(first)))
    ids = first + second
    try:
        final = await wait_terminal(fault_redis, stack.keys, ids, timeout=90)
        expected_dead = len(poison) + 1
        for _ in range(100):
            left = await depths(stack.rabbit.url, names)
            if left["dead"] >= expected_dead and left["normal"] == left["priority"] == 0:
                break
            await asyncio.sleep(0.1)
    except BaseException:
        stack.dump_logs()
        raise
    assert set(final.values()) == {"completed"}
    assert left["dead"] == expected_dead
    assert (left["normal"], left["priority"], left["retry"]) == (0, 0, 0)
    assert worker.alive()
    dialed = originations(stack.worker_logs())
    assert len(dialed) == len(ids)
    assert set(dialed.values()) == {1}
    # The dialer itself was asked for exactly those calls, once each: no poison reached it.
    assert originations(stack.worker_logs(), DIALER_PLACED) == dialed
    record(
        "e_poison_messages",
        poison_kinds=expected_dead + 1,
        dead_lettered=left["dead"],
        good_jobs=len(ids),
        jobs_lost=len(ids) - list(final.values()).count("completed"),
        duplicate_originations=sum(n > 1 for n in dialed.values()),
        worker_restarts=0,
    )
