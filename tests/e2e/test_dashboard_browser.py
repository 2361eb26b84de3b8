"""The dashboard in a real browser: Debian's chromium, headless, driven by Playwright.

The API, the dashboard and (where needed) a worker are real servers on free ports with this
test's own Redis prefix and queue names; jobs are submitted through the HTTP API.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import make_settings
from tests.e2e.live_stack import (
    ConsoleErrors,
    LiveStack,
    chromium,
    wait_for_snapshot,
)
from tests.faults.servers import RabbitServer, rabbitmq_tool
from tests.ports import free_port
from ttsqueue.broker.management import ManagementTarget
from ttsqueue.config import Settings
from ttsqueue.store.connection import connect_redis
from ttsqueue.store.keys import Keys
from ttsqueue.store.workers import WorkerInfo, WorkerRegistry

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
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def browser_page(browser: Browser) -> Page:
    return browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")


def without_management(settings: Settings) -> Settings:
    """Points the dashboard at a closed port for the management API."""
    url = f"http://127.0.0.1:{free_port()}"
    return settings.model_copy(update={"RABBITMQ_MANAGEMENT_URL": url})


def management_answers(settings: Settings) -> bool:
    target = ManagementTarget.from_urls(settings.RABBITMQ_URL, settings.RABBITMQ_MANAGEMENT_URL)
    try:
        reply = httpx.get(
            f"{target.base_url}/api/overview", auth=(target.user, target.password), timeout=2
        )
    except httpx.HTTPError:
        return False
    return reply.status_code == 200


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


# Queues panel: the management API's figures, or "unavailable" without it -----------------------
def queue_cell(page: Page, queue: str, cell: str) -> Any:
    return page.locator(f'#queues-body tr[data-queue="{queue}"] .{cell}')


def test_queue_cells_say_unavailable_without_the_management_api(
    settings: Settings, broker: Any, redis_client: Any, browser_page: Page
) -> None:
    settings = without_management(settings)
    page = browser_page
    errors = ConsoleErrors(page)
    with LiveStack(settings, api=True, worker=False) as stack:
        page.goto(stack.dashboard_url)
        wait_for_snapshot(page)
        submit(stack)
        submit(stack)
        expect(queue_cell(page, "normal", "ready")).to_have_text("2", timeout=PUSH_BUDGET_MS)
        expect(queue_cell(page, "normal", "consumers")).to_have_text("0")
        for cell in ("unacked", "rate-publish", "rate-deliver", "rate-ack"):
            expect(queue_cell(page, "normal", cell)).to_have_text("n/a")
            expect(queue_cell(page, "normal", cell)).to_have_class(re.compile(r"\bna\b"))
        expect(page.locator("#queues-note")).to_contain_text(settings.RABBITMQ_MANAGEMENT_URL)
    assert errors.errors == []


@pytest.mark.settings(SIMULATOR_TIME_SCALE=1.0, WORKER_CONCURRENCY=2)
def test_queue_cells_from_the_management_api(
    settings: Settings, broker: Any, redis_client: Any, browser_page: Page
) -> None:
    if not management_answers(settings):
        pytest.skip("RabbitMQ management plugin not enabled (rabbitmq-plugins enable ...)")
    page = browser_page
    errors = ConsoleErrors(page)
    with LiveStack(settings, api=True, worker=True) as stack:
        page.goto(stack.dashboard_url)
        wait_for_snapshot(page)
        for _ in range(6):
            submit(stack)
        # Calls ring for seconds: the worker holds its messages unacknowledged meanwhile.
        # RabbitMQ samples these figures every 5 s.
        expect(queue_cell(page, "normal", "unacked")).to_have_text(
            re.compile(r"^[1-9]\d*$"), timeout=15_000
        )
        expect(queue_cell(page, "normal", "rate-publish")).to_have_text(re.compile(r"^\d+(\.\d)?$"))
        expect(queue_cell(page, "normal", "consumers")).to_have_text("1")
        expect(page.locator("#queues-body td.na")).to_have_count(0)
        expect(page.locator("#queues-note")).to_contain_text("management API")
    assert errors.errors == []


# Layout: a laptop shows every worker column, a phone does not overflow -------------------------
def register_workers(settings: Settings, count: int, jobs_each: int) -> list[str]:
    """Heartbeats as workers write them, kept alive for a minute (no worker process runs)."""
    ids = [f"worker-{n:02d}.dialer-host.example.internal-{40_000 + n}" for n in range(count)]

    async def beat() -> None:
        client = connect_redis(settings.REDIS_URL, client_name="pytest")
        registry = WorkerRegistry(client, Keys(settings.REDIS_PREFIX))
        try:
            for n, worker_id in enumerate(ids):
                current = [f"{n:08x}-0000-4000-8000-{k:012x}" for k in range(jobs_each)]
                await registry.beat(WorkerInfo(worker_id=worker_id, current_jobs=current))
                await client.expire(Keys(settings.REDIS_PREFIX).worker(worker_id), 60)
        finally:
            await client.aclose()

    # Playwright's sync API keeps an event loop running in this thread: use another one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, beat()).result(timeout=30)
    return ids


def fits_horizontally(page: Page, table: str) -> bool:
    """The table is no wider than its scroll box: no column is hidden to the right."""
    return bool(
        page.evaluate(
            """(sel) => {
                const table = document.querySelector(sel);
                return table.scrollWidth <= table.parentElement.clientWidth;
            }""",
            table,
        )
    )


def test_laptop_layout_shows_every_worker_column_with_twenty_busy_workers(
    settings: Settings, broker: Any, redis_client: Any, browser_page: Page
) -> None:
    page = browser_page
    ids = register_workers(settings, 20, jobs_each=16)
    with LiveStack(without_management(settings), api=False) as stack:
        page.goto(stack.dashboard_url)
        wait_for_snapshot(page)
        expect(page.locator("#workers-body tr")).to_have_count(20)
        expect(page.locator("#workers-summary")).to_have_text("20 total · 20 active · 0 idle")
        shown = page.locator("#workers-body td.worker-id").all_inner_texts()
        assert shown == ids
        expect(page.locator("#workers-body tr").first.locator("td.current")).to_contain_text("+13")
        expect(page.locator("#workers-body tr").first.locator("td.heartbeat")).to_be_visible()
        assert fits_horizontally(page, "table.workers")
        assert fits_horizontally(page, "table.queues")
        assert fits_horizontally(page, "table.jobs")


@pytest.mark.settings(SIMULATOR_TIME_SCALE=0.05)
def test_phone_width_has_no_horizontal_overflow(
    settings: Settings, broker: Any, redis_client: Any, browser: Browser
) -> None:
    width = 390
    page = browser.new_page(
        viewport={"width": width, "height": 844},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
        locale="es-CO",
    )
    errors = ConsoleErrors(page)
    register_workers(settings, 3, jobs_each=5)
    with LiveStack(without_management(settings), api=True, worker=True) as stack:
        page.goto(stack.dashboard_url)
        wait_for_snapshot(page)
        for n in range(8):
            submit(stack, priority="high" if n % 3 == 0 else "normal")
        expect(page.locator("#recent-body tr.job")).to_have_count(8, timeout=5_000)
        expect(page.locator("#workers-body tr")).to_have_count(4, timeout=5_000)
        page.wait_for_timeout(500)
        widths = page.evaluate(
            "[document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]"
        )
        assert widths == [width, width, width]
        panels = [
            ".kpis",
            "#queues-panel",
            "#chart-panel",
            "#workers-panel",
            "#jobs-panel",
            "#call-panel",
        ]
        for selector in panels:
            panel = page.locator(selector)
            panel.scroll_into_view_if_needed()
            expect(panel).to_be_in_viewport()
            box = panel.bounding_box()
            assert box is not None
            assert box["x"] >= 0, selector
            assert box["x"] + box["width"] <= width, selector
        expect(page.locator("#lang")).to_be_visible()
        expect(page.locator("#f-submit")).to_be_visible()
    assert errors.errors == []


# RabbitMQ down: a banner, then recovery by itself ----------------------------------------------
@pytest.fixture
def private_rabbit(tmp_path: Path) -> Iterator[RabbitServer]:
    if rabbitmq_tool("rabbitmq-server") is None:
        raise RuntimeError("rabbitmq-server is missing (./manage.sh setup installs it)")
    base = tmp_path / "rabbitmq"
    base.mkdir()
    server = RabbitServer(base)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.mark.timeout(300)
def test_banner_while_rabbitmq_is_down_then_recovery(
    settings: Settings, redis_client: Any, private_rabbit: RabbitServer, browser_page: Page
) -> None:
    settings = without_management(settings.model_copy(update={"RABBITMQ_URL": private_rabbit.url}))
    page = browser_page
    errors = ConsoleErrors(page)
    with LiveStack(settings, api=False) as stack:
        page.goto(stack.dashboard_url)
        wait_for_snapshot(page)
        expect(page.locator("#banner-rabbitmq")).to_be_hidden(timeout=15_000)
        expect(queue_cell(page, "normal", "ready")).to_have_text("0")

        private_rabbit.stop()
        expect(page.locator("#banner-rabbitmq")).to_be_visible(timeout=15_000)
        expect(page.locator("#banner-rabbitmq")).to_contain_text("RabbitMQ")
        expect(queue_cell(page, "normal", "ready")).to_have_text("–")
        # The page keeps following Redis meanwhile.
        expect(page.locator("#live")).to_have_attribute("data-state", "live")
        expect(page.locator("#banner-redis")).to_be_hidden()
        assert httpx.get(f"{stack.dashboard_url}/healthz").status_code == 200

        private_rabbit.start()
        expect(page.locator("#banner-rabbitmq")).to_be_hidden(timeout=30_000)
        expect(queue_cell(page, "normal", "ready")).to_have_text("0")
    # Only RabbitMQ went away: the page's own stream to the dashboard never broke.
    assert errors.errors == []
