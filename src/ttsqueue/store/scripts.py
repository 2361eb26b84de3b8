"""Every Lua script of the product lives in `store/lua/<name>.lua`, one per file, with a header
naming its KEYS, ARGV and reply; shared functions live in `store/lua/lib/` and are named on a
`-- uses: a, b` line. Scripts are registered once per client (EVALSHA, loaded again when
Redis has forgotten them)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError
from redis.typing import EncodableT, KeyT

_USES = "-- uses:"


def _read(*parts: str) -> str:
    return resources.files("ttsqueue.store").joinpath("lua", *parts).read_text("utf-8")


@cache
def lua_source(name: str) -> str:
    """The text of `store/lua/<name>.lua`, preceded by the library functions it uses."""
    text = _read(f"{name}.lua")
    first = text.split("\n", 1)[0]
    if not first.startswith(_USES):
        return text
    libs = [lib.strip() for lib in first[len(_USES) :].split(",") if lib.strip()]
    return "".join(_read("lib", f"{lib}.lua") for lib in libs) + text


class StoreScript(AsyncScript):
    """redis-py's script object, with the common call (on its own client, not in a pipeline)
    sent straight as EVALSHA: redis-py's own goes through a Protocol `isinstance` check and a
    deprecation wrapper on every call: about 3% of a worker's samples per job in a profile."""

    async def __call__(
        self,
        keys: Sequence[KeyT] | None = None,
        args: Iterable[EncodableT] | None = None,
        client: aioredis.Redis | RedisCluster | None = None,
    ) -> Any:
        if client is not None:
            return await super().__call__(keys, args, client)
        keys = keys or ()
        args = tuple(args) if args else ()
        target = self.registered_client
        try:
            return await target.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            # Redis has forgotten it (restarted, flushed, another server after a failover).
            self.sha = await target.script_load(self.script)
            return await target.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)


def load_script(client: aioredis.Redis, name: str) -> StoreScript:
    """`store/lua/<name>.lua` registered on `client`."""
    return StoreScript(client, lua_source(name))


@dataclass(frozen=True, slots=True)
class Scripts:
    """The scripts that change job records (used by store/lifecycle.py only)."""

    create_job: AsyncScript
    transition: AsyncScript
    delete_job: AsyncScript
    touch_job: AsyncScript
    confirm_job: AsyncScript
    drop_unconfirmed: AsyncScript
    release_claim: AsyncScript
    claim_call: AsyncScript

    @classmethod
    def register(cls, client: aioredis.Redis) -> Scripts:
        return cls(
            create_job=load_script(client, "create_job"),
            transition=load_script(client, "transition"),
            delete_job=load_script(client, "delete_job"),
            touch_job=load_script(client, "touch_job"),
            confirm_job=load_script(client, "confirm_job"),
            drop_unconfirmed=load_script(client, "drop_unconfirmed"),
            release_claim=load_script(client, "release_claim"),
            claim_call=load_script(client, "claim_call"),
        )
