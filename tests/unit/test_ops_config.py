"""Secret masking in `ttsqueue config`, API URL derivation, layout and log selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import make_settings
from ttsqueue.addresses import api_base_url, env_value
from ttsqueue.ops.config_view import MASK, mask_url, masked_config, service_endpoints
from ttsqueue.ops.housekeeping import log_files
from ttsqueue.ops.layout import Layout


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("amqp://guest:guest@localhost:5672/", f"amqp://guest:{MASK}@localhost:5672/"),
        ("redis://:s3cr3t@redis:6379/0", f"redis://:{MASK}@redis:6379/0"),
        ("rediss://user:p%40ss@host:6380/1", f"rediss://user:{MASK}@host:6380/1"),
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://host/0?password=hunter2&ssl=true", f"redis://host/0?password={MASK}&ssl=true"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_config_masks_every_secret(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        RABBITMQ_URL="amqp://tts:rabbit-pass@mq:5672/",
        REDIS_URL="redis://:redis-pass@cache:6379/0",
        ASTERISK_AMI_SECRET="ami-pass",
        WEBHOOK_SECRET="hook-pass",
        DASHBOARD_PASSWORD="dash-pass",
        API_KEYS="key-one,key-two",
    )
    rows = dict(masked_config(settings))
    shown = "\n".join(f"{name}={value}" for name, value in rows.items())
    for secret in ("rabbit-pass", "redis-pass", "ami-pass", "hook-pass", "dash-pass", "key-one"):
        assert secret not in shown
    assert rows["API_KEYS"] == f"{MASK},{MASK}"
    assert rows["WEBHOOK_SECRET"] == MASK
    assert rows["RABBITMQ_URL"] == f"amqp://tts:{MASK}@mq:5672/"
    assert rows["DIALER"] == "simulator"
    assert rows["TTS_FALLBACK_ENGINE"] == ""


def test_config_masks_the_password_of_every_cluster_node(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, RABBITMQ_URL="amqp://tts:first-pass@mq1/,amqp://tts:second-pass@mq2/"
    )
    rows = dict(masked_config(settings))
    assert rows["RABBITMQ_URL"] == f"amqp://tts:{MASK}@mq1/,amqp://tts:{MASK}@mq2/"
    assert [host for service, host, _ in service_endpoints(settings) if service == "rabbitmq"] == [
        "mq1",
        "mq2",
    ]


def test_config_shows_unset_secrets_as_empty(tmp_path: Path) -> None:
    rows = dict(masked_config(make_settings(tmp_path)))
    assert rows["ASTERISK_AMI_SECRET"] == ""
    assert rows["API_KEYS"] == ""


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("0.0.0.0", 5000, "http://127.0.0.1:5000"),
        ("127.0.0.1", 5001, "http://127.0.0.1:5001"),
        ("api.internal", 80, "http://api.internal:80"),
        ("::", 5000, "http://[::1]:5000"),
        ("fd00::5", 5000, "http://[fd00::5]:5000"),
    ],
)
def test_api_url_from_settings(tmp_path: Path, host: str, port: int, expected: str) -> None:
    settings = make_settings(tmp_path, API_HOST=host, API_PORT=port)
    assert api_base_url(settings) == expected


def test_explicit_api_url_wins(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, API_PORT=5000)
    assert api_base_url(settings, "https://tts.example.com/") == "https://tts.example.com"


def test_env_value_prefers_environment_over_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("WORKERS=5\nTTSQ_VAR_DIR=state\n")
    assert env_value("WORKERS", tmp_path, {}) == "5"
    assert env_value("WORKERS", tmp_path, {"WORKERS": "2"}) == "2"
    assert env_value("MISSING", tmp_path, {}) is None


def test_var_dir_is_overridable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TTSQ_VAR_DIR", raising=False)
    assert Layout.discover(tmp_path).var_dir == tmp_path / "var"
    monkeypatch.setenv("TTSQ_VAR_DIR", str(tmp_path / "elsewhere"))
    layout = Layout.discover(tmp_path)
    assert layout.pid_file("api") == tmp_path / "elsewhere" / "run" / "api.pid"
    assert layout.log_file("worker-2") == tmp_path / "elsewhere" / "log" / "worker-2.log"


def test_log_files_by_group(tmp_path: Path) -> None:
    layout = Layout(root=tmp_path, var_dir=tmp_path / "var")
    layout.ensure_dirs()
    for name in ("api", "worker-1", "worker-2", "dashboard"):
        layout.log_file(name).write_text("")
    assert [p.name for p in log_files(layout, "worker")] == ["worker-1.log", "worker-2.log"]
    assert [p.name for p in log_files(layout, "api")] == ["api.log"]
    assert len(log_files(layout, None)) == 4
    with pytest.raises(ValueError, match="unknown log group"):
        log_files(layout, "db")


def test_service_endpoints(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, RABBITMQ_URL="amqps://u:p@mq.example:5999/vh", REDIS_URL="redis://cache/0"
    )
    assert service_endpoints(settings) == [
        ("rabbitmq", "mq.example", 5999),
        ("redis", "cache", 6379),
    ]
    socket_redis = make_settings(tmp_path, REDIS_URL="unix:///run/redis.sock")
    assert [name for name, _, _ in service_endpoints(socket_redis)] == ["rabbitmq"]


def test_calling_policy_shows_what_applies(tmp_path: Path) -> None:
    rows = dict(
        masked_config(make_settings(tmp_path, CALLING_WINDOWS="co-ley-2300", CALLING_HOLIDAYS="US"))
    )
    assert rows["CALLING_WINDOWS"] == "co-ley-2300 (mon-fri 07:00-19:00; sat 08:00-15:00)"
    assert rows["CALLING_HOLIDAYS"] == "US"
    assert rows["MAX_CONTACTS_PER_DAY"] == "1 (co-ley-2300)"
    plain = dict(masked_config(make_settings(tmp_path)))
    assert (plain["CALLING_WINDOWS"], plain["CALLING_HOLIDAYS"]) == ("", "")
