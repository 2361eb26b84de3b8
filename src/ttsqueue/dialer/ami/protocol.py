"""AMI framing and parsing, no I/O of its own.

On the wire: one banner line (`Asterisk Call Manager/<version>\\r\\n`), then messages made of
`Key: Value\\r\\n` lines, each message ended by an empty line. Header names are
case-insensitive and may repeat (`Variable:` in an Originate). An action is built only from
values that cannot break the framing: a CR or LF in a value would start a new header or a new
action (command injection), so `encode_action` refuses them instead of stripping them.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ttsqueue.dialer.ami.errors import AmiProtocolError

EOL = b"\r\n"
END_OF_MESSAGE = b"\r\n\r\n"
BANNER_PREFIX = "Asterisk Call Manager/"
# Headers whose values are never shown (logs, reprs, test failure messages).
SECRET_HEADERS = frozenset({"secret", "key"})
_HEADER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_FORBIDDEN_IN_VALUE = frozenset("\r\n\x00")


@dataclass(frozen=True, slots=True)
class AmiMessage:
    """One AMI message: its headers in wire order (names as sent, lookups case-insensitive)."""

    headers: tuple[tuple[str, str], ...]

    def get(self, name: str, default: str | None = None) -> str | None:
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    @property
    def kind(self) -> str:
        """`event`, `response` or `action`: decided by the first header, because some events
        (OriginateResponse) also carry a `Response:` header."""
        return self.headers[0][0].lower() if self.headers else ""

    @property
    def name(self) -> str:
        """The event name, the response status or the action name."""
        return self.headers[0][1] if self.headers else ""

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")

    def redacted(self) -> str:
        """One-line rendering with secrets masked, safe for logs."""
        parts = [
            f"{key}: {'********' if key.lower() in SECRET_HEADERS else value}"
            for key, value in self.headers
        ]
        return " | ".join(parts)

    def __repr__(self) -> str:
        return f"AmiMessage({self.redacted()})"


def parse_message(block: bytes) -> AmiMessage:
    """Headers of one message (without its terminating empty line)."""
    text = block.decode("utf-8", errors="replace")
    headers: list[tuple[str, str]] = []
    for line in text.split("\r\n"):
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            # Command output and similar free text: kept, under no header name.
            headers.append(("", line))
            continue
        headers.append((key.strip(), value[1:] if value.startswith(" ") else value))
    return AmiMessage(tuple(headers))


def encode_action(fields: Iterable[tuple[str, str]]) -> bytes:
    """Serialize an action; raises ValueError on any value that could break the framing."""
    lines: list[str] = []
    for key, value in fields:
        if not _HEADER_NAME.fullmatch(key):
            raise ValueError(f"invalid AMI header name {key!r}")
        if any(ch in _FORBIDDEN_IN_VALUE for ch in value):
            raise ValueError(f"AMI header {key} holds a line break or NUL")
        lines.append(f"{key}: {value}\r\n")
    if not lines or not lines[0].lower().startswith("action:"):
        raise ValueError("an AMI action starts with its Action header")
    return ("".join(lines) + "\r\n").encode("utf-8")


def parse_banner(line: bytes) -> str:
    """`Asterisk Call Manager/11.0.0` -> `11.0.0`; anything else is not an AMI server."""
    text = line.decode("utf-8", errors="replace").strip()
    if not text.startswith(BANNER_PREFIX):
        raise AmiProtocolError(f"not an Asterisk Manager Interface (banner {text[:60]!r})")
    return text.removeprefix(BANNER_PREFIX)


async def read_banner(reader: asyncio.StreamReader) -> str:
    try:
        line = await reader.readuntil(EOL)
    except asyncio.IncompleteReadError:
        raise AmiProtocolError("connection closed before the AMI banner") from None
    except asyncio.LimitOverrunError:
        raise AmiProtocolError("no AMI banner line") from None
    return parse_banner(line)


async def read_message(reader: asyncio.StreamReader) -> AmiMessage:
    """The next message; `asyncio.IncompleteReadError` at EOF."""
    while True:
        try:
            block = await reader.readuntil(END_OF_MESSAGE)
        except asyncio.LimitOverrunError:
            raise AmiProtocolError("AMI message longer than the stream limit") from None
        message = parse_message(block[: -len(END_OF_MESSAGE)])
        if message.headers:
            return message
