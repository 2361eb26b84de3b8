"""Where a process reaches the others: the API's and the dashboard's URLs and the key a local
client presents, and settings read the way the processes read them (environment, then .env).
Used by the CLI, the operator commands and the dashboard's proxy to the API."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

from ttsqueue.config import Settings


def env_value(name: str, root: Path, environ: Mapping[str, str] | None = None) -> str | None:
    """A variable from the environment, else from `<root>/.env` (as the settings read it)."""
    environ = os.environ if environ is None else environ
    if name in environ:
        return environ[name]
    env_file = root / ".env"
    if env_file.is_file():
        value = dotenv_values(env_file).get(name)
        if value is not None:
            return value
    return None


def client_host(host: str) -> str:
    """The address a local client should use for a server bound to `host`."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host in ("::", "[::]"):
        return "[::1]"
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def api_base_url(settings: Settings, override: str | None = None) -> str:
    """An explicit URL (`--api-url` / `TTSQ_API_URL`), else derived from API_HOST / API_PORT."""
    if override:
        return override.rstrip("/")
    return f"http://{client_host(settings.API_HOST)}:{settings.API_PORT}"


def dashboard_url(settings: Settings) -> str:
    return f"http://{client_host(settings.DASHBOARD_HOST)}:{settings.DASHBOARD_PORT}"


def api_key(settings: Settings, environ: Mapping[str, str] | None = None) -> str | None:
    environ = os.environ if environ is None else environ
    return environ.get("TTSQ_API_KEY") or (settings.API_KEYS[0] if settings.API_KEYS else None)
