"""`./manage.sh start` installs what the running system needs, `check` adds the test tools:
run from a copy of the checkout's layout with the recording fakes of test_manage_check."""

from __future__ import annotations

import json
import subprocess

from tests.deploy.test_manage_check import EVERYTHING, Checkout, checkout

__all__ = ["checkout"]


def run(checkout: Checkout, command: str) -> subprocess.CompletedProcess[str]:
    endpoints = f"rabbitmq 127.0.0.1 {checkout.rabbit_port}\nredis 127.0.0.1 {checkout.redis_port}"
    return subprocess.run(
        [str(checkout.root / "manage.sh"), command],
        cwd=checkout.root,
        env={
            "PATH": f"{checkout.bin_dir}:/usr/bin:/bin",
            "HOME": str(checkout.root),
            "FAKE_LOG": str(checkout.log),
            "FAKE_ENDPOINTS": endpoints,
            "FAKE_INSTALLED": EVERYTHING,
            "FAKE_PLUGIN_ENABLED": "1",
        },
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )


def pip_installs(checkout: Checkout) -> list[str]:
    return [call[-1] for call in checkout.calls("python") if call[:3] == ["-m", "pip", "install"]]


def test_start_installs_the_runtime_only_and_check_adds_the_dev_tools(
    checkout: Checkout,
) -> None:
    for stamp in (checkout.root / "var").glob(".venv-installed*"):
        stamp.unlink()
    started = run(checkout, "start")
    assert started.returncode == 0, started.stderr
    assert pip_installs(checkout) == ["."]
    assert checkout.calls("ttsqueue")[-1] == ["start"]
    checked = run(checkout, "check")
    assert checked.returncode == 0, checked.stderr
    assert pip_installs(checkout) == [".", ".[dev]"]
    # Both are remembered until pyproject.toml changes.
    run(checkout, "start")
    run(checkout, "check")
    assert pip_installs(checkout) == [".", ".[dev]"]


def test_every_command_byte_compiles_the_package_before_handing_over(checkout: Checkout) -> None:
    compile_call = ["python", "-m", "compileall", "-q", "src/ttsqueue"]
    for command in ("start", "status"):
        ran_before = len(checkout.order())
        done = run(checkout, command)
        assert done.returncode == 0, done.stderr
        lines = checkout.log.read_text().splitlines()[ran_before:]
        calls = [json.loads(line) for line in lines]
        assert calls.count(compile_call) == 1
        assert calls[-1] == ["ttsqueue", command]
