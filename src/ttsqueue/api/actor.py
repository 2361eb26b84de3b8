"""Who made a change, for audit trails: never the API key itself.

With API_KEYS set, the caller is `key:<12 hex>`, a digest of its key (stable, so one key's
changes can be told apart and matched by whoever holds the key, but the key cannot be read
back from it). Without keys, `anonymous`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from starlette.datastructures import Headers

from ttsqueue.api.access import key_matches, presented_key

ANONYMOUS = "anonymous"
# Kept apart from the rate limiter's digest of the same key.
_DOMAIN = b"ttsq-audit:"


def key_label(key: str) -> str:
    return "key:" + hashlib.sha256(_DOMAIN + key.encode()).hexdigest()[:12]


def actor_of(headers: Headers, keys: Sequence[str]) -> str:
    key = presented_key(headers)
    if not keys or key is None or not key_matches(key, keys):
        return ANONYMOUS
    return key_label(key)
