"""Typed settings, read once from the environment (and `.env`) and validated at start-up.

Every variable of the product contract lives here; processes receive a `Settings` object and
never read the environment themselves.
"""

from __future__ import annotations

import json
import os
import socket
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ttsqueue.asterisk_servers import (
    DEFAULT_SERVER,
    AsteriskServer,
    check_channel_template,
    check_servers,
)
from ttsqueue.errors import ConfigError
from ttsqueue.policy.presets import check_calling_windows

if TYPE_CHECKING:
    from ttsqueue.policy.rules import CallingRules

# The broker's built-in account and the seed's published password: known to everyone.
DEFAULT_RABBITMQ_USERS = frozenset({"guest"})
DEFAULT_RABBITMQ_PASSWORDS = frozenset({"guest", "tts_password_2024"})

# Set by the supervisor in the processes it starts: their settings were recorded at `start`
# and are all in the environment, so `.env` is not read again (see ops/recorded.py).
RECORDED_MARKER = "TTSQ_CONFIG_RECORDED"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class QueueType(StrEnum):
    CLASSIC = "classic"
    QUORUM = "quorum"


class DialerName(StrEnum):
    AUTO = "auto"
    AMI = "ami"
    CALLFILE = "callfile"
    SIMULATOR = "simulator"


class EngineName(StrEnum):
    GTTS = "gtts"
    ESPEAK = "espeak"
    PIPER = "piper"


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=True
    )

    TTSQ_ENV: Environment = Environment.DEVELOPMENT

    # Broker and store
    # One URL, or several comma-separated (the nodes of a cluster): clients connect to the
    # first that answers and move to another when theirs goes away.
    RABBITMQ_URL: str = "amqp://guest:guest@localhost:5672/"
    RABBITMQ_QUEUE_TYPE: QueueType = QueueType.CLASSIC
    # HTTP API of the management plugin, read by the dashboard for unacked counts and rates;
    # empty: the RABBITMQ_URL host on port 15672 with the same credentials and vhost.
    RABBITMQ_MANAGEMENT_URL: str = ""
    # Prepended to every queue name; empty in production, used by tests to isolate themselves.
    QUEUE_PREFIX: str = ""
    RESULTS_MAX_LENGTH: int = Field(default=100_000, ge=1)
    REDIS_URL: str = "redis://localhost:6379/0"
    # Redis through Sentinel (instead of REDIS_URL's host and port; its password and database
    # number still apply): `host:port,host:port,...` and the name the Sentinels monitor.
    REDIS_SENTINELS: str = ""
    REDIS_SENTINEL_MASTER: str = ""
    # Replicas that must hold a new job record before the API answers 202 (Redis WAIT);
    # 0: do not wait. REDIS_WAIT_TIMEOUT_MS bounds the wait (the job is accepted anyway: its
    # message carries what is needed to rebuild the record).
    REDIS_WAIT_REPLICAS: int = Field(default=0, ge=0, le=10)
    REDIS_WAIT_TIMEOUT_MS: int = Field(default=200, ge=1, le=10_000)
    REDIS_PREFIX: str = "tts:"
    JOB_TTL_SECONDS: int = Field(default=7 * 24 * 3600, ge=60)

    # Processes
    WORKER_ID: str = Field(default_factory=_default_worker_id)
    WORKER_CONCURRENCY: int = Field(default=1, ge=1, le=1000)
    API_HOST: str = "0.0.0.0"
    API_PORT: int = Field(default=5000, ge=1, le=65535)
    # Uvicorn processes serving the API (they share the port).
    API_WORKERS: int = Field(default=1, ge=1, le=64)
    DASHBOARD_HOST: str = "0.0.0.0"
    DASHBOARD_PORT: int = Field(default=8080, ge=1, le=65535)

    # Requests
    MAX_TEXT_LENGTH: int = Field(default=1000, ge=1, le=20_000)
    DEFAULT_LANGUAGE: str = "es"
    DEFAULT_REGION: str = Field(default="CO", min_length=2, max_length=2)
    ALLOW_EXTENSIONS: bool = False
    MAX_QUEUE_DEPTH: int = Field(default=100_000, ge=1)
    API_KEYS: Annotated[list[str], NoDecode] = Field(default_factory=list)
    RATE_LIMIT_PER_MINUTE: int = Field(default=600, ge=1)

    # Lifecycle
    CALL_MAX_RETRIES: int = Field(default=2, ge=0, le=5)
    CALL_RETRY_DELAY: int = Field(default=60, ge=10, le=3600)
    TECH_MAX_RETRIES: int = Field(default=5, ge=0, le=20)
    TECH_RETRY_BASE_SECONDS: float = Field(default=1.0, gt=0, le=60)
    MAX_DELIVERIES: int = Field(default=5, ge=1, le=100)
    CALL_MAX_DURATION: int = Field(default=600, ge=1)
    # A queued or processing job with neither a message nor a live owner for this long gets
    # its message again from the workers' sweeper (worker/sweeper.py), failed after 3 tries.
    SWEEP_AFTER_SECONDS: int = Field(default=600, ge=2, le=86400)
    # Longest single stay in tts_retry; longer delays hop through it several times. Bounds
    # how late a short delay can be when queued behind a longer one (expiry is head-only).
    RETRY_HOP_SECONDS: int = Field(default=15, ge=1, le=3600)
    # Waits at least this long (schedules days ahead, long retry delays) go through tts_hold,
    # whose messages all live exactly this long: no head-of-line blocking, few hops.
    # A queue argument: changing it on an existing broker needs `./manage.sh clean --queues`.
    DELAY_HOLD_SECONDS: int = Field(default=600, ge=2, le=86400)

    # Speech
    TTS_ENGINE: EngineName = EngineName.GTTS
    TTS_FALLBACK_ENGINE: EngineName | None = EngineName.ESPEAK
    GTTS_MAX_RPS: float = Field(default=2.0, gt=0)
    GTTS_TIMEOUT: float = Field(default=5.0, gt=0)
    GTTS_BREAKER_THRESHOLD: int = Field(default=3, ge=1)
    GTTS_BREAKER_COOLDOWN: float = Field(default=60.0, gt=0)
    PIPER_MODEL: Path | None = None
    AUDIO_DIR: Path = Path("./var/audio")
    AUDIO_WIDEBAND: bool = False
    AUDIO_CACHE_MAX_MB: float = Field(default=1024, gt=0)

    # Telephony
    DIALER: DialerName = DialerName.AUTO
    ASTERISK_CHANNEL: str = "PJSIP/{number}@trunk"
    ASTERISK_CONTEXT: str = "tts-playback"
    ASTERISK_CALLER_ID: str = ""
    ASTERISK_AMI_HOST: str = ""
    ASTERISK_AMI_PORT: int = Field(default=5038, ge=1, le=65535)
    ASTERISK_AMI_USER: str = ""
    ASTERISK_AMI_SECRET: str = ""
    ASTERISK_SPOOL_DIR: Path = Path("/var/spool/asterisk")
    CALL_RING_TIMEOUT: int = Field(default=30, ge=5, le=300)
    MAX_CONCURRENT_CALLS: int = Field(default=10, ge=1)
    CALLS_PER_SECOND: float = Field(default=5.0, gt=0)
    # Several Asterisk servers (SPEC §11): a JSON list of {name, ami_host, ami_port, ami_user,
    # ami_secret, channel, max_concurrent_calls, calls_per_second, prefixes}. When set it
    # replaces ASTERISK_AMI_*, ASTERISK_CHANNEL, MAX_CONCURRENT_CALLS and CALLS_PER_SECOND.
    ASTERISK_SERVERS: Annotated[list[AsteriskServer], NoDecode] = Field(default_factory=list)
    # Multiplies every simulated ring and playback time; 0 makes simulated calls instant.
    SIMULATOR_TIME_SCALE: float = Field(default=1.0, ge=0)

    # Calling policy (SPEC §13): when a callee may be contacted. See docs/campaigns.md.
    # A spec (`mon-fri 07:00-19:00; sat 08:00-15:00`), a preset (`co-ley-2300`), or empty
    # (any time).
    CALLING_WINDOWS: str = ""
    # Country codes whose public holidays close the windows (`CO`, `US-NY`, `CO,US`; `none`).
    # Unset: the preset's (CO under co-ley-2300), else none.
    CALLING_HOLIDAYS: str | None = None
    # Answered contacts per number per local day. Unset: the preset's (1 under co-ley-2300),
    # else no cap; 0 turns the cap off.
    MAX_CONTACTS_PER_DAY: int | None = Field(default=None, ge=0, le=1000)

    # Webhooks, dashboard, logs
    WEBHOOKS_ENABLED: bool = True
    WEBHOOK_SECRET: str = ""
    WEBHOOK_ALLOW_PRIVATE: bool = False
    WEBHOOK_TIMEOUT: float = Field(default=10.0, gt=0, le=60)
    WEBHOOK_RETRY_BASE_SECONDS: float = Field(default=2.0, gt=0, le=300)
    DASHBOARD_USER: str = ""
    DASHBOARD_PASSWORD: str = ""
    LOG_FORMAT: LogFormat = LogFormat.JSON
    LOG_LEVEL: str = "INFO"

    @field_validator("API_KEYS", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @field_validator("ASTERISK_SERVERS", mode="before")
    @classmethod
    def _servers_json(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                return []
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError("must be a JSON list of servers") from None
            if not isinstance(value, list):
                raise ValueError("must be a JSON list of servers")
        return value

    @field_validator("ASTERISK_SERVERS")
    @classmethod
    def _servers_unique(cls, value: list[AsteriskServer]) -> list[AsteriskServer]:
        return check_servers(value)

    @field_validator("TTS_FALLBACK_ENGINE", "PIPER_MODEL", "MAX_CONTACTS_PER_DAY", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value in ("", "none") else value

    @field_validator("RABBITMQ_URL")
    @classmethod
    def _rabbitmq_urls(cls, value: str) -> str:
        urls = split_urls(value)
        if not urls:
            raise ValueError("must name at least one amqp:// or amqps:// URL")
        for url in urls:
            if urlsplit(url).scheme.lower() not in ("amqp", "amqps"):
                raise ValueError(f"{_shown(url)!r} is not an amqp:// or amqps:// URL")
        return ",".join(urls)

    @field_validator("REDIS_SENTINELS")
    @classmethod
    def _sentinels(cls, value: str) -> str:
        parse_sentinels(value)  # raises ValueError naming the bad entry
        return ",".join(f"{host}:{port}" for host, port in parse_sentinels(value))

    @field_validator("REDIS_PREFIX")
    @classmethod
    def _prefix_shape(cls, value: str) -> str:
        if not value or any(ch.isspace() for ch in value):
            raise ValueError("must be non-empty and contain no spaces")
        return value

    @field_validator("ASTERISK_CHANNEL")
    @classmethod
    def _channel_template(cls, value: str) -> str:
        return check_channel_template(value)

    @field_validator("CALLING_WINDOWS")
    @classmethod
    def _calling_windows(cls, value: str) -> str:
        check_calling_windows(value)  # raises ValueError naming the part at fault
        return value.strip()

    @field_validator("CALLING_HOLIDAYS", mode="before")
    @classmethod
    def _calling_holidays(cls, value: object) -> object:
        # Empty is "not set" (the preset decides); `none` is "no holidays" even under a preset.
        if not isinstance(value, str):
            return value  # None, or a type error reported by pydantic
        if not value.strip():
            return None
        # Imported here: the holidays package is only loaded where holidays are configured.
        from ttsqueue.policy.closed_days import parse_holiday_codes

        return ",".join(parse_holiday_codes(value)) or "none"

    @field_validator("DEFAULT_REGION")
    @classmethod
    def _upper_region(cls, value: str) -> str:
        return value.upper()

    @model_validator(mode="after")
    def _sentinel_pair(self) -> Settings:
        if bool(self.REDIS_SENTINELS) != bool(self.REDIS_SENTINEL_MASTER):
            raise ValueError("REDIS_SENTINELS and REDIS_SENTINEL_MASTER go together: set both")
        return self

    @model_validator(mode="after")
    def _servers_need_ami(self) -> Settings:
        if self.ASTERISK_SERVERS and self.DIALER is DialerName.CALLFILE:
            raise ValueError(
                "ASTERISK_SERVERS: DIALER=callfile writes to one Asterisk's spool; several "
                "servers are dialed through AMI (DIALER=ami or auto)"
            )
        return self

    @model_validator(mode="after")
    def _production_guards(self) -> Settings:
        if self.TTSQ_ENV is not Environment.PRODUCTION:
            return self
        if not self.API_KEYS:
            raise ValueError("TTSQ_ENV=production requires API_KEYS")
        for url in self.rabbitmq_urls:
            problem = rabbitmq_login_problem(url)
            if problem is not None:
                raise ValueError(f"RABBITMQ_URL: TTSQ_ENV=production refuses {problem}")
        if self.WEBHOOKS_ENABLED and not self.WEBHOOK_SECRET:
            raise ValueError("TTSQ_ENV=production requires WEBHOOK_SECRET for webhooks")
        return self

    def calling_rules(self) -> CallingRules:
        """CALLING_WINDOWS, CALLING_HOLIDAYS and MAX_CONTACTS_PER_DAY combined (preset applied)."""
        from ttsqueue.policy.rules import rules_from_settings

        return rules_from_settings(
            self.CALLING_WINDOWS, self.CALLING_HOLIDAYS, self.MAX_CONTACTS_PER_DAY
        )

    @property
    def asterisk_servers(self) -> list[AsteriskServer]:
        """ASTERISK_SERVERS, or the one server the single-server variables describe."""
        if self.ASTERISK_SERVERS:
            return list(self.ASTERISK_SERVERS)
        return [
            AsteriskServer.model_construct(
                name=DEFAULT_SERVER,
                ami_host=self.ASTERISK_AMI_HOST,
                ami_port=self.ASTERISK_AMI_PORT,
                ami_user=self.ASTERISK_AMI_USER,
                ami_secret=SecretStr(self.ASTERISK_AMI_SECRET),
                channel=self.ASTERISK_CHANNEL,
                max_concurrent_calls=self.MAX_CONCURRENT_CALLS,
                calls_per_second=self.CALLS_PER_SECOND,
                prefixes=(),
            )
        ]

    @property
    def call_limit(self) -> int:
        """Live calls the trunk takes: MAX_CONCURRENT_CALLS, or the servers' sum."""
        return sum(server.max_concurrent_calls for server in self.asterisk_servers)

    @property
    def call_rate(self) -> float:
        """New calls per second the trunk takes: CALLS_PER_SECOND, or the servers' sum."""
        return sum(server.calls_per_second for server in self.asterisk_servers)

    @property
    def rabbitmq_urls(self) -> list[str]:
        """The broker nodes of RABBITMQ_URL, in the order given."""
        return split_urls(self.RABBITMQ_URL)

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        """(host, port) of each Sentinel of REDIS_SENTINELS; empty: Redis at REDIS_URL."""
        return parse_sentinels(self.REDIS_SENTINELS)

    @property
    def audio_cache_max_bytes(self) -> int:
        return int(self.AUDIO_CACHE_MAX_MB * 1024 * 1024)


def split_urls(value: str) -> list[str]:
    """The URLs of a comma-separated list, blanks dropped."""
    return [part.strip() for part in value.split(",") if part.strip()]


def _shown(url: str) -> str:
    """A URL without its password, for an error message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def parse_sentinels(value: str) -> list[tuple[str, int]]:
    """`host:port,host:port` as pairs; ValueError naming the entry that is not one."""
    found = []
    for entry in split_urls(value):
        host, sep, port = entry.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{entry!r} is not host:port")
        found.append((host.strip("[]"), int(port)))
    return found


def rabbitmq_login_problem(url: str) -> str | None:
    """Why the login in an AMQP URL is unfit for production, or None.

    The AMQP client logs in as guest/guest when the URL leaves out the user or the password,
    so a missing or empty one is as bad as spelling out the default. Certificate login
    (`amqps://host/?auth=external`) carries no password and is accepted.
    """
    parts = urlsplit(url)
    mechanism = dict(parse_qsl(parts.query)).get("auth", "plain").lower()
    if parts.scheme.lower() == "amqps" and mechanism == "external":
        return None
    # The client percent-decodes userinfo: `gu%65st` logs in as guest.
    user = unquote(parts.username or "")
    password = unquote(parts.password or "")
    if not user or not password:
        return "a URL without both a user and a password (the client would log in as guest)"
    if user in DEFAULT_RABBITMQ_USERS:
        return f"the default RabbitMQ user {user!r}"
    if password in DEFAULT_RABBITMQ_PASSWORDS:
        return "a default RabbitMQ password (guest or the seed's tts_password_2024)"
    return None


def load_settings(**overrides: object) -> Settings:
    """Build settings or raise `ConfigError` whose message names each bad variable."""
    if os.environ.get(RECORDED_MARKER) == "1":
        overrides = {"_env_file": None, **overrides}
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(part) for part in err["loc"]) or "settings"
            message = str(err["msg"]).removeprefix("Value error, ")
            problems.append(message if name == "settings" else f"{name}: {message}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
