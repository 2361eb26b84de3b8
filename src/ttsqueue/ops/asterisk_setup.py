"""Installing the Asterisk side (`deploy/asterisk/*.conf`) into an Asterisk configuration.

`ttsqueue asterisk-setup` (run by `./manage.sh setup` when /etc/asterisk exists) copies the
dialplan, writes the AMI user with the credentials of ASTERISK_AMI_USER / ASTERISK_AMI_SECRET
(readable by Asterisk only), adds one `#include` line to extensions.conf and manager.conf when
missing, and asks a running Asterisk to reload both. Idempotent: a second run changes nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ttsqueue.config import Settings

DIALPLAN = "extensions_tts.conf"
MANAGER = "manager_tts.conf"
_USER = re.compile(r"[A-Za-z0-9_.-]{1,64}")
RELOADS = (["asterisk", "-rx", "dialplan reload"], ["asterisk", "-rx", "manager reload"])

Runner = Callable[[list[str]], tuple[int, str]]


@dataclass(slots=True)
class SetupReport:
    done: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.warnings


def default_source() -> Path:
    """deploy/asterisk of the checkout (the working directory, else next to the package)."""
    candidates = [Path.cwd() / "deploy" / "asterisk"]
    candidates.append(Path(__file__).resolve().parents[3] / "deploy" / "asterisk")
    return next((c for c in candidates if c.is_dir()), candidates[0])


def run_command(argv: list[str]) -> tuple[int, str]:
    if shutil.which(argv[0]) is None:
        return 127, f"{argv[0]} not found"
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 1, str(exc)
    return done.returncode, (done.stdout + done.stderr).strip()


def _write_if_changed(path: Path, text: str, mode: int, owner: os.stat_result) -> bool:
    if path.is_file() and path.read_text() == text:
        return False
    staged = path.with_name(f".{path.name}.tmp")
    staged.write_text(text)
    staged.chmod(mode)
    if os.geteuid() == 0:
        os.chown(staged, owner.st_uid, owner.st_gid)
    os.replace(staged, path)
    return True


def _ensure_include(conf: Path, snippet: str, report: SetupReport) -> None:
    line = f"#include {snippet}"
    if not conf.is_file():
        report.warnings.append(f"{conf} not found: add `{line}` to it once it exists")
        return
    text = conf.read_text()
    if any(raw.strip() == line for raw in text.splitlines()):
        return
    conf.write_text(text + ("" if text.endswith("\n") else "\n") + f"\n{line}\n")
    report.done.append(f"added `{line}` to {conf}")


def _check_manager_enabled(conf: Path, report: SetupReport) -> None:
    if conf.is_file() and not re.search(r"(?im)^\s*enabled\s*=\s*yes\b", conf.read_text()):
        report.warnings.append(f"AMI is off: set `enabled = yes` in [general] of {conf}")


def _manager_text(template: str, settings: Settings, report: SetupReport) -> str | None:
    user, secret = settings.ASTERISK_AMI_USER, settings.ASTERISK_AMI_SECRET
    if not user or not secret:
        report.warnings.append(
            f"{MANAGER} not installed: set ASTERISK_AMI_USER and ASTERISK_AMI_SECRET "
            "(in .env) and run `ttsqueue asterisk-setup` again"
        )
        return None
    if (
        not _USER.fullmatch(user)
        or any(ch in secret for ch in "\r\n;[]")
        or secret != secret.strip()
    ):
        report.warnings.append(
            f"{MANAGER} not installed: ASTERISK_AMI_USER must be letters, digits, '.', '_', '-'; "
            "ASTERISK_AMI_SECRET must not contain line breaks, ';', '[', ']' or outer spaces"
        )
        return None
    return template.replace("@AMI_USER@", user).replace("@AMI_SECRET@", secret)


def install_snippets(
    settings: Settings,
    *,
    etc_dir: Path = Path("/etc/asterisk"),
    source: Path | None = None,
    reload: bool = True,
    run: Runner = run_command,
) -> SetupReport:
    report = SetupReport()
    source = source or default_source()
    if not etc_dir.is_dir():
        report.warnings.append(f"{etc_dir} not found: Asterisk is not installed here")
        return report
    owner = etc_dir.stat()
    dialplan = (source / DIALPLAN).read_text()
    if _write_if_changed(etc_dir / DIALPLAN, dialplan, 0o644, owner):
        report.done.append(f"installed {etc_dir / DIALPLAN}")
    manager = _manager_text((source / MANAGER).read_text(), settings, report)
    if manager is not None and _write_if_changed(etc_dir / MANAGER, manager, 0o640, owner):
        report.done.append(f"installed {etc_dir / MANAGER} (AMI user {settings.ASTERISK_AMI_USER})")
    _ensure_include(etc_dir / "extensions.conf", DIALPLAN, report)
    if manager is not None:
        _ensure_include(etc_dir / "manager.conf", MANAGER, report)
        _check_manager_enabled(etc_dir / "manager.conf", report)
    if reload and report.done:
        for argv in RELOADS:
            code, output = run(argv)
            target = report.done if code == 0 else report.warnings
            target.append(f"`{' '.join(argv)}`: {output or ('ok' if code == 0 else 'failed')}")
    return report
