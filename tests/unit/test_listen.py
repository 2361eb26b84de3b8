"""Calls that listen, replayed: the dialplan's reports recorded on a real Asterisk (status files
in tests/doubles/recordings/listen/, written by deploy/asterisk/extensions_tts.conf) through
both backends' readers, to the outcome the real run gave. Plus the request rules, the values
that reach the dialplan, and the simulator's callees."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.factories import make_job
from tests.unit.test_schemas import body as request_body
from tests.unit.test_schemas import check, field_error, rejected_fields
from ttsqueue.config import Settings
from ttsqueue.dialer.ami.dialer import originate_action
from ttsqueue.dialer.ami.events import call_facts
from ttsqueue.dialer.ami.protocol import parse_message
from ttsqueue.dialer.base import CallRequest, CallResult
from ttsqueue.dialer.callfile.format import SpoolFile, parse_report, render_call_file, spool_result
from ttsqueue.dialer.dial_values import dial_values
from ttsqueue.dialer.listen import ListenOptions, parse_facts
from ttsqueue.dialer.listen_result import apply_listen
from ttsqueue.dialer.outcome import resolve
from ttsqueue.dialer.simulated_listen import simulate_listen
from ttsqueue.domain import CallOutcome, ConfirmOptions, MachineDetection
from ttsqueue.errors import PermanentJobError
from ttsqueue.prompts import default_prompt
from ttsqueue.worker.retry import retried_like_no_answer, telephony_decision

RECORDINGS = Path(__file__).resolve().parents[1] / "doubles" / "recordings" / "listen"
CASES: dict[str, dict[str, Any]] = json.loads((RECORDINGS / "cases.json").read_text())
JOB_ID = "0f8e4a52-3c1d-4b7a-9e6f-1a2b3c4d5e6f"
CALL_ID = "0f8e4a523c1d4b7a9e6f1a2b3c4d5e6f01"


def options_of(case: dict[str, Any]) -> ListenOptions:
    confirm = case["confirm"] or {}
    return ListenOptions(
        machine_detection=MachineDetection(case["machine_detection"]),
        confirm_keys=confirm.get("digits", ""),
        repeat_key=confirm.get("repeat_digit") or "",
        max_repeats=confirm.get("max_repeats", 0),
        timeout_s=confirm.get("timeout_s", 5),
        prompt_path="/var/lib/asterisk/sounds/tts/prompt" if confirm else "",
        prompt_duration_s=case["prompt_s"],
    )


def make_call(listen: ListenOptions | None, message_s: float = 3.0, at: float = 0.0) -> CallRequest:
    return CallRequest(
        job_id=JOB_ID,
        attempt=1,
        number="3005050149",
        e164="+573005050149",
        caller_id=None,
        audio_path="/var/lib/asterisk/sounds/tts/abc",
        audio_duration_s=message_s,
        ring_timeout_s=30,
        originated_at=at,
        listen=listen,
    )


def summary(result: CallResult) -> dict[str, Any]:
    return {
        "outcome": result.outcome.value,
        "reason": result.reason,
        "dtmf": result.dtmf,
        "confirmed": result.confirmed,
        "amd": result.amd.status if result.amd else None,
    }


def recorded(name: str) -> tuple[dict[str, Any], str, CallRequest]:
    case = CASES[name]
    text = (RECORDINGS / case["status_file"]).read_text()
    call = make_call(options_of(case), case["message_s"], float(text.split()[0].split("=")[1]))
    return case, text, call


@pytest.mark.parametrize("name", sorted(CASES))
def test_call_file_reports_replayed(name: str) -> None:
    case, text, call = recorded(name)
    report = parse_report(text)
    result = apply_listen(spool_result(SpoolFile("Completed", 1), report, 0.0), report, call)
    assert summary(result) == case["expected"]


def _event(headers: dict[str, str]) -> Any:
    return parse_message("\r\n".join(f"{k}: {v}" for k, v in headers.items()).encode())


@pytest.mark.parametrize("name", sorted(CASES))
def test_ami_reports_replayed(name: str) -> None:
    """The same reports as AMI sends them (UserEvent TTSReport), with the channel's own
    events, through the AMI reader: the same outcome."""
    case, text, call = recorded(name)
    lines = text.splitlines()
    final = parse_report(lines[-1])  # the call-file-only `h` line: answered, ended, done
    events = [
        {"Event": "OriginateResponse", "Response": "Success", "Reason": "4", "Uniqueid": CALL_ID},
        *(
            {"Event": "UserEvent", "UserEvent": "TTSReport", "CallID": CALL_ID, "Facts": line}
            for line in lines[1:-1]
        ),
    ]
    if final.get("done") == "1":
        events.append({"Event": "UserEvent", "UserEvent": "TTSDone", "CallID": CALL_ID})
    events.append({"Event": "Hangup", "Uniqueid": CALL_ID, "Cause": "16"})
    record: dict[str, str] = {}
    for headers in events:
        seen = call_facts(_event(headers), float(final["ended"]))
        assert seen is not None
        for key, value in seen[1].items():
            record.setdefault(key, value)
    result = resolve(record, call, float(final["ended"]))
    assert result is not None
    assert summary(result) == case["expected"]


def test_amd_time_comes_from_asterisks_clock() -> None:
    _, text, call = recorded("machine_hangup")
    report = parse_report(text)
    result = apply_listen(spool_result(SpoolFile("Completed", 1), report, 0.0), report, call)
    assert result.amd is not None
    assert result.amd.cause == "LONGGREETING-1500-1500"
    assert result.amd.detect_ms == round(
        (float(report["amd_at"]) - float(report["amd_from"])) * 1000
    )


def test_unknown_or_hostile_report_tokens_are_not_recorded() -> None:
    facts = parse_facts("amd=MACHINE evil=1 dtmf=1\r\nx key1=a;b round1=1.5 confirm=confirmed")
    assert facts == {"amd": "MACHINE", "dtmf": "1", "round1": "1.5", "confirm": "confirmed"}


def test_a_call_that_does_not_listen_is_left_as_it_was() -> None:
    plain = CallResult(CallOutcome.ANSWERED, reason="hangup_during_playback", ended_at=5.0)
    assert apply_listen(plain, {"confirm": "confirmed"}, make_call(None)) == plain


# --- requests -----------------------------------------------------------------------------


def test_confirm_defaults_and_prompts(settings: Settings) -> None:
    call = check(settings, request_body(confirm={}))
    assert call.confirm is not None
    assert (call.confirm.digits, call.confirm.repeat_digit, call.confirm.max_repeats) == (
        "1",
        "2",
        2,
    )
    assert call.confirm.prompt == default_prompt("es", "1", "2")
    english = check(settings, request_body(language="en", confirm={"digits": "1*"}))
    assert english.confirm is not None
    assert english.confirm.prompt == (
        "To confirm, press 1 or star. To hear the message again, press 2."
    )
    own = check(settings, request_body(confirm={"prompt": "  Marque 1  ", "repeat_digit": None}))
    assert own.confirm is not None
    assert (own.confirm.prompt, own.confirm.repeat_digit) == ("Marque 1", None)


@pytest.mark.parametrize(
    "confirm",
    [
        {"digits": "#"},
        {"digits": "1,2"},
        {"digits": "11"},
        {"digits": ""},
        {"repeat_digit": "22"},
        {"repeat_digit": "&"},
        {"max_repeats": 6},
        {"timeout_s": 0},
        {"timeout_s": "5"},
        {"prompt": "hola\r\nAction: Originate"},
        {"prompt": "x" * 301},
        {"promt": "typo"},
    ],
)
def test_bad_confirm_values_are_refused_by_name(confirm: dict[str, Any]) -> None:
    assert rejected_fields(request_body(confirm=confirm)) == {"confirm"}


def test_rules_across_fields(settings: Settings) -> None:
    assert field_error(settings, request_body(confirm={"repeat_digit": "1"})).field == (
        "confirm.repeat_digit"
    )
    assert field_error(settings, request_body(retry_unconfirmed=True)).field == "retry_unconfirmed"
    assert field_error(settings, request_body(language="pt-BR", confirm={})).field == (
        "confirm.prompt"
    )
    assert rejected_fields(request_body(machine_detection="voicemail")) == {"machine_detection"}
    assert rejected_fields(request_body(retry_unconfirmed="yes")) == {"retry_unconfirmed"}


# --- what reaches Asterisk ------------------------------------------------------------------


def test_listen_values_reach_both_backends_as_channel_variables(settings: Settings) -> None:
    listen = ListenOptions(
        machine_detection=MachineDetection.MESSAGE,
        confirm_keys="1*",
        repeat_key="2",
        max_repeats=2,
        timeout_s=5,
        prompt_path="/var/lib/asterisk/sounds/tts/prompt",
    )
    values = dial_values(settings, make_call(listen))
    expected = [
        "TTS_AMD=message",
        "TTS_CONFIRM_KEYS=1*",
        "TTS_MAX_REPEATS=2",
        "TTS_KEY_TIMEOUT=5",
        "TTS_PROMPT=/var/lib/asterisk/sounds/tts/prompt",
        "TTS_REPEAT_KEY=2",
    ]
    variables = [v for k, v in originate_action(values) if k == "Variable"]
    assert variables[3:] == expected
    lines = render_call_file(values).splitlines()
    assert [line.removeprefix("Set: ") for line in lines if line.startswith("Set: TTS_")][4:] == (
        expected
    )
    assert dial_values(settings, make_call(None)).listen_vars == ()


@pytest.mark.parametrize(
    "change",
    [
        {"confirm_keys": "1\r\nAction: Hangup"},
        {"confirm_keys": "1&2"},
        {"repeat_key": "1"},
        {"repeat_key": ","},
        {"max_repeats": 99},
        {"timeout_s": 0},
        {"prompt_path": "/var/lib/asterisk/sounds/tts/p&/etc/passwd"},
        {"prompt_path": "../../etc/passwd"},
        {"prompt_path": "/tmp/prompt.wav"},
    ],
)
def test_hostile_listen_values_never_reach_asterisk(
    settings: Settings, change: dict[str, Any]
) -> None:
    base: dict[str, Any] = {
        "confirm_keys": "1",
        "repeat_key": "2",
        "max_repeats": 2,
        "timeout_s": 5,
        "prompt_path": "/var/lib/asterisk/sounds/tts/prompt",
    }
    with pytest.raises(PermanentJobError):
        dial_values(settings, make_call(ListenOptions(**(base | change))))


# --- the simulator's callees ------------------------------------------------------------------

CONFIRMING = ListenOptions(confirm_keys="1", repeat_key="2", timeout_s=5, prompt_duration_s=4)


def test_simulated_callees_that_listen() -> None:
    pressed = simulate_listen("0004", CONFIRMING, 6.0)
    assert (pressed.outcome, pressed.dtmf, pressed.confirmed) == (CallOutcome.CONFIRMED, "1", True)
    silent = simulate_listen("0006", CONFIRMING, 6.0)
    assert (silent.outcome, silent.reason, silent.talk_s) == (
        CallOutcome.NOT_CONFIRMED,
        "no_key",
        0.5 + 6 + 4 + 5,
    )
    for mode, outcome in (
        (MachineDetection.HANGUP, CallOutcome.MACHINE),
        (MachineDetection.RETRY, CallOutcome.MACHINE),
        (MachineDetection.MESSAGE, CallOutcome.VOICEMAIL),
    ):
        machine = simulate_listen("0005", ListenOptions(machine_detection=mode), 6.0)
        assert machine.outcome is outcome
        assert machine.amd is not None
        assert machine.amd.status == "MACHINE"
    person = simulate_listen("0013", ListenOptions(machine_detection=MachineDetection.HANGUP), 6)
    assert person.outcome is CallOutcome.ANSWERED
    assert person.amd is not None
    assert person.amd.status == "HUMAN"


# --- the retry policy ------------------------------------------------------------------------


def test_outcomes_a_job_asked_to_retry_go_through_the_telephony_policy() -> None:
    confirm = ConfirmOptions(prompt="Presione 1")
    asks = make_job(max_retries=1, confirm=confirm, retry_unconfirmed=True)
    plain = make_job(max_retries=1, confirm=confirm)
    machine = make_job(max_retries=1, machine_detection=MachineDetection.RETRY)
    hangup = make_job(max_retries=1, machine_detection=MachineDetection.HANGUP)
    for outcome in (CallOutcome.NOT_CONFIRMED, CallOutcome.HANGUP_DURING_MESSAGE):
        assert telephony_decision(asks, 1, outcome).retry
        assert not telephony_decision(asks, 2, outcome).retry  # spent: the job fails
        assert not telephony_decision(plain, 1, outcome).retry
    assert telephony_decision(machine, 1, CallOutcome.MACHINE).retry
    assert not telephony_decision(hangup, 1, CallOutcome.MACHINE).retry
    assert not telephony_decision(asks, 1, CallOutcome.CONFIRMED).retry
    assert not retried_like_no_answer(asks, CallOutcome.VOICEMAIL)


def test_spanish_prompt_names_the_star_key() -> None:
    assert default_prompt("es-CO", "*", None) == "Para confirmar, presione asterisco."
    assert default_prompt("fr", "1", "2") is None


def test_amd_asked_for_but_never_run_is_a_clear_failure() -> None:
    """No amd.conf: AMD() does not exist, the `h` line comes without AMD's status."""
    call = make_call(ListenOptions(machine_detection=MachineDetection.HANGUP))
    ended = CallResult(CallOutcome.ANSWERED, reason="hangup_during_playback", ended_at=5.0)
    result = apply_listen(ended, parse_facts("hung=5.0 amd= amd_cause="), call)
    assert (result.outcome, result.reason, result.amd) == (
        CallOutcome.FAILED,
        "amd_unavailable",
        None,
    )
    # A callee who hangs up while AMD listens: AMD says HANGUP, which is not a failure.
    left = apply_listen(ended, parse_facts("hung=5.0 amd=HANGUP amd_cause="), call)
    assert (left.outcome, left.reason) == (CallOutcome.HANGUP_DURING_MESSAGE, "hangup")
