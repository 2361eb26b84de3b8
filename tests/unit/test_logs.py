"""Logs: one JSON object per line with the job context bound, or console text."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from tests.conftest import make_settings
from ttsqueue.logs import LevelFirstLogger, configure_logging, configured_secrets, get_logger


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


def test_events_below_the_level_are_dropped_before_they_are_processed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker at WARNING calls log.info on every job: nothing of such a line is built."""
    configure_logging(
        make_settings(tmp_path, LOG_FORMAT="json", LOG_LEVEL="WARNING"), process="worker"
    )
    stamped: list[str] = []
    stamp = structlog.processors.TimeStamper.__call__

    def counting_stamp(
        self: structlog.processors.TimeStamper,
        logger: object,
        name: str,
        event_dict: structlog.types.EventDict,
    ) -> structlog.types.EventDict:
        stamped.append(str(event_dict["event"]))
        return stamp(self, logger, name, event_dict)

    monkeypatch.setattr(structlog.processors.TimeStamper, "__call__", counting_stamp)
    log = get_logger("ttsqueue.test")
    log.debug("hidden")
    log.info("hidden too", job_id="j-1")
    log.warning("shown")
    assert stamped == ["shown"]
    events = [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines()]
    assert events == ["shown"]


def test_info_and_debug_below_the_level_return_before_the_event_is_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The level is asked first, and it is the standard library's at that moment: lowered
    later, info lines appear."""
    configure_logging(
        make_settings(tmp_path, LOG_FORMAT="json", LOG_LEVEL="WARNING"), process="worker"
    )
    made: list[str] = []
    proxy = LevelFirstLogger._proxy_to_logger

    def counting_proxy(
        self: LevelFirstLogger, method_name: str, event: str | None = None, *args: str, **kw: Any
    ) -> Any:
        made.append(method_name)
        return proxy(self, method_name, event, *args, **kw)

    monkeypatch.setattr(LevelFirstLogger, "_proxy_to_logger", counting_proxy)
    log = get_logger("ttsqueue.test")
    log.debug("hidden")
    log.info("hidden too", job_id="j-1")
    log.warning("shown")
    assert made == ["warning"]
    logging.getLogger().setLevel(logging.INFO)
    log.info("shown once the level is lower")
    log.debug("still hidden")
    assert made == ["warning", "info"]
    events = [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines()]
    assert events == ["shown", "shown once the level is lower"]


SECRETS = {
    "API_KEYS": "key-alpha-7f3e,key-beta-91c2",
    "RABBITMQ_URL": "amqp://tts:rabbit-pw-4d1a@rabbit:5672/",
    "REDIS_URL": "redis://:redis-pw-8b2c@redis:6379/0",
    "ASTERISK_AMI_SECRET": "ami-secret-5e6f",
    "WEBHOOK_SECRET": "whsec-0a9b",
    "DASHBOARD_PASSWORD": "dash-pw-3c7d",
}
SECRET_VALUES = [
    "key-alpha-7f3e",
    "key-beta-91c2",
    "rabbit-pw-4d1a",
    "redis-pw-8b2c",
    "ami-secret-5e6f",
    "whsec-0a9b",
    "dash-pw-3c7d",
]


def _log_every_secret_everywhere() -> None:
    log = get_logger("ttsqueue.test")
    for secret in SECRET_VALUES:
        log.warning(f"message text {secret}")
        log.warning("in a field", value=secret, nested={"deep": [("tuple", secret)]})
        log.warning("in an object", obj=ValueError(f"wrapped {secret}"))
        try:
            raise RuntimeError(f"login failed with {secret}")
        except RuntimeError:
            log.exception("in an exception")
        logging.getLogger("aiormq.connection").error("stdlib argument: %s", secret)
        try:
            raise ConnectionError(f"stdlib exception {secret}")
        except ConnectionError:
            logging.getLogger("uvicorn.error").exception("stdlib traceback")
    log.warning("settings", rabbitmq=SECRETS["RABBITMQ_URL"], redis=SECRETS["REDIS_URL"])


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_no_configured_secret_reaches_a_log_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], log_format: str
) -> None:
    settings = make_settings(tmp_path, LOG_FORMAT=log_format, LOG_LEVEL="INFO", **SECRETS)
    configure_logging(settings, process="worker")
    _log_every_secret_everywhere()
    output = capsys.readouterr().err
    # Everything was logged (with its tracebacks), only the secrets are gone.
    assert output.count("in an exception") == len(SECRET_VALUES)
    assert output.count("stdlib argument") == len(SECRET_VALUES)
    assert "RuntimeError: login failed with ********" in output
    assert "ConnectionError: stdlib exception ********" in output
    assert "amqp://tts:********@rabbit:5672/" in output
    for secret in SECRET_VALUES:
        assert secret not in output


def test_json_lines_stay_json_with_secrets_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path, LOG_FORMAT="json", LOG_LEVEL="INFO", **SECRETS)
    configure_logging(settings, process="api")
    get_logger("ttsqueue.test").info("key used", key="key-beta-91c2", attempt=2, ok=True)
    event = json.loads(capsys.readouterr().err)
    assert (event["key"], event["attempt"], event["ok"]) == ("********", 2, True)


def test_passwords_in_any_url_are_masked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(make_settings(tmp_path, LOG_FORMAT="json"), process="worker")
    log = get_logger("ttsqueue.test")
    log.warning("posting", url="https://bob:hunter2-pw@hooks.example.com/x?y=1")
    log.warning("odd password", url="amqp://ops:p@ss-w0rd@rabbit/")
    log.warning("query", url="redis://redis:6379/0?password=q-pw-77&db=1")
    log.warning("no password", url="http://hooks.example.com:8080/x")
    output = capsys.readouterr().err
    for secret in ("hunter2-pw", "p@ss-w0rd", "ss-w0rd", "q-pw-77"):
        assert secret not in output
    assert "https://bob:********@hooks.example.com/x?y=1" in output
    assert "password=********&db=1" in output
    assert "http://hooks.example.com:8080/x" in output


def test_percent_encoded_passwords_are_masked_in_both_forms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "amqp://tts:s3cr%40t%2Fpw@rabbit/"
    configure_logging(make_settings(tmp_path, LOG_FORMAT="json", RABBITMQ_URL=url), process="api")
    get_logger("ttsqueue.test").warning("as given", url=url, decoded="login s3cr@t/pw refused")
    output = capsys.readouterr().err
    assert "s3cr%40t%2Fpw" not in output
    assert "s3cr@t/pw" not in output


def test_every_cluster_node_password_is_a_secret(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, RABBITMQ_URL="amqp://tts:first-pass@mq1/,amqp://tts:second-pass@mq2/"
    )
    secrets = configured_secrets(settings)
    assert "first-pass" in secrets
    assert "second-pass" in secrets
