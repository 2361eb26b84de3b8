"""Real servers for browser tests: the API, the dashboard and optionally a worker, listening on
free ports, run by uvicorn in one background thread with its own event loop (so a synchronous
Playwright test drives a browser against them), and a headless Debian chromium."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import httpx
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests import redis_leftovers
from tests.http_servers import quiet_server
from tests.ports import free_port
from ttsqueue.api.app import create_app as create_api
from ttsqueue.config import Settings
from ttsqueue.dashboard.app import create_app as create_dashboard
from ttsqueue.worker.main import serve as serve_worker

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class LiveStack:
    def __init__(self, settings: Settings, *, api: bool = True, worker: bool = False) -> None:
        self.settings = settings
        self.with_api = api
        self.with_worker = worker
        self.api_url = f"http://127.0.0.1:{free_port()}"
        self.dashboard_url = f"http://127.0.0.1:{free_port()}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="live-stack", daemon=True)
        self._error: BaseException | None = None

    def __enter__(self) -> LiveStack:
        self._thread.start()
        self._wait_ready()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        # What its API, worker and dashboard wrote (queues go when the test process ends).
        redis_leftovers.wipe(self.settings.REDIS_URL, self.settings.REDIS_PREFIX)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by _wait_ready or the test
            self._error = exc

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        dashboard = create_dashboard(self.settings, api_url=self.api_url)
        servers = [quiet_server(dashboard, _port(self.dashboard_url))]
        if self.with_api:
            servers.append(quiet_server(create_api(self.settings), _port(self.api_url)))
        tasks = [asyncio.create_task(server.serve()) for server in servers]
        worker_stop = asyncio.Event()
        if self.with_worker:
            tasks.append(asyncio.create_task(serve_worker(self.settings, worker_stop)))
        await self._stop.wait()
        worker_stop.set()
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks)

    def _wait_ready(self, timeout: float = 20.0) -> None:
        urls = [f"{self.dashboard_url}/healthz"]
        if self.with_api:
            urls.append(f"{self.api_url}/health")
        deadline = time.monotonic() + timeout
        for url in urls:
            while True:
                if self._error is not None:
                    raise RuntimeError("the live stack did not start") from self._error
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(url, timeout=2).status_code < 500:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{url} did not answer within {timeout}s")
                time.sleep(0.05)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(
            f"{CHROMIUM} is missing: apt-get install chromium (./manage.sh check does)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class ConsoleErrors:
    """Collects console errors and uncaught page exceptions of one page."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")


def wait_for_snapshot(page: Page, timeout_ms: float = 10_000) -> None:
    page.wait_for_function(
        "window.ttsqDashboard && window.ttsqDashboard.messages > 0", timeout=timeout_ms
    )
