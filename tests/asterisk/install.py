"""Which Asterisk the real-Asterisk tests run: `ASTERISK_BIN`, or one built from `ASTERISK_SRC`.

- `ASTERISK_BIN=/path/to/sbin/asterisk`: that binary, with its modules and data directory
  found next to it (`<prefix>/lib/asterisk/modules`, `<prefix>/var/lib/asterisk`; override with
  `ASTERISK_MODDIR` / `ASTERISK_DATADIR` for a distribution's layout).
- `ASTERISK_SRC=<asterisk-X.tar.gz>`: `scripts/build-asterisk.sh` builds it into the cache
  (or finds it there at once) and prints the prefix.
- neither: no Asterisk. The tests skip, unless `TTSQ_REQUIRE_ASTERISK=1` (CI) makes that a
  failure.
"""

from __future__ import annotations

import functools
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "scripts" / "build-asterisk.sh"
# The build prints progress for a minute or two the first time; the cache makes it instant.
BUILD_TIMEOUT_S = 1800


class AsteriskUnavailable(RuntimeError):
    """No Asterisk to run: the message says which variable to set."""


@dataclass(frozen=True, slots=True)
class AsteriskInstall:
    binary: Path
    moddir: Path  # astmoddir: the loadable modules
    datadir: Path  # astdatadir: the XML documentation some modules need at load time
    samples: Path | None  # the sample configs (amd.conf, indications.conf, ...), when known

    def sample(self, name: str) -> str | None:
        path = self.samples / f"{name}.sample" if self.samples else None
        return path.read_text() if path is not None and path.is_file() else None


def required() -> bool:
    """CI sets TTSQ_REQUIRE_ASTERISK=1: a missing Asterisk is then a failure, not a skip."""
    return os.environ.get("TTSQ_REQUIRE_ASTERISK", "") not in {"", "0", "false", "no"}


def _from_prefix(binary: Path) -> AsteriskInstall:
    prefix = binary.resolve().parent.parent
    moddir = Path(os.environ.get("ASTERISK_MODDIR") or prefix / "lib" / "asterisk" / "modules")
    datadir = Path(os.environ.get("ASTERISK_DATADIR") or prefix / "var" / "lib" / "asterisk")
    for name, path in (("ASTERISK_MODDIR", moddir), ("ASTERISK_DATADIR", datadir)):
        if not path.is_dir():
            raise AsteriskUnavailable(f"{path} not found: set {name} for {binary}")
    samples = prefix / "share-samples"
    return AsteriskInstall(binary, moddir, datadir, samples if samples.is_dir() else None)


def _build(source: str) -> Path:
    try:
        done = subprocess.run(
            [str(BUILD_SCRIPT)],
            env={**os.environ, "ASTERISK_SRC": source},
            stdout=subprocess.PIPE,
            stderr=None,  # the build's progress goes to the terminal
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise AsteriskUnavailable(f"building Asterisk from {source} took too long") from None
    if done.returncode != 0:
        raise AsteriskUnavailable(f"scripts/build-asterisk.sh failed for {source}")
    return Path(done.stdout.strip().splitlines()[-1]) / "sbin" / "asterisk"


@functools.cache
def find_asterisk() -> AsteriskInstall:
    """The Asterisk to test against; `AsteriskUnavailable` says why there is none."""
    binary = os.environ.get("ASTERISK_BIN", "")
    source = os.environ.get("ASTERISK_SRC", "")
    if binary:
        path = Path(binary)
    elif source:
        path = _build(source)
    else:
        raise AsteriskUnavailable(
            "no Asterisk: set ASTERISK_SRC to a source tarball "
            "(../shared/asterisk/src/asterisk-22.10.1.tar.gz) or ASTERISK_BIN to a binary"
        )
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise AsteriskUnavailable(f"ASTERISK_BIN: {path} is not an executable file")
    return _from_prefix(path)
