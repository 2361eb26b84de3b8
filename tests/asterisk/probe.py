"""Calling the fake phones directly, without tts-queue: an AMI session (the project's own
client, logged in as the instance's least-privilege user) that originates into `fake-probe`
and collects the events it is sent."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from tests.asterisk.fake_phones import CHANNEL_TEMPLATE
from tests.asterisk.instance import PrivateAsterisk
from ttsqueue.dialer.ami import AmiCredentials, AmiSession
from ttsqueue.dialer.ami.protocol import AmiMessage

_NUMBER = re.compile(r"Local/(\d+)@")


@dataclass(slots=True)
class AmiProbe:
    pbx: PrivateAsterisk
    events: list[AmiMessage] = field(default_factory=list)
    session: AmiSession | None = None

    def on_event(self, event: AmiMessage) -> None:
        self.events.append(event)

    async def originate(
        self,
        number: str,
        probe: str,
        *,
        variables: dict[str, str] | None = None,
        timeout_s: float = 10,
    ) -> None:
        """Ring `number`'s fake phone; once it answers, `fake-probe,<probe>` runs as the caller."""
        assert self.session is not None
        fields = [
            ("Action", "Originate"),
            ("Channel", CHANNEL_TEMPLATE.format(number=number)),
            ("Context", "fake-probe"),
            ("Exten", probe),
            ("Priority", "1"),
            ("Timeout", str(int(timeout_s * 1000))),
            ("Async", "true"),
            ("Variable", f"PROBE={number}"),
        ]
        fields += [("Variable", f"{key}={value}") for key, value in (variables or {}).items()]
        response = await self.session.request(fields, timeout=10)
        assert response.name.lower() == "success", response

    def results(self, name: str = "FakeProbe") -> dict[str, AmiMessage]:
        """The dialplan's UserEvents by their `Probe` header."""
        found = {}
        for event in self.events:
            if event.name.lower() == "userevent" and event.get("UserEvent") == name:
                found[event.get("Probe") or ""] = event
        return found

    def responses_for(self, number: str) -> list[AmiMessage]:
        """OriginateResponses of the calls to `number`, in arrival order."""
        found = []
        for event in self.events:
            if event.name.lower() != "originateresponse":
                continue
            match = _NUMBER.match(event.get("Channel") or "")
            if match and match.group(1) == number:
                found.append(event)
        return found

    def responses(self) -> dict[str, AmiMessage]:
        """The last OriginateResponse for each number called."""
        found = {}
        for event in self.events:
            match = _NUMBER.match(event.get("Channel") or "")
            if event.name.lower() == "originateresponse" and match:
                found[match.group(1)] = event
        return found

    async def until(self, check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"not reached in {timeout}s; events: {self.events[-10:]}")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def ami_probe(pbx: PrivateAsterisk) -> AsyncIterator[AmiProbe]:
    probe = AmiProbe(pbx)
    credentials = AmiCredentials("127.0.0.1", pbx.ami_port, pbx.ami_user, pbx.ami_secret)
    probe.session = AmiSession(credentials, probe.on_event)
    probe.session.start()
    try:
        assert await probe.session.wait_connected(20), probe.session.last_error
        yield probe
    finally:
        await probe.session.close()
