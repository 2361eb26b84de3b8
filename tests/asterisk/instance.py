"""A private Asterisk for one test (or one module): own config tree, AMI port, spool and logs.

    with PrivateAsterisk(find_asterisk()) as pbx:
        settings.model_copy(update=pbx.ami_settings())       # or pbx.callfile_settings()
        pbx.cli("core show channels concise")
        pbx.rings()                                            # dials, from Asterisk's own log

Everything lives in a short temp dir (`/tmp/ttsq-ast-XXXX`: the control socket's path must stay
under the 108 bytes a Unix socket allows): `etc/` (asterisk.conf points every directory into
the tree except the modules and the XML docs of the install), `spool/` (`outgoing/`,
`outgoing_done/`), `sounds/` (the fake phones' audio), `log/full` (verbose 3, NOTICE lines of
the fake phones), `run/` (pid and control socket). The dialplan and the AMI user are
installed the way operators install them: `ttsqueue.ops.asterisk_setup.install_snippets`
copies `deploy/asterisk/extensions_tts.conf` unchanged and writes `manager_tts.conf` from its
template, next to the fake phones (`fake_phones.py`).

Asterisk runs in the foreground (`-f`) as a child of the test process, in its own session:
`stop()` asks for `core stop now` and waits; `close()` (the context manager's exit, also after
a failed test) kills whatever is left and removes the tree. Several instances can run at once.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.asterisk.fake_phones import CHANNEL_TEMPLATE, dialplan
from tests.asterisk.install import AsteriskInstall
from tests.asterisk.sounds import write_sounds
from tests.ports import free_port
from ttsqueue.config import DialerName, Settings
from ttsqueue.ops.asterisk_setup import install_snippets

DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "asterisk"
BOOT_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
_RING = re.compile(r"\] NOTICE\[[^ ]* Ext\. \d+: FAKE-PHONE rings number=(\d+) call=(\S*)")

_live: set[PrivateAsterisk] = set()


# Unwanted even where installed (BUILD.md), and, for an Asterisk from a distribution with all
# its modules, the channel drivers that listen on fixed ports: instances run side by side.
NOLOAD = (
    "res_config_sqlite3.so",
    "res_musiconhold.so",
    "chan_iax2.so",
    "chan_mgcp.so",
    "chan_skinny.so",
    "chan_unistim.so",
    "chan_ooh323.so",
    "pbx_dundi.so",
)


def _modules_conf() -> str:
    return "[modules]\nautoload = yes\n" + "".join(f"noload = {name}\n" for name in NOLOAD)


class PrivateAsterisk:
    def __init__(
        self,
        install: AsteriskInstall,
        *,
        ami_user: str = "tts",
        ami_secret: str | None = None,
        name: str = "ttsq-ast-",
    ) -> None:
        self.install = install
        self.install_source = DEPLOY_DIR
        self.root = Path(tempfile.mkdtemp(prefix=name, dir="/tmp"))
        self.etc = self.root / "etc"
        self.spool = self.root / "spool"
        self.sounds = self.root / "sounds"
        self.logs = self.root / "log"
        self.run_dir = self.root / "run"
        self.log_path = self.logs / "full"
        self.ami_port = free_port()
        self.ami_user = ami_user
        self.ami_secret = ami_secret or secrets.token_hex(12)
        self.starts = 0
        self._popen: subprocess.Popen[bytes] | None = None
        self._write_tree()

    # --- configuration ---------------------------------------------------------------------

    @property
    def conf(self) -> Path:
        return self.etc / "asterisk.conf"

    def _directories(self) -> str:
        dirs = {
            "astetcdir": self.etc,
            "astmoddir": self.install.moddir,
            "astvarlibdir": self.root / "lib",
            "astdbdir": self.root / "lib",
            "astkeydir": self.root / "lib",
            "astdatadir": self.install.datadir,
            "astagidir": self.root / "lib" / "agi-bin",
            "astspooldir": self.spool,
            "astrundir": self.run_dir,
            "astlogdir": self.logs,
        }
        return "".join(f"{key} => {value}\n" for key, value in dirs.items())

    def _write_tree(self) -> None:
        for directory in (
            self.etc,
            self.spool / "outgoing",
            self.spool / "outgoing_done",
            self.logs / "cdr-csv",
            self.run_dir,
            self.root / "lib" / "agi-bin",
        ):
            directory.mkdir(parents=True, exist_ok=True)
        write_sounds(self.sounds)
        files = {
            "asterisk.conf": (
                "[directories]\n" + self._directories() + "\n[options]\nverbose = 3\n"
                "documentation_language = en_US\n"
                # Silence is sent only when a file plays it (see sounds.py).
                "transmit_silence = no\n"
            ),
            "modules.conf": _modules_conf(),
            "logger.conf": (
                "[general]\ndateformat = %F %T.%3q\n\n"
                "[logfiles]\nfull => notice,warning,error,verbose(3),dtmf\n"
            ),
            "manager.conf": (
                f"[general]\nenabled = yes\nport = {self.ami_port}\nbindaddr = 127.0.0.1\n"
            ),
            "extensions.conf": (
                "[general]\nstatic = yes\nwriteprotect = yes\n\n" + dialplan(str(self.sounds))
            ),
            "cdr.conf": "[general]\nenable = yes\n\n[csv]\nloguniqueid = yes\n",
        }
        for name, text in files.items():
            (self.etc / name).write_text(text)
        for sample in ("amd.conf", "indications.conf"):
            # app_amd does not load without amd.conf; indications.conf names the tones.
            sample_text = self.install.sample(sample)
            if sample_text is not None:
                (self.etc / sample).write_text(sample_text)
        self._install_project_snippets()

    def _install_project_snippets(self) -> None:
        """deploy/asterisk as `ttsqueue asterisk-setup` installs it (dialplan unchanged)."""
        settings = Settings.model_construct(
            ASTERISK_AMI_USER=self.ami_user, ASTERISK_AMI_SECRET=self.ami_secret
        )
        report = install_snippets(settings, etc_dir=self.etc, source=DEPLOY_DIR, reload=False)
        if not report.ok:
            raise RuntimeError(f"asterisk-setup into {self.etc}: {report.warnings}")

    # --- running ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self.running and self._popen is not None else None

    def start(self, timeout: float = BOOT_TIMEOUT_S) -> None:
        if self.running:
            return
        out = (self.logs / "stdout").open("ab")
        with out:
            self._popen = subprocess.Popen(
                [str(self.install.binary), "-f", "-C", str(self.conf)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _live.add(self)
        self.starts += 1
        self._wait_booted(timeout)

    def _wait_booted(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise RuntimeError(f"Asterisk exited at start: {self._tail()}")
            done = self._remote("core waitfullybooted", timeout=max(1.0, timeout))
            if done.returncode == 0:  # the AMI listener is up before this
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"Asterisk not fully booted in {timeout}s: {self._tail()}")
            time.sleep(0.1)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """`core stop now` (channels hung up at once), then wait for the process to end."""
        if not self.running or self._popen is None:
            return
        self._remote("core stop now", timeout=10)
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self._popen is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        try:
            self.stop(timeout=10)
        finally:
            self.kill()
            _live.discard(self)
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PrivateAsterisk:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- asking Asterisk -------------------------------------------------------------------

    def _remote(self, command: str, timeout: float) -> subprocess.CompletedProcess[str]:
        argv = [str(self.install.binary), "-C", str(self.conf), "-rx", command]
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(argv, 124, "", f"{command}: timed out")

    def cli(self, command: str, timeout: float = 15.0) -> str:
        """A CLI command through the control socket (`asterisk -rx`)."""
        done = self._remote(command, timeout)
        if done.returncode != 0:
            raise RuntimeError(f"asterisk -rx {command!r}: {done.stdout}{done.stderr}")
        return done.stdout

    def channels(self) -> list[list[str]]:
        """`core show channels concise`: one `!`-separated row per live channel."""
        rows = self.cli("core show channels concise").splitlines()
        return [row.split("!") for row in rows if "!" in row]

    def live_calls(self) -> list[str]:
        """Calls to the fake phones now: a Local call is two channels, counted once (`;1`)."""
        names = [row[0] for row in self.channels()]
        return [name for name in names if name.startswith("Local/") and name.endswith(";1")]

    def calls_not_hung_up(self) -> list[str]:
        """`live_calls` less those already hung up and running the `h` extension.

        `core show channels` reads Asterisk's channel snapshot cache, which drops a channel
        only once its last snapshot has gone through the message bus, after the channel itself
        is destroyed. Under load a call that has ended (its call file already archived, which
        pbx_spool does after hanging the channel up) can still be listed there, last seen in
        `h`, next to the call that took its line."""
        return [
            row[0]
            for row in self.channels()
            if row[0].startswith("Local/")
            and row[0].endswith(";1")
            and (len(row) < 3 or row[2] != "h")
        ]

    def playing_calls(self) -> list[str]:
        """Live calls answered and playing the message: `;1` legs Up in Playback()."""
        return [
            row[0]
            for row in self.channels()
            if row[0].startswith("Local/")
            and row[0].endswith(";1")
            and len(row) > 5
            and (row[4], row[5]) == ("Up", "Playback")
        ]

    def ami_sessions(self) -> list[str]:
        rows = self.cli("manager show connected").splitlines()
        return [row for row in rows if row.split()[:1] == [self.ami_user]]

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def rings(self) -> collections.Counter[str]:
        """Dials per TTS_CALL_ID, from Asterisk's own log (one line per fake-phone dial)."""
        return collections.Counter(m.group(2) for m in _RING.finditer(self.log_text()))

    def rings_by_number(self) -> collections.Counter[str]:
        return collections.Counter(m.group(1) for m in _RING.finditer(self.log_text()))

    def _tail(self, lines: int = 30) -> str:
        text = self.log_text() or (self.logs / "stdout").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    # --- what workers need -----------------------------------------------------------------

    def ami_settings(self, **extra: Any) -> dict[str, Any]:
        return {
            "DIALER": DialerName.AMI,
            "ASTERISK_AMI_HOST": "127.0.0.1",
            "ASTERISK_AMI_PORT": self.ami_port,
            "ASTERISK_AMI_USER": self.ami_user,
            "ASTERISK_AMI_SECRET": self.ami_secret,
            "ASTERISK_CHANNEL": CHANNEL_TEMPLATE,
            **extra,
        }

    def callfile_settings(self, **extra: Any) -> dict[str, Any]:
        return {
            "DIALER": DialerName.CALLFILE,
            "ASTERISK_SPOOL_DIR": self.spool,
            "ASTERISK_CHANNEL": CHANNEL_TEMPLATE,
            **extra,
        }

    def settings_for(self, backend: str, **extra: Any) -> dict[str, Any]:
        if backend == "ami":
            return self.ami_settings(**extra)
        if backend == "callfile":
            return self.callfile_settings(**extra)
        raise ValueError(f"unknown backend {backend!r}")

    def worker_env(self, backend: str) -> dict[str, str]:
        """The same, as environment variables for a worker process."""
        return {key: str(value) for key, value in self.settings_for(backend).items()}


def close_all() -> None:
    """Last resort (session end, interpreter exit): no instance outlives the test run."""
    for pbx in list(_live):
        pbx.close()


atexit.register(close_all)
