"""One TCP connection to the AMI: banner, a reader task, actions out, responses and events in.

It knows nothing about logging in or reconnecting (see `session.py`). Events are handed to a
callback in the order they arrive; the callback must not block (queue them if work follows).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from ttsqueue.dialer.ami.actions import PendingActions
from ttsqueue.dialer.ami.errors import (
    AmiConnectionClosed,
    AmiNotConnected,
    AmiProtocolError,
    AmiResponseTimeout,
)
from ttsqueue.dialer.ami.protocol import AmiMessage, encode_action, read_banner, read_message
from ttsqueue.logs import get_logger

log = get_logger("ttsqueue.dialer.ami")

STREAM_LIMIT = 1024 * 1024
EventCallback = Callable[[AmiMessage], None]


class AmiConnection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        version: str,
        on_event: EventCallback,
        id_prefix: str,
    ) -> None:
        self.version = version
        self._reader = reader
        self._writer = writer
        self._on_event = on_event
        self._pending = PendingActions(id_prefix)
        self._closed = asyncio.Event()
        self.close_reason = ""
        self._task = asyncio.create_task(self._read_loop(), name="ami-reader")

    @classmethod
    async def open(
        cls, host: str, port: int, timeout: float, on_event: EventCallback, id_prefix: str
    ) -> AmiConnection:
        """Connect and read the banner, both within `timeout`."""
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, limit=STREAM_LIMIT)
            try:
                version = await read_banner(reader)
            except BaseException:
                writer.close()
                raise
        return cls(reader, writer, version, on_event, id_prefix)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def wait_closed(self) -> str:
        await self._closed.wait()
        return self.close_reason

    async def request(self, fields: Sequence[tuple[str, str]], timeout: float) -> AmiMessage:
        """Send an action and wait for its response (any `Response:` value, Error included).

        An ActionID is added when `fields` has none. `AmiNotConnected`: nothing was sent.
        `AmiConnectionClosed` or `AmiResponseTimeout`: it may have been sent and run.
        """
        if self.closed:
            raise AmiNotConnected(f"AMI connection closed ({self.close_reason})")
        action_id = next((v for k, v in fields if k.lower() == "actionid"), None)
        if action_id is None:
            action_id = self._pending.next_id()
            fields = [fields[0], ("ActionID", action_id), *fields[1:]]
        payload = encode_action(fields)
        future = self._pending.expect(action_id)
        try:
            self._writer.write(payload)
            await self._writer.drain()
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise AmiResponseTimeout(f"no response to {fields[0][1]} in {timeout:g}s") from None
        except (ConnectionError, OSError) as exc:
            self._mark_closed(f"write failed: {exc!r}")
            raise AmiConnectionClosed(f"AMI connection lost: {exc!r}") from None
        finally:
            self._pending.discard(action_id)

    async def close(self) -> None:
        self._mark_closed(self.close_reason or "closed by us")
        self._task.cancel()
        # asyncio.wait, not `await task`: suppressing the reader's CancelledError would also
        # swallow a cancellation of whoever is closing (the session would never stop).
        await asyncio.wait([self._task])
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()

    async def _read_loop(self) -> None:
        try:
            while True:
                message = await read_message(self._reader)
                if message.kind == "response":
                    self._pending.resolve(message)
                elif message.kind == "event":
                    self._dispatch(message)
        except asyncio.IncompleteReadError:
            self._mark_closed("EOF: Asterisk closed the connection")
        except AmiProtocolError as exc:
            self._mark_closed(str(exc))
        except (ConnectionError, OSError) as exc:
            self._mark_closed(f"read failed: {exc!r}")

    def _dispatch(self, event: AmiMessage) -> None:
        try:
            self._on_event(event)
        except Exception:
            log.exception("ami event handler failed", ami_event=event.name)

    def _mark_closed(self, reason: str) -> None:
        if self._closed.is_set():
            return
        self.close_reason = reason
        self._closed.set()
        self._pending.fail_all(AmiConnectionClosed(f"AMI connection closed ({reason})"))
        self._writer.close()
