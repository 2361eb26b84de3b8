"""Trunk lines shared by every worker process, granted in priority order, on one of the
Asterisk servers that may place the call.

A Redis semaphore of expiring call leases (MAX_CONCURRENT_CALLS), a minimum spacing between new
originations (CALLS_PER_SECOND), and a line queue: a job that finds every line busy registers
as a waiter, and a freed line goes to the oldest high-priority waiter first, then the oldest
normal one, whichever worker holds them. After `high_streak` high-priority grants in a row
while a normal job waited, the oldest normal waiter goes first once, so normal jobs never
starve under a flood of alerts.

Each Asterisk server (ASTERISK_SERVERS, or the one the single-server variables describe) has
its own lines and rate. A job's candidates are the servers whose prefixes match its number and
whose AMI session in this worker is up (all matching ones when none is: the dial then fails and
is retried, as with one server down); the grant picks the candidate with the most free lines.

Every check and the grant run in one Lua script (store/lua/line_*.lua), so two processes can
never both take the last line or the same rate token. Times come from the Redis server clock.
A lease that is not renewed expires, so a worker that dies frees its lines; a waiter that stops
asking loses its place after `waiter_ttl_s`, so a dead worker's waiters never hold the queue.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import redis.asyncio as aioredis

from ttsqueue.asterisk_servers import DEFAULT_SERVER
from ttsqueue.config import Settings
from ttsqueue.domain import Priority
from ttsqueue.errors import PermanentJobError, StoreError
from ttsqueue.logs import get_logger
from ttsqueue.store.keys import Keys
from ttsqueue.store.lifecycle import ClaimRequest, HeldLine
from ttsqueue.store.scripts import load_script

log = get_logger("ttsqueue.worker.trunk")

# Redis down, timing out, or refusing the write (READONLY, OOM): the lease just expires.
_RELEASE_ERRORS: tuple[type[Exception], ...] = (StoreError,)
# Next in line: ask often, so a freed line is taken within a few tens of milliseconds.
POLL_MIN_S = 0.01
POLL_MAX_S = 0.04
# Further back: ask less often (each ask also keeps the place in line).
POLL_BACK_S = 0.25
HIGH_STREAK = 8
WAITER_TTL_S = 5.0


# Called before each ask for a line: a claim to take with the line if that ask gets one.
ClaimFactory = Callable[[], ClaimRequest | None]


@dataclass(frozen=True, slots=True)
class LineServer:
    """One Asterisk server's lines: how many, how fast, for which numbers."""

    name: str
    max_calls: int
    calls_per_second: float
    prefixes: tuple[str, ...] = ()

    def serves(self, e164: str) -> bool:
        return not self.prefixes or any(e164.startswith(p) for p in self.prefixes)


def line_servers(settings: Settings) -> list[LineServer]:
    """The servers of ASTERISK_SERVERS, or the single one of MAX_CONCURRENT_CALLS etc."""
    return [
        LineServer(s.name, s.max_concurrent_calls, s.calls_per_second, tuple(s.prefixes))
        for s in settings.asterisk_servers
    ]


def _always_up(_: str) -> bool:
    return True


@dataclass(slots=True)
class Lease:
    lease_id: str
    # The Asterisk server whose line this is: the call is placed there.
    server: str = DEFAULT_SERVER
    # Set when a renewal found the lease expired and every line taken by others.
    lost: bool = False
    # A renewal is on its way to Redis (it could take the line back after a release).
    renewing: bool = False
    # The line is given up by the job's ending step (`hand_over`), not by the slot.
    handed_over: bool = False
    # Renewals start with a timer, a third of the lease in (`TrunkGuard.slot`); the task
    # that renews from then on exists only for calls that last that long.
    first_renewal: asyncio.TimerHandle | None = None
    renewer: asyncio.Task[None] | None = None
    # The attempt's claim script's reply, when the claim was taken with the line (`slot`'s
    # `claim`); None when it was not asked with the grant.
    claim: list[object] | None = None

    def hand_over(self) -> HeldLine | None:
        """Stop renewing and let the job's ending step give up the line in its own write
        (one round trip fewer per call); the line's (server, lease id), or None when it
        cannot be handed over now and the slot gives it up as usual. Once handed over, the
        slot only gives the line up itself when its body fails."""
        if self.handed_over:
            return (self.server, self.lease_id)
        if self.renewing or self.lost:
            # A renewal in flight could land after the ending's release and take the line
            # back; a lost lease may be held under another server. The slot releases both.
            return None
        # Not renewing now (no renewal yet, or asleep between two): it never renews again.
        self.stop_renewing()
        self.handed_over = True
        return (self.server, self.lease_id)

    def stop_renewing(self) -> None:
        if self.first_renewal is not None:
            self.first_renewal.cancel()
        if self.renewer is not None:
            self.renewer.cancel()


@dataclass(frozen=True, slots=True)
class _Answer:
    held: bool
    rate_wait_s: float  # > 0: a line is ours once the rate allows
    behind: int  # lines that must free before our turn
    server: str  # the server of the line, when held
    claim: list[object] | None = None  # the claim's reply, when asked with a held line


class TrunkGuard:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        max_calls: int = 0,
        calls_per_second: float = 0.0,
        lease_s: float = 30.0,
        *,
        high_streak: int = HIGH_STREAK,
        waiter_ttl_s: float = WAITER_TTL_S,
        servers: Sequence[LineServer] | None = None,
        is_up: Callable[[str], bool] = _always_up,
    ) -> None:
        """One server from `max_calls` and `calls_per_second`, or `servers`; `is_up` says
        whether this worker can dial on a server now."""
        if servers is None:
            servers = [LineServer(DEFAULT_SERVER, max_calls, calls_per_second)]
        if not servers or lease_s <= 0:
            raise ValueError("at least one server and lease_s > 0 required")
        if any(s.max_calls < 1 or s.calls_per_second <= 0 for s in servers):
            raise ValueError("max_calls >= 1 and calls_per_second > 0 required")
        if len({s.name for s in servers}) != len(servers) or any("," in s.name for s in servers):
            raise ValueError("server names must be unique and hold no ','")
        if high_streak < 1 or waiter_ttl_s <= POLL_BACK_S:
            raise ValueError(f"high_streak >= 1 and waiter_ttl_s > {POLL_BACK_S} required")
        self._keys = keys
        self._servers = {s.name: s for s in servers}
        self._is_up = is_up
        self._lease_s = lease_s
        self._high_streak = high_streak
        self._waiter_ttl_ms = round(waiter_ttl_s * 1000)
        self._acquire = load_script(redis, "line_acquire")
        self._acquire_claim = load_script(redis, "line_acquire_claim")
        self._renew = load_script(redis, "line_renew")
        self._active = load_script(redis, "line_active")
        self._leave = load_script(redis, "line_leave")
        self._redis = redis

    @property
    def limit(self) -> int:
        return sum(s.max_calls for s in self._servers.values())

    @property
    def servers(self) -> list[LineServer]:
        return list(self._servers.values())

    async def active(self) -> int:
        """Live leases across all processes and servers (expired ones excluded)."""
        return sum((await self.active_by_server()).values())

    async def active_by_server(self) -> dict[str, int]:
        """Live leases of each server, across all processes."""
        return {
            name: int(await self._active(keys=[self._keys.server_lines(name)]))
            for name in self._servers
        }

    def candidates(self, e164: str | None) -> list[str]:
        """The servers that may place a call to `e164` now, up ones only unless none is;
        every server for None (a call already placed: its line is found wherever it is)."""
        if e164 is None:
            return list(self._servers)
        serving = [s.name for s in self._servers.values() if s.serves(e164)]
        if not serving:
            raise PermanentJobError(
                "no Asterisk server of ASTERISK_SERVERS serves this number",
                reason="no_asterisk_server",
            )
        return [name for name in serving if self._is_up(name)] or serving

    async def waiting(self) -> dict[Priority, list[str]]:
        """Lease ids waiting for a line, in arrival order, by priority."""
        high = await self._redis.zrange(self._keys.line_waiters_high, 0, -1)
        normal = await self._redis.zrange(self._keys.line_waiters_normal, 0, -1)
        return {Priority.HIGH: [str(x) for x in high], Priority.NORMAL: [str(x) for x in normal]}

    async def try_acquire(
        self, lease_id: str, priority: Priority = Priority.NORMAL, e164: str | None = None
    ) -> bool:
        """One attempt; True when `lease_id` now holds a line (again, if it already did).
        When False, `lease_id` keeps its place in line for `waiter_ttl_s`."""
        return await self.try_grant(lease_id, priority, e164) is not None

    async def try_grant(
        self, lease_id: str, priority: Priority = Priority.NORMAL, e164: str | None = None
    ) -> str | None:
        """One attempt; the server whose line `lease_id` now holds, or None."""
        answer = await self._attempt(lease_id, priority, self.candidates(e164))
        return answer.server if answer.held else None

    async def acquire(
        self, lease_id: str, priority: Priority = Priority.NORMAL, e164: str | None = None
    ) -> str:
        """Wait in line, without blocking the loop, until a line and a rate token are ours;
        the server of the line. Candidates are asked again each time: a server that goes
        down meanwhile is no longer one, one that comes back is."""
        return (await self._wait_in_line(lease_id, priority, e164, None)).server

    async def _wait_in_line(
        self, lease_id: str, priority: Priority, e164: str | None, claim: ClaimFactory | None
    ) -> _Answer:
        """`acquire`; each ask also takes the claim `claim` gives for it, if any, when it
        gets the line."""
        try:
            while True:
                request = claim() if claim is not None else None
                answer = await self._attempt(lease_id, priority, self.candidates(e164), request)
                if answer.held:
                    return answer
                if answer.rate_wait_s > 0:
                    pause = answer.rate_wait_s + random.uniform(0, POLL_MIN_S)
                elif answer.behind <= 1:
                    pause = random.uniform(POLL_MIN_S, POLL_MAX_S)
                else:
                    pause = random.uniform(POLL_MAX_S, POLL_BACK_S)
                await asyncio.sleep(pause)
        except BaseException:
            # Canceled, or Redis failed: leave the line (the script may have granted the
            # lease just before the reply was lost).
            await self._release_quietly(lease_id)
            raise

    async def renew(self, lease_id: str, server: str | None = None) -> bool:
        line = self._servers[server] if server else next(iter(self._servers.values()))
        args: list[str | int] = [lease_id, self._lease_ms, line.max_calls]
        keys = [self._keys.server_lines(line.name)]
        return int(await self._renew(keys=keys, args=args)) == 1

    async def release(self, lease_id: str) -> None:
        """Give up the line (whichever server's), or the place in line."""
        k = self._keys
        keys = [
            k.line_waiters_high,
            k.line_waiters_normal,
            k.line_waiters_alive,
            k.line_waiter_servers,
            *[k.server_lines(name) for name in self._servers],
        ]
        await self._leave(keys=keys, args=[lease_id])

    @asynccontextmanager
    async def slot(
        self,
        lease_id: str,
        priority: Priority = Priority.NORMAL,
        e164: str | None = None,
        *,
        claim: ClaimFactory | None = None,
    ) -> AsyncIterator[Lease]:
        """Hold a line for the body's duration, renewing the lease in the background.
        `e164`: the number to call (its servers are the candidates); None for a call already
        placed, whose line is kept on whichever server holds it. `claim`: called before each
        ask, the attempt's claim (built by the job's lifecycle) to take in the same step if
        that ask gets the line, or None; `Lease.claim` then holds the reply of the last
        one given, for the lifecycle to read. When the grant fails, whether that claim was
        taken is not known: the caller undoes it."""
        answer = await self._wait_in_line(lease_id, priority, e164, claim)
        lease = Lease(lease_id, answer.server, claim=answer.claim)
        lease.first_renewal = asyncio.get_running_loop().call_later(
            self._lease_s / 3, self._start_renewing, lease
        )
        failed = True
        try:
            yield lease
            failed = False
        finally:
            lease.stop_renewing()
            if lease.renewer is not None:
                await asyncio.wait([lease.renewer])
            # A handed-over line was given up by the body's ending step, unless the body
            # failed (that step may not have been written).
            if failed or not lease.handed_over:
                await self._release_quietly(lease_id)

    @property
    def _lease_ms(self) -> int:
        return max(1, round(self._lease_s * 1000))

    async def _attempt(
        self,
        lease_id: str,
        priority: Priority,
        candidates: list[str],
        claim: ClaimRequest | None = None,
    ) -> _Answer:
        k = self._keys
        keys = [
            k.line_waiters_high,
            k.line_waiters_normal,
            k.line_waiters_alive,
            k.line_arrivals,
            k.line_high_streak,
            k.line_waiter_servers,
        ]
        args: list[str | int] = [
            lease_id,
            self._lease_ms,
            "high" if priority is Priority.HIGH else "normal",
            self._waiter_ttl_ms,
            self._high_streak,
            ",".join(candidates),
            len(self._servers),
        ]
        for line in self._servers.values():
            keys += [k.server_lines(line.name), k.server_rate(line.name)]
            args += [line.name, line.max_calls, repr(1000.0 / line.calls_per_second)]
        if claim is None:
            reply = await self._acquire(keys=keys, args=args)
        else:
            # The claim's keys and arguments come after every server's (line_acquire_claim.lua).
            reply = await self._acquire_claim(keys=keys + claim.keys, args=args + claim.args)
        held, wait_ms, behind, server = reply[:4]
        taken = list(reply[4:7]) if claim is not None and int(held) == 1 else None
        return _Answer(int(held) == 1, int(wait_ms) / 1000, int(behind), str(server), taken)

    async def _release_quietly(self, lease_id: str) -> None:
        try:
            await self.release(lease_id)
        except _RELEASE_ERRORS as exc:
            log.warning(
                "trunk lease not released, it will expire", lease_id=lease_id, error=repr(exc)
            )

    def _start_renewing(self, lease: Lease) -> None:
        lease.first_renewal = None
        lease.renewer = asyncio.create_task(self._keep_alive(lease), name=f"lease-{lease.lease_id}")

    async def _keep_alive(self, lease: Lease) -> None:
        """Renew now and every third of the lease until cancelled. Any failure (Redis down,
        READONLY, OOM, a timeout, anything else) is logged and the next renewal tried: this
        task must outlive the call."""
        while True:
            lease.renewing = True
            try:
                held = await self.renew(lease.lease_id, lease.server)
            except Exception as exc:
                log.warning("trunk lease not renewed", lease_id=lease.lease_id, error=repr(exc))
            else:
                if not held and not lease.lost:
                    log.warning(
                        "trunk lease expired and its line was taken", lease_id=lease.lease_id
                    )
                lease.lost = not held
            finally:
                lease.renewing = False
            await asyncio.sleep(self._lease_s / 3)
