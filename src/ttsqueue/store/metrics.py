"""Counters and histograms kept in Redis so that every process contributes and any API
process can expose them (SPEC §8). Counters move inside the status scripts; this module
defines the histograms and reads everything back for `/metrics`."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis.asyncio as aioredis

from ttsqueue.store.keys import Keys

LATENCY_BUCKETS = (
    "0.05",
    "0.1",
    "0.25",
    "0.5",
    "1",
    "2.5",
    "5",
    "10",
    "30",
    "60",
    "120",
    "300",
    "600",
    "1800",
    "3600",
)
SYNTHESIS_BUCKETS = ("0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10")

INF = "+Inf"
PROCESSING = "processing"  # processing started -> terminal
END_TO_END = "end_to_end"  # accepted -> terminal


def synthesis_histogram(engine: str) -> str:
    return f"synthesis:{engine}"


@dataclass(frozen=True, slots=True)
class Observation:
    name: str
    seconds: float
    buckets: tuple[str, ...] = LATENCY_BUCKETS

    @property
    def bucket(self) -> str | None:
        return bucket_for(self.seconds, self.buckets)

    @property
    def field(self) -> str:
        """The hash field that counts the value: `bucket_field` of its bucket."""
        return bucket_field(self.bucket)

    @property
    def microseconds(self) -> int:
        """The value as the histogram's sum counts it (`sum_us`, an integer)."""
        return round(self.seconds * 1_000_000)


def bucket_field(bucket: str | None) -> str:
    """`le:<bound>`, or `le:+Inf` above the last bound: the count of a histogram is the sum of
    these fields, so that an observation costs two writes (its bucket and the sum)."""
    return f"le:{bucket if bucket is not None else INF}"


def bucket_for(seconds: float, buckets: tuple[str, ...]) -> str | None:
    """The bucket a value is counted in: the smallest bound at or above it (None: +Inf only).

    Redis keeps one count per bucket, not cumulative ones, so that an observation costs one
    write; `snapshot` adds them up into Prometheus's cumulative buckets.
    """
    for le in buckets:
        if seconds <= float(le):
            return le
    return None


@dataclass(frozen=True, slots=True)
class Histogram:
    buckets: list[tuple[float, int]]  # (upper bound, cumulative count), +Inf excluded
    count: int
    total: float


@dataclass(slots=True)
class MetricsSnapshot:
    submitted: dict[str, int] = field(default_factory=dict)
    finished: dict[tuple[str, str], int] = field(default_factory=dict)
    histograms: dict[str, Histogram] = field(default_factory=dict)


class MetricsStore:
    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    async def observe_synthesis(self, engine: str, seconds: float) -> None:
        seen = Observation(synthesis_histogram(engine), seconds, SYNTHESIS_BUCKETS)
        key = self.keys.histogram(seen.name)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, seen.field, 1)
            pipe.hincrby(key, "sum_us", seen.microseconds)
            await pipe.execute()

    async def snapshot(self, engines: list[str]) -> MetricsSnapshot:
        names = [PROCESSING, END_TO_END, *(synthesis_histogram(e) for e in engines)]
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.submitted)
            pipe.hgetall(self.keys.finished)
            for name in names:
                pipe.hgetall(self.keys.histogram(name))
            submitted, finished, *hists = await pipe.execute()
        snapshot = MetricsSnapshot(submitted={k: int(v) for k, v in submitted.items()})
        for pair, count in finished.items():
            status, _, outcome = pair.partition("|")
            snapshot.finished[(status, outcome)] = int(count)
        for name, raw in zip(names, hists, strict=True):
            buckets = LATENCY_BUCKETS if name in (PROCESSING, END_TO_END) else SYNTHESIS_BUCKETS
            snapshot.histograms[name] = _histogram(raw, buckets)
        return snapshot


def _histogram(raw: dict[str, str], buckets: tuple[str, ...]) -> Histogram:
    """Prometheus's view of a histogram hash. Earlier versions counted a value in its bound's
    own field (`0.05`), in `count` and, in seconds, in `sum`; a hash written during an
    upgrade holds both forms, and both count."""
    cumulative: list[tuple[float, int]] = []
    running = 0
    counted_now = int(raw.get(bucket_field(None), 0))
    for le in buckets:
        now = int(raw.get(bucket_field(le), 0))
        counted_now += now
        running += now + int(raw.get(le, 0))
        cumulative.append((float(le), running))
    return Histogram(
        buckets=cumulative,
        count=int(raw.get("count", 0)) + counted_now,
        total=float(raw.get("sum", 0.0)) + int(raw.get("sum_us", 0)) / 1_000_000,
    )
