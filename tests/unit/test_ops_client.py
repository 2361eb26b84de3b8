"""The operator's API client against a small real HTTP server playing the API."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from rich.console import Console

from tests.ports import free_port
from ttsqueue.ops import calls
from ttsqueue.ops.client import (
    ApiClient,
    ApiConnectionError,
    ApiRequestError,
    follow_job,
    port_in_use,
    wait_for_health,
)


class FakeApi(BaseHTTPRequestHandler):
    """Answers like the real API: a job that moves through statuses on each poll."""

    statuses: ClassVar[list[str]] = []
    polls: ClassVar[list[str]] = []
    # When set, answers carry the job's history up to its current status (as the API does).
    with_history: ClassVar[bool] = False

    def _reply(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/health":
            self._reply(503, {"success": False, "status": "unhealthy"})
        elif self.path == "/tts/status/job-1":
            step = min(len(self.polls), len(self.statuses) - 1)
            self.polls.append(self.path)
            body: dict[str, Any] = {"success": True, "job_id": "job-1"}
            if self.with_history:
                history = self.statuses[step].split(",")
                body["status"] = history[-1]
                body["history"] = [{"status": s, "at": None, "detail": None} for s in history]
                body["worker_id"] = "w-1"
            else:
                body["status"] = self.statuses[step]
            self._reply(200, body)
        else:
            self._reply(404, {"success": False, "error": "job not found", "code": "job_not_found"})

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        body = json.loads(self.rfile.read(length))
        if self.headers.get("X-API-Key") != "k1":
            self._reply(401, {"success": False, "error": "missing key", "code": "unauthorized"})
        elif body.get("priority") not in ("normal", "high"):
            self._reply(422, {"success": False, "error": "bad priority", "code": "invalid"})
        else:
            self._reply(202, {"success": True, "job_id": "job-1", "status": "queued"})

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def api_url() -> Iterator[str]:
    FakeApi.polls = []
    FakeApi.with_history = False
    FakeApi.statuses = ["queued", "processing", "processing", "calling", "completed"]
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_submit_sends_the_key_and_returns_the_job(api_url: str) -> None:
    with ApiClient(api_url, key="k1") as client:
        accepted = client.submit_call("hola", "3005050149", priority="high", language="es")
    assert accepted["job_id"] == "job-1"


def test_refused_request_carries_status_and_code(api_url: str) -> None:
    with ApiClient(api_url, key="k1") as client, pytest.raises(ApiRequestError) as info:
        client.submit_call("hola", "3005050149", priority="urgent", language=None)
    assert info.value.status_code == 422
    assert info.value.code == "invalid"
    with ApiClient(api_url) as client, pytest.raises(ApiRequestError, match="401"):
        client.submit_call("hola", "3005050149", language=None)


def test_unknown_job_is_a_request_error(api_url: str) -> None:
    with ApiClient(api_url) as client, pytest.raises(ApiRequestError, match="job_not_found"):
        client.job("nope")


def test_unhealthy_is_an_answer_not_an_error(api_url: str) -> None:
    with ApiClient(api_url) as client:
        code, body = client.health()
    assert (code, body["status"]) == (503, "unhealthy")


def test_nothing_listening_is_a_connection_error() -> None:
    port = free_port()
    assert not port_in_use("127.0.0.1", port)
    with ApiClient(f"http://127.0.0.1:{port}", timeout=2) as client:
        with pytest.raises(ApiConnectionError, match="cannot reach"):
            client.stats()
        assert wait_for_health(client, timeout=0.5, alive=lambda: True) is None


def test_follow_reports_each_change_once_until_terminal(api_url: str) -> None:
    seen: list[str] = []
    with ApiClient(api_url) as client:
        record = follow_job(
            client,
            "job-1",
            timeout=30,
            interval=0.01,
            on_step=lambda step, _: seen.append(step["status"]),
        )
    assert record["status"] == "completed"
    assert seen == ["queued", "processing", "calling", "completed"]


def test_follow_shows_every_state_of_the_history_even_between_polls(api_url: str) -> None:
    """Each poll sees the job further on; the states it passed meanwhile come from its
    history, once each, in order, with the record as it is at that poll."""
    FakeApi.with_history = True
    FakeApi.statuses = [
        "queued",
        "queued,processing,calling",
        "queued,processing,calling",
        "queued,processing,calling,retrying,queued,processing,calling,completed",
    ]
    seen: list[tuple[str, str]] = []
    with ApiClient(api_url) as client:
        record = follow_job(
            client,
            "job-1",
            timeout=30,
            interval=0.01,
            on_step=lambda step, now: seen.append((step["status"], now["status"])),
        )
    assert record["status"] == "completed"
    assert [status for status, _ in seen] == [
        "queued",
        "processing",
        "calling",
        "retrying",
        "queued",
        "processing",
        "calling",
        "completed",
    ]
    assert [now for _, now in seen] == ["queued"] + ["calling"] * 2 + ["completed"] * 5
    assert len(FakeApi.polls) == 4


def test_call_progress_prints_every_state_and_the_end_once(api_url: str) -> None:
    FakeApi.with_history = True
    FakeApi.statuses = ["queued", "queued,processing,calling,completed"]
    out = io.StringIO()
    with ApiClient(api_url) as client:
        record = calls.follow(Console(file=out, width=200), client, "job-1", timeout=30)
    assert record["status"] == "completed"
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["queued", "processing", "calling", "completed"]
    assert ["worker=w-1" in line for line in lines] == [False, False, False, True]


def test_follow_stops_at_the_timeout(api_url: str) -> None:
    FakeApi.statuses = ["queued"]
    seen: list[str] = []
    with ApiClient(api_url) as client:
        record = follow_job(
            client,
            "job-1",
            timeout=0.2,
            interval=0.05,
            on_step=lambda step, _: seen.append(step["status"]),
        )
    assert record["status"] == "queued"
    assert seen == ["queued"]
    assert len(FakeApi.polls) > 1
