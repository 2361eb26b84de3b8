"""The effective configuration as (name, value) rows, with every secret masked."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ttsqueue.config import Settings, split_urls

MASK = "********"
SECRET_FIELDS = frozenset({"ASTERISK_AMI_SECRET", "WEBHOOK_SECRET", "DASHBOARD_PASSWORD"})
URL_FIELDS = frozenset({"RABBITMQ_URL", "REDIS_URL", "RABBITMQ_MANAGEMENT_URL"})


def mask_url(url: str) -> str:
    """`amqp://user:pass@host/` -> `amqp://user:********@host/` (also `?password=`)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "password" for key, _ in query):
        masked = [(key, MASK if key == "password" else value) for key, value in query]
        parts = parts._replace(query=urlencode(masked, safe="*"))
    if parts.password is not None:
        user = parts.username or ""
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{user}:{MASK}@{host}")
    return urlunsplit(parts)


def _render(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def effective_policy(settings: Settings) -> dict[str, str]:
    """The calling-policy variables as they apply, a preset's values included."""
    rules = settings.calling_rules()
    windows = str(rules.windows) if rules.windows is not None else ""

    def from_preset(value: object) -> str:
        return f" ({rules.preset})" if rules.preset and value is None else ""

    holidays = str(rules.holidays) if rules.holidays else ""
    cap = str(rules.max_contacts_per_day) if rules.max_contacts_per_day else ""
    return {
        "CALLING_WINDOWS": f"{rules.preset} ({windows})" if rules.preset else windows,
        "CALLING_HOLIDAYS": holidays and holidays + from_preset(settings.CALLING_HOLIDAYS),
        "MAX_CONTACTS_PER_DAY": cap and cap + from_preset(settings.MAX_CONTACTS_PER_DAY),
    }


def masked_config(settings: Settings) -> list[tuple[str, str]]:
    policy = effective_policy(settings)
    rows = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if name in URL_FIELDS:
            # RABBITMQ_URL may list several nodes: each URL masked on its own.
            shown = ",".join(mask_url(url) for url in split_urls(str(value)))
        elif name == "ASTERISK_SERVERS":
            # Each server as JSON, its AMI secret masked.
            shown = json.dumps([server.shown() for server in value]) if value else ""
        elif name == "API_KEYS":
            shown = ",".join(MASK for _ in value)
        elif name in SECRET_FIELDS:
            shown = MASK if value else ""
        elif name in policy:
            shown = policy[name]
        else:
            shown = _render(value)
        rows.append((name, shown))
    return rows


DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671, "redis": 6379, "rediss": 6379}


def service_endpoints(settings: Settings) -> list[tuple[str, str, int]]:
    """(service, host, port) of RabbitMQ and Redis when reached over TCP (not a unix socket)."""
    found = []
    urls = [("rabbitmq", url) for url in settings.rabbitmq_urls]
    if settings.sentinels:
        urls += [("redis", f"redis://{host}:{port}") for host, port in settings.sentinels]
    else:
        urls.append(("redis", settings.REDIS_URL))
    for service, url in urls:
        parts = urlsplit(url)
        if parts.scheme in DEFAULT_PORTS:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
            found.append((service, parts.hostname or "localhost", port))
    return found
