"""Structured logging: one JSON object per line (or console text), with context such as job_id.

No secret reaches a log line (SPEC §8): the last step before rendering masks every configured
secret value (API keys, the RabbitMQ and Redis passwords, the AMI secret, the webhook secret,
the dashboard password) wherever it appears, in the message, in any field, nested or not,
and in the text of exceptions and tracebacks; and it masks the password of any URL written
as `scheme://user:password@host`. It applies to the product's own events and to every
standard-library record (uvicorn, aio-pika, redis-py, httpx).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import structlog

from ttsqueue.config import LogFormat, Settings

MASK = "********"
_MAX_DEPTH = 8
# scheme://user:password@ -> the password masked (greedy up to the last @ of the authority).
_URL_USERINFO = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)(?P<password>[^\s/]*)(?P<tail>@)"
)
_URL_PASSWORD_PARAM = re.compile(r"(?P<head>[?&]password=)(?P<password>[^&#\s]+)", re.IGNORECASE)
_PLAIN = (int, float, bool, type(None))


def _url_passwords(url: str) -> list[str]:
    """The password of a URL's userinfo and of a `password=` parameter, raw and decoded."""
    parts = urlsplit(url)
    found = []
    if parts.password:
        found += [parts.password, unquote(parts.password)]
    for item in parts.query.split("&"):
        key, _, raw = item.partition("=")
        if key.lower() == "password" and raw:
            found.append(raw)
    found += [value for key, value in parse_qsl(parts.query) if key.lower() == "password"]
    return found


def configured_secrets(settings: Settings) -> list[str]:
    """Every secret value the settings hold, in the forms it may be written in."""
    values = [
        *settings.API_KEYS,
        settings.ASTERISK_AMI_SECRET,
        settings.WEBHOOK_SECRET,
        settings.DASHBOARD_PASSWORD,
        *(secret for url in settings.rabbitmq_urls for secret in _url_passwords(url)),
        *_url_passwords(settings.REDIS_URL),
    ]
    return sorted({value for value in values if value}, key=len, reverse=True)


class SecretMasker:
    """A structlog processor that masks secrets in every value of the event."""

    def __init__(self, secrets: Iterable[str]) -> None:
        ordered = sorted(set(filter(None, secrets)), key=len, reverse=True)
        self._secrets = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def mask(self, text: str) -> str:
        if self._secrets is not None:
            text = self._secrets.sub(MASK, text)
        if "://" in text:
            text = _URL_USERINFO.sub(rf"\g<head>{MASK}\g<tail>", text)
        if "password=" in text.lower():
            text = _URL_PASSWORD_PARAM.sub(rf"\g<head>{MASK}", text)
        return text

    def _value(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, _PLAIN):
            return value
        if depth < _MAX_DEPTH and isinstance(value, Mapping):
            return {self._value(k, depth + 1): self._value(v, depth + 1) for k, v in value.items()}
        if depth < _MAX_DEPTH and isinstance(value, list | tuple | set | frozenset):
            return [self._value(item, depth + 1) for item in value]
        # Anything else is rendered through its repr: mask that, keep the object if clean.
        shown = repr(value)
        masked = self.mask(shown)
        return value if masked == shown else masked

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in list(event_dict.items()):
            event_dict[key] = self._value(value, 0)
        return event_dict


def _process_name(process: str) -> structlog.types.Processor:
    """Adds which process wrote the line. A processor, not a context variable: each job
    clears its context when it starts, and the process name must survive that."""

    def add(_: Any, __: str, event_dict: structlog.types.EventDict) -> structlog.types.EventDict:
        event_dict.setdefault("process", process)
        return event_dict

    return add


class LevelFirstLogger(structlog.stdlib.BoundLogger):
    """structlog's standard-library logger that asks the level before anything else for the
    two levels a job's path logs at: below LOG_LEVEL, `info` and `debug` return at once
    instead of building the event and running the first processor to drop it (three events
    per job in a worker at WARNING). The level is the standard library's, read when the event
    is made, so a level changed later still applies."""

    def debug(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if not self._logger.isEnabledFor(logging.DEBUG):
            return None
        return super().debug(event, *args, **kw)

    def info(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if not self._logger.isEnabledFor(logging.INFO):
            return None
        return super().info(event, *args, **kw)


def configure_logging(settings: Settings, *, process: str) -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        _process_name(process),
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if settings.LOG_FORMAT is LogFormat.JSON
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            # After exceptions are text, before anything is rendered.
            SecretMasker(configured_secrets(settings)),
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.LOG_LEVEL.upper())
    for noisy in ("aio_pika", "aiormq", "gtts", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # uvicorn's own logging configuration, if it was ever applied in this process, gives its
    # loggers their own handlers: those lines would skip the formatter and its masking.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
    structlog.configure(
        # Below LOG_LEVEL an event is dropped first, before any processor formats it (a
        # worker at WARNING still calls log.info on every job).
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=LevelFirstLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
