"""Resources of the dashboard process, created in the lifespan and reached through `Depends`."""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis
from fastapi import Request

from ttsqueue.config import Settings
from ttsqueue.dashboard.api_proxy import ApiProxy
from ttsqueue.dashboard.broker_link import BrokerLink
from ttsqueue.dashboard.hub import Hub
from ttsqueue.store.jobs import JobStore


@dataclass(slots=True)
class DashboardContext:
    settings: Settings
    redis: aioredis.Redis
    store: JobStore
    broker: BrokerLink
    hub: Hub
    api: ApiProxy


def get_context(request: Request) -> DashboardContext:
    ctx: DashboardContext = request.app.state.ctx
    return ctx
