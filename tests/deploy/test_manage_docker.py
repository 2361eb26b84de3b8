"""`TTSQ_MODE=docker ./manage.sh ...` mapped onto Docker Compose, observed through a fake
`docker` (and `docker-compose`) on PATH that records its arguments. The scripts run from a
copy of the checkout's layout, so a test's .env never touches the real checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECORDER = f"""#!{sys.executable}
import json, os, sys
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    log.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + "\\n")
if sys.argv[1:3] == ["compose", "version"] and os.environ.get("FAKE_NO_PLUGIN"):
    sys.exit(1)
"""


@dataclass
class Checkout:
    root: Path
    bin_dir: Path
    log: Path

    def run(
        self, *args: str, via_manage: bool = True, **env: str
    ) -> subprocess.CompletedProcess[str]:
        script = "manage.sh" if via_manage else "deploy/docker/manage-docker.sh"
        return subprocess.run(
            [str(self.root / script), *args],
            cwd=self.root,
            env={
                "PATH": f"{self.bin_dir}:/usr/bin:/bin",
                "HOME": str(self.root),
                "TTSQ_MODE": "docker",
                "FAKE_DOCKER_LOG": str(self.log),
                **env,
            },
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def compose_calls(self) -> list[list[str]]:
        """What reached Compose, as `compose <args>` whichever program received it."""
        found = []
        for call in self.calls():
            if call[0] == "docker" and call[1:2] == ["compose"]:
                call = call[1:]
            elif call[0] == "docker-compose":
                call = ["compose", *call[1:]]
            if call[1:2] != ["version"]:
                found.append(call[1:])
        return found


def fake(bin_dir: Path, name: str) -> None:
    path = bin_dir / name
    path.write_text(RECORDER)
    path.chmod(0o755)


@pytest.fixture
def checkout(tmp_path: Path) -> Checkout:
    root = tmp_path / "checkout"
    (root / "deploy" / "docker").mkdir(parents=True)
    shutil.copy2(ROOT / "manage.sh", root / "manage.sh")
    shutil.copy2(ROOT / "deploy/docker/manage-docker.sh", root / "deploy/docker/manage-docker.sh")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake(bin_dir, "docker")
    return Checkout(root, bin_dir, tmp_path / "docker-calls.jsonl")


def test_start_builds_and_starts_workers_count(checkout: Checkout) -> None:
    done = checkout.run("start", WORKERS="4")
    assert done.returncode == 0, done.stderr
    assert checkout.compose_calls() == [["up", "-d", "--build", "--scale", "tts-worker=4"]]
    assert "http://localhost:5000" in done.stderr
    assert "http://localhost:8080" in done.stderr


def test_start_reads_workers_from_dotenv_and_the_option_wins(checkout: Checkout) -> None:
    (checkout.root / ".env").write_text("WORKERS='2'\nAPI_PUBLISH_PORT=5100\n")
    assert checkout.run("start").returncode == 0
    assert checkout.run("start", "-w", "6").returncode == 0
    assert checkout.run("start", "--workers=0").returncode == 0
    scales = [call[-1] for call in checkout.compose_calls()]
    assert scales == ["tts-worker=2", "tts-worker=6", "tts-worker=0"]
    assert "http://localhost:5100" in checkout.run("start").stderr


def test_scale_changes_only_the_workers(checkout: Checkout) -> None:
    assert checkout.run("scale", "5").returncode == 0
    assert checkout.compose_calls() == [
        ["up", "-d", "--no-recreate", "--scale", "tts-worker=5", "tts-worker"]
    ]


@pytest.mark.parametrize(
    "args", [("scale",), ("scale", "many"), ("scale", "-1"), ("start", "-w", "x")]
)
def test_bad_counts_are_refused_before_compose_runs(
    checkout: Checkout, args: tuple[str, ...]
) -> None:
    done = checkout.run(*args)
    assert done.returncode == 2
    assert checkout.compose_calls() == []


def test_stop_status_and_logs(checkout: Checkout) -> None:
    for args in (("stop",), ("status",), ("logs",), ("logs", "worker", "api"), ("logs", "redis")):
        assert checkout.run(*args).returncode == 0, args
    assert checkout.compose_calls() == [
        ["stop"],
        ["ps"],
        ["logs", "-f", "--tail=200"],
        ["logs", "-f", "--tail=200", "tts-worker", "tts-api"],
        ["logs", "-f", "--tail=200", "redis"],
    ]


def test_job_status_test_and_other_commands_run_in_the_api_container(checkout: Checkout) -> None:
    for args in (("status", "abc-123"), ("test",), ("config", "--json")):
        assert checkout.run(*args).returncode == 0, args
    assert checkout.compose_calls() == [
        ["exec", "-T", "tts-api", "ttsqueue", "status", "abc-123"],
        ["exec", "-T", "tts-api", "ttsqueue", "test"],
        ["exec", "-T", "tts-api", "ttsqueue", "config", "--json"],
    ]


def test_clean_needs_consent(checkout: Checkout) -> None:
    refused = checkout.run("clean")
    assert refused.returncode == 2
    assert "-y" in refused.stderr
    assert checkout.compose_calls() == []
    assert checkout.run("clean", "-y", "--queues").returncode == 0
    assert checkout.compose_calls() == [["down", "--volumes", "--remove-orphans"]]


def test_docker_compose_v1_is_used_when_the_plugin_is_missing(checkout: Checkout) -> None:
    fake(checkout.bin_dir, "docker-compose")
    assert checkout.run("stop", FAKE_NO_PLUGIN="1").returncode == 0
    programs = [call[0] for call in checkout.calls()]
    assert programs == ["docker", "docker-compose"]  # the failed probe, then the real call
    assert checkout.compose_calls() == [["stop"]]


def test_missing_compose_is_a_clear_error(checkout: Checkout, tmp_path: Path) -> None:
    (checkout.bin_dir / "docker").unlink()
    tools = tmp_path / "tools"  # what the script needs, and no docker of the machine's
    tools.mkdir()
    for tool in ("bash", "env", "dirname", "sed", "tail", "tr"):
        found = shutil.which(tool)
        assert found is not None
        os.symlink(found, tools / tool)
    done = checkout.run("status", via_manage=False, PATH=f"{checkout.bin_dir}:{tools}")
    assert done.returncode == 1
    assert "Docker Compose not found" in done.stderr


def test_help_and_native_mode_do_not_touch_docker(checkout: Checkout) -> None:
    done = checkout.run("help")
    assert done.returncode == 0
    assert "TTSQ_MODE=docker" in done.stdout
    native = checkout.run("help", TTSQ_MODE="native")
    assert native.returncode == 0
    assert "Usage: ./manage.sh" in native.stdout
    assert checkout.calls() == []
