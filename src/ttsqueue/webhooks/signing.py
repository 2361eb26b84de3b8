"""Webhook signatures: `X-TTSQ-Signature: sha256=<hex HMAC-SHA256 of the body>`."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-TTSQ-Signature"


def sign(body: bytes, secret: str) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(body: bytes, secret: str, header: str) -> bool:
    """For receivers: constant-time comparison of the header with the expected signature."""
    return hmac.compare_digest(sign(body, secret), header)
