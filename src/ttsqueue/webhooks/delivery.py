"""One webhook POST: signed body, bounded time, no redirects (they could lead anywhere)."""

from __future__ import annotations

import httpx

from ttsqueue.webhooks.addresses import check_target
from ttsqueue.webhooks.signing import SIGNATURE_HEADER, sign


class DeliveryFailed(Exception):
    """The receiver could not be reached or did not answer 2xx; worth retrying."""


async def deliver(
    client: httpx.AsyncClient, url: str, body: bytes, *, secret: str, allow_private: bool
) -> None:
    """POST `body` to `url`; raises RefusedTarget (never retried) or DeliveryFailed."""
    if not allow_private:
        await check_target(url)
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
