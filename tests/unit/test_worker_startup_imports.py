"""A worker loads at start only what every worker needs. The libraries of features that a
worker may never use wait for their first use: audio conversion (numpy, libsndfile, soxr) for
the first synthesis, the webhook client (httpx) for a worker with webhooks enabled, the
holiday tables for settings that name holidays. Each is a tenth of a second or so of the
start-up of every worker that `scale` adds or that restarts after a crash."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

DEFERRED = ("numpy", "soundfile", "soxr", "httpx", "holidays")


def _loaded_after(statement: str) -> set[str]:
    probe = f"import sys\n{statement}\nimport json\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return set(json.loads(done.stdout))


def test_the_worker_entry_point_loads_none_of_the_deferred_libraries() -> None:
    loaded = _loaded_after("import ttsqueue.worker.main")
    assert "ttsqueue.worker.pipeline" in loaded  # the probe imported the worker for real
    assert loaded.isdisjoint(DEFERRED), sorted(loaded & set(DEFERRED))


@pytest.mark.parametrize(
    ("statement", "library"),
    [
        ("import ttsqueue.tts.convert", "numpy"),
        ("import ttsqueue.webhooks.dispatcher", "httpx"),
        (
            "from ttsqueue.policy.closed_days import HolidayCalendar\n"
            "import datetime\nHolidayCalendar(('CO',)).holiday(datetime.date(2026, 1, 12))",
            "holidays",
        ),
    ],
)
def test_each_deferred_library_is_loaded_where_it_is_used(statement: str, library: str) -> None:
    assert library in _loaded_after(statement)
