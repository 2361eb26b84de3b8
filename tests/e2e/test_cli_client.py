"""`ttsqueue jobs`, `ttsqueue status` and their exit codes, run as a script would run them: the
installed command in a subprocess, against the real API on a free port (real RabbitMQ and
Redis, no worker, so submitted jobs stay where the test puts them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_settings
from tests.fuzz.live_api import serve_api
from tests.ports import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

TTSQUEUE = Path(sys.executable).with_name("ttsqueue")
KEY = "cli-test-key"
HIGH, NORMAL = 3, 4


@dataclass
class LiveApi:
    url: str
    tmp: Path
    high: list[str]
    normal: list[str]
    canceled: str

    def cli(self, *args: str, key: str | None = KEY, url: str | None = None) -> Result:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TTSQ_")}
        env.update(TTSQ_VAR_DIR=str(self.tmp / "var"), COLUMNS="200", API_KEYS="")
        if key is not None:
            env["TTSQ_API_KEY"] = key
        done = subprocess.run(
            [str(TTSQUEUE), *args, "--api-url", url or self.url],
            cwd=self.tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    @property
    def newest_first(self) -> list[str]:
        return [*reversed(self.normal), *reversed(self.high)]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def __str__(self) -> str:
        return f"exit {self.code}\n{self.out}\n{self.err}"


def submit(client: httpx.Client, priority: str) -> str:
    body = {"text": "Recordatorio de cita", "phone_number": "3005050149", "priority": priority}
    reply = client.post("/tts/call", json=body)
    assert reply.status_code == 202, reply.text
    # Jobs created in the same millisecond are listed in id order: keep them apart in time.
    time.sleep(0.005)
    return str(reply.json()["job_id"])


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    tmp = tmp_path_factory.mktemp("cli")
    settings = make_settings(tmp, API_KEYS=KEY, LOG_LEVEL="ERROR")
    with serve_api(settings) as url:
        with httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=30) as client:
            high = [submit(client, "high") for _ in range(HIGH)]
            normal = [submit(client, "normal") for _ in range(NORMAL)]
            canceled = normal[1]
            assert client.delete(f"/tts/call/{canceled}").status_code == 200
        yield LiveApi(url, tmp, high, normal, canceled)


def test_jobs_json_pages_through_every_job_newest_first(api: LiveApi) -> None:
    seen: list[str] = []
    cursor: list[str] = []
    for _ in range(10):
        page = api.cli("jobs", "--json", "--limit", "3", *cursor)
        assert page.code == 0, page
        body = page.json()
        assert body["success"] is True
        assert len(body["jobs"]) <= 3
        seen += [job["job_id"] for job in body["jobs"]]
        if body["next_cursor"] is None:
            break
        cursor = ["--cursor", str(body["next_cursor"])]
    assert seen == api.newest_first


def test_jobs_filters_by_status_and_priority(api: LiveApi) -> None:
    high = api.cli("jobs", "--json", "--priority", "high")
    assert high.code == 0, high
    assert [job["job_id"] for job in high.json()["jobs"]] == list(reversed(api.high))
    assert {job["priority"] for job in high.json()["jobs"]} == {"high"}
    canceled = api.cli("jobs", "--json", "--status", "canceled")
    assert canceled.code == 0, canceled
    assert [job["job_id"] for job in canceled.json()["jobs"]] == [api.canceled]
    both = api.cli("jobs", "--json", "--status", "queued", "--priority", "normal")
    assert both.code == 0, both
    queued_normal = [job for job in reversed(api.normal) if job != api.canceled]
    assert [job["job_id"] for job in both.json()["jobs"]] == queued_normal
    none = api.cli("jobs", "--status", "canceled", "--priority", "high")
    assert (none.code, none.out.strip()) == (0, "no jobs"), none


def test_jobs_table_names_the_next_page(api: LiveApi) -> None:
    first = api.cli("jobs", "--limit", "2", "--priority", "high")
    assert first.code == 0, first
    newest = list(reversed(api.high))
    assert newest[0] in first.out
    assert newest[1] in first.out
    assert newest[2] not in first.out
    hint = [line for line in first.out.splitlines() if line.startswith("more: ")]
    assert len(hint) == 1, first
    command = hint[0].removeprefix("more: ttsqueue ").split()
    assert command[:-1] == ["jobs", "--priority", "high", "--limit", "2", "--cursor"]
    rest = api.cli(*command)
    assert rest.code == 0, rest
    assert newest[2] in rest.out
    assert "more: " not in rest.out


def test_jobs_exit_codes(api: LiveApi) -> None:
    for wrong in (["--status", "ringing"], ["--priority", "urgent"], ["--limit", "0"]):
        refused = api.cli("jobs", *wrong)
        assert refused.code == 2, (wrong, refused)
    bad_cursor = api.cli("jobs", "--cursor", "yesterday")
    assert bad_cursor.code == 2, bad_cursor
    assert "cursor" in bad_cursor.err
    unauthorized = api.cli("jobs", key="not-the-key")
    assert unauthorized.code == 2, unauthorized
    assert "401" in unauthorized.err
    down = api.cli("jobs", url=f"http://127.0.0.1:{free_port()}")
    assert down.code == 3, down
    assert "cannot reach the API" in down.err


def test_status_json_overview_and_its_exit_codes(api: LiveApi) -> None:
    healthy = api.cli("status", "--json")
    assert healthy.code == 0, healthy
    report = healthy.json()
    assert report["success"] is True
    assert report["processes"] == []
    assert report["health"]["http_status"] == 200
    assert report["health"]["status"] == "healthy"
    assert report["statistics"]["jobs"]["total"] == HIGH + NORMAL
    assert report["error"] is None

    down = api.cli("status", "--json", url=f"http://127.0.0.1:{free_port()}")
    assert down.code == 1, down
    report = down.json()
    assert (report["success"], report["health"], report["statistics"]) == (False, None, None)
    assert "cannot reach the API" in report["error"]


def test_status_of_one_job_and_its_exit_codes(api: LiveApi) -> None:
    found = api.cli("status", api.canceled, "--json")
    assert found.code == 0, found
    record = found.json()
    assert (record["job_id"], record["status"]) == (api.canceled, "canceled")
    assert [step["status"] for step in record["history"]] == ["queued", "canceled"]
    unknown = api.cli("status", str(uuid.uuid4()))
    assert unknown.code == 2, unknown
    assert "job_not_found" in unknown.err
