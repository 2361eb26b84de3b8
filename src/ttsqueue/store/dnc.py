"""The do-not-call list (SPEC §13): E.164 numbers never to be called, with an audit trail.

Layout (keys in `Keys`): a sorted set of the numbers, all scored 0, so that listing pages by
value (ZRANGE BYLEX) in number order; a hash with each number's entry (when, by whom, how);
a capped stream of every change (who added or removed what, and when). Adding and removing
each run as one script, so the list, the entries and the audit never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis

from ttsqueue.domain import iso
from ttsqueue.policy.clock import Clock, SystemClock
from ttsqueue.store.keys import Keys
from ttsqueue.store.scripts import load_script

# Numbers per script call when importing: each call holds Redis for a couple of milliseconds.
IMPORT_CHUNK = 2000
# Changes kept in the audit stream (approximately: trimmed with MAXLEN ~).
AUDIT_CAP = 100_000


@dataclass(frozen=True, slots=True)
class DncEntry:
    phone_number: str
    added_at: str | None = None
    added_by: str | None = None
    # "api" (one number) or "import" (a bulk import).
    via: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "phone_number": self.phone_number,
            "added_at": self.added_at,
            "added_by": self.added_by,
            "via": self.via,
        }


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: str
    action: str
    by: str
    at: str
    phone_number: str | None = None
    count: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "phone_number": self.phone_number,
            "count": self.count,
            "by": self.by,
            "at": self.at,
        }


@dataclass(frozen=True, slots=True)
class ImportResult:
    # Distinct numbers given, newly listed, and already on the list before.
    distinct: int
    added: int

    @property
    def already_listed(self) -> int:
        return self.distinct - self.added


def _entry(phone_number: str, raw: str | bytes | None) -> DncEntry:
    meta = orjson.loads(raw) if raw else {}
    return DncEntry(phone_number, meta.get("at"), meta.get("by"), meta.get("via"))


_MAX_ID_PART = 2**64 - 1


def _id_before(entry_id: str) -> str | None:
    """The greatest stream id below `entry_id` (`<ms>-<seq>`), None when there is none."""
    ms_text, _, seq_text = entry_id.partition("-")
    ms, seq = min(int(ms_text), _MAX_ID_PART), min(int(seq_text or 0), _MAX_ID_PART)
    if seq > 0:
        return f"{ms}-{seq - 1}"
    if ms > 0:
        return f"{ms - 1}-{_MAX_ID_PART}"
    return None


class DncList:
    def __init__(self, redis: aioredis.Redis, keys: Keys, clock: Clock | None = None) -> None:
        self._redis = redis
        self._keys = keys
        self._clock = clock or SystemClock()
        self._add = load_script(redis, "dnc_add")
        self._remove = load_script(redis, "dnc_remove")

    @property
    def _lists(self) -> list[str]:
        return [self._keys.dnc, self._keys.dnc_meta, self._keys.dnc_audit]

    def _now(self) -> str:
        return iso(self._clock.now()) or ""

    async def is_listed(self, e164: str) -> bool:
        return await self._redis.zscore(self._keys.dnc, e164) is not None

    async def listed_among(self, numbers: Sequence[str]) -> set[str]:
        """Which of `numbers` are listed, in one round trip (batches, campaigns)."""
        if not numbers:
            return set()
        scores = await self._redis.zmscore(self._keys.dnc, list(numbers))
        return {n for n, score in zip(numbers, scores, strict=True) if score is not None}

    async def entry(self, e164: str) -> DncEntry | None:
        if not await self.is_listed(e164):
            return None
        return _entry(e164, await self._redis.hget(self._keys.dnc_meta, e164))

    async def count(self) -> int:
        return int(await self._redis.zcard(self._keys.dnc))

    def _meta(self, actor: str, via: str, at: str) -> bytes:
        return orjson.dumps({"at": at, "by": actor, "via": via})

    def _audit(self, action: str, actor: str, at: str, **fields: object) -> bytes:
        return orjson.dumps({"action": action, "by": actor, "at": at, **fields})

    async def add(self, e164: str, actor: str) -> bool:
        """List one number; False when it already was (its entry is kept)."""
        at = self._now()
        audit = self._audit("add", actor, at, phone_number=e164)
        args: list[bytes | str | int] = [self._meta(actor, "api", at), audit, AUDIT_CAP, e164]
        return int(await self._add(keys=self._lists, args=args)) == 1

    async def remove(self, e164: str, actor: str) -> bool:
        """Unlist one number; False when it was not listed (nothing is written)."""
        audit = self._audit("remove", actor, self._now(), phone_number=e164)
        return int(await self._remove(keys=self._lists, args=[e164, audit, AUDIT_CAP])) == 1

    async def add_many(self, numbers: Iterable[str], actor: str) -> ImportResult:
        """List many numbers (already normalized), IMPORT_CHUNK per script call, with one
        audit entry for the whole import."""
        distinct = list(dict.fromkeys(numbers))
        at = self._now()
        meta = self._meta(actor, "import", at)
        added = 0
        for start in range(0, len(distinct), IMPORT_CHUNK):
            chunk = distinct[start : start + IMPORT_CHUNK]
            added += int(await self._add(keys=self._lists, args=[meta, "", AUDIT_CAP, *chunk]))
        audit = self._audit("import", actor, at, count=added, received=len(distinct))
        await self._redis.xadd(
            self._keys.dnc_audit, {"entry": audit}, maxlen=AUDIT_CAP, approximate=True
        )
        return ImportResult(distinct=len(distinct), added=added)

    async def page(self, after: str | None, limit: int) -> tuple[list[DncEntry], str | None]:
        """Up to `limit` numbers in number order after `after` (exclusive), and the last one
        shown when more follow (the next page's `after`)."""
        low = f"({after}" if after is not None else "-"
        numbers: list[str] = await self._redis.zrange(  # type: ignore[assignment]
            self._keys.dnc, low, "+", bylex=True, offset=0, num=limit + 1
        )
        more = len(numbers) > limit
        numbers = numbers[:limit]
        metas = await self._redis.hmget(self._keys.dnc_meta, numbers) if numbers else []
        entries = [_entry(n, m) for n, m in zip(numbers, metas, strict=True)]
        return entries, (numbers[-1] if more and numbers else None)

    async def audit(self, before: str | None, limit: int) -> tuple[list[AuditEntry], str | None]:
        """Changes newest first, `limit` at a time; `before` is the last id of the previous page."""
        high = _id_before(before) if before is not None else "+"
        if high is None:
            return [], None
        rows: list[tuple[str, dict[str, str]]] = await self._redis.xrevrange(  # type: ignore[assignment]
            self._keys.dnc_audit, high, "-", count=limit + 1
        )
        more = len(rows) > limit
        entries = []
        for entry_id, fields in rows[:limit]:
            data = orjson.loads(fields["entry"])
            entries.append(
                AuditEntry(
                    id=entry_id,
                    action=str(data.get("action")),
                    by=str(data.get("by")),
                    at=str(data.get("at")),
                    phone_number=data.get("phone_number"),
                    count=data.get("count"),
                )
            )
        return entries, (entries[-1].id if more and entries else None)
