"""`ttsqueue campaign create|status|pause|resume|cancel|results`, run as an operator runs them:
the installed command in a subprocess against the real API on a free port and a real worker
(real RabbitMQ and Redis, the simulator dialing)."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_settings
from tests.fuzz.live_api import serve_api
from ttsqueue.config import Settings
from ttsqueue.worker.main import serve

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

TTSQUEUE = Path(sys.executable).with_name("ttsqueue")


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def __str__(self) -> str:
        return f"exit {self.code}\n{self.out}\n{self.err}"


@dataclass
class Stack:
    url: str
    tmp: Path

    def cli(self, *args: str) -> Result:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TTSQ_")}
        env.update(TTSQ_VAR_DIR=str(self.tmp / "var"), COLUMNS="200", API_KEYS="")
        done = subprocess.run(
            [str(TTSQUEUE), "campaign", *args, "--api-url", self.url],
            cwd=self.tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)


@contextlib.contextmanager
def worker_thread(settings: Settings) -> Iterator[None]:
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(
        target=loop.run_until_complete, args=(serve(settings, stop),), name="campaign-worker"
    )
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(60)
        loop.close()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    settings = make_settings(tmp_path, LOG_LEVEL="ERROR", SIMULATOR_TIME_SCALE=0.01)
    with serve_api(settings) as url, worker_thread(settings):
        yield Stack(url, tmp_path)


def test_create_wait_status_results(stack: Stack) -> None:
    source = stack.tmp / "citas.csv"
    source.write_text(
        "\ufeffphone_number;Nombre;Fecha\n"
        "3005050101;Ana;lunes\n"
        '3005050102;"Luis; el de Cali";martes\n'
        "12;Nadie;nunca\n"
        "3005050103;Eva;jueves\n",
        encoding="utf-8",
    )
    created = stack.cli(
        "create",
        str(source),
        "--template",
        "Hola {nombre}, su cita es el {fecha}.",
        "--calls-per-minute",
        "240",
        "--wait",
    )
    assert created.code == 0, created
    assert "3 rows accepted" in created.out
    assert "line 4 (phone_number)" in created.out
    assert "3/3" in created.out
    assert "completed 3" in created.out
    listed = stack.cli("status", "--json")
    assert listed.code == 0, listed
    [campaign] = listed.json()
    assert campaign["name"] == "citas"
    assert campaign["status"] == "completed"
    cid = campaign["campaign_id"]
    shown = stack.cli("status", cid)
    assert shown.code == 0, shown
    assert "answered 3" in shown.out
    out = stack.tmp / "results.csv"
    results = stack.cli("results", cid, "-o", str(out))
    assert results.code == 0, results
    lines = list(csv.DictReader(io.StringIO(out.read_text("utf-8-sig"))))
    assert [(r["line"], r["status"], r["outcome"]) for r in lines] == [
        ("2", "completed", "answered"),
        ("3", "completed", "answered"),
        ("5", "completed", "answered"),
    ]
    refused = stack.cli("pause", cid)
    assert refused.code == 2, refused
    assert "completed" in refused.err


def test_paused_campaign_resumes_and_cancels(stack: Stack) -> None:
    source = stack.tmp / "lista.csv"
    source.write_text(
        "phone_number,nombre\n" + "".join(f"30050{i:05d},N{i}\n" for i in range(200, 210)),
        encoding="utf-8",
    )
    created = stack.cli(
        "create", str(source), "-t", "Hola {nombre}", "--paused", "--calls-per-minute", "6"
    )
    assert created.code == 0, created
    assert "paused" in created.out
    cid = stack.cli("status", "--json").json()[0]["campaign_id"]
    resumed = stack.cli("resume", cid)
    assert resumed.code == 0, resumed
    assert "running" in resumed.out
    canceled = stack.cli("cancel", cid, "--json")
    assert canceled.code == 0, canceled
    assert canceled.json()["status"] == "canceled"
    assert stack.cli("resume", cid).code == 2


def test_create_a_campaign_that_asks_for_a_key(stack: Stack) -> None:
    source = stack.tmp / "avisos.csv"
    source.write_text(
        "phone_number,nombre\n3005050004,Ana\n3005050005,Luis\n3005050006,Eva\n", "utf-8"
    )
    created = stack.cli(
        "create",
        str(source),
        "--template",
        "Hola {nombre}, mañana hay corte de agua.",
        "--confirm-digits",
        "1",
        "--machine-detection",
        "hangup",
        "--calls-per-minute",
        "240",
        "--max-retries",
        "0",
        "--json",
    )
    assert created.code == 0, created
    campaign = created.json()["campaign"]
    assert campaign["confirm"]["digits"] == "1"
    assert campaign["machine_detection"] == "hangup"
    followed = stack.cli("status", campaign["campaign_id"], "--wait")
    assert followed.code == 0, followed
    final = stack.cli("status", campaign["campaign_id"], "--json").json()
    assert final["status"] == "completed"
    assert final["counts"]["by_outcome"] == {"confirmed": 1, "machine": 1, "not_confirmed": 1}
    assert final["counts"]["confirmed"] == 1
    bad = stack.cli("create", str(source), "-t", "Hola {nombre}", "--confirm-digits", "x")
    assert bad.code == 2, bad
    assert "confirm.digits" in bad.err
