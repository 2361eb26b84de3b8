"""scripts/compose-ci.sh decides whether it can run: without a Docker engine it skips with a
plain message under `./manage.sh check`, and fails when CI requires it (TTSQ_REQUIRE_COMPOSE=1).
The real run (images, stack, calls through Asterisk) is the step itself, not a test here."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "compose-ci.sh"
PACKAGES = ("docker.io", "docker-compose", "debootstrap")


def missing_packages() -> list[str]:
    return [
        pkg
        for pkg in PACKAGES
        if subprocess.run(["dpkg", "-s", pkg], capture_output=True, check=False).returncode != 0
    ]


def run_script(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    silent = tmp_path / "docker"
    silent.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    silent.chmod(0o755)
    return subprocess.run(
        [str(SCRIPT)],
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "TMPDIR": str(tmp_path),
            "TTSQ_DOCKER_CLIENT": str(silent),  # a client that finds no engine
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_an_engine_the_step_is_skipped_with_a_plain_message(tmp_path: Path) -> None:
    done = run_script(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "==> compose: skipped:" in done.stderr
    reason = "not installed" if missing_packages() else "no Docker engine answers"
    assert reason in done.stderr
    assert list(tmp_path.glob("ttsq-compose.*")) == []  # its work directory is gone


def test_when_required_a_skip_is_a_failure(tmp_path: Path) -> None:
    if missing_packages():
        pytest.skip(f"{missing_packages()} not installed (manage.sh check installs them for CI)")
    done = run_script(tmp_path, TTSQ_REQUIRE_COMPOSE="1", TTSQ_DOCKERD=str(tmp_path / "no-dockerd"))
    assert done.returncode == 1
    assert "cannot be started (TTSQ_REQUIRE_COMPOSE=1: the step must run)" in done.stderr
    assert "skipped" not in done.stderr
    assert list(tmp_path.glob("ttsq-compose.*")) == []
