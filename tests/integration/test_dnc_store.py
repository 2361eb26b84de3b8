"""The do-not-call store on real Redis: listing, unlisting, big imports in chunks, pages in
number order, and an audit trail that agrees with the list."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from ttsqueue.config import Settings
from ttsqueue.policy.clock import FixedClock
from ttsqueue.store import dnc as dnc_module
from ttsqueue.store.dnc import DncList
from ttsqueue.store.keys import Keys

pytestmark = pytest.mark.timeout(120)

AT = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)


@pytest.fixture
def dnc(settings: Settings, redis_client: Any) -> DncList:
    return DncList(redis_client, Keys(settings.REDIS_PREFIX), FixedClock(AT))


async def test_add_is_listed_remove(dnc: DncList) -> None:
    assert not await dnc.is_listed("+573005050149")
    assert await dnc.add("+573005050149", "key:abc")
    assert not await dnc.add("+573005050149", "key:other")  # kept as first added
    entry = await dnc.entry("+573005050149")
    assert entry is not None
    assert (entry.added_at, entry.added_by, entry.via) == (
        "2026-03-02T15:30:00.000Z",
        "key:abc",
        "api",
    )
    assert await dnc.is_listed("+573005050149")
    assert await dnc.remove("+573005050149", "key:abc")
    assert not await dnc.remove("+573005050149", "key:abc")
    assert await dnc.entry("+573005050149") is None
    assert await dnc.count() == 0


async def test_listed_among_answers_for_many_at_once(dnc: DncList) -> None:
    await dnc.add_many(["+573005050149", "+573005050151"], "anonymous")
    asked = ["+573005050149", "+573005050150", "+573005050151"]
    assert await dnc.listed_among(asked) == {"+573005050149", "+573005050151"}
    assert await dnc.listed_among([]) == set()


async def test_import_in_chunks_keeps_earlier_entries(
    dnc: DncList, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dnc_module, "IMPORT_CHUNK", 7)
    await dnc.add("+573005050100", "key:first")
    numbers = [f"+5730050501{n:02d}" for n in range(50)] + ["+573005050100"]
    result = await dnc.add_many(numbers, "key:bulk")
    assert (result.distinct, result.added, result.already_listed) == (50, 49, 1)
    assert await dnc.count() == 50
    first = await dnc.entry("+573005050100")
    assert first is not None
    assert first.added_by == "key:first"
    other = await dnc.entry("+573005050149")
    assert other is not None
    assert (other.added_by, other.via) == ("key:bulk", "import")


async def test_pages_cover_the_list_exactly_once(dnc: DncList) -> None:
    numbers = sorted(f"+57300{n:07d}" for n in range(0, 3000, 7))
    await dnc.add_many(reversed(numbers), "anonymous")
    seen: list[str] = []
    after: str | None = None
    while True:
        page, after = await dnc.page(after, 100)
        seen += [e.phone_number for e in page]
        if after is None:
            break
    assert seen == numbers
    empty, last = await dnc.page("+999", 10)
    assert (empty, last) == ([], None)


async def test_audit_agrees_with_concurrent_changes(dnc: DncList) -> None:
    numbers = [f"+5730050502{n:02d}" for n in range(40)]
    await asyncio.gather(*(dnc.add(n, f"key:{n[-2:]}") for n in numbers))
    await asyncio.gather(*(dnc.remove(n, "key:rm") for n in numbers[::2]))
    entries: list[Any] = []
    before: str | None = None
    while True:
        page, before = await dnc.audit(before, 15)
        entries += page
        if before is None:
            break
    assert len(entries) == 60
    assert [e.action for e in entries[:20]] == ["remove"] * 20
    assert {e.phone_number for e in entries if e.action == "remove"} == set(numbers[::2])
    assert {e.by for e in entries if e.action == "add"} == {f"key:{n[-2:]}" for n in numbers}
    assert await dnc.count() == 20
    assert await dnc.audit("0-0", 10) == ([], None)


async def test_import_audit_is_one_entry(dnc: DncList) -> None:
    await dnc.add_many([f"+5730050503{n:02d}" for n in range(30)], "key:bulk")
    entries, _ = await dnc.audit(None, 10)
    assert len(entries) == 1
    assert (entries[0].action, entries[0].count, entries[0].by) == ("import", 30, "key:bulk")
