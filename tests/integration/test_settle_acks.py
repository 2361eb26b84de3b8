"""Acks in convoys on the real broker: held until the convoy leaves, then each one acked."""

from __future__ import annotations

import asyncio

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from ttsqueue.broker.convoy import Convoy
from ttsqueue.broker.publisher import Publisher
from ttsqueue.broker.topology import QueueInspector, QueueNames
from ttsqueue.config import Settings
from ttsqueue.errors import PoisonMessageError
from ttsqueue.worker.settle import Disposition, settle

# A window no test reaches: only a full convoy leaves.
NEVER_S = 3600.0


async def turns(n: int = 20) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def fetch(
    broker: AbstractRobustConnection, names: QueueNames, count: int
) -> list[AbstractIncomingMessage]:
    """`count` messages published to the normal work queue, then taken unacked."""
    publisher = Publisher(broker, names)
    for n in range(count):
        await publisher.to_work_queue(names.calls, b"{}", f"m-{n}")
    channel = await broker.channel()
    queue = await channel.get_queue(names.calls)
    taken = []
    for _ in range(count):
        message = await queue.get(no_ack=False, timeout=5)
        assert message is not None
        taken.append(message)
    return taken


async def ready(broker: AbstractRobustConnection, names: QueueNames, label: str) -> int:
    return (await QueueInspector(broker, names).depths())[label]


async def test_acks_wait_for_their_convoy_then_each_message_is_acked(
    broker: AbstractRobustConnection, settings: Settings
) -> None:
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    messages = await fetch(broker, names, 3)
    acks = Convoy(NEVER_S, 3)

    async def handled(message: AbstractIncomingMessage) -> None:
        async with settle(message, acks=acks) as settlement:
            settlement.set(Disposition.ACK)

    first = [asyncio.create_task(handled(m)) for m in messages[:2]]
    await turns()
    assert not any(task.done() for task in first)
    await asyncio.wait_for(asyncio.gather(*first, handled(messages[2])), 10)
    # Acked: closing the channel that took them puts none back.
    await messages[0].channel.close()
    assert await ready(broker, names, "normal") == 0


async def test_a_dead_letter_does_not_wait_for_a_convoy(
    broker: AbstractRobustConnection, settings: Settings
) -> None:
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    [message] = await fetch(broker, names, 1)
    acks = Convoy(NEVER_S, 100)

    async def poisoned() -> None:
        async with settle(message, acks=acks):
            raise PoisonMessageError("unreadable")

    await asyncio.wait_for(poisoned(), 10)
    await message.channel.close()
    assert await ready(broker, names, "dead") == 1
    assert await ready(broker, names, "normal") == 0
