"""A number's last four digits pick the same callee everywhere: the simulator (SPEC §7), the
replay doubles (tests/doubles/scenarios.py) and the real Asterisk's fake phones
(tests/asterisk/fake_phones.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.asterisk import fake_phones
from tests.doubles import scenarios
from tests.unit.test_simulator_dialer import make_call, simulator
from ttsqueue.domain import CallOutcome

# What each recording the doubles replay shows, in the words the fake phones' table uses.
RECORDING_IS = {
    "busy": "busy",
    "noanswer": "never answers",
    "congestion": "congestion",
    "shorthangup": "hangs up",
    "missingfile": "audio path is broken",
    "silent": "never rings",
    "lateanswer": "then answers",
}


def test_the_doubles_replay_what_the_fake_phone_of_that_ending_does() -> None:
    for ending, recording in scenarios.BY_ENDING.items():
        assert RECORDING_IS[recording] in fake_phones.BY_ENDING[ending].behaviour, ending
    assert scenarios.scenario_for("PJSIP/3005554242@trunk") == "answer"


@pytest.mark.parametrize(
    ("ending", "outcome"),
    [("0001", CallOutcome.BUSY), ("0002", CallOutcome.NO_ANSWER), ("0003", CallOutcome.CONGESTION)],
)
async def test_the_simulator_agrees(tmp_path: Path, ending: str, outcome: CallOutcome) -> None:
    dialer = simulator(tmp_path, 0.0)
    call = make_call(fake_phones.number(ending))
    await dialer.originate(call)
    assert (await dialer.wait_outcome(call)).outcome is outcome
    assert scenarios.BY_ENDING[ending] in RECORDING_IS
    assert RECORDING_IS[scenarios.BY_ENDING[ending]] in fake_phones.BY_ENDING[ending].behaviour


def test_the_endings_of_spec_12_are_there_for_calls_that_listen() -> None:
    behaviour = {e: c.behaviour for e, c in fake_phones.BY_ENDING.items()}
    assert "presses 1" in behaviour["0004"]
    assert "answering machine" in behaviour["0005"]
    assert "presses nothing" in behaviour["0006"]


def test_docs_list_every_fake_phone() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "asterisk.md").read_text()
    for callee in fake_phones.CALLEES:
        assert f"| `{callee.ending}` | {callee.behaviour} |" in docs, callee.ending
