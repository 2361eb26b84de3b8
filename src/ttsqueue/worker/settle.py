"""The one place where a delivery is acked, requeued or dead-lettered."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from enum import StrEnum

from aio_pika.abc import AbstractIncomingMessage

from ttsqueue.broker.convoy import Convoy
from ttsqueue.errors import ConnectionLostError, PoisonMessageError
from ttsqueue.logs import get_logger

log = get_logger("ttsqueue.worker.settle")

# How long a worker pauses before handing back a message it could not process because
# Redis or RabbitMQ was unreachable.
OUTAGE_PAUSE_S = 1.0

_OUTAGES: tuple[type[BaseException], ...] = (ConnectionLostError,)


class Disposition(StrEnum):
    ACK = "ack"  # done, or dropped on purpose (canceled, duplicate, parked elsewhere)
    REQUEUE = "requeue"  # could not be processed now; RabbitMQ delivers it again
    DEAD = "dead"  # unusable or out of retries: rejected into tts_dead


class Settlement:
    def __init__(self) -> None:
        self.disposition = Disposition.ACK

    def set(self, disposition: Disposition) -> None:
        self.disposition = disposition


# Hands a message back as a fresh copy instead of a requeue; True when it did (see
# broker/recycle.py: a quorum queue would dead-letter the requeued message).
HandBack = Callable[[AbstractIncomingMessage], Awaitable[bool]]


async def _no_hand_back(message: AbstractIncomingMessage) -> bool:
    return False


@contextlib.asynccontextmanager
async def settle(
    message: AbstractIncomingMessage,
    hand_back: HandBack = _no_hand_back,
    acks: Convoy | None = None,
) -> AsyncIterator[Settlement]:
    """Run the handler, then ack / requeue / dead-letter according to what happened (an ack
    in the next convoy of `acks`, when given: the job's state is recorded by then, so the ack
    only lets RabbitMQ forget the message, and acks sent together cost it less)."""
    settlement = Settlement()
    try:
        yield settlement
    except PoisonMessageError as exc:
        log.warning("poison message dead-lettered", error=str(exc))
        settlement.set(Disposition.DEAD)
    except _OUTAGES as exc:
        log.warning("dependency unavailable, message requeued", error=repr(exc))
        await asyncio.sleep(OUTAGE_PAUSE_S)
        settlement.set(Disposition.REQUEUE)
    except asyncio.CancelledError:
        # Shutdown while the job was in flight: hand it back for another worker.
        await _apply(message, await _requeue_or_copy(message, hand_back))
        raise
    except Exception:
        log.exception("unexpected error, message requeued")
        await asyncio.sleep(OUTAGE_PAUSE_S)
        settlement.set(Disposition.REQUEUE)
    if settlement.disposition is Disposition.REQUEUE:
        settlement.set(await _requeue_or_copy(message, hand_back))
    if settlement.disposition is Disposition.ACK and acks is not None:
        await acks.join()
    await _apply(message, settlement.disposition)


async def _requeue_or_copy(message: AbstractIncomingMessage, hand_back: HandBack) -> Disposition:
    try:
        copied = await hand_back(message)
    except Exception as exc:
        log.warning("could not hand back a copy", error=repr(exc))
        copied = False
    return Disposition.ACK if copied else Disposition.REQUEUE


async def _apply(message: AbstractIncomingMessage, disposition: Disposition) -> None:
    try:
        if disposition is Disposition.ACK:
            await message.ack()
        elif disposition is Disposition.REQUEUE:
            await message.nack(requeue=True)
        else:
            await message.reject(requeue=False)
    except Exception as exc:  # channel gone: RabbitMQ will redeliver the message
        log.warning("could not settle message", disposition=disposition.value, error=repr(exc))
