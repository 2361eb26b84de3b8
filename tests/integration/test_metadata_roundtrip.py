"""`metadata` comes back exactly as sent: in the status, in every webhook and in the result
message. Arbitrary JSON objects (nested empty arrays, 18-digit integers, floats, unicode)
make the round trip through the API, Redis (the status script included) and RabbitMQ."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.in_process import eventually
from ttsqueue.broker.topology import QueueNames
from ttsqueue.config import Settings
from ttsqueue.store.keys import Keys

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.settings(WEBHOOK_ALLOW_PRIVATE=True),
]

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
SCALARS = (
    st.none()
    | st.booleans()
    | INT64
    | st.integers(min_value=10**17, max_value=10**18 - 1)  # 18 digits: no float may hold it
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
METADATA = st.dictionaries(st.text(max_size=8), VALUES, max_size=5)


def exact(value: Any) -> str:
    """The JSON text of `value`, key order kept: 1 and 1.0, [] and {} all differ."""
    return json.dumps(value, ensure_ascii=False)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(metadata=METADATA)
async def test_metadata_comes_back_exactly_as_sent(
    api: httpx.AsyncClient,
    settings: Settings,
    broker: AbstractRobustConnection,
    redis_client: Any,
    metadata: dict[str, Any],
) -> None:
    body = {
        "text": "Hola",
        "phone_number": "3005050149",
        "callback_url": "http://127.0.0.1:9/hook",
        "metadata": metadata,
    }
    reply = await api.post("/tts/call", json=body)
    assert reply.status_code == 202, reply.text
    job_id = reply.json()["job_id"]
    status = (await api.get(f"/tts/status/{job_id}")).json()
    assert exact(status["metadata"]) == exact(metadata)
    # A status change goes through the status script into the webhook stream.
    assert (await api.delete(f"/tts/call/{job_id}")).status_code == 200
    keys = Keys(settings.REDIS_PREFIX)
    entries = await redis_client.xrange(keys.webhooks)
    hooks = [json.loads(fields["body"]) for _, fields in entries if fields["job_id"] == job_id]
    assert [hook["status"] for hook in hooks] == ["canceled"]
    assert exact(hooks[0]["metadata"]) == exact(metadata)
    # The audit message of a terminal state: a cancel ends the job like a worker does (it is
    # published a moment later, with the other endings of that moment).
    names = QueueNames.from_prefix(settings.QUEUE_PREFIX)
    channel = await broker.channel()
    results = await channel.get_queue(names.results)
    received: list[AbstractIncomingMessage] = []

    async def audit_arrived() -> bool:
        message = await results.get(no_ack=True, fail=False)
        received.extend([message] if message is not None else [])
        return bool(received)

    await eventually(audit_arrived, 10, "the audit message of the cancel")
    audit = json.loads(received[0].body)
    assert (audit["job_id"], audit["status"]) == (job_id, "canceled")
    # The call as the record holds it, embedded as JSON (not as a string of JSON).
    record = await redis_client.hget(keys.job(job_id), "call")
    assert audit["call"] == json.loads(record)
    assert (audit["call"]["outcome"], audit["call"]["reason"]) == ("canceled", "canceled")
    assert exact(audit["metadata"]) == exact(metadata)
    await channel.close()


async def test_top_level_metadata_must_be_an_object(api: httpx.AsyncClient) -> None:
    for value in ([], [1], "text", 5):
        reply = await api.post(
            "/tts/call", json={"text": "Hola", "phone_number": "3005050149", "metadata": value}
        )
        assert reply.status_code == 422
        assert "metadata" in reply.json()["error"]
