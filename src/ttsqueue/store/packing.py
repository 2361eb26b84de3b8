"""Commands packed into Redis's wire format by hiredis (C) instead of redis-py's Python loop.

redis-py's synchronous client packs with `hiredis.pack_command` when hiredis is installed; its
asyncio client does not, and packs every argument in Python. Our scripts carry many arguments
(a new job's record goes in one call, field by field), so packing was an eighth of the API's
CPU per request: 32.5 µs against 4.5 µs for the record's creation, and 53 µs against 23 µs of
client CPU per call through Redis (`benchmarks/bench_redis_packing.py`). The bytes are the
same; an argument hiredis does not take (a memoryview, a bool, None) is packed by redis-py,
which accepts or refuses it as it always did.
"""

from __future__ import annotations

from typing import Any

import hiredis
from redis.asyncio.connection import AbstractConnection


class HiredisPacking:
    """Mixed in before a redis-py connection class: its `pack_command` in C."""

    def pack_command(self, *args: Any) -> list[bytes]:
        # As redis-py does: a command name given with its subcommand ("CLIENT SETNAME") is
        # sent as separate arguments.
        first = args[0]
        if isinstance(first, str):
            args = (*first.encode().split(), *args[1:])
        elif isinstance(first, bytes) and b" " in first:
            args = (*first.split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except Exception:
            packed: list[bytes] = super().pack_command(*args)  # type: ignore[misc]
            return packed


# One subclass per connection class, made once.
_PACKED: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def packed_by_hiredis(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    """`connection_class` with hiredis's packing."""
    if issubclass(connection_class, HiredisPacking):
        return connection_class
    made = _PACKED.get(connection_class)
    if made is None:
        name = f"Hiredis{connection_class.__name__}"
        made = _PACKED[connection_class] = type(name, (HiredisPacking, connection_class), {})
    return made


def pack_with_hiredis(pool: Any) -> None:
    """Make the connections `pool` opens from now on pack with hiredis."""
    pool.connection_class = packed_by_hiredis(pool.connection_class)
