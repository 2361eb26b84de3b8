"""The dashboard's Campaigns view in a real browser (Debian's chromium, headless): a CSV checked
(preview, refused rows by line), started, paused, resumed, followed live to the end, its
results downloaded; in English and Spanish. API, dashboard and a worker are real servers."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.live_stack import ConsoleErrors, LiveStack, chromium, wait_for_snapshot
from ttsqueue.config import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

# Where to save a picture of the view (docs/campaigns-dashboard.png is made this way).
SCREENSHOT = os.environ.get("TTSQ_CAMPAIGNS_SCREENSHOT")


def csv_file(rows: int) -> bytes:
    lines = ["\ufeffphone_number;Nombre;Fecha"]
    lines += [f'30050{200 + i:05d};"Cliente {i}, S.A.";lunes' for i in range(rows)]
    lines.insert(3, "12345;Nadie;nunca")  # line 4: not a valid number
    return ("\n".join(lines) + "\n").encode("utf-8")


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


def test_campaign_from_upload_to_results(
    settings: Settings, broker: Any, redis_client: Any, browser: Browser, tmp_path: Path
) -> None:
    fast = settings.model_copy(update={"SIMULATOR_TIME_SCALE": 0.01})
    page: Page = browser.new_page(viewport={"width": 1280, "height": 1000}, locale="en-US")
    errors = ConsoleErrors(page)
    with LiveStack(fast, api=True, worker=True) as stack:
        page.goto(stack.dashboard_url)
        wait_for_snapshot(page)
        expect(page.locator("#campaigns-body")).to_contain_text("No campaign yet")
        page.set_input_files(
            "#c-file",
            {"name": "citas.csv", "mimeType": "text/csv", "buffer": csv_file(12)},
        )
        page.fill("#c-template", "Hola {nombre}, su cita es el {fecha}.")
        page.fill("#c-cpm", "60")
        page.click("#c-check")
        expect(page.locator("#c-result")).to_have_text("12 valid rows, 1 refused")
        expect(page.locator("#c-preview-body tr")).to_have_count(10)
        expect(page.locator("#c-preview-body tr").first).to_contain_text(
            "Hola Cliente 0, S.A., su cita es el lunes."
        )
        expect(page.locator("#c-errors-body tr.c-error")).to_have_count(1)
        expect(page.locator("#c-errors-body tr.c-error td").first).to_have_text("4")
        expect(page.locator("#campaigns-body tr.campaign")).to_have_count(0)

        page.click("#c-start")
        expect(page.locator("#c-result")).to_contain_text("Campaign created: 12 rows")
        row = page.locator("#campaigns-body tr.campaign")
        expect(row).to_have_count(1)
        expect(row).to_have_attribute("data-status", "running")
        expect(row.locator("td").first).to_contain_text("citas")
        # Progress is pushed: the first answered call shows up without a reload.
        expect(row.locator(".counts")).to_contain_text("answered", timeout=30_000)
        row.locator("button.c-pause").click()
        expect(row).to_have_attribute("data-status", "paused")
        expect(row.locator(".st")).to_have_text("paused")
        done_when_paused = int(row.get_attribute("data-done") or "0")
        assert done_when_paused < 12

        page.click("#lang")
        expect(page.locator("#campaigns-panel h2")).to_have_text("Campañas")
        expect(row.locator(".st")).to_have_text("en pausa")
        expect(row.locator("button.c-resume")).to_have_text("Reanudar")
        if SCREENSHOT:
            page.add_style_tag(content="header.top { position: static; }")
            page.locator("#campaigns-panel").screenshot(path=SCREENSHOT)
        page.click("#lang")

        row.locator("button.c-resume").click()
        expect(row).to_have_attribute("data-status", "running")
        expect(row).to_have_attribute("data-status", "completed", timeout=60_000)
        expect(row.locator(".c-done")).to_have_text("12 / 12")
        expect(row.locator("button")).to_have_count(0)

        href = row.locator("a.c-results").get_attribute("href")
        assert href is not None
        reply = httpx.get(f"{stack.dashboard_url}{href}", timeout=10)
        assert reply.status_code == 200
        assert "attachment" in reply.headers["content-disposition"]
        lines = list(csv.DictReader(io.StringIO(reply.content.decode("utf-8-sig"))))
        assert len(lines) == 12
        assert {line["status"] for line in lines} == {"completed"}
        assert lines[0]["line"] == "2"
        assert lines[2]["line"] == "5"  # line 4 was refused
    assert errors.errors == []


def test_campaign_form_asks_for_a_key_and_detects_machines(
    settings: Settings, broker: Any, redis_client: Any, browser: Browser
) -> None:
    fast = settings.model_copy(update={"SIMULATOR_TIME_SCALE": 0.01, "CALL_MAX_RETRIES": 0})
    page: Page = browser.new_page(viewport={"width": 1280, "height": 1000}, locale="en-US")
    errors = ConsoleErrors(page)
    # Simulator: ...0004 presses 1, ...0005 is an answering machine, ...0006 presses nothing.
    rows = b"phone_number,nombre\n3005050004,Ana\n3005050005,Luis\n3005050006,Eva\n"
    with LiveStack(fast, api=True, worker=True) as stack:
        page.goto(stack.dashboard_url)
        wait_for_snapshot(page)
        expect(page.locator("#c-amd option[value=hangup]")).to_have_text("hang up")
        page.click("#lang")
        expect(page.locator("label:has(#c-confirm) span")).to_have_text(
            "Pedir una tecla (1 confirma, 2 repite)"
        )
        expect(page.locator("#c-amd option[value=hangup]")).to_have_text("colgar")
        page.set_input_files(
            "#c-file", {"name": "avisos.csv", "mimeType": "text/csv", "buffer": rows}
        )
        page.fill("#c-template", "Hola {nombre}, mañana hay corte de agua.")
        page.check("#c-confirm")
        page.select_option("#c-amd", "hangup")
        page.click("#c-start")
        row = page.locator("#campaigns-body tr.campaign")
        expect(row).to_have_count(1)
        expect(row).to_have_attribute("data-status", "completed", timeout=60_000)
        for label in ("confirmada 1", "sin confirmar 1", "contestador 1"):
            expect(row.locator(".counts")).to_contain_text(label)
        [campaign] = httpx.get(f"{stack.api_url}/campaigns", timeout=10).json()["campaigns"]
        assert campaign["machine_detection"] == "hangup"
        assert campaign["confirm"]["prompt"].startswith("Para confirmar, presione 1.")
    assert errors.errors == []
