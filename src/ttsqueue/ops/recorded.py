"""The configuration recorded at `start`, reused by every process the supervisor starts later.

A person types `API_KEYS=k WORKER_CONCURRENCY=4 ./manage.sh start`, and later a plain
`./manage.sh scale 5`: the new workers must run with what `start` was given, not with the
defaults of a shell that no longer has those variables. So `start` writes every setting it
sees (from its environment, else from `.env`) into `var/run/config.json` (mode 0600: secrets
included; never logged or printed), and each later spawn builds its environment from that
record. Children are told, with `RECORDED_MARKER`, to ignore `.env` too: an edit there takes
effect at the next `stop` + `start` (or `restart`), like any other change.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

import orjson

from ttsqueue.addresses import env_value
from ttsqueue.config import RECORDED_MARKER, Settings

RECORD_MODE = 0o600


def setting_names() -> tuple[str, ...]:
    """Every variable the settings read (SPEC §9 and the product's own)."""
    return tuple(Settings.model_fields)


def effective_values(root: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """Each setting that has a value in `environ` or in `<root>/.env`, as text."""
    values = {}
    for name in setting_names():
        value = env_value(name, root, environ)
        if value is not None:
            values[name] = value
    return values


def write_record(path: Path, values: Mapping[str, str]) -> None:
    """Replace the record atomically; it is never readable by other users, not even briefly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, RECORD_MODE)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), RECORD_MODE)  # whatever the umask
        handle.write(orjson.dumps(dict(values), option=orjson.OPT_SORT_KEYS))
    tmp.replace(path)


def read_record(path: Path) -> dict[str, str] | None:
    try:
        raw = orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    if not isinstance(raw, dict):
        return None
    return {str(name): str(value) for name, value in raw.items()}


def drifted(recorded: Mapping[str, str], current: Mapping[str, str]) -> list[str]:
    """Names of the settings whose value differs between the record and `current` (names
    only: values may be secrets)."""
    names = set(recorded) | set(current)
    return sorted(name for name in names if recorded.get(name) != current.get(name))


def child_environment(base: Mapping[str, str], recorded: Mapping[str, str]) -> dict[str, str]:
    """`base` (PATH, HOME, locale...) without any setting of its own, plus the record."""
    names = set(setting_names())
    env = {name: value for name, value in base.items() if name not in names}
    env.update(recorded)
    env[RECORDED_MARKER] = "1"
    return env
