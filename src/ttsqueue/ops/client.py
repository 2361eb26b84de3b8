"""A small synchronous client for the product's own HTTP API (used by the operator CLI)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from ttsqueue.addresses import client_host
from ttsqueue.domain import TERMINAL_STATUSES
from ttsqueue.errors import TTSQueueError

Record = dict[str, Any]
TERMINAL = frozenset(str(status) for status in TERMINAL_STATUSES)
# An import of 200,000 numbers takes seconds to normalize on the server.
UPLOAD_TIMEOUT_S = 300.0


@dataclass(frozen=True, slots=True)
class Upload:
    data: bytes
    media_type: str


class ApiClientError(TTSQueueError):
    """The API could not be used from this command."""


class ApiConnectionError(ApiClientError):
    """Nothing answered at the API address (not started, wrong host/port, network)."""


class ApiRequestError(ApiClientError):
    """The API answered with an error status."""

    def __init__(self, status_code: int, message: str, code: str = "") -> None:
        self.status_code = status_code
        self.code = code
        super().__init__(f"HTTP {status_code}: {message}" + (f" ({code})" if code else ""))


class ApiClient:
    def __init__(self, base_url: str, *, key: str | None = None, timeout: float = 10.0) -> None:
        headers = {"X-API-Key": key} if key else {}
        self.base_url = base_url
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def _send(
        self,
        method: str,
        path: str,
        body: Record | None = None,
        params: Mapping[str, str | int] | None = None,
        upload: Upload | None = None,
    ) -> httpx.Response:
        try:
            if upload is not None:  # raw bytes of a file, sent as they are
                return self._http.request(
                    method,
                    path,
                    content=upload.data,
                    headers={"Content-Type": upload.media_type},
                    timeout=UPLOAD_TIMEOUT_S,
                )
            return self._http.request(method, path, json=body, params=params)
        except httpx.TransportError as exc:
            raise ApiConnectionError(
                f"cannot reach the API at {self.base_url} ({exc}); is it running? "
                "(`./manage.sh start`)"
            ) from exc

    def _json(
        self,
        method: str,
        path: str,
        body: Record | None = None,
        params: Mapping[str, str | int] | None = None,
        upload: Upload | None = None,
    ) -> Record:
        response = self._send(method, path, body, params, upload)
        try:
            data = response.json()
        except ValueError:
            data = {"error": response.text[:200]}
        if not isinstance(data, dict):
            data = {"error": str(data)[:200]}
        if response.is_error:
            raise ApiRequestError(
                response.status_code, str(data.get("error", "")), str(data.get("code", ""))
            )
        return data

    def submit_call(
        self,
        text: str,
        phone_number: str,
        *,
        priority: str = "normal",
        language: str | None,
        max_retries: int | None = None,
        extra: Record | None = None,
    ) -> Record:
        body: Record = {"text": text, "phone_number": phone_number, "priority": priority}
        body.update(extra or {})
        if language:
            body["language"] = language
        if max_retries is not None:
            body["max_retries"] = max_retries
        return self._json("POST", "/tts/call", body)

    def job(self, job_id: str) -> Record:
        return self._json("GET", f"/tts/status/{job_id}")

    def stats(self) -> Record:
        return self._json("GET", "/queue/stats")

    def jobs(
        self,
        *,
        status: str | None = None,
        priority: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Record:
        """One page of `GET /tts/jobs`, newest first; `next_cursor` fetches the next one."""
        wanted = {"status": status, "priority": priority, "limit": limit, "cursor": cursor}
        params = {name: value for name, value in wanted.items() if value is not None}
        return self._json("GET", "/tts/jobs", params=params)

    # Do-not-call list (SPEC §13) -----------------------------------------------------------
    def dnc_add(self, number: str) -> Record:
        return self._json("PUT", f"/dnc/{quote(number, safe='')}")

    def dnc_remove(self, number: str) -> Record:
        return self._json("DELETE", f"/dnc/{quote(number, safe='')}")

    def dnc_list(self, *, limit: int | None = None, cursor: str | None = None) -> Record:
        wanted = {"limit": limit, "cursor": cursor}
        return self._json("GET", "/dnc", params={k: v for k, v in wanted.items() if v is not None})

    def dnc_import(self, data: bytes, media_type: str) -> Record:
        """`POST /dnc` with a file's bytes (`text/csv` or `application/json`)."""
        return self._json("POST", "/dnc", upload=Upload(data, media_type))

    # Campaigns (SPEC §13) -----------------------------------------------------------------
    def campaign_create(self, filename: str, data: bytes, fields: Mapping[str, str]) -> Record:
        """`POST /campaigns` with a CSV file (multipart) and the campaign's settings."""
        try:
            response = self._http.post(
                "/campaigns",
                data=dict(fields),
                files={"file": (filename, data, "text/csv")},
                timeout=UPLOAD_TIMEOUT_S,
            )
        except httpx.TransportError as exc:
            raise ApiConnectionError(f"cannot reach the API at {self.base_url} ({exc})") from exc
        data_json = response.json() if response.content else {}
        if response.is_error:
            raise ApiRequestError(
                response.status_code,
                str(data_json.get("error", "")),
                str(data_json.get("code", "")),
            )
        return data_json if isinstance(data_json, dict) else {}

    def campaign(self, campaign_id: str) -> Record:
        return self._json("GET", f"/campaigns/{quote(campaign_id, safe='')}")

    def campaigns(self) -> Record:
        return self._json("GET", "/campaigns")

    def campaign_action(self, campaign_id: str, verb: str) -> Record:
        """pause, resume or cancel."""
        return self._json("POST", f"/campaigns/{quote(campaign_id, safe='')}/{verb}")

    def campaign_results(self, campaign_id: str) -> bytes:
        response = self._send("GET", f"/campaigns/{quote(campaign_id, safe='')}/results.csv")
        if response.is_error:
            raise ApiRequestError(response.status_code, response.text[:200])
        return response.content

    def health(self) -> tuple[int, Record]:
        """Status code and body; 503 (unhealthy) is an answer, not an error."""
        response = self._send("GET", "/health")
        try:
            data = response.json()
        except ValueError:
            data = {}
        return response.status_code, data if isinstance(data, dict) else {}


def new_steps(record: Record, seen: int, last_status: object) -> tuple[list[Record], int]:
    """The states `record` went through after the first `seen` of its history, and the new
    count. An answer without a history yields its status when that changed."""
    history = record.get("history")
    if isinstance(history, list):
        steps = [step for step in history[seen:] if isinstance(step, dict)]
        return steps, max(seen, len(history))
    if record.get("status") == last_status:
        return [], seen
    return [{"status": record.get("status"), "at": record.get("updated_at"), "detail": None}], seen


def follow_job(
    client: ApiClient,
    job_id: str,
    *,
    timeout: float,
    on_step: Callable[[Record, Record], None],
    interval: float = 0.5,
) -> Record:
    """Poll the job until it is terminal or `timeout` passes. `on_step(step, record)` sees
    every state the job went through, once each and in order, read from its history: a state
    shorter than one poll is shown all the same."""
    deadline = time.monotonic() + timeout
    seen, last_status = 0, None
    while True:
        record = client.job(job_id)
        steps, seen = new_steps(record, seen, last_status)
        last_status = record.get("status")
        for step in steps:
            on_step(step, record)
        if last_status in TERMINAL or time.monotonic() >= deadline:
            return record
        time.sleep(interval)


def wait_for_health(
    client: ApiClient, *, timeout: float, alive: Callable[[], bool], interval: float = 0.3
) -> tuple[int, Record] | None:
    """Wait until /health answers; None when the time runs out or `alive()` turns false."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            return client.health()
        except ApiConnectionError:
            time.sleep(interval)
    return None


def port_in_use(host: str, port: int) -> bool:
    target = client_host(host).strip("[]")
    try:
        with socket.create_connection((target, port), timeout=0.5):
            return True
    except OSError:
        return False
