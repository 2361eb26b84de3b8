"""The API docs in a real browser, offline: Swagger UI at /docs and ReDoc at /redoc render
every operation of the API, and no request the pages make leaves this machine.

Debian's chromium, headless, against the real API on a free port (with API keys set, as in
production: the docs need none). Every request of the browser context is recorded through a
route that lets only this server's URLs through and aborts the rest, so a CDN URL anywhere
(page, script, style, image, font, worker) fails the test instead of reaching the internet.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from tests.conftest import make_settings
from tests.e2e.live_stack import ConsoleErrors, LiveStack, chromium

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
RENDER_MS = 30_000  # generous: a loaded machine parses 1-2 MB of JavaScript slowly


@dataclass
class Recorder:
    origin: str
    requested: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def local(self, url: str) -> bool:
        # blob: URLs are made in the page (ReDoc's web worker); data: URLs are inline.
        return url.startswith((self.origin + "/", f"blob:{self.origin}/", "data:"))

    def route(self, route: Route) -> None:
        url = route.request.url
        self.requested.append(url)
        if self.local(url):
            route.continue_()
        else:
            self.refused.append(url)
            route.abort()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LiveStack]:
    settings = make_settings(tmp_path, API_KEYS=["docs-test-key-0123456789abcdef"])
    with LiveStack(settings) as live:
        yield live


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def offline(browser: Browser, stack: LiveStack) -> Iterator[tuple[BrowserContext, Recorder]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    recorder = Recorder(stack.api_url)
    context.route("**/*", recorder.route)
    context.on("request", lambda request: recorder.requested.append(request.url))
    try:
        yield context, recorder
    finally:
        context.close()


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    tag: str


def operations(stack: LiveStack) -> list[Operation]:
    schema = httpx.get(f"{stack.api_url}/openapi.json", timeout=10).json()
    return [
        Operation(method, path, spec["operationId"], spec["tags"][0])
        for path, item in schema["paths"].items()
        for method, spec in item.items()
    ]


def assert_stayed_local(recorder: Recorder) -> None:
    assert recorder.refused == []
    assert [url for url in recorder.requested if not recorder.local(url)] == []
    assert f"{recorder.origin}/openapi.json" in recorder.requested


def open_page(context: BrowserContext, url: str) -> tuple[Page, ConsoleErrors]:
    page = context.new_page()
    errors = ConsoleErrors(page)
    reply = page.goto(url)
    assert reply is not None
    assert reply.status == 200
    return page, errors


def test_swagger_ui_renders_every_operation_offline(
    stack: LiveStack, offline: tuple[BrowserContext, Recorder]
) -> None:
    context, recorder = offline
    expected = operations(stack)
    assert ("post", "/tts/call") in {(op.method, op.path) for op in expected}
    page, errors = open_page(context, f"{stack.api_url}/docs")
    blocks = page.locator(".opblock")
    expect(blocks).to_have_count(len(expected), timeout=RENDER_MS)
    for op in expected:
        block = page.locator(f".opblock-{op.method}").filter(
            has=page.locator(f'.opblock-summary-path[data-path="{op.path}"]')
        )
        expect(block).to_have_count(1)
    # An operation opens with its request body schema, from the local schema.
    page.locator('.opblock-summary-path[data-path="/tts/call"]').click()
    expect(page.locator(".opblock-post .opblock-body")).to_contain_text("phone_number")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("tts-queue")
    assert errors.errors == []
    assert_stayed_local(recorder)
    assert f"{stack.api_url}/docs-assets/swagger-ui-bundle.js" in recorder.requested


def test_redoc_renders_every_operation_offline(
    stack: LiveStack, offline: tuple[BrowserContext, Recorder]
) -> None:
    context, recorder = offline
    expected = operations(stack)
    page, errors = open_page(context, f"{stack.api_url}/redoc")
    # ReDoc gives each operation a section under its tag, showing its method and path.
    sections = page.locator('[data-section-id*="/operation/"]')
    expect(sections).to_have_count(len(expected), timeout=RENDER_MS)
    for op in expected:
        section = page.locator(f'[data-section-id="tag/{op.tag}/operation/{op.operation_id}"]')
        expect(section).to_contain_text(op.path)
        expect(section.locator(f".http-verb.{op.method}").first).to_be_attached()
    expect(page.locator("h1").first).to_contain_text("tts-queue")
    assert errors.errors == []
    assert_stayed_local(recorder)
    assert f"{stack.api_url}/docs-assets/redoc.standalone.js" in recorder.requested


def test_the_docs_need_no_key_but_the_api_still_does(stack: LiveStack) -> None:
    for path in ("/docs", "/redoc", "/openapi.json", "/docs-assets/swagger-ui.css"):
        assert httpx.get(stack.api_url + path, timeout=10).status_code == 200, path
    assert httpx.get(f"{stack.api_url}/queue/stats", timeout=10).status_code == 401
    assert httpx.get(f"{stack.api_url}/docs-assets/nope.js", timeout=10).status_code == 404


def test_the_recorder_catches_a_page_that_reaches_out(
    stack: LiveStack, offline: tuple[BrowserContext, Recorder]
) -> None:
    """What the two tests above rely on: a request elsewhere is recorded and never sent."""
    context, recorder = offline
    page, _ = open_page(context, f"{stack.api_url}/openapi.json")
    page.set_content('<img src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/favicon.png">')
    page.wait_for_load_state("load")
    assert recorder.refused == ["https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/favicon.png"]
