"""The dashboard in a real browser: Debian's chromium, headless, driven by Playwright.

The API, the dashboard and (where needed) a worker are real servers on free ports with this
test's own Redis prefix and queue names; jobs are submitted through the HTTP API.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import make_settings
from tests.e2e.live_stack import (
    ConsoleErrors,
    LiveStack,
    chromium,
    free_port,
    wait_for_snapshot,
)
from ttsqueue.config import Settings

# Debian's chromium is required (`./manage.sh check` installs it): no silent skip.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

# SPEC §8: a change reaches the page within one second.
PUSH_BUDGET_MS = 1000


def submit(stack: LiveStack, **fields: Any) -> str:
    body = {"text": "Hola, este es un mensaje de prueba", "phone_number": "3005050149", **fields}
    reply = httpx.post(f"{stack.api_url}/tts/call", json=body, timeout=10)
    assert reply.status_code == 202, reply.text
    return str(reply.json()["job_id"])


@pytest.fixture
def browser_page() -> Iterator[Page]:
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")
        yield page


def test_page_follows_submitted_jobs_live(
    settings: Settings, broker: Any, redis_client: Any, browser_page: Page
) -> None:
    page = browser_page
    errors = ConsoleErrors(page)
    with LiveStack(settings, api=True, worker=False) as stack:
        page.goto(stack.dashboard_url)
        wait_for_snapshot(page)
        expect(page.locator("#kpi-total")).to_have_text("0")
        expect(page.locator("#banner-simulator")).to_be_visible()

        first = submit(stack)
        expect(page.locator("#kpi-total")).to_have_text("1", timeout=PUSH_BUDGET_MS)
        expect(page.locator(f'#recent-body tr[data-job-id="{first}"]')).to_be_visible(
            timeout=PUSH_BUDGET_MS
        )

        high = [submit(stack, priority="high") for _ in range(3)]
        expect(page.locator("#kpi-total")).to_have_text("4", timeout=PUSH_BUDGET_MS)
        expect(page.locator('#status-chips [data-status="queued"] b')).to_have_text("4")
        expect(page.locator('#queues-body tr[data-queue="priority"] .ready')).to_have_text("3")
        expect(page.locator('#recent-body tr[data-status="queued"]')).to_have_count(4)

        page.select_option("#filter-priority", "high")
        expect(page.locator("#recent-body tr.job")).to_have_count(3)
        shown = page.locator("#recent-body tr.job").evaluate_all(
            "rows => rows.map(r => r.dataset.jobId)"
        )
        assert sorted(shown) == sorted(high)

        page.click("#lang")
        expect(page.locator("#queues-panel h2")).to_have_text("Colas")
        expect(page.locator('#status-chips [data-status="queued"] .st')).to_have_text("en cola")
        page.wait_for_timeout(300)
    assert errors.errors == []


def test_test_call_form_shows_the_job_moving_and_its_audio(
    settings: Settings, broker: Any, redis_client: Any, browser_page: Page
) -> None:
    fast = settings.model_copy(update={"SIMULATOR_TIME_SCALE": 0.01})
    page = browser_page
    errors = ConsoleErrors(page)
    with LiveStack(fast, api=True, worker=True) as stack:
        page.goto(stack.dashboard_url)
        wait_for_snapshot(page)
        page.fill("#f-text", "Hola, su cita es mañana a las diez")
        page.select_option("#f-priority", "high")
        page.click("#f-submit")
        expect(page.locator("#detail")).to_be_visible()
        expect(page.locator("#f-result")).to_contain_text("Accepted")
        expect(page.locator("#detail-fields")).to_have_attribute(
            "data-status", "completed", timeout=30_000
        )
        timeline = page.locator("#detail-timeline li .st").all_inner_texts()
        assert timeline == ["queued", "processing", "calling", "completed"]

        source = page.locator("#detail-audio audio source")
        expect(source).to_have_count(1)
        src = source.get_attribute("src")
        job_id = page.locator("#detail-id").inner_text()
        assert src == f"/api/audio/{job_id}"
        fetched = page.evaluate(
            """async (src) => {
                const reply = await fetch(src);
                const bytes = new Uint8Array(await reply.arrayBuffer());
                return [reply.status, reply.headers.get('content-type'),
                        String.fromCharCode(...bytes.slice(0, 4)), bytes.length];
            }""",
            src,
        )
        assert fetched[:3] == [200, "audio/wav", "RIFF"]
        assert fetched[3] > 1000
        page.wait_for_function(
            """() => {
                const audio = document.querySelector('#detail-audio audio');
                return audio && audio.canPlayType('audio/wav') !== ''
                    && audio.readyState >= 1 && audio.duration > 0;
            }""",
            timeout=10_000,
        )
    assert errors.errors == []


@pytest.mark.settings(API_KEYS="dash-key-1,dash-key-2")
def test_keys_protect_the_page_and_the_stream(
    settings: Settings, broker: Any, redis_client: Any, browser_page: Page
) -> None:
    page = browser_page
    with LiveStack(settings, api=True, worker=False) as stack:
        refused = page.goto(stack.dashboard_url)
        assert refused is not None
        assert refused.status == 401
        expect(page.locator("input[name=key]")).to_be_visible()
        assert httpx.get(f"{stack.dashboard_url}/api/snapshot").status_code == 401
        wrong = httpx.get(f"{stack.dashboard_url}/api/snapshot", headers={"X-API-Key": "nope"})
        assert wrong.status_code == 401

        page.fill("input[name=key]", "dash-key-2")
        page.press("input[name=key]", "Enter")
        page.wait_for_url(f"{stack.dashboard_url}/")
        assert "key=" not in page.url
        wait_for_snapshot(page)
        job_id = submit_with_key(stack, "dash-key-1")
        expect(page.locator(f'#recent-body tr[data-job-id="{job_id}"]')).to_be_visible()

        bearer = {"Authorization": "Bearer dash-key-1"}
        reply = httpx.get(f"{stack.dashboard_url}/api/jobs/{job_id}", headers=bearer)
        assert reply.status_code == 200
        assert reply.json()["job_id"] == job_id


def submit_with_key(stack: LiveStack, key: str) -> str:
    reply = httpx.post(
        f"{stack.api_url}/tts/call",
        json={"text": "Prueba", "phone_number": "3005050149"},
        headers={"X-API-Key": key},
        timeout=10,
    )
    assert reply.status_code == 202, reply.text
    return str(reply.json()["job_id"])


class PrivateRedis:
    """A throw-away redis-server (no persistence) that a test may stop and start again."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [
                server,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while (
            subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, check=False
            ).stdout.strip()
            != b"PONG"
        ):
            assert time.monotonic() < deadline, "private redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_banner_while_redis_is_down_then_recovery(
    tmp_path: Path, private_redis: PrivateRedis, browser_page: Page
) -> None:
    settings = make_settings(tmp_path, REDIS_URL=private_redis.url)
    page = browser_page
    with LiveStack(settings, api=False) as stack:
        page.goto(stack.dashboard_url)
        wait_for_snapshot(page)
        expect(page.locator("#banner-redis")).to_be_hidden()

        private_redis.stop()
        expect(page.locator("#banner-redis")).to_be_visible(timeout=10_000)
        expect(page.locator("#banner-redis")).to_contain_text("Redis")
        expect(page.locator("#live")).to_have_attribute("data-state", "live")
        assert httpx.get(f"{stack.dashboard_url}/healthz").status_code == 200

        private_redis.start()
        expect(page.locator("#banner-redis")).to_be_hidden(timeout=15_000)
        expect(page.locator("#kpi-total")).to_have_text("0")
