"""The daily contact cap on real Redis: claims granted below the cap only, even when many
workers claim at once; answered calls count, unanswered ones give their claim back; claims
of dead workers expire; days and numbers are apart."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import pytest

from ttsqueue.config import Settings
from ttsqueue.store.connection import connect_redis
from ttsqueue.store.contacts import ContactLedger
from ttsqueue.store.keys import Keys

pytestmark = pytest.mark.timeout(120)

DAY = date(2026, 3, 2)
NUMBER = "+573005050149"


@pytest.fixture
def ledger(settings: Settings, redis_client: Any) -> ContactLedger:
    return ContactLedger(redis_client, Keys(settings.REDIS_PREFIX), lease_s=60)


async def test_one_a_day(ledger: ContactLedger) -> None:
    first = await ledger.claim(NUMBER, DAY, "job-a:1", 1, 3600)
    assert (first.granted, first.contacts) == (True, 1)
    second = await ledger.claim(NUMBER, DAY, "job-b:1", 1, 3600)
    assert (second.granted, second.contacts) == (False, 1)
    # The same attempt again (a redelivered message) keeps its claim.
    again = await ledger.claim(NUMBER, DAY, "job-a:1", 1, 3600)
    assert again.granted
    # Another number, another day: their own counts.
    assert (await ledger.claim("+573005050150", DAY, "job-c:1", 1, 3600)).granted
    assert (await ledger.claim(NUMBER, date(2026, 3, 3), "job-b:1", 1, 3600)).granted


async def test_unanswered_calls_give_the_claim_back(ledger: ContactLedger) -> None:
    busy = await ledger.claim(NUMBER, DAY, "job-a:1", 1, 3600)
    await ledger.settle(busy.claim, answered=False)
    assert await ledger.contacts(NUMBER, DAY) == 0
    answered = await ledger.claim(NUMBER, DAY, "job-a:2", 1, 3600)
    assert answered.granted
    await ledger.settle(answered.claim, answered=True)
    assert await ledger.contacts(NUMBER, DAY) == 1
    # A late "not answered" for the counted attempt does not uncount it.
    await ledger.settle(answered.claim, answered=False)
    assert await ledger.contacts(NUMBER, DAY) == 1
    assert not (await ledger.claim(NUMBER, DAY, "job-b:1", 1, 3600)).granted


async def test_a_dead_workers_claim_expires(settings: Settings, redis_client: Any) -> None:
    short = ContactLedger(redis_client, Keys(settings.REDIS_PREFIX), lease_s=0.3)
    assert (await short.claim(NUMBER, DAY, "job-a:1", 1, 3600)).granted
    assert not (await short.claim(NUMBER, DAY, "job-b:1", 1, 3600)).granted
    deadline = asyncio.get_running_loop().time() + 30
    while not (result := await short.claim(NUMBER, DAY, "job-b:1", 1, 3600)).granted:
        assert asyncio.get_running_loop().time() < deadline, "the claim never expired"
        await asyncio.sleep(0.1)
    assert result.contacts == 1


async def test_an_answered_call_counts_even_after_its_lease(
    settings: Settings, redis_client: Any
) -> None:
    short = ContactLedger(redis_client, Keys(settings.REDIS_PREFIX), lease_s=0.05)
    long_call = await short.claim(NUMBER, DAY, "job-a:1", 1, 3600)
    await asyncio.sleep(0.2)
    await short.settle(long_call.claim, answered=True)
    assert not (await short.claim(NUMBER, DAY, "job-b:1", 1, 3600)).granted


async def test_the_key_outlives_the_local_day(
    ledger: ContactLedger, redis_client: Any, settings: Settings
) -> None:
    result = await ledger.claim(NUMBER, DAY, "job-a:1", 2, 5 * 3600)
    ttl = await redis_client.ttl(Keys(settings.REDIS_PREFIX).contacts(NUMBER, "2026-03-02"))
    assert 5 * 3600 + 24 * 3600 <= ttl <= result.claim.ttl_s


@pytest.mark.parametrize("cap", [1, 3])
async def test_concurrent_claimers_never_exceed_the_cap(settings: Settings, cap: int) -> None:
    """40 claimants on 8 separate connections (as 8 workers would be) race for one number."""
    clients = [connect_redis(settings.REDIS_URL, client_name=f"worker-{n}") for n in range(8)]
    try:
        ledgers = [ContactLedger(c, Keys(settings.REDIS_PREFIX), lease_s=60) for c in clients]
        results = await asyncio.gather(
            *(ledgers[n % 8].claim(NUMBER, DAY, f"job-{n}:1", cap, 3600) for n in range(40))
        )
        granted = [r for r in results if r.granted]
        assert len(granted) == cap
        # Settled as answered, they fill the day; nobody else gets in afterwards.
        await asyncio.gather(*(ledgers[0].settle(r.claim, answered=True) for r in granted))
        late = await asyncio.gather(
            *(ledgers[n % 8].claim(NUMBER, DAY, f"late-{n}:1", cap, 3600) for n in range(16))
        )
        assert not any(r.granted for r in late)
        assert await ledgers[0].contacts(NUMBER, DAY) == cap
    finally:
        for client in clients:
            await client.aclose()


async def test_a_cap_below_one_is_a_mistake(ledger: ContactLedger) -> None:
    with pytest.raises(ValueError, match="cap must be at least 1"):
        await ledger.claim(NUMBER, DAY, "job-a:1", 0, 3600)


async def test_a_listed_number_is_never_claimed(
    ledger: ContactLedger, redis_client: Any, settings: Settings
) -> None:
    await redis_client.zadd(Keys(settings.REDIS_PREFIX).dnc, {NUMBER: 0})
    result = await ledger.claim(NUMBER, DAY, "job-a:1", 3, 3600)
    assert (result.granted, result.listed, result.contacts) == (False, True, 0)
    assert await ledger.contacts(NUMBER, DAY) == 0
    other = await ledger.claim("+573005050150", DAY, "job-b:1", 3, 3600)
    assert (other.granted, other.listed) == (True, False)
