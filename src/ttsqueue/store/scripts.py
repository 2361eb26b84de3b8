"""Lua scripts shipped with the package, registered once per client (EVALSHA with reload)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript


def _source(name: str) -> str:
    return resources.files("ttsqueue.store").joinpath("lua", f"{name}.lua").read_text("utf-8")


def lua_source(name: str) -> str:
    """The text of `store/lua/<name>.lua`, for stores that register their own scripts."""
    return _source(name)


@dataclass(frozen=True, slots=True)
class Scripts:
    create_job: AsyncScript
    transition: AsyncScript
    delete_job: AsyncScript
    touch_job: AsyncScript
    confirm_job: AsyncScript

    @classmethod
    def register(cls, client: aioredis.Redis) -> Scripts:
        return cls(
            create_job=client.register_script(_source("create_job")),
            transition=client.register_script(_source("transition")),
            delete_job=client.register_script(_source("delete_job")),
            touch_job=client.register_script(_source("touch_job")),
            confirm_job=client.register_script(_source("confirm_job")),
        )
