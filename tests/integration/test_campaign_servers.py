"""With ASTERISK_SERVERS, a campaign row whose number no server calls is refused on its row at
creation, as a single request is, instead of becoming a job that fails when released."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import make_settings
from ttsqueue.asterisk_servers import AsteriskServer
from ttsqueue.config import DialerName, Settings

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    colombia = AsteriskServer(
        name="pbx-co", ami_host="127.0.0.1", ami_user="tts", prefixes=("+57",)
    )
    return make_settings(tmp_path, DIALER=DialerName.SIMULATOR).model_copy(
        update={"ASTERISK_SERVERS": [colombia]}
    )


ROWS = [
    {"phone_number": "3005050101", "nombre": "Ana"},
    {"phone_number": "+34 600 000 000", "nombre": "Luis"},  # Spain: no server calls it
    {"phone_number": "+1 212 555 0100", "nombre": "Eva"},  # United States: neither
]


async def test_rows_no_server_calls_are_errors_on_their_row(api: httpx.AsyncClient) -> None:
    fields = {"name": "Recordatorios", "template": "Hola {nombre}.", "rows": ROWS}
    dry = await api.post("/campaigns", json={**fields, "dry_run": True})
    assert dry.status_code == 200, dry.text
    assert (dry.json()["valid"], dry.json()["invalid"]) == (1, 2)
    errors = dry.json()["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(1, "phone_number"), (2, "phone_number")]
    assert "+34600000000: no Asterisk server" in errors[0]["message"]

    created = await api.post("/campaigns", json={**fields, "paused": True})
    assert created.status_code == 201, created.text
    assert created.json()["campaign"]["rows"] == {"total": 1, "invalid": 2, "released": 0}
