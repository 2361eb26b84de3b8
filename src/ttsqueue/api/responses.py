"""JSON responses rendered with orjson, declared as UTF-8 (SPEC §2)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class JsonBody(Response):
    media_type = "application/json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
