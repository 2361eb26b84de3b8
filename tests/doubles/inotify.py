"""A minimal non-blocking inotify(7) watch through ctypes: what Asterisk's pbx_spool listens to.

pbx_spool watches `outgoing/` for IN_CREATE | IN_OPEN | IN_CLOSE_WRITE | IN_MOVED_TO and treats
each differently (see `spool.py`); the double and the tests need to see the same events.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from dataclasses import dataclass
from pathlib import Path

IN_OPEN = 0x020
IN_CLOSE_WRITE = 0x008
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_Q_OVERFLOW = 0x4000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
SPOOL_EVENTS = IN_CREATE | IN_OPEN | IN_CLOSE_WRITE | IN_MOVED_TO
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len

_NAMES = {
    IN_CREATE: "create",
    IN_OPEN: "open",
    IN_CLOSE_WRITE: "close_write",
    IN_MOVED_TO: "moved_to",
    IN_Q_OVERFLOW: "overflow",
}


@dataclass(frozen=True, slots=True)
class Event:
    mask: int
    name: str

    @property
    def kind(self) -> str:
        return next((label for bit, label in _NAMES.items() if self.mask & bit), hex(self.mask))


class Watch:
    """One directory watched for `mask`; `read()` returns what happened since the last call."""

    def __init__(self, directory: Path, mask: int = SPOOL_EVENTS) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        if libc.inotify_add_watch(self._fd, os.fsencode(directory), ctypes.c_uint32(mask)) < 0:
            code = ctypes.get_errno()
            os.close(self._fd)
            raise OSError(code, os.strerror(code), str(directory))

    def read(self) -> list[Event]:
        events: list[Event] = []
        while True:
            try:
                data = os.read(self._fd, 64 * 1024)
            except BlockingIOError:
                return events
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                raise
            offset = 0
            while offset + _HEADER.size <= len(data):
                _, mask, _, length = _HEADER.unpack_from(data, offset)
                start = offset + _HEADER.size
                raw = data[start : start + length].rstrip(b"\0")
                events.append(Event(mask, os.fsdecode(raw)))
                offset = start + length

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
