"""One webhook POST: signed body, bounded time, through the guarded client (`webhooks.guard`),
which refuses forbidden addresses when it connects."""

from __future__ import annotations

import httpx

from ttsqueue.webhooks.signing import SIGNATURE_HEADER, sign


class DeliveryFailed(Exception):
    """The receiver could not be reached or did not answer 2xx; worth retrying."""


async def deliver(client: httpx.AsyncClient, url: str, body: bytes, *, secret: str) -> None:
    """POST `body` to `url` with `client` (made by `webhook_client`); raises RefusedTarget
    (never retried) or DeliveryFailed."""
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(body, secret),
        "User-Agent": "tts-queue-webhooks",
    }
    try:
        reply = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{exc.__class__.__name__}: {exc}") from exc
    if not 200 <= reply.status_code < 300:
        raise DeliveryFailed(f"receiver answered {reply.status_code}")
