"""`ttsqueue dnc add|remove|import|list`, run as an operator runs them: the installed command
in a subprocess against the real API on a free port (real RabbitMQ and Redis)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_settings
from tests.fuzz.live_api import serve_api
from tests.ports import free_port
from ttsqueue.api.actor import key_label

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

TTSQUEUE = Path(sys.executable).with_name("ttsqueue")
KEY = "dnc-cli-key"


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
class LiveApi:
    url: str
    tmp: Path

    def cli(self, *args: str, key: str = KEY, url: str | None = None, stdin: str = "") -> Result:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TTSQ_")}
        env.update(TTSQ_VAR_DIR=str(self.tmp / "var"), COLUMNS="200", API_KEYS="", TTSQ_API_KEY=key)
        done = subprocess.run(
            [str(TTSQUEUE), "dnc", *args, "--api-url", url or self.url],
            cwd=self.tmp,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[LiveApi]:
    settings = make_settings(tmp_path, API_KEYS=KEY, LOG_LEVEL="ERROR")
    with serve_api(settings) as url:
        yield LiveApi(url, tmp_path)


def test_add_list_remove(api: LiveApi) -> None:
    added = api.cli("add", "+57 300 505 0149")
    assert added.code == 0, added
    assert "+573005050149 listed" in added.out
    again = api.cli("add", "3005050149", "--json")
    assert again.code == 0, again
    assert (again.json()["created"], again.json()["added_by"]) == (False, key_label(KEY))
    listed = api.cli("list")
    assert listed.code == 0, listed
    assert "+573005050149" in listed.out
    assert "1 numbers on the list" in listed.out
    removed = api.cli("remove", "(300) 505-0149")
    assert removed.code == 0, removed
    assert "unlisted" in removed.out
    not_listed = api.cli("remove", "3005050149")
    assert not_listed.code == 2, not_listed
    assert "not_listed" in not_listed.err
    invalid = api.cli("add", "3005050149;66606660")
    assert invalid.code == 2, invalid
    assert "invalid_phone_number" in invalid.err


def test_import_a_spreadsheet_and_page_through_it(api: LiveApi) -> None:
    sheet = api.tmp / "no-llamar.csv"
    rows = ["Nombre;Teléfono;phone_number"] + [f"P{n};x;300505{n:04d}" for n in range(30)]
    rows += ["Mal;x;12", 'Roto;x;"3005050199"z']
    sheet.write_text("\ufeff" + "\r\n".join(rows) + "\r\n", encoding="utf-8")
    imported = api.cli("import", str(sheet))
    assert imported.code == 0, imported
    assert "30 valid of 32: 30 listed" in imported.out
    assert "line 32 ('12')" in imported.out
    assert "line 33" in imported.out
    pages: list[str] = []
    cursor: list[str] = []
    while True:
        page = api.cli("list", "--limit", "8", "--json", *cursor)
        assert page.code == 0, page
        body = page.json()
        pages += [entry["phone_number"] for entry in body["numbers"]]
        if body["next_cursor"] is None:
            break
        cursor = ["--cursor", body["next_cursor"]]
    assert pages == [f"+57300505{n:04d}" for n in range(30)]
    everything = api.cli("list", "--limit", "7", "--all")
    assert everything.code == 0, everything
    assert everything.out.count("+57300505") == 30
    assert "more:" not in everything.out


def test_import_json_and_stdin(api: LiveApi) -> None:
    document = api.tmp / "dnc.json"
    document.write_text(json.dumps({"numbers": ["3005050149", "nope"]}))
    from_json = api.cli("import", str(document), "--json")
    assert from_json.code == 0, from_json
    body = from_json.json()
    assert (body["added"], body["invalid"], body["errors"][0]["index"]) == (1, 1, 1)
    from_stdin = api.cli("import", "-", stdin="3005050150\n3005050149\n")
    assert from_stdin.code == 0, from_stdin
    assert "1 listed, 1 already listed" in from_stdin.out


def test_import_refusals_and_exit_codes(api: LiveApi) -> None:
    nothing_valid = api.cli("import", "-", stdin="12\nabc\n")
    assert nothing_valid.code == 2, nothing_valid
    assert "no_valid_numbers" in nothing_valid.err
    missing = api.cli("import", str(api.tmp / "missing.csv"))
    assert missing.code == 2, missing
    assert "cannot read" in missing.err
    unauthorized = api.cli("list", key="wrong")
    assert unauthorized.code == 2, unauthorized
    assert "401" in unauthorized.err
    down = api.cli("list", url=f"http://127.0.0.1:{free_port()}")
    assert down.code == 3, down
    assert "cannot reach the API" in down.err
