"""Calls that listen, on a real Asterisk (SPEC §12): keys and answering machines, every path,
from the API to the job's outcome, with Asterisk's own log as the witness.

Keys: pressed during the message, after it, none, repeat then confirm, a wrong key (with and
without a repeat left), the callee hanging up during the message and during the prompt.
Machines: `hangup`, `message` (the log shows the message started after the beep and played
in full), `retry`, a person, silence, a line AMD cannot judge (NOTSURE: a person). And
`retry_unconfirmed`.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any

import httpx
import pytest
from aio_pika.abc import AbstractRobustConnection

from tests.asterisk.fake_phones import number
from tests.asterisk.helpers import call_id, wait_jobs
from tests.asterisk.install import AsteriskInstall
from tests.asterisk.instance import PrivateAsterisk
from tests.asterisk.sounds import BEEP_S
from tests.conftest import in_process_api
from tests.doubles.api_checks import finished, submit
from tests.in_process import publish_job, running_worker
from ttsqueue.config import Settings
from ttsqueue.domain import ConfirmOptions, MachineDetection
from ttsqueue.store.factory import build_store

pytestmark = pytest.mark.timeout(180)
CONFIRM: dict[str, Any] = {"digits": "1", "repeat_digit": "2", "max_repeats": 2, "timeout_s": 3}
PROMPT = "Presione uno para confirmar, o dos para repetir el mensaje."


@pytest.fixture(params=["ami", "callfile"])
def backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture
def settings(settings: Settings, shared_asterisk: PrivateAsterisk, backend: str) -> Settings:
    return settings.model_copy(
        update=shared_asterisk.settings_for(
            backend, CALL_RING_TIMEOUT=5, WORKER_CONCURRENCY=16, CALLS_PER_SECOND=50.0
        )
    )


def _call(body: dict[str, Any]) -> tuple[str, str, str, str | None, bool | None]:
    call = body["call"]
    return body["status"], call["outcome"], call["reason"], call["dtmf"], call["confirmed"]


# name -> (number, confirm options) and what the job must end as:
# (status, outcome, reason, dtmf, confirmed).
KEY_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "key during the message": (number("0004"), CONFIRM),
    "key after the message": (number("0011"), CONFIRM),
    "key at once": (number("0016"), CONFIRM),
    "no key": (number("0006"), CONFIRM),
    "repeat then confirm": (number("0017"), CONFIRM),
    "wrong key, prompt again, confirm": (number("0018"), CONFIRM),
    "wrong key, no repeat left": (number("0018", "300666"), {**CONFIRM, "max_repeats": 0}),
    "hangs up during the message": (number("0007"), CONFIRM),
    "hangs up during the prompt": (number("0019"), CONFIRM),
    "two keys at once: the first counts": (number("0012"), CONFIRM),
}
KEY_EXPECTED = {
    "key during the message": ("completed", "confirmed", "key_1", "1", True),
    "key after the message": ("completed", "confirmed", "key_1", "1", True),
    "key at once": ("completed", "confirmed", "key_1", "1", True),
    "no key": ("completed", "not_confirmed", "no_key", None, False),
    "repeat then confirm": ("completed", "confirmed", "key_1", "21", True),
    "wrong key, prompt again, confirm": ("completed", "confirmed", "key_1", "91", True),
    "wrong key, no repeat left": ("completed", "not_confirmed", "wrong_key", "9", False),
    "hangs up during the message": ("completed", "hangup_during_message", "hangup", None, False),
    "hangs up during the prompt": ("completed", "hangup_during_message", "hangup", None, False),
    "two keys at once: the first counts": ("completed", "confirmed", "key_1", "1", True),
}


async def test_keypress_confirmation_every_path(
    api: httpx.AsyncClient,
    settings: Settings,
    shared_asterisk: PrivateAsterisk,
    backend: str,
) -> None:
    jobs = {
        name: await submit(api, phone, max_retries=0, confirm=confirm)
        for name, (phone, confirm) in KEY_CASES.items()
    }
    async with running_worker(settings):
        bodies = await asyncio.gather(
            *(finished(api, job_id, timeout=90) for job_id in jobs.values())
        )
    found = dict(zip(jobs, (_call(body) for body in bodies), strict=True))
    assert found == KEY_EXPECTED
    rings = shared_asterisk.rings()
    for body in bodies:
        assert body["attempts"] == 1
        assert body["call"]["backend"] == backend
        assert rings[call_id(body["job_id"])] == 1
        assert body["confirm"]["prompt"].startswith("Para confirmar, presione 1.")
    # The keys went through Asterisk's own DTMF path (its log, `dtmf` channel).
    assert re.search(r"DTMF end '2' received on Local/\d+0017@", shared_asterisk.log_text())


def _log_times(log: str, pattern: str) -> list[float]:
    """Epochs of the log lines matching `pattern` (Asterisk's own `[%F %T.%3q]` stamps)."""
    stamps = re.findall(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})\][^\n]*" + pattern, log, re.M)
    return [datetime.fromisoformat(stamp).timestamp() for stamp in stamps]


async def test_answering_machines_every_mode(
    api: httpx.AsyncClient,
    settings: Settings,
    broker: AbstractRobustConnection,
    redis_client: Any,
    shared_asterisk: PrivateAsterisk,
    backend: str,
) -> None:
    store = build_store(redis_client, settings).jobs
    cases = {
        "machine, hangup": (number("0005"), "hangup"),
        "machine, message": (number("0005", "300666"), "message"),
        "person, hangup": (number("0013"), "hangup"),
        "silence, hangup": (number("0014"), "hangup"),
        # No audio frames at all: AMD cannot decide (NOTSURE), and that is a person.
        "not sure, hangup": (number("0006"), "hangup"),
        "machine, off": (number("0005", "300777"), "off"),
    }
    jobs = {
        name: await submit(api, phone, max_retries=0, machine_detection=mode)
        for name, (phone, mode) in cases.items()
    }
    # Retried like a no-answer: a retry delay of 1 s is below what the API accepts.
    retried = await publish_job(
        broker,
        settings,
        store,
        phone=number("0005", "300888"),
        max_retries=1,
        retry_delay=1,
        machine_detection=MachineDetection.RETRY,
    )
    unconfirmed = await publish_job(
        broker,
        settings,
        store,
        phone=number("0006", "300888"),
        max_retries=1,
        retry_delay=1,
        confirm=ConfirmOptions(timeout_s=1, max_repeats=0, prompt=PROMPT),
        retry_unconfirmed=True,
    )
    ids = [*jobs.values(), retried, unconfirmed]
    async with running_worker(settings):
        bodies = dict(
            zip(
                [*jobs, "machine, retry", "unconfirmed, retried"],
                await asyncio.gather(*(finished(api, job_id, timeout=120) for job_id in ids)),
                strict=True,
            )
        )
    found = {
        name: (b["status"], b["call"]["outcome"], (b["call"]["amd"] or {}).get("status"))
        for name, b in bodies.items()
    }
    assert found == {
        "machine, hangup": ("failed", "machine", "MACHINE"),
        "machine, message": ("completed", "voicemail", "MACHINE"),
        "person, hangup": ("completed", "answered", "HUMAN"),
        "silence, hangup": ("failed", "machine", "MACHINE"),
        "not sure, hangup": ("completed", "answered", "NOTSURE"),
        "machine, off": ("completed", "answered", None),
        "machine, retry": ("failed", "machine", "MACHINE"),
        "unconfirmed, retried": ("failed", "not_confirmed", None),
    }
    amd = bodies["machine, hangup"]["call"]["amd"]
    assert amd["cause"].startswith("LONGGREETING"), amd
    assert 1000 < amd["detect_ms"] < 6000, amd
    assert bodies["silence, hangup"]["call"]["amd"]["cause"].startswith("INITIALSILENCE")
    assert bodies["person, hangup"]["call"]["reason"] == "played"
    rings = shared_asterisk.rings()
    for name, attempts in (
        ("machine, retry", 2),
        ("unconfirmed, retried", 2),
        ("machine, hangup", 1),
    ):
        job_id = bodies[name]["job_id"]
        assert bodies[name]["attempts"] == attempts, name
        assert [rings[call_id(job_id, n)] for n in range(1, attempts + 1)] == [1] * attempts
    await wait_jobs(store, [retried, unconfirmed])

    # The voicemail, from Asterisk's own log: the message started after the beep had played
    # out, and played in full (its Playback ran as long as the audio, then the dialplan went
    # on to TTS_DONE).
    body = bodies["machine, message"]
    log = shared_asterisk.log_text()
    ours = re.search(rf'NoOp\("(Local/[^;"]+);1", "tts-queue call {call_id(body["job_id"])} ', log)
    assert ours is not None
    channel = re.escape(ours.group(1))
    beep = _log_times(log, rf"<{channel};2> Playing '[^']*/beep\.")
    played = _log_times(log, rf'Playback\("{channel};1", ')
    done = _log_times(log, rf'Set\("{channel};1", "TTS_DONE=1"\)')
    assert (len(beep), len(played), len(done)) == (1, 1, 1), (beep, played, done)
    assert played[0] >= beep[0] + BEEP_S
    assert done[0] - played[0] >= body["audio"]["duration_s"] - 0.1


async def test_machine_detection_without_amd_conf_fails_clearly(
    asterisk_install: AsteriskInstall,
    settings: Settings,
    broker: AbstractRobustConnection,
    backend: str,
) -> None:
    """app_amd does not load without amd.conf: AMD() does not exist, the dialplan stops at it,
    and the job says so (instead of a person who hung up)."""
    pbx = PrivateAsterisk(asterisk_install)
    (pbx.etc / "amd.conf").unlink()
    with pbx:
        own = settings.model_copy(update=pbx.settings_for(backend, CALL_RING_TIMEOUT=5))
        async with in_process_api(own) as client:
            job_id = await submit(client, number("0013"), max_retries=0, machine_detection="hangup")
            async with running_worker(own):
                body = await finished(client, job_id, timeout=60)
        assert "No application 'AMD'" in pbx.log_text()
    assert (body["status"], body["call"]["outcome"], body["call"]["reason"]) == (
        "failed",
        "failed",
        "amd_unavailable",
    )
    assert body["call"]["amd"] is None
