"""How the API and the dashboard serve HTTP (uvicorn): the options both processes share."""

from __future__ import annotations

from typing import Any

from fastapi.telemetry import TelemetryConfig

# An idle keep-alive connection is closed after this long. Clients pool their connections and
# reuse them after an idle spell: httpx and aiohttp for about 5 s, browsers and proxies for
# up to a minute or more. A server that closes first (uvicorn's default is 5 s) races the
# client's next request on that connection, which then fails with a dropped connection
# instead of an answer. Longer than the clients' expiries, as nginx's 75 s is.
KEEP_ALIVE_S = 75


# FastAPI's built-in OpenTelemetry hooks, off: the processes export Prometheus metrics
# (/metrics) and structured logs, and no OpenTelemetry provider is ever configured. Left on,
# every request asks the global providers whether one is (1.4% of the API's instructions
# per call, callgrind).
TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def server_options() -> dict[str, Any]:
    """uvicorn's options for either process: uvloop, httptools, our logging, keep-alive."""
    return {
        "loop": "uvloop",
        "http": "httptools",
        "log_config": None,
        "access_log": False,
        "lifespan": "on",
        "timeout_keep_alive": KEEP_ALIVE_S,
    }
