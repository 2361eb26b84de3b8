"""Queue figures from the RabbitMQ management plugin's HTTP API (`/api/queues/<vhost>/<name>`).

A passive declare over AMQP reports only ready messages and consumers; unacknowledged counts
and message rates exist only in the management API. Its address defaults to the host of
`RABBITMQ_URL` on port 15672 (15671 for `amqps`), with that URL's credentials and vhost;
`RABBITMQ_MANAGEMENT_URL` overrides it (its own credentials, if it has any, win). RabbitMQ
samples these statistics every few seconds (`collect_statistics_interval`, 5 s by default).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx

from ttsqueue.errors import BrokerUnavailableError

TIMEOUT_S = 1.0
PORTS = {"amqp": ("http", 15672), "amqps": ("https", 15671)}


@dataclass(frozen=True, slots=True)
class QueueRates:
    """Messages per second, as the management plugin averages them."""

    publish: float
    deliver: float  # deliver_get: pushed to consumers plus basic.get
    ack: float


@dataclass(frozen=True, slots=True)
class QueueFigures:
    ready: int
    unacked: int
    consumers: int
    rates: QueueRates


def _rate(stats: Mapping[str, Any], name: str) -> float:
    details = stats.get(f"{name}_details")
    return float(details.get("rate", 0.0)) if isinstance(details, Mapping) else 0.0


def parse_queue(body: Mapping[str, Any]) -> QueueFigures:
    """One queue object of the management API; a queue with no traffic yet has no rates."""
    stats = body.get("message_stats") or {}
    return QueueFigures(
        ready=int(body.get("messages_ready") or 0),
        unacked=int(body.get("messages_unacknowledged") or 0),
        consumers=int(body.get("consumers") or 0),
        rates=QueueRates(
            publish=_rate(stats, "publish"),
            deliver=_rate(stats, "deliver_get"),
            ack=_rate(stats, "ack"),
        ),
    )


@dataclass(frozen=True, slots=True)
class ManagementTarget:
    base_url: str  # without credentials: safe to show
    vhost: str
    user: str
    password: str

    @classmethod
    def from_urls(cls, amqp_url: str, override: str = "") -> ManagementTarget:
        # A cluster's first node (RABBITMQ_URL lists several): set RABBITMQ_MANAGEMENT_URL to
        # a load balancer in front of the nodes' management plugins to survive its loss.
        amqp = urlsplit(amqp_url.split(",")[0].strip())
        path = amqp.path[1:] if amqp.path.startswith("/") else amqp.path
        vhost = unquote(path) or "/"
        user = unquote(amqp.username) if amqp.username is not None else "guest"
        password = unquote(amqp.password) if amqp.password is not None else "guest"
        if override:
            url = urlsplit(override)
            if url.username is not None:
                user, password = unquote(url.username), unquote(url.password or "")
            netloc = url.hostname or ""
            if ":" in netloc:
                netloc = f"[{netloc}]"
            if url.port is not None:
                netloc += f":{url.port}"
            base = urlunsplit((url.scheme, netloc, url.path.rstrip("/"), "", ""))
        else:
            scheme, port = PORTS.get(amqp.scheme, PORTS["amqp"])
            host = amqp.hostname or "localhost"
            base = f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"
        return cls(base_url=base, vhost=vhost, user=user, password=password)

    def queue_url(self, name: str) -> str:
        return f"{self.base_url}/api/queues/{quote(self.vhost, safe='')}/{quote(name, safe='')}"


class ManagementClient:
    def __init__(self, target: ManagementTarget, *, timeout_s: float = TIMEOUT_S) -> None:
        self.target = target
        self._http = httpx.AsyncClient(
            auth=(target.user, target.password),
            timeout=timeout_s,
            headers={"Accept": "application/json"},
            follow_redirects=False,
        )

    async def queue(self, name: str) -> QueueFigures | None:
        """One queue's figures; None when it does not exist (yet)."""
        url = self.target.queue_url(name)
        try:
            reply = await self._http.get(url)
        except httpx.HTTPError as exc:
            raise BrokerUnavailableError(
                f"management API at {self.target.base_url}: {type(exc).__name__}"
            ) from exc
        if reply.status_code == 404:
            return None
        if reply.status_code != 200:
            raise BrokerUnavailableError(
                f"management API at {self.target.base_url} answered {reply.status_code}"
            )
        try:
            body = reply.json()
            if not isinstance(body, Mapping):
                raise TypeError(type(body).__name__)
            return parse_queue(body)
        except (ValueError, TypeError, AttributeError) as exc:
            raise BrokerUnavailableError(
                f"management API at {self.target.base_url}: unexpected answer ({exc})"
            ) from exc

    async def queues(self, names: Mapping[str, str]) -> dict[str, QueueFigures | None]:
        """Figures by label, read side by side; raises BrokerUnavailableError if any fails."""
        labels = list(names)
        found = await asyncio.gather(
            *(self.queue(names[label]) for label in labels), return_exceptions=True
        )
        figures: dict[str, QueueFigures | None] = {}
        for label, result in zip(labels, found, strict=True):
            if isinstance(result, BaseException):
                raise result
            figures[label] = result
        return figures

    async def aclose(self) -> None:
        await self._http.aclose()
