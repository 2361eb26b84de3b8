"""The do-not-call routes (SPEC §13) on the real app, Redis and RabbitMQ: one number, pages,
bulk imports as JSON, CSV and multipart uploads, the audit trail, auth and error shapes."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.hostile import INJECTIONS
from ttsqueue.api.actor import key_label
from ttsqueue.config import Settings
from ttsqueue.store.dnc import DncList
from ttsqueue.store.keys import Keys

pytestmark = [pytest.mark.timeout(120), pytest.mark.settings(API_KEYS="dnc-key,other-key")]

KEY = {"X-API-Key": "dnc-key"}


@pytest.fixture
def api(api: httpx.AsyncClient) -> httpx.AsyncClient:
    """The shared in-process API, sending this module's key."""
    api.headers.update(KEY)
    return api


def assert_error(reply: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    body: dict[str, Any] = reply.json()
    assert body["success"] is False
    assert body["code"] == code
    assert body["error"]
    assert isinstance(body["details"], list)
    return body


async def test_put_lists_a_number_in_e164_once(api: httpx.AsyncClient) -> None:
    first = await api.put("/dnc/300 505 0149")
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["success"] is True
    assert (body["phone_number"], body["listed"], body["created"]) == ("+573005050149", True, True)
    assert body["added_by"] == key_label("dnc-key")
    assert body["via"] == "api"
    assert body["added_at"].endswith("Z")
    # The same number written another way is the same entry, unchanged.
    again = await api.put("/dnc/+573005050149")
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert again.json()["added_at"] == body["added_at"]
    state = (await api.get("/dnc/3005050149")).json()
    assert state["listed"] is True
    assert state["phone_number"] == "+573005050149"


async def test_delete_unlists_and_404_when_not_listed(api: httpx.AsyncClient) -> None:
    await api.put("/dnc/3005050149")
    removed = await api.delete("/dnc/(300) 505-0149")
    assert removed.status_code == 200
    assert removed.json()["listed"] is False
    assert (await api.get("/dnc/3005050149")).json()["listed"] is False
    assert_error(await api.delete("/dnc/3005050149"), 404, "not_listed")


async def test_invalid_and_hostile_numbers_get_422_naming_the_phone(api: httpx.AsyncClient) -> None:
    hostile = [f"3005050149{attack}" for attack in INJECTIONS]
    for raw in ["12", "abc", "3005050149;66606660", "٣٠٠٥٠٥٠١٤٩", *hostile]:
        for method in ("PUT", "GET", "DELETE"):
            reply = await api.request(method, "/dnc/" + quote(raw, safe=""))
            if reply.status_code == 404 and reply.json()["code"] == "not_found":
                continue  # a '/' in the input makes it another path
            body = assert_error(reply, 422, "invalid_phone_number")
            assert body["details"][0]["field"] == "phone"
    assert (await api.get("/dnc")).json()["total"] == 0


async def test_extensions_are_not_listed(api: httpx.AsyncClient) -> None:
    assert_error(await api.put("/dnc/1234"), 422, "invalid_phone_number")


async def test_every_route_needs_a_key(api: httpx.AsyncClient) -> None:
    for method, path in [
        ("GET", "/dnc"),
        ("GET", "/dnc/audit"),
        ("GET", "/dnc/3005050149"),
        ("PUT", "/dnc/3005050149"),
        ("DELETE", "/dnc/3005050149"),
        ("POST", "/dnc"),
    ]:
        reply = await api.request(method, path, headers={"X-API-Key": "wrong"})
        assert_error(reply, 401, "unauthorized")


async def test_pages_in_number_order_until_the_end(api: httpx.AsyncClient) -> None:
    numbers = [f"+5730050501{n:02d}" for n in range(25)]
    reply = await api.post("/dnc", json={"numbers": list(reversed(numbers))})
    assert reply.status_code == 200, reply.text
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/dnc", params=params)).json()
        assert page["total"] == 25
        seen += [entry["phone_number"] for entry in page["numbers"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert cursor.isdigit()
    assert seen == numbers
    assert_error(await api.get("/dnc", params={"cursor": "+57"}), 422, "validation_error")
    assert_error(await api.get("/dnc", params={"limit": 0}), 422, "validation_error")


async def test_json_import_reports_invalid_items_by_index(api: httpx.AsyncClient) -> None:
    await api.put("/dnc/3005050149")
    body = {"numbers": ["3005050149", "300 505 0150", 3005050151, "nope", True, "3005050150"]}
    reply = await api.post("/dnc", json=body)
    assert reply.status_code == 200, reply.text
    result = reply.json()
    assert result["received"] == 6
    assert (result["valid"], result["added"], result["already_listed"]) == (4, 2, 1)
    assert (result["duplicates"], result["invalid"]) == (1, 2)
    assert [e["index"] for e in result["errors"]] == [3, 4]
    assert result["errors_truncated"] is False
    listed = {e["phone_number"] for e in (await api.get("/dnc")).json()["numbers"]}
    assert listed == {"+573005050149", "+573005050150", "+573005050151"}
    entry = (await api.get("/dnc/3005050151")).json()
    assert (entry["via"], entry["added_by"]) == ("import", key_label("dnc-key"))


async def test_csv_import_with_bom_semicolons_and_bad_lines(api: httpx.AsyncClient) -> None:
    csv = (
        "\ufeffNombre;Teléfono;Phone Number\r\n"
        "Ana;x;300 505 0149\r\n"
        "\r\n"
        'Luis;"con ; y\r\nsalto";3005050150\r\n'
        "Eva;y;12\r\n"
        'Paco;z;"3005050151"x\r\n'
        "Sol;w;+1 212 555 1234\r\n"
    )
    reply = await api.post(
        "/dnc", content=csv.encode(), headers={"Content-Type": "text/csv; charset=utf-8"}
    )
    assert reply.status_code == 200, reply.text
    result = reply.json()
    assert (result["valid"], result["added"], result["invalid"]) == (3, 3, 2)
    assert [(e["line"], e["value"]) for e in result["errors"]] == [(6, "12"), (7, "")]
    total = (await api.get("/dnc")).json()
    assert {e["phone_number"] for e in total["numbers"]} == {
        "+573005050149",
        "+573005050150",
        "+12125551234",
    }


async def test_multipart_upload_of_a_plain_list(api: httpx.AsyncClient) -> None:
    files = {"file": ("dnc.csv", b"3005050149\n3005050150\n", "text/csv")}
    reply = await api.post("/dnc", files=files)
    assert reply.status_code == 200, reply.text
    assert reply.json()["added"] == 2
    assert_error(
        await api.post("/dnc", files={"other": ("x.csv", b"3005050149\n", "text/csv")}),
        422,
        "validation_error",
    )


async def test_import_refusals(api: httpx.AsyncClient) -> None:
    assert_error(await api.post("/dnc", json={"numbers": ["x", "12"]}), 422, "no_valid_numbers")
    assert_error(await api.post("/dnc", json={"numbers": [], "extra": 1}), 422, "validation_error")
    assert_error(await api.post("/dnc", json=["3005050149"]), 422, "validation_error")
    assert_error(
        await api.post("/dnc", content=b"{", headers={"Content-Type": "application/json"}),
        422,
        "validation_error",
    )
    assert_error(
        await api.post("/dnc", content=b"x", headers={"Content-Type": "image/png"}),
        415,
        "unsupported_media_type",
    )
    latin1 = "telefono\n3005050149\nJosé\n".encode("latin-1")
    body = assert_error(
        await api.post("/dnc", content=latin1, headers={"Content-Type": "text/csv"}),
        422,
        "validation_error",
    )
    assert "line 3" in body["error"]
    assert "UTF-8" in body["error"]


async def test_large_import_and_body_limit(api: httpx.AsyncClient, settings: Settings) -> None:
    numbers = "\n".join(f"+57300{n:07d}" for n in range(20_000)).encode()
    reply = await api.post("/dnc", content=numbers, headers={"Content-Type": "text/csv"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["added"] == 20_000
    assert (await api.get("/dnc", params={"limit": 1})).json()["total"] == 20_000
    huge = b"3005050149\n" * (17 * 1024 * 1024 // 11 + 1)
    too_big = await api.post("/dnc", content=huge, headers={"Content-Type": "text/csv"})
    assert_error(too_big, 413, "payload_too_large")


async def test_audit_trail_names_the_key_never_the_key_itself(
    api: httpx.AsyncClient, settings: Settings, redis_client: Any
) -> None:
    await api.put("/dnc/3005050149")
    await api.post("/dnc", json={"numbers": ["3005050150", "3005050151"]})
    await api.delete("/dnc/3005050149", headers={"X-API-Key": "other-key"})
    await api.delete("/dnc/3005050149")  # not listed: no change, no entry
    page = (await api.get("/dnc/audit", params={"limit": 2})).json()
    entries = page["entries"]
    assert [e["action"] for e in entries] == ["remove", "import"]
    assert entries[0]["by"] == key_label("other-key")
    assert entries[0]["phone_number"] == "+573005050149"
    assert entries[1]["count"] == 2
    rest = (await api.get("/dnc/audit", params={"cursor": page["next_cursor"]})).json()
    assert [e["action"] for e in rest["entries"]] == ["add"]
    assert rest["next_cursor"] is None
    # No stored byte holds a key.
    async for key in redis_client.scan_iter(match=f"{settings.REDIS_PREFIX}dnc*"):
        dump = await redis_client.dump(key)
        assert b"dnc-key" not in dump
        assert b"other-key" not in dump


async def test_is_listed_sees_what_the_api_wrote(
    api: httpx.AsyncClient, settings: Settings, redis_client: Any
) -> None:
    await api.put("/dnc/3005050149")
    dnc = DncList(redis_client, Keys(settings.REDIS_PREFIX))
    assert await dnc.is_listed("+573005050149")
    assert not await dnc.is_listed("+573005050150")
