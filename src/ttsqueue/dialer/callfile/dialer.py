"""The `callfile` dialer: a call file renamed into Asterisk's spool, the outcome from the spool.

Placing: the file is written under a unique name in `<spool>/tts-staging` (same filesystem as
`outgoing/`, checked at start), flushed, given the owner of `outgoing/` (when we run as root)
and a group-writable mode (Asterisk rewrites it while retrying), its mtime set to the attempt's
scheduled instant or now, whichever is later (Asterisk dials a file once its mtime has come, to
the second), then renamed into `outgoing/` as `<job_id>-<attempt>.call` with RENAME_NOREPLACE
(`rename_noreplace.py`): atomic, and it never replaces a file Asterisk is already working on.

A rename is what Asterisk's pbx_spool expects: it acts on IN_MOVED_TO at once. A hard link
(IN_CREATE with no IN_OPEN) is only picked up after about 2 s, and a file written in place
waits for its writer to close it (or, where pbx_spool polls instead, may be read half-written).

Following: see `spool_watcher.py`, `progress.py` and `format.py`.
Everything is on disk, so any worker can follow a call another worker placed before it died.

Health: a spool cannot say whether Asterisk runs, only whether it takes the files it is given.
`disconnected` when `outgoing/` is not writable, while a due file waits there unstarted, and
after a file had to be taken back unstarted, until Asterisk archives a call again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from pathlib import Path

import redis.asyncio as aioredis

from ttsqueue.config import Settings
from ttsqueue.dialer.base import CallRequest, CallResult
from ttsqueue.dialer.callfile.format import call_file_name, render_call_file, report_file_name
from ttsqueue.dialer.callfile.progress import NOT_DIALED, CallFileProgress
from ttsqueue.dialer.callfile.rename_noreplace import rename_noreplace
from ttsqueue.dialer.callfile.spool_watcher import (
    Sighting,
    SpoolPaths,
    SpoolWatcher,
    overdue_unstarted,
    withdraw_if_unstarted,
)
from ttsqueue.dialer.dial_values import check_dial_settings, dial_values
from ttsqueue.dialer.outcome import Deadlines
from ttsqueue.dialer.presence import BEAT_S, presence_loop
from ttsqueue.domain import CallOutcome, DialerHealth
from ttsqueue.errors import ConfigError, DialerError
from ttsqueue.logs import get_logger
from ttsqueue.store.keys import Keys
from ttsqueue.store.presence import DialerPresence, PresenceReport

log = get_logger("ttsqueue.dialer.callfile")

FILE_MODE = 0o664
# pbx_spool starts a renamed-in file at once (inotify), and a file left while it was down
# about 1 s after boot: one due this long ago and still not started means Asterisk is not
# taking call files.
STALLED_AFTER_S = 5.0


def prepare_spool(paths: SpoolPaths) -> None:
    """Create what is missing and check that staging and outgoing share a filesystem."""
    if not paths.outgoing.is_dir():
        raise ConfigError(f"ASTERISK_SPOOL_DIR: {paths.outgoing} is not a directory")
    for directory in (paths.done, paths.staging):
        directory.mkdir(mode=0o775, exist_ok=True)
    if paths.staging.stat().st_dev != paths.outgoing.stat().st_dev:
        raise ConfigError(f"{paths.staging} and {paths.outgoing} are on different filesystems")


def place_call_file(paths: SpoolPaths, name: str, content: str, not_before: float = 0.0) -> bool:
    """Hand the file to Asterisk; False when it was already handed over.

    `not_before` (epoch seconds) is when Asterisk may dial it: the file's mtime is set to it,
    or to now when it has passed."""
    target = paths.outgoing / name
    if target.exists() or (paths.done / name).exists():
        return False
    staged = paths.staging / f"{name}.{uuid.uuid4().hex[:12]}.staged"
    try:
        _write_staged(staged, content, paths.outgoing.stat())
        now_ns = time.time_ns()
        os.utime(staged, ns=(now_ns, max(now_ns, int(not_before * 1e9))))
        rename_noreplace(staged, target)
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staged)  # only still there when the rename did not happen
    return True


def _write_staged(staged: Path, content: str, owner: os.stat_result) -> None:
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.write(fd, content.encode("utf-8"))
        os.fsync(fd)
        if os.geteuid() == 0:
            os.fchown(fd, owner.st_uid, owner.st_gid)
        else:
            with contextlib.suppress(PermissionError):
                os.fchown(fd, -1, owner.st_gid)
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


class CallfileDialer:
    name = "callfile"

    def __init__(
        self,
        settings: Settings,
        redis: aioredis.Redis,
        keys: Keys,
        *,
        owns_redis: bool = False,
        deadlines: Deadlines | None = None,
        stalled_after_s: float = STALLED_AFTER_S,
    ) -> None:
        check_dial_settings(settings)
        self.paths = SpoolPaths.under(settings.ASTERISK_SPOOL_DIR)
        prepare_spool(self.paths)
        self._settings = settings
        self._redis = redis
        self._owns_redis = owns_redis
        self._deadlines = deadlines or Deadlines()
        self._stalled_after_s = stalled_after_s
        self._watcher = SpoolWatcher(self.paths)
        self._presence = DialerPresence(redis, keys)
        self._tasks: list[asyncio.Task[None]] = []
        # (name, seconds late) of a call file Asterisk does not start, from the last look;
        # and the last file taken back unstarted, until Asterisk archives one again.
        self._stalled: tuple[str, float] | None = None
        self._not_dialing: str | None = None

    def start(self) -> None:
        if self._tasks:
            return
        with contextlib.suppress(RuntimeError):
            loop = asyncio.get_running_loop()
            self._tasks = [
                loop.create_task(
                    presence_loop(self._presence, self._report, asyncio.Event()),
                    name="callfile-presence",
                ),
                loop.create_task(self._watch_pickup(), name="callfile-pickup"),
            ]

    async def originate(self, call: CallRequest) -> None:
        self.start()
        content = render_call_file(dial_values(self._settings, call))
        name = call_file_name(call)
        try:
            placed = await asyncio.to_thread(
                place_call_file, self.paths, name, content, call.not_before
            )
        except OSError as exc:
            raise DialerError(f"call file {name} not placed: {exc!r}") from None
        if not placed:
            log.warning("call file already handed to asterisk", call_file=name)

    async def wait_outcome(self, call: CallRequest) -> CallResult:
        self.start()
        names = (call_file_name(call), report_file_name(call))
        progress = CallFileProgress(call, self._settings.CALL_MAX_DURATION, self._deadlines)
        while True:
            seen = await self._sight(*names)
            if seen is None:
                continue
            result = progress.result(seen)
            if result is not None:
                if seen.done_text is not None:
                    self._not_dialing = None  # Asterisk archived a call: it takes files again
                return result
            if progress.may_withdraw(seen) and await self._withdraw(names[0]):
                self._not_dialing = names[0]
                return CallResult(CallOutcome.FAILED, reason=NOT_DIALED, ended_at=seen.at)

    async def abandon(self, call: CallRequest) -> bool:
        """Take the call file back from `outgoing/` unless Asterisk has started dialing it."""
        return await self._withdraw(call_file_name(call))

    def server_up(self, name: str) -> bool:
        return True  # one Asterisk (its spool): call files wait there while it is down

    def server_states(self) -> dict[str, str]:
        return {}

    def health(self) -> DialerHealth:
        """Connected while we can hand files over and Asterisk takes the ones it is given.
        Whether Asterisk runs shows only once a call file waits: a spool says nothing else."""
        if self._problem() is None:
            return DialerHealth.CONNECTED
        return DialerHealth.DISCONNECTED

    def _problem(self) -> str | None:
        if not self._writable():
            return f"{self.paths.outgoing} not writable"
        if self._stalled is not None:
            name, late = self._stalled
            return f"Asterisk has not started {name} ({late:.0f} s past due): is it running?"
        if self._not_dialing is not None:
            return f"Asterisk never started {self._not_dialing}: is it running?"
        return None

    def _writable(self) -> bool:
        return os.access(self.paths.outgoing, os.W_OK | os.X_OK)

    async def _watch_pickup(self) -> None:
        while True:
            try:
                self._stalled = await asyncio.to_thread(
                    overdue_unstarted, self.paths, time.time(), self._stalled_after_s
                )
            except OSError as exc:
                log.warning("spool not readable", error=repr(exc))
            await asyncio.sleep(min(BEAT_S, self._stalled_after_s))

    async def aclose(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._watcher.aclose()
        with contextlib.suppress(Exception):
            await self._presence.remove(self._settings.WORKER_ID)
        if self._owns_redis:
            await self._redis.aclose()

    async def _sight(self, call_file: str, report_file: str) -> Sighting | None:
        try:
            return await self._watcher.sight(call_file, report_file)
        except OSError as exc:
            log.warning("spool not readable", error=repr(exc))
            return None

    async def _withdraw(self, name: str) -> bool:
        try:
            withdrawn = await asyncio.to_thread(withdraw_if_unstarted, self.paths, name)
        except OSError as exc:
            log.error("call file not withdrawn", call_file=name, error=repr(exc))
            return False
        if withdrawn:
            log.error("call file never started by asterisk: withdrawn", call_file=name)
        return withdrawn

    def _report(self) -> PresenceReport:
        error = self._problem()
        state = DialerHealth.CONNECTED if error is None else DialerHealth.DISCONNECTED
        return PresenceReport(self._settings.WORKER_ID, self.name, state.value, time.time(), error)
