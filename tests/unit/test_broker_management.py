"""The management API's queue objects mapped to the dashboard's figures, and where it is asked.

The JSON files are answers of a real RabbitMQ 3.10.8 (`GET /api/queues/%2F/<name>`): one for a
queue with 46.6 publishes/s, 24.6 deliveries and acks/s, 109 ready and 5 unacknowledged
messages and one consumer; one for a queue that never had traffic (no `message_stats`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from ttsqueue.broker.management import ManagementTarget, QueueFigures, QueueRates, parse_queue
from ttsqueue.dashboard.snapshot import queue_row

DATA = Path(__file__).parent / "data"


def captured(name: str) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads((DATA / name).read_bytes())
    return body


def test_a_busy_queue_as_the_real_api_reports_it() -> None:
    figures = parse_queue(captured("rabbitmq_3.10.8_queue_busy.json"))
    assert figures == QueueFigures(
        ready=109,
        unacked=5,
        consumers=1,
        rates=QueueRates(publish=46.6, deliver=24.6, ack=24.6),
    )


def test_a_queue_without_traffic_has_zero_rates_not_missing_ones() -> None:
    body = captured("rabbitmq_3.10.8_queue_idle.json")
    assert "message_stats" not in body
    assert parse_queue(body) == QueueFigures(0, 0, 0, QueueRates(0.0, 0.0, 0.0))


def test_queue_rows_for_the_page() -> None:
    busy = parse_queue(captured("rabbitmq_3.10.8_queue_busy.json"))
    # Ready and consumers come from the passive declare; the rest from the management API.
    assert queue_row(111, 1, {"normal": busy}, "normal") == {
        "ready": 111,
        "consumers": 1,
        "unacked": 5,
        "rates": {"publish": 46.6, "deliver": 24.6, "ack": 24.6},
    }
    # A queue the management API does not know holds nothing.
    assert queue_row(0, 0, {"dead": None}, "dead") == {
        "ready": 0,
        "consumers": 0,
        "unacked": 0,
        "rates": {"publish": 0.0, "deliver": 0.0, "ack": 0.0},
    }
    # Without the management API the figures are unknown, not zero.
    assert queue_row(7, 2, None, "normal") == {
        "ready": 7,
        "consumers": 2,
        "unacked": None,
        "rates": None,
    }


@pytest.mark.parametrize(
    ("amqp", "override", "expected"),
    [
        (
            "amqp://guest:guest@localhost:5672/",
            "",
            ("http://localhost:15672", "/", "guest", "guest"),
        ),
        (
            "amqp://tts:p%40ss@rabbit.internal:5672/tts%2Fprod",
            "",
            ("http://rabbit.internal:15672", "tts/prod", "tts", "p@ss"),
        ),
        ("amqps://u:p@mq.example.com/", "", ("https://mq.example.com:15671", "/", "u", "p")),
        ("amqp://10.0.0.5", "", ("http://10.0.0.5:15672", "/", "guest", "guest")),
        ("amqp://u:p@[::1]:5672/", "", ("http://[::1]:15672", "/", "u", "p")),
        (
            "amqp://u:p@rabbit:5672/vh",
            "https://admin:secret@mgmt.example.com/rabbitmq/",
            ("https://mgmt.example.com/rabbitmq", "vh", "admin", "secret"),
        ),
        (
            "amqp://u:p@rabbit:5672/",
            "http://127.0.0.1:25672",
            ("http://127.0.0.1:25672", "/", "u", "p"),
        ),
    ],
)
def test_where_the_management_api_is_asked(
    amqp: str, override: str, expected: tuple[str, str, str, str]
) -> None:
    target = ManagementTarget.from_urls(amqp, override)
    assert (target.base_url, target.vhost, target.user, target.password) == expected
    assert "secret" not in target.base_url


def test_vhost_and_queue_names_are_escaped_in_the_path() -> None:
    default = ManagementTarget.from_urls("amqp://guest:guest@localhost:5672/")
    assert default.queue_url("tts_calls") == "http://localhost:15672/api/queues/%2F/tts_calls"
    odd = ManagementTarget.from_urls("amqp://localhost/a%2Fb")
    assert odd.queue_url("x y/z") == "http://localhost:15672/api/queues/a%2Fb/x%20y%2Fz"
