"""Logs: one JSON object per line with the job context bound, or console text."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from tests.conftest import make_settings
from ttsqueue.logs import configure_logging, get_logger


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()


def test_json_lines_carry_the_bound_context(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(
        make_settings(tmp_path, LOG_FORMAT="json", LOG_LEVEL="INFO"), process="worker"
    )
    structlog.contextvars.bind_contextvars(job_id="j-1", worker_id="w-1", attempt=2)
    get_logger("ttsqueue.test").info("originating call", call_id="c-1")
    logging.getLogger("ttsqueue.plain").warning("from the standard library")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    first, second = lines
    assert first["event"] == "originating call"
    assert (first["job_id"], first["worker_id"], first["attempt"]) == ("j-1", "w-1", 2)
    assert first["process"] == "worker"
    assert first["level"] == "info"
    assert "timestamp" in first
    assert second["event"] == "from the standard library"
    assert second["job_id"] == "j-1"


def test_console_format_is_for_people(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(
        make_settings(tmp_path, LOG_FORMAT="console", LOG_LEVEL="INFO"), process="api"
    )
    get_logger("ttsqueue.test").info("api ready", port=5000)
    line = capsys.readouterr().err.strip()
    assert "api ready" in line
    assert "port=5000" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_level_filters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(
        make_settings(tmp_path, LOG_FORMAT="json", LOG_LEVEL="WARNING"), process="worker"
    )
    get_logger("ttsqueue.test").info("hidden")
    get_logger("ttsqueue.test").warning("shown")
    events = [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines()]
    assert events == ["shown"]
