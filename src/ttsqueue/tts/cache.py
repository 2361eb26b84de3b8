"""Content-addressed audio cache: files under `<AUDIO_DIR>/cache/`, LRU index in Redis.

An entry is `<key>.wav` (plus `<key>.sln16` when wideband). Entries are evicted least recently
used first when the total size exceeds the limit, but never while a lease pins them (a live
call is playing them). Index changes run as Lua scripts, so concurrent workers agree; the
index remembers which file it describes (mtime, inode). Files are written beside their place
in parallel, then renamed into place and indexed, or deleted after eviction, under a short
per-entry lock in Redis: the index always names the file on disk, and deleting an evicted
entry never removes a copy that another worker has just put in place again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import time
import unicodedata
import wave
from collections.abc import Callable
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _quoted
from pathlib import Path

import redis.asyncio as aioredis

from ttsqueue.errors import PermanentJobError, TransientJobError
from ttsqueue.store.keys import Keys
from ttsqueue.store.scripts import load_script
from ttsqueue.tts.audio import ConvertedAudio, stage_file


def normalize_text(text: str) -> str:
    """NFC, runs of whitespace collapsed to one space, trimmed: what gets spoken and hashed."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def cache_key(engine: str, voice: str | None, language: str, text: str) -> str:
    """SHA-256 of `json.dumps([engine, voice or "", language.lower(), normalized text])`, the
    form entries on disk are named with. The JSON is put together from its four strings, each
    quoted by the json module's own ASCII quoting (what json.dumps uses by default): the same
    bytes for a fifth of json.dumps's work on the list (tests/unit/test_audio_keys.py compares
    the two)."""
    quoted = (_quoted(engine), _quoted(voice or ""), _quoted(language.lower()))
    material = f"[{quoted[0]}, {quoted[1]}, {quoted[2]}, {_quoted(normalize_text(text))}]"
    return hashlib.sha256(material.encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class Lease:
    """Pins an entry while a call plays it; expires on its own if the holder dies."""

    lease_id: str
    ttl_s: float


@dataclass(frozen=True, slots=True)
class CacheEntry:
    key: str
    wav_path: Path
    sln16_path: Path | None
    duration_s: float


DURATION_MEMO_SIZE = 10_000
# A file check this process made that recently stands for the next lookups of the entry: the
# lookup's touch pins the entry first, so the product's own eviction cannot have removed the
# files meanwhile, only a hand outside it. Spares a thread hop per call when many calls play
# the same message (the check runs in a thread: AUDIO_DIR may be on NFS).
FILES_SEEN_S = 1.0
# An entry's write lock is held for a rename or a delete (milliseconds); a holder that died
# frees it by expiry. A waiter gives up (the job is retried) after LOCK_WAIT_S.
WRITE_LOCK_TTL_MS = 5_000
LOCK_WAIT_S = 4 * WRITE_LOCK_TTL_MS / 1000


def _now_ms() -> int:
    return int(time.time() * 1000)


class AudioCache:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        audio_dir: Path,
        max_bytes: int,
        *,
        clock_ms: Callable[[], int] = _now_ms,
        files_seen_s: float = FILES_SEEN_S,
    ) -> None:
        self._redis = client
        self._clock_ms = clock_ms
        self._keys = keys
        self.directory = (audio_dir / "cache").absolute()
        self.max_bytes = max_bytes
        self._register = load_script(client, "cache_register")
        self._touch = load_script(client, "cache_touch")
        self._pin = load_script(client, "cache_pin")
        self._unlock_script = load_script(client, "cache_unlock")
        # Durations already read in this process; a key names its content, so they never change.
        self._durations: dict[str, float] = {}
        # When this process last found an entry's files (monotonic), by (key, wideband).
        self._files_seen: dict[tuple[str, bool], float] = {}
        self._files_seen_s = files_seen_s

    def wav_path(self, key: str) -> Path:
        return self.directory / f"{key}.wav"

    def sln16_path(self, key: str) -> Path:
        return self.directory / f"{key}.sln16"

    async def lookup(
        self, key: str, *, wideband: bool, lease: Lease | None, touched: bool = False
    ) -> CacheEntry | None:
        """The entry if it is indexed and its files exist; then touched, pinned, counted.
        `touched`: an earlier step found the entry indexed and did all that already (the
        job's start, store/lifecycle.py `deliver`, or `touch`), so only the files are
        checked."""
        if not touched and not await self.touch(key, lease=lease):
            return None
        return await self.files(key, wideband=wideband)

    async def touch(self, key: str, *, lease: Lease | None) -> bool:
        """If the entry is indexed: its LRU place refreshed, a hit counted, `lease` taken on
        it; False if it is not. Touching first pins the entry, so that it cannot be evicted
        while its files are checked (`files`)."""
        now = self._clock_ms()
        lease_id, expiry = _lease_args(lease, now)
        keys = self._keys
        indexed = await self._touch(
            keys=[keys.cache_lru, keys.cache_sizes, keys.cache_stats, keys.cache_in_use(key)],
            args=[key, now, lease_id, expiry],
        )
        return bool(indexed)

    async def files(self, key: str, *, wideband: bool) -> CacheEntry | None:
        """The entry of a touched key if its files are there, else None."""
        seen = self._files_seen.get((key, wideband))
        known = self._durations.get(key)
        if seen is not None and known is not None and time.monotonic() - seen < self._files_seen_s:
            return self._entry(key, known, wideband)
        duration = await asyncio.to_thread(self._read_files, key, wideband)
        if duration is None:
            self._files_seen.pop((key, wideband), None)
            return None
        if len(self._files_seen) >= DURATION_MEMO_SIZE:
            self._files_seen.clear()
        self._files_seen[(key, wideband)] = time.monotonic()
        return self._entry(key, duration, wideband)

    def _remember(self, key: str, duration: float) -> None:
        if len(self._durations) >= DURATION_MEMO_SIZE:
            self._durations.clear()
        self._durations[key] = duration

    async def count_miss(self) -> None:
        await self._redis.hincrby(self._keys.cache_stats, "misses", 1)

    async def store(self, key: str, audio: ConvertedAudio, *, lease: Lease | None) -> CacheEntry:
        """Write the files, put them in place and index them (pinned by `lease`), evict what
        no longer fits. A disk that is full or read-only fails the job at once, naming the
        directory."""
        try:
            staged = await asyncio.to_thread(self._stage_files, key, audio)
        except OSError as exc:
            raise self._write_failed(exc) from exc
        token = secrets.token_hex(8)
        try:
            await self._lock(key, token)
            try:
                identity = await asyncio.to_thread(_put_in_place, staged)
            except OSError as exc:
                await self._unlock(key, token)
                raise self._write_failed(exc) from exc
        except BaseException:
            _discard(staged)  # the temp files not renamed into place
            raise
        now = self._clock_ms()
        lease_id, expiry = _lease_args(lease, now)
        keys = self._keys
        victims = await self._register(
            keys=[
                keys.cache_lru,
                keys.cache_sizes,
                keys.cache_files,
                keys.cache_stats,
                keys.cache_in_use(key),
                keys.cache_writing(key),
            ],
            args=[
                key,
                len(audio.wav) + len(audio.sln16 or b""),
                identity,
                now,
                lease_id,
                expiry,
                self.max_bytes,
                keys.cache_in_use(""),
                token,
            ],
        )
        if victims:
            await self._delete_victims(list(zip(victims[::2], victims[1::2], strict=True)))
        self._remember(key, audio.duration_s)
        return self._entry(key, audio.duration_s, audio.sln16 is not None)

    def _write_failed(self, exc: OSError) -> PermanentJobError:
        return PermanentJobError(
            f"cannot write audio to {self.directory}: {exc.strerror or exc}",
            reason="audio_write_failed",
        )

    async def _lock(self, key: str, token: str) -> None:
        name = self._keys.cache_writing(key)
        deadline = time.monotonic() + LOCK_WAIT_S
        delay = 0.002
        while not await self._redis.set(name, token, nx=True, px=WRITE_LOCK_TTL_MS):
            if time.monotonic() > deadline:
                raise TransientJobError(f"audio cache entry {key} stayed locked {LOCK_WAIT_S} s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    async def _unlock(self, key: str, token: str) -> None:
        await self._unlock_script(keys=[self._keys.cache_writing(key)], args=[token])

    async def _delete_victims(self, victims: list[tuple[str, str]]) -> None:
        for key, identity in victims:
            token = secrets.token_hex(8)
            await self._lock(key, token)
            try:
                await asyncio.to_thread(self._delete_files, key, identity)
            finally:
                await self._unlock(key, token)

    async def pin(self, key: str, lease_id: str, ttl_s: float) -> bool:
        """Protect an entry from eviction until `unpin` or `ttl_s`; False if it is not cached."""
        lease_id_arg, expiry = _lease_args(Lease(lease_id, ttl_s), self._clock_ms())
        indexed = await self._pin(
            keys=[self._keys.cache_sizes, self._keys.cache_in_use(key)],
            args=[key, lease_id_arg, expiry],
        )
        return bool(indexed)

    async def unpin(self, key: str, lease_id: str) -> None:
        await self._redis.zrem(self._keys.cache_in_use(key), lease_id)

    async def stats(self) -> dict[str, int | float]:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hmget(self._keys.cache_stats, ["hits", "misses", "bytes"])
            pipe.zcard(self._keys.cache_lru)
            (hits, misses, size), entries = await pipe.execute()
        hit_count, miss_count = int(hits or 0), int(misses or 0)
        lookups = hit_count + miss_count
        return {
            "hits": hit_count,
            "misses": miss_count,
            "hit_rate": round(hit_count / lookups, 4) if lookups else 0.0,
            "entries": int(entries),
            "bytes": int(size or 0),
        }

    def _entry(self, key: str, duration_s: float, wideband: bool) -> CacheEntry:
        sln16 = self.sln16_path(key) if wideband else None
        return CacheEntry(key, self.wav_path(key), sln16, duration_s)

    def _read_files(self, key: str, wideband: bool) -> float | None:
        """The entry's duration if its files exist (blocking: run in a thread)."""
        if wideband and not self.sln16_path(key).exists():
            return None
        known = self._durations.get(key)
        if known is not None:
            return known if self.wav_path(key).exists() else None
        try:
            duration = _wav_duration(self.wav_path(key))
        except (wave.Error, EOFError, OSError):
            return None
        self._remember(key, duration)
        return duration

    def _stage_files(self, key: str, audio: ConvertedAudio) -> list[tuple[Path, Path]]:
        """Write the entry's files beside their place: (temp, final) pairs, wav last."""
        parts = [(self.wav_path(key), audio.wav)]
        if audio.sln16 is not None:
            parts.insert(0, (self.sln16_path(key), audio.sln16))
        staged: list[tuple[Path, Path]] = []
        try:
            for path, data in parts:
                staged.append((stage_file(path, data), path))
        except BaseException:
            _discard(staged)
            raise
        return staged

    def _delete_files(self, key: str, identity: str) -> None:
        """Delete an evicted entry's files if they are still the copy the index described."""
        recorded = identity.split(",")
        # The identity lists the wav first, then the sln16 when there is one.
        for path, ident in zip((self.wav_path(key), self.sln16_path(key)), recorded, strict=False):
            if ident and _identity(path) == ident:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


def _put_in_place(staged: list[tuple[Path, Path]]) -> str:
    """Rename staged files into place; returns their identity (the wav's first)."""
    for temp, path in staged:
        os.replace(temp, path)
    finals = sorted((path for _, path in staged), key=lambda path: path.suffix != ".wav")
    return ",".join(_identity(path) or "" for path in finals)


def _discard(staged: list[tuple[Path, Path]]) -> None:
    for temp, _ in staged:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def _identity(path: Path) -> str | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return f"{stat.st_mtime_ns:020d}:{stat.st_ino}"


def _lease_args(lease: Lease | None, now_ms: int) -> tuple[str, int]:
    if lease is None:
        return "", 0
    return lease.lease_id, now_ms + int(lease.ttl_s * 1000)


def _wav_duration(path: Path) -> float:
    """Seconds of audio in a cache WAV. Every one was written by `tts/convert.py` as plain PCM,
    which the standard library reads from its header alone, without loading libsndfile."""
    with wave.open(str(path), "rb") as wav:
        rate = wav.getframerate()
        if rate <= 0:
            raise wave.Error(f"no frame rate in {path.name}")
        return wav.getnframes() / rate
