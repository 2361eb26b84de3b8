"""The dashboard shows each Asterisk server (ASTERISK_SERVERS): its live calls of its limit, down
ones marked, and the line queue by priority, in a real browser."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.live_stack import ConsoleErrors, LiveStack, wait_for_snapshot
from tests.e2e.test_dashboard_browser import browser, browser_page
from ttsqueue.asterisk_servers import AsteriskServer
from ttsqueue.config import DialerName, Settings
from ttsqueue.store.connection import connect_redis
from ttsqueue.store.keys import Keys
from ttsqueue.store.presence import DialerPresence, PresenceReport

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
__all__ = ["browser", "browser_page"]


def server(name: str, limit: int) -> AsteriskServer:
    return AsteriskServer(
        name=name, ami_host="127.0.0.1", ami_user="tts", max_concurrent_calls=limit
    )


async def lines_in_use(settings: Settings) -> None:
    """What two workers' heartbeats and the line queue would hold: pbx-a up (for one of the
    two workers: enough) with 2 live calls, pbx-b down with 1 still counted, 2 alerts and 1
    normal call waiting."""
    keys = Keys(settings.REDIS_PREFIX)
    redis = connect_redis(settings.REDIS_URL, client_name="pytest")
    try:
        presence = DialerPresence(redis, keys)
        for worker, a_state in (("w1", "disconnected"), ("w2", "connected")):
            await presence.publish(
                PresenceReport(
                    worker_id=worker,
                    backend="ami",
                    state=a_state,
                    beat=time.time() + 30,  # the page is read well within it
                    servers={"pbx-a": a_state, "pbx-b": "disconnected"},
                )
            )
        expiry = int((time.time() + 600) * 1000)
        await redis.zadd(keys.server_lines("pbx-a"), {"call-1": expiry, "call-2": expiry})
        await redis.zadd(keys.server_lines("pbx-b"), {"call-3": expiry})
        await redis.zadd(keys.line_waiters_high, {"alert-1": 1, "alert-2": 2})
        await redis.zadd(keys.line_waiters_normal, {"normal-1": 3})
    finally:
        await redis.aclose()


def test_each_server_and_the_line_queue_are_shown(
    settings: Settings, broker: Any, redis_client: Any, browser_page: Page
) -> None:
    settings = settings.model_copy(
        update={
            "DIALER": DialerName.SIMULATOR,
            "ASTERISK_SERVERS": [server("pbx-a", 3), server("pbx-b", 2)],
        }
    )
    # Playwright's sync API keeps an event loop running in this thread: use another one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, lines_in_use(settings)).result(timeout=30)
    page = browser_page
    errors = ConsoleErrors(page)
    with LiveStack(settings, api=False) as stack:
        page.goto(stack.dashboard_url)
        wait_for_snapshot(page)
        rows = page.locator("#kpi-servers li")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_have_text("pbx-a2 / 3")
        expect(rows.nth(1)).to_have_text("pbx-b (down)1 / 2")
        expect(rows.nth(1)).to_have_class("down")
        expect(page.locator("#kpi-calls")).to_have_text("3")
        expect(page.locator("#kpi-calls-limit")).to_have_text("of 5")
        expect(page.locator("#kpi-waiting")).to_have_text("waiting for a line: 2 high, 1 normal")
        page.click("#lang")
        expect(rows.nth(1)).to_have_text("pbx-b (caído)1 / 2")
    assert errors.errors == []
