"""`./manage.sh check` installs what its tests need before it runs them: the RabbitMQ and Redis
server packages (the fault suite starts private nodes from them, wherever the configured
servers are) and the management plugin of a local RabbitMQ.

The script runs from a copy of the checkout's layout with recording fakes on PATH (dpkg,
apt-get, rabbitmq-plugins) and in .venv (ttsqueue, ruff, mypy, pytest), against ports this
test listens on, so nothing is installed and no test suite runs."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AS_ROOT = os.geteuid() == 0
FAKE = f"""#!{sys.executable}
import json, os, sys
name, args = os.path.basename(sys.argv[0]), sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps([name, *args]) + "\\n")
if name == "dpkg":
    sys.exit(0 if args[-1] in os.environ.get("FAKE_INSTALLED", "").split() else 1)
if name == "rabbitmq-plugins" and "is_enabled" in args:
    sys.exit(0 if os.environ.get("FAKE_PLUGIN_ENABLED") else 1)
if name == "rabbitmq-plugins" and "enable" in args:
    sys.exit(70 if os.environ.get("FAKE_PLUGIN_FAILS") else 0)
if name == "ttsqueue" and args == ["endpoints"]:
    print(os.environ["FAKE_ENDPOINTS"])
if name == "pytest":
    with open(os.environ["FAKE_LOG"] + ".pytest-env", "w") as env:
        json.dump({{k: os.environ.get(k) for k in ("ASTERISK_BIN", "ASTERISK_SRC")}}, env)
if name == "build-asterisk.sh":
    print("building from " + os.environ["ASTERISK_SRC"], file=sys.stderr)
    if os.environ.get("FAKE_BUILD_FAILS"):
        sys.exit(1)
    print(os.environ["FAKE_PREFIX"])
if name == "compose-ci.sh":
    sys.exit(1 if os.environ.get("FAKE_COMPOSE_FAILS") else 0)
"""
# Four test processes by default, a module's tests kept together.
PYTEST_ARGS = ["-q", "-p", "no:cacheprovider", "-n", "4", "--dist", "loadscope"]
EVERYTHING = (
    "espeak-ng sox libsndfile1 rabbitmq-server redis-server chromium docker-compose "
    "shellcheck systemd prometheus"
)


@dataclass
class Checkout:
    root: Path
    bin_dir: Path
    log: Path
    rabbit_port: int
    redis_port: int

    def check(self, rabbit_host: str = "127.0.0.1", **env: str) -> subprocess.CompletedProcess[str]:
        endpoints = f"rabbitmq {rabbit_host} {self.rabbit_port}\nredis 127.0.0.1 {self.redis_port}"
        return subprocess.run(
            [str(self.root / "manage.sh"), "check"],
            cwd=self.root,
            env={
                "PATH": f"{self.bin_dir}:/usr/bin:/bin",
                "HOME": str(self.root),
                "FAKE_LOG": str(self.log),
                "FAKE_ENDPOINTS": endpoints,
                **env,
            },
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=50,
            check=False,
        )

    def calls(self, name: str) -> list[list[str]]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [call[1:] for call in map(json.loads, lines) if call[0] == name]

    def order(self) -> list[str]:
        """Program names in the order they ran."""
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [json.loads(line)[0] for line in lines]

    def pytest_env(self) -> dict[str, str | None]:
        """ASTERISK_BIN / ASTERISK_SRC as pytest saw them; {} when pytest did not run."""
        path = Path(f"{self.log}.pytest-env")
        return dict(json.loads(path.read_text())) if path.exists() else {}

    def installed(self) -> list[str]:
        return [pkg for call in self.calls("apt-get") if "install" in call for pkg in call[4:]]


def fake(path: Path) -> None:
    path.write_text(FAKE)
    path.chmod(0o755)


def listener() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[Checkout]:
    root = tmp_path / "checkout"
    venv_bin = root / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    shutil.copy2(ROOT / "manage.sh", root / "manage.sh")
    shutil.copy2(ROOT / "pyproject.toml", root / "pyproject.toml")
    for name in ("python", "ttsqueue", "ruff", "mypy", "pytest"):
        fake(venv_bin / name)
    (root / "scripts").mkdir()
    fake(root / "scripts" / "build-asterisk.sh")
    fake(root / "scripts" / "compose-ci.sh")
    stamp = root / "var" / ".venv-installed"
    stamp.parent.mkdir()
    stamp.touch()
    mtime = (root / "pyproject.toml").stat().st_mtime + 10
    os.utime(stamp, (mtime, mtime))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("dpkg", "apt-get", "rabbitmq-plugins"):
        fake(bin_dir / name)
    # The "servers" are these two listening sockets: manage.sh only checks the ports.
    with listener() as rabbit, listener() as redis:
        yield Checkout(
            root,
            bin_dir,
            tmp_path / "calls.jsonl",
            rabbit.getsockname()[1],
            redis.getsockname()[1],
        )


def test_missing_servers_are_installed_and_the_management_plugin_enabled(
    checkout: Checkout,
) -> None:
    done = checkout.check(FAKE_INSTALLED="espeak-ng sox libsndfile1 chromium")
    assert done.returncode == 0, done.stderr
    if not AS_ROOT:
        assert "missing system packages" in done.stderr
        assert "rabbitmq-server" in done.stderr
        assert checkout.calls("apt-get") == checkout.calls("rabbitmq-plugins") == []
        return
    installed = checkout.installed()
    assert "rabbitmq-server" in installed
    assert "redis-server" in installed
    assert ["-q", "enable", "rabbitmq_management"] in checkout.calls("rabbitmq-plugins")
    # Installed and enabled first, then the tests.
    assert checkout.calls("pytest") == [PYTEST_ARGS]
    order = checkout.order()
    assert order.index("pytest") > max(
        i for i, name in enumerate(order) if name in ("apt-get", "rabbitmq-plugins")
    )


def test_nothing_to_do_when_everything_is_there(checkout: Checkout) -> None:
    done = checkout.check(FAKE_INSTALLED=EVERYTHING, FAKE_PLUGIN_ENABLED="1")
    assert done.returncode == 0, done.stderr
    assert checkout.calls("apt-get") == []
    plugin_calls = checkout.calls("rabbitmq-plugins")
    assert all("enable" not in call for call in plugin_calls)
    assert plugin_calls == ([["-q", "is_enabled", "rabbitmq_management"]] if AS_ROOT else [])


def test_a_plugin_that_cannot_be_enabled_is_a_warning(checkout: Checkout) -> None:
    done = checkout.check(FAKE_INSTALLED=EVERYTHING, FAKE_PLUGIN_FAILS="1")
    assert done.returncode == 0, done.stderr
    assert checkout.calls("pytest") == [PYTEST_ARGS]
    if AS_ROOT:
        assert "could not enable rabbitmq_management" in done.stderr


def test_a_remote_rabbitmq_gets_the_package_but_no_plugin_call(checkout: Checkout) -> None:
    # 192.0.2.1 (TEST-NET-1) answers nothing: manage.sh warns and goes on.
    done = checkout.check("192.0.2.1", FAKE_INSTALLED="espeak-ng sox libsndfile1 chromium")
    assert done.returncode == 0, done.stderr
    assert checkout.calls("rabbitmq-plugins") == []
    if AS_ROOT:
        assert "rabbitmq-server" in checkout.installed()


def test_without_an_asterisk_the_real_asterisk_tests_are_skipped_and_it_says_so(
    checkout: Checkout,
) -> None:
    done = checkout.check(FAKE_INSTALLED=EVERYTHING, FAKE_PLUGIN_ENABLED="1")
    assert done.returncode == 0, done.stderr
    assert "real-Asterisk tests: SKIPPED" in done.stderr
    assert "the real-Asterisk tests were SKIPPED" in done.stderr.splitlines()[-1]
    assert checkout.calls("build-asterisk.sh") == []
    assert checkout.pytest_env() == {"ASTERISK_BIN": None, "ASTERISK_SRC": None}


def test_ci_fails_when_the_real_asterisk_tests_would_be_skipped(checkout: Checkout) -> None:
    done = checkout.check(
        FAKE_INSTALLED=EVERYTHING, FAKE_PLUGIN_ENABLED="1", TTSQ_REQUIRE_ASTERISK="1"
    )
    assert done.returncode != 0
    assert "TTSQ_REQUIRE_ASTERISK=1 but neither ASTERISK_SRC nor ASTERISK_BIN" in done.stderr
    assert "check failed" in done.stderr


def test_asterisk_src_is_built_and_the_tests_get_its_binary(
    checkout: Checkout, tmp_path: Path
) -> None:
    tarball = tmp_path / "asterisk-22.10.1.tar.gz"
    tarball.write_bytes(b"not really")
    done = checkout.check(
        FAKE_INSTALLED=EVERYTHING,
        FAKE_PLUGIN_ENABLED="1",
        ASTERISK_SRC=str(tarball),
        FAKE_PREFIX="/cache/asterisk/abc",
    )
    assert done.returncode == 0, done.stderr
    assert f"building from {tarball}" in done.stderr
    assert "against /cache/asterisk/abc/sbin/asterisk" in done.stderr
    assert "SKIPPED" not in done.stderr
    env = checkout.pytest_env()
    assert env["ASTERISK_BIN"] == "/cache/asterisk/abc/sbin/asterisk"
    # Built before the tests ran.
    order = checkout.order()
    assert order.index("build-asterisk.sh") < order.index("pytest")


def test_a_failed_asterisk_build_fails_the_check(checkout: Checkout, tmp_path: Path) -> None:
    tarball = tmp_path / "asterisk-22.10.1.tar.gz"
    tarball.write_bytes(b"not really")
    done = checkout.check(
        FAKE_INSTALLED=EVERYTHING,
        FAKE_PLUGIN_ENABLED="1",
        ASTERISK_SRC=str(tarball),
        FAKE_BUILD_FAILS="1",
    )
    assert done.returncode != 0
    assert "could not build Asterisk" in done.stderr
    # The tests do not try the build again.
    assert checkout.pytest_env() == {"ASTERISK_BIN": None, "ASTERISK_SRC": None}


def test_asterisk_bin_is_used_as_given(checkout: Checkout) -> None:
    done = checkout.check(
        FAKE_INSTALLED=EVERYTHING, FAKE_PLUGIN_ENABLED="1", ASTERISK_BIN="/opt/ast/sbin/asterisk"
    )
    assert done.returncode == 0, done.stderr
    assert checkout.calls("build-asterisk.sh") == []
    assert checkout.pytest_env()["ASTERISK_BIN"] == "/opt/ast/sbin/asterisk"


def test_the_compose_stack_step_runs_after_the_tests_and_its_failure_fails_the_check(
    checkout: Checkout,
) -> None:
    done = checkout.check(FAKE_INSTALLED=EVERYTHING, FAKE_PLUGIN_ENABLED="1")
    assert done.returncode == 0, done.stderr
    order = checkout.order()
    assert order.count("compose-ci.sh") == 1
    assert order.index("compose-ci.sh") > order.index("pytest")
    failed = checkout.check(
        FAKE_INSTALLED=EVERYTHING, FAKE_PLUGIN_ENABLED="1", FAKE_COMPOSE_FAILS="1"
    )
    assert failed.returncode == 1
    assert "compose stack failed" in failed.stderr
    assert "check failed" in failed.stderr


def test_ci_requires_the_compose_stack_step() -> None:
    """`.ci/run` turns the step's skip (no Docker engine) into a failure."""
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert lines.index("export TTSQ_REQUIRE_COMPOSE=1") < lines.index("./manage.sh check")


def test_the_number_of_test_processes_can_be_chosen(checkout: Checkout) -> None:
    done = checkout.check(
        FAKE_INSTALLED=EVERYTHING, FAKE_PLUGIN_ENABLED="1", TTSQ_TEST_PROCESSES="0"
    )
    assert done.returncode == 0, done.stderr
    assert checkout.calls("pytest") == [[*PYTEST_ARGS[:3], "-n", "0", "--dist", "loadscope"]]
