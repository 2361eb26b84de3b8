"""Calls that listen on the dashboard, in a real browser: the job detail shows the keys pressed
and the answering machine verdict, and the calls-by-outcome counter has the new outcomes."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.live_stack import ConsoleErrors, LiveStack, wait_for_snapshot
from tests.e2e.test_dashboard_browser import browser, browser_page, submit
from ttsqueue.config import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
__all__ = ["browser", "browser_page"]


def test_detail_shows_keys_and_machine_verdict(
    settings: Settings, broker: Any, redis_client: Any, browser_page: Page
) -> None:
    fast = settings.model_copy(update={"SIMULATOR_TIME_SCALE": 0.01})
    page = browser_page
    errors = ConsoleErrors(page)
    with LiveStack(fast, api=True, worker=True) as stack:
        confirmed = submit(stack, phone_number="3005550004", confirm={})
        machine = submit(stack, phone_number="3005550005", machine_detection="hangup")
        page.goto(stack.dashboard_url)
        wait_for_snapshot(page)
        outcomes = page.locator("#kpi-outcomes")
        expect(outcomes).to_contain_text("confirmed", timeout=30_000)
        expect(outcomes).to_contain_text("answering machine", timeout=30_000)

        page.locator(f'#recent-body tr[data-job-id="{confirmed}"]').click()
        fields = page.locator("#detail-fields")
        expect(fields).to_have_attribute("data-status", "completed", timeout=30_000)
        expect(fields).to_contain_text("keys pressed")
        expect(fields.locator("dd", has_text="1 (confirmed)")).to_have_count(1)

        page.locator(f'#recent-body tr[data-job-id="{machine}"]').click()
        expect(fields).to_have_attribute("data-status", "failed", timeout=30_000)
        expect(
            fields.locator("dd", has_text="MACHINE · LONGGREETING-1500-1500 · 2,600 ms")
        ).to_have_count(1)

        page.click("#detail-close")
        page.click("#lang")
        expect(outcomes).to_contain_text("contestador")
        page.wait_for_timeout(300)
    assert errors.errors == []
