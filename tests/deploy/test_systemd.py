"""deploy/systemd: the units parse cleanly for systemd itself, keep their promises (graceful
stop, restart on failure, a dedicated user, hardening) and create the user they run as."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS_DIR = ROOT / "deploy" / "systemd"
SERVICES = ("tts-api.service", "tts-dashboard.service", "tts-worker@.service")
INSTALL_PREFIX = "/opt/tts-queue"

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze not found (Debian package systemd)",
)


def directives(unit: str) -> dict[str, list[str]]:
    """`Section.Key` -> every value, in order (systemd allows repeated keys)."""
    found: dict[str, list[str]] = {}
    section = ""
    for raw in (UNITS_DIR / unit).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return found


def seconds(value: str) -> float:
    """systemd time spans used here: `90`, `90s`, `2min`, `1min 30s`."""
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(number) * units[unit]
    return total


def local_copies(tmp_path: Path) -> Path:
    """The units with the install prefix pointed at this checkout, so that systemd finds the
    executable they start (`verify` checks it)."""
    for unit in UNITS_DIR.iterdir():
        if unit.suffix in (".service", ".target"):
            text = unit.read_text().replace(INSTALL_PREFIX, str(ROOT))
            (tmp_path / unit.name).write_text(text)
    return tmp_path


@needs_systemd_analyze
def test_units_verify_without_a_warning(tmp_path: Path) -> None:
    if not (ROOT / ".venv" / "bin" / "ttsqueue").exists():
        pytest.skip(".venv/bin/ttsqueue is missing: run ./manage.sh setup")
    units = local_copies(tmp_path)
    names = ["tts-api.service", "tts-dashboard.service", "tts-worker@1.service", "tts-queue.target"]
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *names],
        cwd=units,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    # Unknown keys and unparsable values are only warnings for systemd: none is accepted.
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ""


@needs_systemd_analyze
@pytest.mark.parametrize("instance", ["tts-api.service", "tts-worker@1.service"])
def test_hardening_exposure_is_low(tmp_path: Path, instance: str) -> None:
    units = local_copies(tmp_path)
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=25", "--no-pager", instance],
        cwd=units,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    level = re.search(r"Overall exposure level for \S+: ([\d.]+)", done.stdout)
    assert level is not None, done.stdout + done.stderr
    assert float(level.group(1)) <= 2.5
    assert done.returncode == 0


@pytest.mark.parametrize("unit", SERVICES)
def test_services_stop_gracefully_and_restart_on_failure(unit: str) -> None:
    found = directives(unit)
    assert found["Service.Restart"] == ["on-failure"]
    assert found["Service.KillSignal"] == ["SIGTERM"]
    assert seconds(found["Service.TimeoutStopSec"][-1]) >= 30
    assert found["Service.EnvironmentFile"] == ["/etc/tts-queue/tts-queue.env"]
    assert found["Service.User"] == ["ttsq"]
    assert found["Service.ExecStart"][0].startswith(f"{INSTALL_PREFIX}/.venv/bin/ttsqueue ")
    assert found["Install.WantedBy"] == ["tts-queue.target"]


@pytest.mark.parametrize("unit", SERVICES)
def test_services_are_hardened(unit: str) -> None:
    found = directives(unit)
    assert found["Service.NoNewPrivileges"] == ["yes"]
    assert found["Service.ProtectSystem"] == ["strict"]
    assert found["Service.PrivateTmp"] == ["yes"]
    assert found["Service.CapabilityBoundingSet"] == [""]


def test_worker_instances_get_their_id_and_write_access() -> None:
    found = directives("tts-worker@.service")
    assert "WORKER_ID=%H-w%i" in found["Service.Environment"]
    writable = " ".join(found["Service.ReadWritePaths"]).split()
    assert {"-/var/spool/asterisk", "-/var/lib/asterisk/sounds/tts"} <= set(writable)
    assert found["Service.StateDirectory"] == ["tts-queue"]
    # The worker's own grace for in-flight calls is 25 s: systemd must wait longer.
    assert seconds(found["Service.TimeoutStopSec"][-1]) >= 45
    env = (UNITS_DIR / "tts-queue.env").read_text()
    assert not re.search(r"(?m)^\s*WORKER_ID\s*=", env)
    assert re.search(r"(?m)^AUDIO_DIR=/var/lib/tts-queue/", env)


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="systemd-sysusers not found")
def test_sysusers_file_creates_the_service_user(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}", str(UNITS_DIR / "tts-queue.sysusers")],
        check=True,
        capture_output=True,
        timeout=30,
    )
    entry = next(
        line.split(":")
        for line in (tmp_path / "etc" / "passwd").read_text().splitlines()
        if line.startswith("ttsq:")
    )
    assert int(entry[2]) > 0  # not root
    assert entry[5:] == ["/var/lib/tts-queue", "/usr/sbin/nologin"]
