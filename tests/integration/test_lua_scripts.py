"""Every script in `store/lua/` loads on real Redis, library functions included."""

from __future__ import annotations

from importlib import resources

import redis.asyncio as aioredis

from ttsqueue.store.scripts import lua_source


def script_names() -> list[str]:
    folder = resources.files("ttsqueue.store").joinpath("lua")
    return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".lua"))


async def test_every_script_compiles(redis_client: aioredis.Redis) -> None:
    names = script_names()
    assert {"transition", "create_job", "cache_register", "rate_limit", "call_record"} <= set(names)
    for name in names:
        source = lua_source(name)
        assert source.startswith("--"), name  # a header says what it takes and returns
        sha = await redis_client.script_load(source)
        assert (await redis_client.script_exists(sha)) == [True], name


def test_library_functions_come_first() -> None:
    source = lua_source("cache_register")
    assert source.index("local function pin(") < source.index("local function evict(")
    assert source.index("local function evict(") < source.index("return evict(")
