"""`ttsqueue call --confirm/--machine-detection --wait`, run as an operator runs it, against a
real API and a simulator worker: the keys pressed and the answering machine verdict are shown,
and `ttsqueue stats` counts calls by outcome."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.live_stack import LiveStack
from ttsqueue.config import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

TTSQUEUE = Path(sys.executable).with_name("ttsqueue")


def ttsqueue(tmp: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TTSQ_")}
    env.update(TTSQ_VAR_DIR=str(tmp / "var"), COLUMNS="200", API_KEYS="")
    return subprocess.run(
        [str(TTSQUEUE), *args, "--api-url", url],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_places_calls_that_listen_and_shows_what_they_heard(
    settings: Settings, broker: Any, redis_client: Any, tmp_path: Path
) -> None:
    fast = settings.model_copy(update={"SIMULATOR_TIME_SCALE": 0.01})
    with LiveStack(fast, api=True, worker=True) as stack:
        confirmed = ttsqueue(
            tmp_path, stack.api_url, "call", "Su cita es mañana", "3005550004", "--confirm", "1",
            "--wait", "--timeout", "60",
        )  # fmt: skip
        assert confirmed.returncode == 0, confirmed
        assert "outcome=confirmed" in confirmed.stdout
        assert "keys=1 confirmed=yes" in confirmed.stdout
        machine = ttsqueue(
            tmp_path, stack.api_url, "call", "Aviso", "3005550005",
            "--machine-detection", "hangup", "--wait", "--timeout", "60",
        )  # fmt: skip
        assert machine.returncode == 1, machine  # failed: a machine, no message left
        assert "outcome=machine" in machine.stdout
        assert "amd=MACHINE/2600ms" in machine.stdout
        as_json = ttsqueue(
            tmp_path, stack.api_url, "call", "Aviso", "3005550006", "--confirm", "1",
            "--retry-unconfirmed", "--max-retries", "0", "--wait", "--json",
        )  # fmt: skip
        record = json.loads(as_json.stdout)
        assert (record["call"]["outcome"], record["retry_unconfirmed"]) == ("not_confirmed", True)
        assert record["status"] == "failed"
        refused = ttsqueue(tmp_path, stack.api_url, "call", "Aviso", "3005550004", "--confirm", "#")
        assert refused.returncode == 2, refused
        stats = ttsqueue(tmp_path, stack.api_url, "stats")
        assert "calls by outcome: confirmed=1, machine=1, not_confirmed=1" in stats.stdout, stats
