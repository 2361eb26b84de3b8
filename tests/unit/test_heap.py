"""Start-up objects leave the collector's full passes (heap.py), checked in a fresh process
each: freezing in the test process would keep other tests' garbage for good."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(120)

# After the API process's own factory: how many objects start-up left for good, and how many a
# full collection still walks.
PROBE = """
import gc, json
from ttsqueue.api.app import app_from_environment
app = app_from_environment()
print(json.dumps({"frozen": gc.get_freeze_count(), "walked": len(gc.get_objects())}))
"""


def probe(env_extra: dict[str, str]) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=100,
        env={"PATH": "/usr/bin:/bin", "LOG_LEVEL": "WARNING", **env_extra},
        check=True,
    )
    result: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_api_factory_leaves_a_full_collection_little_to_walk() -> None:
    counts = probe({})
    # FastAPI's routes and pydantic's schemas: tens of thousands of objects at start-up.
    assert counts["frozen"] > 20_000
    assert counts["walked"] < counts["frozen"] / 10
