"""Campaigns end to end (API -> Redis -> the workers' pacer -> RabbitMQ -> worker -> simulator):
rows from JSON or an uploaded CSV, per-row errors by line, pacing, pause / resume / cancel,
progress, results CSV, and a high-priority call that overtakes a running campaign."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_settings
from tests.in_process import running_worker, until
from ttsqueue.config import Settings

pytestmark = pytest.mark.timeout(180)

TEMPLATE = "Hola {nombre}, su cita es el {fecha}."


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, SIMULATOR_TIME_SCALE=0.01, WORKER_CONCURRENCY=4)


def number(i: int) -> str:
    return f"30050{i:05d}"


def rows(count: int, first: int = 100) -> list[dict[str, str]]:
    return [
        {"phone_number": number(first + i), "nombre": f"Ana {i}", "fecha": "lunes"}
        for i in range(count)
    ]


async def create(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    reply = await api.post("/campaigns", json={"name": "Citas", "template": TEMPLATE, **fields})
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


def results(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))


async def test_json_campaign_runs_to_completion_with_results(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    items = rows(6)
    items[2]["phone_number"] = "12"  # invalid
    items[4]["phone_number"] = number(1)  # a busy number: retried then failed
    created = await create(api, rows=items, max_retries=0, calls_per_minute=240)
    assert created["valid"] == 5
    assert created["invalid"] == 1
    assert created["errors"] == [
        {"index": 2, "field": "phone_number", "message": created["errors"][0]["message"]}
    ]
    cid = created["campaign"]["campaign_id"]
    assert created["campaign"]["status"] == "running"
    async with running_worker(settings):
        done = await until(api, f"/campaigns/{cid}", lambda b: b["status"] == "completed")
    assert done["counts"]["by_status"] == {"completed": 4, "failed": 1}
    assert done["counts"]["by_outcome"] == {"answered": 4, "busy": 1}
    assert done["progress"] == {"done": 5, "total": 5, "percent": 100.0}
    assert done["eta_s"] == 0.0
    job = (await api.get(f"/tts/status/{done['links']['self'].split('/')[-1]}")).status_code
    assert job == 404  # a campaign id is not a job id
    reply = await api.get(f"/campaigns/{cid}/results.csv")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/csv")
    lines = results(reply.text)
    assert [line["line"] for line in lines] == ["0", "1", "3", "4", "5"]
    assert [line["status"] for line in lines] == [
        "completed",
        "completed",
        "completed",
        "failed",
        "completed",
    ]
    assert lines[3]["outcome"] == "busy"
    assert lines[3]["attempts"] == "1"
    assert all(line["completed_at"] for line in lines)
    status = (await api.get(f"/tts/status/{lines[0]['job_id']}")).json()
    assert status["text"] == "Hola Ana 0, su cita es el lunes."
    assert status["metadata"] == {"campaign": "Citas", "campaign_line": 0}
    assert status["campaign_id"] == cid
    listing = (await api.get("/campaigns")).json()["campaigns"]
    assert [c["campaign_id"] for c in listing] == [cid]


async def test_csv_upload_edge_cases_are_reported_by_line(api: httpx.AsyncClient) -> None:
    good = ['"3005050101";"Pérez, Ana";"lunes 10:00"', '3005050102;"Luis ""Lucho""";martes']
    bad = [f"12{i};Nombre;lunes" for i in range(5000)]
    text = "\ufeffphone_number;Nombre;Fecha\n"
    text += "\n".join(good[:1] + bad + ["", good[1], "3005050103;;miércoles"]) + "\n"
    reply = await api.post(
        "/campaigns",
        data={"name": "Cobranza", "template": TEMPLATE, "dry_run": "true"},
        files={"file": ("lista.csv", text.encode("utf-8"), "text/csv")},
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["separator"] == ";"
    assert body["valid"] == 2
    assert body["invalid"] == 5001
    assert body["errors"][0]["line"] == 3
    assert body["errors"][4999]["line"] == 5002
    last = body["errors"][-1]
    assert (last["line"], last["field"]) == (5005, "nombre")
    assert [p["text"] for p in body["preview"]] == [
        "Hola Pérez, Ana, su cita es el lunes 10:00.",
        'Hola Luis "Lucho", su cita es el martes.',
    ]
    assert [p["line"] for p in body["preview"]] == [2, 5004]
    # A dry run creates nothing.
    assert (await api.get("/campaigns")).json()["campaigns"] == []
    created = await api.post(
        "/campaigns",
        data={"name": "Cobranza", "template": TEMPLATE, "paused": "true"},
        files={"file": ("lista.csv", text.encode("utf-8"), "text/csv")},
    )
    assert created.status_code == 201, created.text
    cid = created.json()["campaign"]["campaign_id"]
    assert created.json()["campaign"]["rows"] == {"total": 2, "invalid": 5001, "released": 0}
    shown = (await api.get(f"/campaigns/{cid}", params={"errors": "true"})).json()
    assert len(shown["errors"]) == 5001
    assert shown["errors"][0] == body["errors"][0]
    assert "errors" not in (await api.get(f"/campaigns/{cid}")).json()
    lines = results((await api.get(f"/campaigns/{cid}/results.csv")).text)
    assert [(line["line"], line["status"]) for line in lines] == [
        ("2", "pending"),
        ("5004", "pending"),
    ]


async def test_campaign_refusals_name_the_field(api: httpx.AsyncClient) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"rows": rows(1), "max_concurrent_calls": 1000}, "max_concurrent_calls"),
        ({"rows": rows(1), "calls_per_minute": 100000}, "calls_per_minute"),
        ({"rows": rows(1), "calling_windows": "lun 7-19"}, "calling_windows"),
        ({"rows": rows(1), "template": "Hola {apellido}"}, "template"),
        ({"rows": rows(1), "template": "Hola {"}, "template"),
        ({"rows": rows(1), "priority": "high"}, "priority"),
        ({}, "rows"),
    ]
    for fields, field in cases:
        reply = await api.post("/campaigns", json={"name": "x", "template": TEMPLATE} | fields)
        assert reply.status_code == 422, (fields, reply.text)
        assert field in reply.json()["error"], (field, reply.json())
    none_valid = await api.post(
        "/campaigns", json={"name": "x", "template": "Hola", "rows": [{"phone_number": "1"}]}
    )
    assert none_valid.status_code == 422
    assert none_valid.json()["code"] == "no_valid_rows"
    assert (
        await api.post("/campaigns", content=b"x", headers={"content-type": "text/xml"})
    ).status_code == 415
    assert (await api.get("/campaigns/not-an-id")).status_code == 404


async def test_listed_numbers_are_left_out_of_a_campaign(api: httpx.AsyncClient) -> None:
    assert (await api.put(f"/dnc/{number(101)}")).status_code in (200, 201)
    created = await create(api, rows=rows(3), paused=True)
    assert created["valid"] == 2
    assert created["errors"][0]["index"] == 1
    assert "do-not-call" in created["errors"][0]["message"]
    assert created["campaign"]["status"] == "paused"


async def test_pause_resume_and_a_high_priority_call_overtaking(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    created = await create(api, rows=rows(30), calls_per_minute=120, max_concurrent_calls=2)
    cid = created["campaign"]["campaign_id"]
    path = f"/campaigns/{cid}"
    async with running_worker(settings):
        running = await until(
            api, path, lambda b: b["counts"]["by_status"].get("completed", 0) >= 2
        )
        assert running["eta_s"] is not None
        assert running["eta_s"] > 0
        urgent = await api.post(
            "/tts/call", json={"text": "Alerta", "phone_number": "3005059999", "priority": "high"}
        )
        assert urgent.status_code == 202
        await until(
            api,
            f"/tts/status/{urgent.json()['job_id']}",
            lambda b: b["status"] == "completed",
        )
        overtaken = (await api.get(path)).json()
        assert overtaken["counts"]["by_status"].get("pending", 0) > 0
        paused = await api.post(f"{path}/pause")
        assert paused.status_code == 200
        assert paused.json()["status"] == "paused"
        assert (await api.post(f"{path}/pause")).status_code == 409
        settled = await until(
            api,
            path,
            lambda b: not {"queued", "processing", "calling"} & set(b["counts"]["by_status"]),
        )
        released = settled["rows"]["released"]
        # While paused, a whole call goes through and the campaign releases nothing.
        other = await api.post("/tts/call", json={"text": "Hola", "phone_number": "3005059998"})
        assert other.status_code == 202
        await until(
            api, f"/tts/status/{other.json()['job_id']}", lambda b: b["status"] == "completed"
        )
        assert (await api.get(path)).json()["rows"]["released"] == released < 30
        assert (await api.post(f"{path}/resume")).status_code == 200
        done = await until(api, path, lambda b: b["status"] == "completed", timeout=120)
    assert done["counts"]["by_status"] == {"completed": 30}
    assert done["rows"]["released"] == 30


async def test_cancel_leaves_unreleased_rows_uncalled(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    created = await create(api, rows=rows(10), calls_per_minute=60)
    cid = created["campaign"]["campaign_id"]
    path = f"/campaigns/{cid}"
    async with running_worker(settings):
        await until(api, path, lambda b: b["rows"]["released"] >= 1)
        canceled = await api.post(f"{path}/cancel")
        assert canceled.status_code == 200
        assert canceled.json()["status"] == "canceled"
        assert (await api.post(f"{path}/resume")).status_code == 409
        done = await until(
            api,
            path,
            lambda b: (
                not {"queued", "processing", "calling", "scheduled"} & set(b["counts"]["by_status"])
            ),
        )
    released = done["rows"]["released"]
    assert released < 10
    assert done["counts"]["by_status"]["canceled"] >= 10 - released
    assert done["finished_at"] is not None
    lines = results((await api.get(f"{path}/results.csv")).text)
    assert len(lines) == 10
    assert [line["status"] for line in lines[released:]] == ["canceled"] * (10 - released)
    assert all(line["job_id"] == "" for line in lines[released:])


async def test_pacing_bounds_concurrency_and_rate(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    """Never more than max_concurrent_calls of its jobs at once, never faster than
    calls_per_minute, though the worker could take more (concurrency 4, slower calls)."""
    slower = settings.model_copy(update={"SIMULATOR_TIME_SCALE": 0.1})
    concurrent = await create(api, rows=rows(8), max_concurrent_calls=2)
    path = f"/campaigns/{concurrent['campaign']['campaign_id']}"
    busiest = 0
    async with running_worker(slower):
        deadline = time.monotonic() + 120
        while True:
            body = (await api.get(path)).json()
            by_status = body["counts"]["by_status"]
            busiest = max(
                busiest, sum(by_status.get(s, 0) for s in ("queued", "processing", "calling"))
            )
            if body["status"] == "completed" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        assert body["status"] == "completed", body
        assert 1 <= busiest <= 2
        paced = await create(api, rows=rows(5, first=300), calls_per_minute=120)
        started = time.monotonic()
        await until(
            api,
            f"/campaigns/{paced['campaign']['campaign_id']}",
            lambda b: b["status"] == "completed",
        )
    # Five releases 0.5 s apart: the last one at least 2 s after the first.
    assert time.monotonic() - started >= 2.0


async def test_a_campaign_that_listens_counts_confirmed_unconfirmed_and_machines(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    # Simulator: ...0004 presses 1, ...0005 is an answering machine, ...0006 presses nothing.
    items = [{"phone_number": number(n), "nombre": f"Ana {n}", "fecha": "lunes"} for n in (4, 5, 6)]
    created = await create(
        api,
        rows=items,
        language="es",
        confirm={"digits": "1", "timeout_s": 1, "max_repeats": 0},
        machine_detection="hangup",
        max_retries=0,
        calls_per_minute=240,
    )
    campaign = created["campaign"]
    assert campaign["machine_detection"] == "hangup"
    assert campaign["retry_unconfirmed"] is False
    assert campaign["confirm"]["digits"] == "1"
    assert campaign["confirm"]["prompt"] == (
        "Para confirmar, presione 1. Para escuchar el mensaje de nuevo, presione 2."
    )  # the default of the campaign's language
    cid = campaign["campaign_id"]
    async with running_worker(settings):
        done = await until(api, f"/campaigns/{cid}", lambda b: b["status"] == "completed")
    assert done["counts"]["by_outcome"] == {"confirmed": 1, "machine": 1, "not_confirmed": 1}
    assert done["counts"]["confirmed"] == 1
    lines = results((await api.get(f"/campaigns/{cid}/results.csv")).text)
    shown = {line["phone_number"][-4:]: line for line in lines}
    assert (shown["0004"]["outcome"], shown["0004"]["confirmed"]) == ("confirmed", "true")
    assert shown["0004"]["digits"] == "1"
    assert (shown["0006"]["outcome"], shown["0006"]["confirmed"]) == ("not_confirmed", "false")
    assert shown["0006"]["digits"] == ""
    assert (shown["0005"]["outcome"], shown["0005"]["confirmed"]) == ("machine", "")
    job = (await api.get(f"/tts/status/{shown['0004']['job_id']}")).json()
    assert job["machine_detection"] == "hangup"
    assert job["confirm"]["prompt"] == campaign["confirm"]["prompt"]


async def test_campaign_confirm_refusals_name_the_field_like_single_calls(
    api: httpx.AsyncClient,
) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"confirm": {"digits": "a"}}, "confirm.digits"),
        ({"confirm": {"digits": "1", "repeat_digit": "1"}}, "confirm.repeat_digit"),
        ({"confirm": {"timeout_s": 99}}, "confirm.timeout_s"),
        ({"confirm": {"prompt": "  "}}, "confirm.prompt"),
        ({"confirm": {"digits": "1"}, "language": "fr", "engine": "espeak"}, "confirm.prompt"),
        ({"confirm": {"sound": "x"}}, "confirm.sound"),
        ({"machine_detection": "maybe"}, "machine_detection"),
        ({"retry_unconfirmed": True}, "retry_unconfirmed"),
    ]
    for fields, field in cases:
        body = {"name": "x", "template": TEMPLATE, "rows": rows(1)} | fields
        for path in ("/campaigns", "/tts/call"):
            if path == "/tts/call":
                body = {"text": "Hola", "phone_number": number(1)} | fields
            reply = await api.post(path, json=body)
            assert reply.status_code == 422, (path, fields, reply.text)
            assert field in reply.json()["error"], (path, field, reply.json())
    # A CSV upload carries `confirm` as JSON text in its form field, checked the same way.
    csv_text = f"phone_number,nombre,fecha\n{number(4)},Ana,lunes\n".encode()
    for confirm, field in (("{not json", "confirm"), ('{"digits": "x"}', "confirm.digits")):
        reply = await api.post(
            "/campaigns",
            data={"name": "x", "template": TEMPLATE, "confirm": confirm},
            files={"file": ("l.csv", csv_text, "text/csv")},
        )
        assert reply.status_code == 422, reply.text
        assert field in reply.json()["error"], reply.json()
    reply = await api.post(
        "/campaigns",
        data={
            "name": "x",
            "template": TEMPLATE,
            "confirm": '{"digits": "1"}',
            "machine_detection": "message",
            "retry_unconfirmed": "true",
            "language": "en",
            "paused": "true",
        },
        files={"file": ("l.csv", csv_text, "text/csv")},
    )
    assert reply.status_code == 201, reply.text
    campaign = reply.json()["campaign"]
    assert campaign["confirm"]["prompt"].startswith("To confirm, press 1.")
    assert (campaign["machine_detection"], campaign["retry_unconfirmed"]) == ("message", True)
