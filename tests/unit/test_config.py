"""Settings are validated at start-up with messages that name the variable."""

from __future__ import annotations

import pytest

from ttsqueue.config import load_settings, rabbitmq_login_problem
from ttsqueue.errors import ConfigError

SAFE_PRODUCTION = {
    "TTSQ_ENV": "production",
    "API_KEYS": "k1",
    "RABBITMQ_URL": "amqp://tts:s3cret-long@rabbit:5672/",
    "WEBHOOK_SECRET": "whsec",
}


def test_defaults_are_the_contract() -> None:
    settings = load_settings()
    assert settings.API_PORT == 5000
    assert settings.DASHBOARD_PORT == 8080
    assert settings.REDIS_PREFIX == "tts:"
    assert settings.MAX_CONCURRENT_CALLS == 10
    assert settings.CALL_MAX_RETRIES == 2
    assert settings.ASTERISK_CHANNEL == "PJSIP/{number}@trunk"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WORKER_CONCURRENCY", 0),
        ("API_PORT", 70000),
        ("CALL_RETRY_DELAY", 5),
        ("RABBITMQ_QUEUE_TYPE", "stream"),
        ("ASTERISK_CHANNEL", "PJSIP/trunk"),
        ("REDIS_PREFIX", "has space:"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: object) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(**{name: value})


def test_api_keys_are_split_on_commas() -> None:
    assert load_settings(API_KEYS=" a, b ,,c").API_KEYS == ["a", "b", "c"]


def test_production_accepts_safe_settings() -> None:
    assert load_settings(**SAFE_PRODUCTION).TTSQ_ENV == "production"


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"API_KEYS": ""}, "API_KEYS"),
        ({"WEBHOOK_SECRET": ""}, "WEBHOOK_SECRET"),
    ],
)
def test_production_refuses_unsafe_settings(override: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(**{**SAFE_PRODUCTION, **override})


@pytest.mark.parametrize(
    "url",
    [
        # The AMQP client fills a missing user or password with guest/guest.
        "amqp://rabbit:5672/",
        "amqp://rabbit/",
        "amqp://guest@rabbit/",
        "amqp://admin@rabbit/",
        "amqp://admin:@rabbit/",
        "amqp://:s3cret-long@rabbit/",
        "amqps://rabbit:5671/",
        # Spelled-out defaults, also percent-encoded (the client decodes userinfo).
        "amqp://guest:guest@rabbit:5672/",
        "amqp://guest:s3cret-long@rabbit/",
        "amqp://gu%65st:s3cret-long@rabbit/",
        "amqp://admin:guest@rabbit/",
        "amqp://tts_user:tts_password_2024@rabbit/",
        "amqp://tts_user:tts_password_%32024@rabbit/",
        # Certificate login only means something over TLS.
        "amqp://rabbit/?auth=external",
    ],
)
def test_production_refuses_default_or_missing_rabbitmq_login(url: str) -> None:
    with pytest.raises(ConfigError, match="RABBITMQ_URL") as refused:
        load_settings(**{**SAFE_PRODUCTION, "RABBITMQ_URL": url})
    assert "production" in str(refused.value)
    # Neither the password nor the URL is repeated in the message.
    assert "s3cret-long" not in str(refused.value)
    assert "@rabbit" not in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "amqp://tts:s3cret-long@rabbit:5672/",
        "amqp://guest-ops:n0t-the-default@rabbit/vhost",
        "amqps://rabbit:5671/?auth=external",
    ],
)
def test_production_accepts_a_real_rabbitmq_login(url: str) -> None:
    settings = load_settings(**{**SAFE_PRODUCTION, "RABBITMQ_URL": url})
    assert settings.TTSQ_ENV == "production"
    assert rabbitmq_login_problem(settings.RABBITMQ_URL) is None


def test_development_keeps_the_default_rabbitmq_login() -> None:
    assert load_settings(RABBITMQ_URL="amqp://rabbit/").TTSQ_ENV == "development"


def test_a_supervised_process_ignores_dotenv(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its settings were recorded at start and are all in its environment (ops/recorded.py):
    a `.env` edited since must not reach it."""
    monkeypatch.chdir(str(tmp_path))
    monkeypatch.delenv("WORKER_CONCURRENCY", raising=False)
    with open(".env", "w") as handle:
        handle.write("WORKER_CONCURRENCY=9\n")
    assert load_settings().WORKER_CONCURRENCY == 9
    monkeypatch.setenv("TTSQ_CONFIG_RECORDED", "1")
    assert load_settings().WORKER_CONCURRENCY == 1


def test_rabbitmq_url_may_list_the_nodes_of_a_cluster() -> None:
    settings = load_settings(RABBITMQ_URL=" amqp://a:p@mq1/ , amqp://a:p@mq2:5673/,amqps://mq3/ ")
    assert settings.rabbitmq_urls == ["amqp://a:p@mq1/", "amqp://a:p@mq2:5673/", "amqps://mq3/"]
    assert ",".join(settings.rabbitmq_urls) == settings.RABBITMQ_URL


@pytest.mark.parametrize("value", ["", " , ", "amqp://mq1/,http://mq2/", "redis://mq1/"])
def test_rabbitmq_url_refuses_what_is_not_amqp(value: str) -> None:
    with pytest.raises(ConfigError, match="RABBITMQ_URL"):
        load_settings(RABBITMQ_URL=value)


def test_production_checks_the_login_of_every_node() -> None:
    urls = "amqp://tts:s3cret-long@mq1/,amqp://guest:guest@mq2/"
    with pytest.raises(ConfigError, match="RABBITMQ_URL"):
        load_settings(**{**SAFE_PRODUCTION, "RABBITMQ_URL": urls})


def test_sentinels_are_host_port_pairs_named_with_their_master() -> None:
    settings = load_settings(
        REDIS_SENTINELS="sen1:26379, 10.0.0.2:26380,[::1]:26381", REDIS_SENTINEL_MASTER="ttsq"
    )
    assert settings.sentinels == [("sen1", 26379), ("10.0.0.2", 26380), ("::1", 26381)]
    assert load_settings().sentinels == []


@pytest.mark.parametrize(
    ("sentinels", "master", "named"),
    [
        ("sen1", "ttsq", "REDIS_SENTINELS"),
        ("sen1:0", "ttsq", "REDIS_SENTINELS"),
        ("sen1:26379:x", "ttsq", "REDIS_SENTINELS"),
        ("sen1:26379", "", "REDIS_SENTINEL_MASTER"),
        ("", "ttsq", "REDIS_SENTINEL_MASTER"),
    ],
)
def test_sentinel_settings_refused_name_the_variable(
    sentinels: str, master: str, named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(REDIS_SENTINELS=sentinels, REDIS_SENTINEL_MASTER=master)
