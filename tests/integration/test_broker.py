"""RabbitMQ behaviour on the real broker: confirms, delays, dead letters, bounds, priority."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from aiormq.exceptions import ChannelPreconditionFailed
from structlog.testing import capture_logs

from tests.conftest import delete_topology, make_settings
from ttsqueue.broker.consumer import PriorityConsumer
from ttsqueue.broker.convoy import Convoy
from ttsqueue.broker.delays import DelayQueues, is_due, park
from ttsqueue.broker.publisher import Publisher
from ttsqueue.broker.topology import (
    VERSION_ARGUMENT,
    QueueInspector,
    QueueNames,
    declare_topology,
    queue_arguments,
    without_version,
)
from ttsqueue.config import Settings
from ttsqueue.domain import JobMessage, Priority
from ttsqueue.errors import BrokerUnavailableError, TopologyMismatchError
from ttsqueue.worker.runner import Runner


def names_of(settings: Settings) -> QueueNames:
    return QueueNames.from_prefix(settings.QUEUE_PREFIX)


async def get_one(
    connection: AbstractRobustConnection, queue: str, timeout: float = 5.0
) -> AbstractIncomingMessage:
    channel = await connection.channel()
    q = await channel.get_queue(queue)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = await q.get(fail=False, no_ack=True)
        if message is not None:
            return message
        await asyncio.sleep(0.02)
    raise AssertionError(f"nothing arrived in {queue} within {timeout}s")


async def test_publish_is_persistent_and_identified(
    broker: AbstractRobustConnection, settings: Settings
) -> None:
    names = names_of(settings)
    job_id = str(uuid.uuid4())
    await Publisher(broker, names).to_work_queue(
        names.calls, JobMessage(job_id=job_id).encode(), job_id
    )
    message = await get_one(broker, names.calls)
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert message.message_id == job_id
    assert message.content_type == "application/json"
    assert JobMessage.decode(message.body).job_id == job_id


async def test_expiration_and_headers_are_kept(
    broker: AbstractRobustConnection, settings: Settings
) -> None:
    names = names_of(settings)
    # An expiring message parked in a queue nobody consumes from: it stays while it lives.
    channel = await broker.channel()
    parked = await channel.declare_queue(f"{settings.QUEUE_PREFIX}parked", auto_delete=True)
    try:
        await Publisher(broker, names).publish(
            b"{}",
            routing_key=parked.name,
            message_id="m-1",
            expiration_s=30.5,
            headers={"x-attempt": 3, "x-origin": "test"},
        )
        message = await get_one(broker, parked.name)
        assert message.expiration == 30.5  # sent as "30500" milliseconds
        assert message.headers == {"x-attempt": 3, "x-origin": "test"}
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.message_id == "m-1"
    finally:
        await parked.delete(if_unused=False, if_empty=False)
        await channel.close()


async def test_concurrent_publishes_are_each_confirmed_and_kept_in_order(
    broker: AbstractRobustConnection, settings: Settings
) -> None:
    """Publishes on the shared channel do not wait for one another's frames to be written;
    each still waits for its own confirm, and the queue holds them in the order sent."""
    names = names_of(settings)
    publisher = Publisher(broker, names)
    ids = [f"m-{n:03d}" for n in range(300)]
    await asyncio.gather(*(publisher.to_work_queue(names.calls, m.encode(), m) for m in ids))
    depths = await QueueInspector(broker, names).depths()
    assert depths["normal"] == len(ids)
    arrived = [(await get_one(broker, names.calls)).message_id for _ in ids]
    assert arrived == ids


async def test_unroutable_publish_is_an_error(
    broker: AbstractRobustConnection, settings: Settings
) -> None:
    publisher = Publisher(broker, names_of(settings))
    with pytest.raises(BrokerUnavailableError):
        await publisher.to_work_queue("no-such-queue-" + uuid.uuid4().hex, b"{}", "x")


async def test_delayed_message_returns_to_its_work_queue(
    broker: AbstractRobustConnection, settings: Settings
) -> None:
    names = names_of(settings)
    job_id = str(uuid.uuid4())
    due = int(time.time() * 1000) + 400
    message = JobMessage(job_id=job_id, attempt=2, not_before_ms=due)
    started = time.monotonic()
    await park(Publisher(broker, names), names.priority, message, DelayQueues(15, 600))
    depths = await QueueInspector(broker, names).depths()
    assert depths["retry"] == 1
    assert depths["priority"] == 0
    back = await get_one(broker, names.priority)
    assert time.monotonic() - started >= 0.35
    assert JobMessage.decode(back.body) == message
    assert is_due(JobMessage.decode(back.body))


async def test_long_delay_hops_and_is_not_due_early(
    broker: AbstractRobustConnection, settings: Settings
) -> None:
    names = names_of(settings)
    message = JobMessage(job_id=str(uuid.uuid4()), not_before_ms=int(time.time() * 1000) + 60_000)
    await park(Publisher(broker, names), names.calls, message, DelayQueues(1, 600))
    back = JobMessage.decode((await get_one(broker, names.calls, timeout=5)).body)
    # Back after one capped hop, still far from due: a worker parks it again.
    assert not is_due(back)


@pytest.mark.settings(DELAY_HOLD_SECONDS=2)
async def test_long_waits_go_through_the_hold_queue_and_are_never_late(
    broker: AbstractRobustConnection, settings: Settings
) -> None:
    names = names_of(settings)
    publisher = Publisher(broker, names)
    delays = DelayQueues.of(settings)
    far = JobMessage(job_id=str(uuid.uuid4()), not_before_ms=int(time.time() * 1000) + 3_000)
    started = time.monotonic()
    await park(publisher, names.priority, far, delays)
    # A shorter wait queued after it must not be held back behind it.
    near = JobMessage(job_id=str(uuid.uuid4()), not_before_ms=int(time.time() * 1000) + 300)
    await park(publisher, names.priority, near, delays)
    depths = await QueueInspector(broker, names).depths()
    assert (depths["hold"], depths["retry"]) == (1, 1)
    first = JobMessage.decode((await get_one(broker, names.priority, timeout=3)).body)
    assert first.job_id == near.job_id
    # The held one comes back after exactly one hold, still 1 s early: parked for the rest.
    back = JobMessage.decode((await get_one(broker, names.priority, timeout=4)).body)
    assert back.job_id == far.job_id
    assert 1.9 <= time.monotonic() - started < 3.0
    assert not is_due(back)
    await park(publisher, names.priority, back, delays)
    assert (await QueueInspector(broker, names).depths())["retry"] == 1
    due = JobMessage.decode((await get_one(broker, names.priority, timeout=3)).body)
    assert is_due(due)
    assert time.monotonic() - started >= 2.95


async def test_rejected_message_is_dead_lettered(
    broker: AbstractRobustConnection, settings: Settings
) -> None:
    names = names_of(settings)
    channel = await broker.channel()
    await channel.default_exchange.publish(
        aio_pika.Message(b"not json", message_id="poison"), routing_key=names.calls
    )
    queue = await channel.get_queue(names.calls)
    message = await queue.get(timeout=5)
    assert message is not None
    await message.reject(requeue=False)
    dead = await get_one(broker, names.dead)
    assert dead.body == b"not json"
    deaths = cast(list[dict[str, Any]], dead.headers["x-death"])
    assert deaths[0]["reason"] == "rejected"


async def test_results_queue_keeps_the_newest(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, RESULTS_MAX_LENGTH=5)
    names = names_of(settings)
    connection = await aio_pika.connect_robust(settings.RABBITMQ_URL)
    try:
        await declare_topology(await connection.channel(), settings)
        publisher = Publisher(connection, names)
        for i in range(8):
            await publisher.to_results(f'{{"n": {i}}}'.encode(), str(i))
        assert (await QueueInspector(connection, names).depths())["results"] == 5
        assert (await get_one(connection, names.results)).body == b'{"n": 3}'
    finally:
        await delete_topology(connection, names)
        await connection.close()


async def test_audit_messages_leave_in_convoys_each_confirmed(
    broker: AbstractRobustConnection, settings: Settings
) -> None:
    names = names_of(settings)
    # A window no test reaches: only a full convoy leaves.
    publisher = Publisher(broker, names, results_convoy=Convoy(3600.0, 4))
    inspector = QueueInspector(broker, names)
    waiting = [
        asyncio.create_task(publisher.to_results(f'{{"n": {i}}}'.encode(), str(i)))
        for i in range(3)
    ]
    # Another publish, made after the three joined, is confirmed while they still wait.
    await publisher.to_work_queue(names.calls, b"{}", "after")
    assert not any(task.done() for task in waiting)
    assert (await inspector.depths())["results"] == 0
    await asyncio.wait_for(asyncio.gather(*waiting, publisher.to_results(b'{"n": 3}', "3")), 10)
    assert (await inspector.depths())["results"] == 4
    bodies = [(await get_one(broker, names.results)).body for _ in range(4)]
    assert sorted(bodies) == [f'{{"n": {i}}}'.encode() for i in range(4)]


async def test_a_failed_audit_publish_fails_only_its_own_caller(
    broker: AbstractRobustConnection, settings: Settings
) -> None:
    names = names_of(settings)
    publisher = Publisher(broker, names, results_convoy=Convoy(3600.0, 2))
    # The results queue deleted: its convoy's publishes are unroutable, each an error of its
    # own caller, and the next convoy publishes again once the queue is back.
    channel = await broker.channel()
    await channel.queue_delete(names.results)
    outcomes = await asyncio.wait_for(
        asyncio.gather(
            publisher.to_results(b"{}", "a"),
            publisher.to_results(b"{}", "b"),
            return_exceptions=True,
        ),
        10,
    )
    assert [type(o) for o in outcomes] == [BrokerUnavailableError, BrokerUnavailableError]
    await declare_topology(channel, settings)
    await asyncio.wait_for(
        asyncio.gather(publisher.to_results(b"{}", "c"), publisher.to_results(b"{}", "d")), 10
    )
    assert (await QueueInspector(broker, names).depths())["results"] == 2
    await channel.close()


@contextlib.asynccontextmanager
async def private_broker(
    tmp_path: Path,
) -> AsyncIterator[tuple[Settings, QueueNames, AbstractRobustConnection]]:
    """Settings with a queue prefix of their own, and a connection; their queues and
    exchanges deleted afterwards."""
    settings = make_settings(tmp_path)
    names = names_of(settings)
    connection = await aio_pika.connect_robust(settings.RABBITMQ_URL)
    try:
        yield settings, names, connection
    finally:
        await delete_topology(connection, names)
        await connection.close()


async def test_existing_queue_with_other_arguments_names_the_fix(tmp_path: Path) -> None:
    async with private_broker(tmp_path) as (settings, names, connection):
        channel = await connection.channel()
        await channel.declare_queue(names.calls, durable=True, arguments={"x-max-length": 7})
        with pytest.raises(TopologyMismatchError) as caught:
            await declare_topology(await connection.channel(), settings)
        assert names.calls in str(caught.value)
        assert "./manage.sh clean --queues" in str(caught.value)


class RecordingHandler:
    """Acks every message and remembers the order in which work started."""

    def __init__(self, expected: int) -> None:
        self.started: list[Priority] = []
        self.expected = expected
        self.done = asyncio.Event()

    async def handle(self, message: AbstractIncomingMessage, priority: Priority) -> None:
        self.started.append(priority)
        await asyncio.sleep(0.001)
        await message.ack()
        if len(self.started) >= self.expected:
            self.done.set()


async def test_classic_queues_are_declared_in_the_version_2_store(tmp_path: Path) -> None:
    async with private_broker(tmp_path) as (settings, names, connection):
        await declare_topology(await connection.channel(), settings)
        for queue, arguments in queue_arguments(settings, names).items():
            assert arguments[VERSION_ARGUMENT] == 2
            # The broker holds the version: the same declaration is accepted, one without it
            # is refused as inequivalent.
            channel = await connection.channel()
            await channel.declare_queue(queue, durable=True, arguments=arguments)
            with pytest.raises(ChannelPreconditionFailed, match=VERSION_ARGUMENT):
                await channel.declare_queue(
                    queue, durable=True, arguments=without_version(arguments)
                )


async def test_a_queue_declared_before_the_version_is_kept_and_named(tmp_path: Path) -> None:
    """An upgrade from a release that declared no storage version needs no migration."""
    async with private_broker(tmp_path) as (settings, names, connection):
        older = without_version(queue_arguments(settings, names)[names.calls])
        await (await connection.channel()).declare_queue(names.calls, durable=True, arguments=older)
        with capture_logs() as logs:
            await declare_topology(await connection.channel(), settings)
            await declare_topology(await connection.channel(), settings)
        kept = [
            e
            for e in logs
            if e["event"] == "queue declared without a storage version: kept as it is"
        ]
        assert [e["queue"] for e in kept] == [names.calls, names.calls]
        # The old queue still carries jobs, and the others were declared with the version.
        job_id = str(uuid.uuid4())
        await Publisher(connection, names).to_work_queue(
            names.calls, JobMessage(job_id=job_id).encode(), job_id
        )
        assert (await get_one(connection, names.calls)).message_id == job_id
        with pytest.raises(ChannelPreconditionFailed, match=VERSION_ARGUMENT):
            await (await connection.channel()).declare_queue(
                names.priority, durable=True, arguments=older
            )


@pytest.mark.timeout(90)
async def test_high_priority_overtakes_a_backlog(
    broker: AbstractRobustConnection, settings: Settings
) -> None:
    names = names_of(settings)
    publisher = Publisher(broker, names)
    backlog = 1000
    await asyncio.gather(
        *(publisher.to_work_queue(names.calls, b"{}", str(i)) for i in range(backlog))
    )
    await publisher.to_work_queue(names.priority, b"{}", "high")
    concurrency = 4
    handler = RecordingHandler(expected=50)
    runner = Runner(PriorityConsumer(broker, names, concurrency), handler, concurrency, 5.0)
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(handler.done.wait(), 30)
    runner.request_stop()
    await asyncio.wait_for(task, 30)
    normals_before = handler.started.index(Priority.HIGH)
    assert normals_before <= concurrency
    # Nothing was lost: every unstarted message went back to the queue.
    assert (await QueueInspector(broker, names).depths())["normal"] == backlog - (
        len(handler.started) - 1
    )
