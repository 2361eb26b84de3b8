"""Records AMI sessions of calls that listen from a private Asterisk, in the format of
tests/doubles/recordings/ami/*.log (`[seconds] >>>` sent, `<<<` received), for the replay
tests (tests/unit/test_listen_replay.py).

    ASTERISK_BIN=... .venv/bin/python -m tests.asterisk.record_ami

One session per case: login, one Originate into the shipped dialplan with the variables a
worker sends (SPEC §12), every event until the call has ended, logoff.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from tests.asterisk.fake_phones import CHANNEL_TEMPLATE, number
from tests.asterisk.install import find_asterisk
from tests.asterisk.instance import PrivateAsterisk

OUT = Path(__file__).resolve().parents[1] / "doubles" / "recordings" / "ami"
JOB_ID = "5b0c8a52-3c1d-4b7a-9e6f-1a2b3c4d5e6f"
CONFIRM = {"TTS_CONFIRM_KEYS": "1", "TTS_REPEAT_KEY": "2", "TTS_MAX_REPEATS": "2"}
# case -> (callee ending, message sound, listen variables)
CASES: dict[str, tuple[str, str, dict[str, str]]] = {
    "listen_confirm": ("0004", "greeting", {**CONFIRM, "TTS_KEY_TIMEOUT": "3"}),
    "listen_nokey": ("0006", "hola", {**CONFIRM, "TTS_KEY_TIMEOUT": "2"}),
    "listen_hangup": ("0007", "greeting", {**CONFIRM, "TTS_KEY_TIMEOUT": "3"}),
    "listen_machine": ("0005", "hola", {"TTS_AMD": "hangup"}),
    "listen_voicemail": ("0005", "hola", {"TTS_AMD": "message"}),
}


class Session:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.t0 = time.monotonic()
        self.lines: list[str] = []
        self.messages: list[dict[str, str]] = []

    def _stamp(self, direction: str, note: str = "") -> None:
        self.lines.append(f"[{time.monotonic() - self.t0:8.3f}] {direction}{note}")

    def send(self, headers: list[tuple[str, str]]) -> None:
        self._stamp(">>>")
        # The instance's secret is not worth keeping: recorded as the other recordings have it.
        self.lines += [f"{k}: {'tts_secret' if k == 'Secret' else v}" for k, v in headers]
        self.writer.write(("".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode())

    async def banner(self) -> None:
        line = await self.reader.readline()
        self._stamp("<<<", f" BANNER {line!r}")

    async def read_one(self) -> dict[str, str]:
        block = await self.reader.readuntil(b"\r\n\r\n")
        self._stamp("<<<")
        headers: dict[str, str] = {}
        for raw in block.decode().split("\r\n"):
            if raw:
                self.lines.append(raw)
                key, _, value = raw.partition(":")
                headers.setdefault(key, value.strip())
        self.messages.append(headers)
        return headers


async def record(pbx: PrivateAsterisk, name: str) -> None:
    ending, sound, variables = CASES[name]
    call_id = f"{JOB_ID.replace('-', '')}01"
    reader, writer = await asyncio.open_connection("127.0.0.1", pbx.ami_port)
    session = Session(reader, writer)
    await session.banner()
    session.send(
        [
            ("Action", "Login"),
            ("Username", pbx.ami_user),
            ("Secret", pbx.ami_secret),
            ("Events", "call,user,system"),
            ("ActionID", "login-1"),
        ]
    )
    await session.read_one()
    headers = [
        ("Action", "Originate"),
        ("ActionID", f"orig-{call_id}"),
        ("Channel", CHANNEL_TEMPLATE.format(number=number(ending))),
        ("Context", "tts-playback"),
        ("Exten", "s"),
        ("Priority", "1"),
        ("Timeout", "30000"),
        ("Async", "true"),
        ("Variable", f"TTS_FILE={pbx.sounds / sound}"),
        ("Variable", f"TTS_JOB_ID={JOB_ID}"),
        ("Variable", f"TTS_CALL_ID={call_id}"),
    ]
    headers += [("Variable", f"{k}={v}") for k, v in variables.items()]
    if "TTS_CONFIRM_KEYS" in variables:
        headers.append(("Variable", f"TTS_PROMPT={pbx.sounds / 'prompt'}"))
    headers.append(("ChannelId", call_id))
    session.send(headers)
    ended = False
    async with asyncio.timeout(90):
        while not ended:
            message = await session.read_one()
            facts = message.get("Facts", "")
            ended = message.get("UserEvent") == "TTSReport" and facts.startswith("hung=")
        deadline = time.monotonic() + 1.0  # the events that trail the end
        while (left := deadline - time.monotonic()) > 0:
            try:
                async with asyncio.timeout(left):
                    await session.read_one()
            except TimeoutError:
                break
    session.send([("Action", "Logoff"), ("ActionID", "logoff-1")])
    writer.close()
    (OUT / f"{name}.log").write_text("\n".join(session.lines) + "\n")


async def main() -> int:
    with PrivateAsterisk(find_asterisk()) as pbx:
        for name in CASES:
            await record(pbx, name)
            print(f"recorded {OUT / name}.log")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
