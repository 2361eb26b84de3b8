"""One webhook POST: signed body, one overall deadline, through the guarded client
(`webhooks.guard`), which refuses forbidden addresses when it connects.

A receiver is not trusted to be reasonable: only its status line and headers are read (never
its body, so a gzip bomb or an endless body costs nothing), the whole exchange has a single
deadline (a server dripping its answer a byte at a time does not reset it), and whatever goes
wrong, a URL the client cannot even encode included, ends as a `DeliveryFailed`.
"""

from __future__ import annotations

import asyncio

import httpx

from ttsqueue.webhooks.addresses import RefusedTarget
from ttsqueue.webhooks.signing import SIGNATURE_HEADER, sign

DEFAULT_DEADLINE_S = 10.0


class DeliveryFailed(Exception):
    """The receiver could not be reached or did not answer 2xx; worth retrying."""


class UndeliverableUrl(DeliveryFailed):
    """The URL cannot be sent to at all (the client cannot encode it): never retried."""


def check_webhook_url(url: str) -> None:
    """Raise ValueError when the webhook client could not send to `url` (the API runs this at
    submission with the same parser the client uses)."""
    try:
        parsed = httpx.URL(url)
    except Exception as exc:  # httpx.InvalidURL, idna's UnicodeError...
        raise ValueError(f"is not a URL the webhook client can use ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError("must be an http or https URL with a host")


async def deliver(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    *,
    secret: str,
    deadline_s: float = DEFAULT_DEADLINE_S,
) -> None:
    """POST `body` to `url` with `client` (made by `webhook_client`) within `deadline_s`;
    raises RefusedTarget (never retried), UndeliverableUrl (never retried) or DeliveryFailed."""
    try:
        check_webhook_url(url)
    except ValueError as exc:
        raise UndeliverableUrl(str(exc)) from None
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(body, secret),
        "User-Agent": "tts-queue-webhooks",
        # Nothing compressed, please; and its body is never read anyway.
        "Accept-Encoding": "identity",
    }
    try:
        async with asyncio.timeout(deadline_s):
            status = await _status_of_post(client, url, body, headers)
    except RefusedTarget:
        raise
    except TimeoutError:
        raise DeliveryFailed(f"no answer within {deadline_s:g}s") from None
    except Exception as exc:  # any failure of this one delivery; the stream goes on
        raise DeliveryFailed(f"{exc.__class__.__name__}: {exc}") from exc
    if not 200 <= status < 300:
        raise DeliveryFailed(f"receiver answered {status}")


async def _status_of_post(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]
) -> int:
    """The status code, read without reading the body (closing the stream drops it)."""
    async with client.stream("POST", url, content=body, headers=headers) as reply:
        return reply.status_code
