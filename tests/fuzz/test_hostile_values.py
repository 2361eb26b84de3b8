"""Values the OpenAPI fuzzing rarely reaches, in every field of a call, single and batch:
datetimes at the very edges of the range with every offset, huge and negative numbers, deep
JSON, unknown fields. Each answer is a 2xx or a 4xx in the error shape, never a 5xx.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_settings
from tests.fuzz.live_api import serve_api

pytestmark = pytest.mark.timeout(300)

FIELDS = [
    "text",
    "phone_number",
    "language",
    "priority",
    "voice",
    "engine",
    "max_retries",
    "retry_delay",
    "send_at",
    "callback_url",
    "caller_id",
    "metadata",
]
OFFSETS = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
EDGE_DATETIMES = st.one_of(
    st.datetimes(max_value=datetime(1, 1, 3), timezones=st.just(None)),
    st.datetimes(min_value=datetime(9999, 12, 29), timezones=st.just(None)),
).flatmap(lambda moment: OFFSETS.map(lambda tz: moment.replace(tzinfo=tz).isoformat()))
NUMBERS = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**18, -1, 0, 1e308, -1e308, 5e-324]),
)


def deep(depth: int, leaf: Any) -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


DEEP_JSON = st.builds(deep, st.integers(min_value=1, max_value=600), st.integers())
HOSTILE = st.one_of(EDGE_DATETIMES, NUMBERS, DEEP_JSON, st.text(max_size=40), st.none())
REQUIRED = {"text": "Hola", "phone_number": "3005050149"}
# A valid call with one or two hostile fields (so the rest does not hide them behind an
# earlier 422), and often a send_at at the edge of the range.
CALL = st.builds(
    lambda hostile, edge: {**REQUIRED, **edge, **hostile},
    st.dictionaries(st.sampled_from([*FIELDS, "unknown_field"]), HOSTILE, max_size=2),
    st.fixed_dictionaries({}, optional={"send_at": EDGE_DATETIMES}),
)


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings_ = make_settings(tmp_path_factory.mktemp("hostile"), LOG_LEVEL="ERROR")
    with serve_api(settings_) as url:
        yield url


def check(reply: httpx.Response, sent: Any) -> None:
    assert reply.status_code < 500, (reply.status_code, reply.text[:300], str(sent)[:300])
    body = reply.json()
    if reply.status_code >= 400:
        assert body["success"] is False
        assert isinstance(body["error"], str)
        assert body["error"]


def post(client: httpx.Client, path: str, payload: Any) -> httpx.Response:
    # json.dumps: integers of any size, as a client in another language may send them.
    content = json.dumps(payload).encode()
    return client.post(path, content=content, headers={"Content-Type": "application/json"})


def test_hostile_values_never_cause_a_5xx(live_api: str) -> None:
    with httpx.Client(base_url=live_api, timeout=30) as client:

        @given(call=CALL)
        @settings(
            max_examples=150,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(call: dict[str, Any]) -> None:
            check(post(client, "/tts/call", call), call)
            check(post(client, "/tts/calls", {"calls": [call, call]}), call)

        run()


@pytest.mark.parametrize("depth", [10, 1000, 20_000])
def test_deep_json_bodies_are_refused_cleanly(live_api: str, depth: int) -> None:
    raw = "[" * depth + "]" * depth
    with httpx.Client(base_url=live_api, timeout=30) as client:
        for path in ("/tts/call", "/tts/calls"):
            reply = client.post(path, content=raw, headers={"Content-Type": "application/json"})
            check(reply, raw[:20])
            assert 400 <= reply.status_code < 500
