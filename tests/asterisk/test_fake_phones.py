"""The fake phones do what fake_phones.py says, as Asterisk itself reports it: the reason code
of each callee that does not answer, the keys Read() hears, what AMD() makes of a machine, a
human and silence; and private instances come and go without leaving anything behind."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
import soundfile

from tests.asterisk.fake_phones import number
from tests.asterisk.install import AsteriskInstall
from tests.asterisk.instance import PrivateAsterisk
from tests.asterisk.probe import ami_probe
from tests.asterisk.sounds import write_sounds

pytestmark = pytest.mark.timeout(90)

# OriginateResponse Reason for each callee (README of ../shared/asterisk: 0 failure,
# 3 no answer, 4 answered, 5 busy, 8 congestion).
REASONS = {
    "0001": "5",
    "0002": "3",
    "0003": "8",
    "0006": "4",
    "0009": "3",
    "0010": "4",
    "0015": "0",
    "4242": "4",  # no behaviour of its own: answers and listens
}


async def test_each_callee_ends_the_originate_with_its_reason(
    shared_asterisk: PrivateAsterisk,
) -> None:
    async with ami_probe(shared_asterisk) as probe:
        for ending in REASONS:
            await probe.originate(number(ending), "hangup", timeout_s=4)
        await probe.until(lambda: len(probe.responses()) == len(REASONS), timeout=30)
    reasons = {n[-4:]: r.get("Reason") for n, r in probe.responses().items()}
    assert reasons == REASONS


async def test_read_hears_the_keys_each_callee_presses(shared_asterisk: PrivateAsterisk) -> None:
    prompt = str(shared_asterisk.sounds / "prompt")
    prompt_s = soundfile.info(f"{prompt}.wav").duration
    cases = {"0004": "1", "0011": "1", "0006": "", "0012": "12", "0016": "1"}
    async with ami_probe(shared_asterisk) as probe:
        for ending in cases:
            digits = "2" if ending == "0012" else "1"
            variables = {"TTS_FILE": prompt, "PROBE_DIGITS": digits}
            await probe.originate(number(ending), "read", variables=variables)
        await probe.until(lambda: len(probe.results()) == len(cases), timeout=40)
    results = probe.results()
    heard = {n[-4:]: e.get("Digits") or "" for n, e in results.items()}
    assert heard == cases
    status = {n[-4:]: e.get("Status") for n, e in results.items()}
    assert status == {e: "TIMEOUT" if e == "0006" else "OK" for e in cases}
    # During the prompt (Read stops it at the key) or after it, inside Read's timeout; timed by
    # Asterisk on the call itself.
    took = {n[-4:]: float(e.get("Seconds") or "nan") for n, e in results.items()}
    assert took["0004"] < prompt_s, took
    assert took["0012"] < prompt_s, took
    assert took["0016"] < prompt_s, took
    assert prompt_s < took["0011"] < prompt_s + 4, took
    assert took["0006"] > prompt_s + 3.5, took


async def test_amd_tells_machine_human_and_silence(shared_asterisk: PrivateAsterisk) -> None:
    cases = {
        "0005": ("MACHINE", "LONGGREETING"),
        "0013": ("HUMAN", "HUMAN"),
        "0014": ("MACHINE", "INITIALSILENCE"),
        # A callee that only Wait()s sends no audio frames: AMD cannot decide. This is why
        # the fake phones play silence as audio.
        "0006": ("NOTSURE", "TOOLONG"),
    }
    async with ami_probe(shared_asterisk) as probe:
        for ending in cases:
            await probe.originate(number(ending), "amd")
        await probe.until(lambda: len(probe.results()) == len(cases), timeout=40)
    found = {
        n[-4:]: (e.get("Status"), (e.get("Cause") or "").split("-")[0])
        for n, e in probe.results().items()
    }
    assert found == cases


async def test_every_dial_is_one_line_in_asterisks_log(shared_asterisk: PrivateAsterisk) -> None:
    before = shared_asterisk.rings_by_number()
    async with ami_probe(shared_asterisk) as probe:
        for _ in range(3):
            await probe.originate(number("0001", "300777"), "hangup", timeout_s=4)
        await probe.until(lambda: len(probe.responses_for("3007770001")) == 3, timeout=20)
    await asyncio.sleep(0.2)
    assert shared_asterisk.rings_by_number() - before == {"3007770001": 3}


def test_instances_run_side_by_side_and_leave_nothing(asterisk_install: AsteriskInstall) -> None:
    with PrivateAsterisk(asterisk_install) as one, PrivateAsterisk(asterisk_install) as two:
        assert one.ami_port != two.ami_port
        assert one.root != two.root
        pids = [one.pid, two.pid]
        assert all(pids)
        assert "fake-callee" in one.cli("dialplan show fake-callee")
        # The project's dialplan, as shipped.
        shipped = (one.etc / "extensions_tts.conf").read_text()
        assert shipped == (one.install_source / "extensions_tts.conf").read_text()
        assert "tts-playback" in two.cli("dialplan show tts-playback")
        two.stop()
        assert not two.running
        assert one.running
    for pid in pids:
        assert pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not one.root.exists()
    assert not two.root.exists()


def test_the_sounds_are_what_format_wav_plays(tmp_path: Path) -> None:
    for name, path in write_sounds(tmp_path).items():
        info = soundfile.info(f"{path}.wav")
        assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16"), name
        assert info.duration > 0.3, name
