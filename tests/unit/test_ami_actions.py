"""Responses find their action by ActionID, in whatever order they come."""

from __future__ import annotations

import pytest

from ttsqueue.dialer.ami.actions import PendingActions
from ttsqueue.dialer.ami.errors import AmiConnectionClosed
from ttsqueue.dialer.ami.protocol import parse_message


def _response(action_id: str, message: str = "ok") -> bytes:
    return f"Response: Success\r\nActionID: {action_id}\r\nMessage: {message}".encode()


async def test_responses_out_of_order_reach_their_own_action() -> None:
    pending = PendingActions("t")
    ids = [pending.next_id() for _ in range(3)]
    futures = [pending.expect(action_id) for action_id in ids]
    for action_id in reversed(ids):
        assert pending.resolve(parse_message(_response(action_id, f"for {action_id}")))
    for action_id, future in zip(ids, futures, strict=True):
        assert (await future).get("Message") == f"for {action_id}"
    assert len(pending) == 0


async def test_a_response_nobody_waits_for_is_ignored() -> None:
    pending = PendingActions("t")
    future = pending.expect("mine")
    assert not pending.resolve(parse_message(_response("someone-else")))
    assert not pending.resolve(parse_message(b"Response: Success\r\nMessage: no id"))
    assert not future.done()
    pending.discard("mine")
    assert future.cancelled()


async def test_ids_are_unique_and_reuse_is_refused() -> None:
    pending = PendingActions("w1")
    assert len({pending.next_id() for _ in range(100)}) == 100
    pending.expect("x")
    with pytest.raises(ValueError, match="already waiting"):
        pending.expect("x")


async def test_a_closed_connection_fails_every_waiting_action() -> None:
    pending = PendingActions("t")
    futures = [pending.expect(str(i)) for i in range(3)]
    pending.fail_all(AmiConnectionClosed("EOF"))
    for future in futures:
        with pytest.raises(AmiConnectionClosed):
            await future
