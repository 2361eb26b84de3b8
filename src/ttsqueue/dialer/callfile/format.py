"""Call files and what Asterisk leaves of them in `outgoing_done/`. Pure.

What the recordings (`../shared/asterisk/callfiles/*.json`) show:
- `Status: Completed` only means "answered" (even when the dialplan context does not exist);
  `Expired` means every attempt failed, busy, no answer and congestion alike; `Failed` means
  the file was invalid. Asterisk appends `StartRetry/EndRetry/DelayedRetry` lines before it.
- The finer reason is known only to the dialplan. Ours reports it in a small status file next
  to the archived call file (`<call_id>.status`, one `key=value ...` line per report): the
  `failed` extension writes `reason=${REASON}`, the `h` extension of an answered call writes
  when it was answered and ended, the playback status and whether the message was played out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ttsqueue.dialer.base import CallRequest, CallResult, answered_call
from ttsqueue.dialer.dial_values import DialValues
from ttsqueue.dialer.outcome import ANSWER_WAIT_S, REASON_OUTCOMES, Deadlines
from ttsqueue.domain import CallOutcome

_FORBIDDEN = frozenset("\r\n\x00")


def call_file_name(call: CallRequest) -> str:
    """Deterministic per attempt: a redelivered message finds the same file."""
    return f"{call.job_id}-{call.attempt}.call"


def report_file_name(call: CallRequest) -> str:
    return f"{call.call_id}.status"


def render_call_file(values: DialValues) -> str:
    fields: list[tuple[str, str]] = [("Channel", values.channel)]
    if values.caller_id:
        fields.append(("CallerID", values.caller_id))
    fields += [
        ("WaitTime", str(values.ring_timeout_s)),
        ("MaxRetries", "0"),  # retries are ours (CALL_MAX_RETRIES, retry_delay)
        ("Context", values.context),
        ("Extension", "s"),
        ("Priority", "1"),
        ("Set", f"TTS_FILE={values.tts_file}"),
        ("Set", f"TTS_JOB_ID={values.job_id}"),
        ("Set", f"TTS_CALL_ID={values.call_id}"),
        ("Set", "TTS_REPORT=file"),
        *[("Set", f"{name}={value}") for name, value in values.listen_vars],
        ("Archive", "yes"),
    ]
    for key, value in fields:
        if any(ch in _FORBIDDEN for ch in value):
            raise ValueError(f"call file field {key} holds a line break or NUL")
    return "".join(f"{key}: {value}\n" for key, value in fields)


@dataclass(frozen=True, slots=True)
class SpoolFile:
    status: str | None  # Completed | Expired | Failed, None while Asterisk is still writing
    attempts: int


def parse_spool_file(text: str) -> SpoolFile:
    status: str | None = None
    attempts = 0
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key == "status":
            status = value.strip()
        elif key == "startretry":
            attempts += 1
    return SpoolFile(status=status, attempts=attempts)


def parse_report(text: str) -> dict[str, str]:
    """`key=value` tokens of every line; the first value of a key wins."""
    report: dict[str, str] = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        if sep and key and value and key not in report:
            report[key] = value
    return report


def report_complete(status: str, report: Mapping[str, str]) -> bool:
    """Whether the dialplan's report for a finished call file has arrived."""
    if status == "Completed":
        return "ended" in report
    if status == "Expired":
        return "reason" in report or "answered" in report
    return True


def _float(report: Mapping[str, str], key: str) -> float | None:
    try:
        return float(report[key])
    except (KeyError, ValueError):
        return None


def _completed(report: Mapping[str, str], seen_at: float, unknown_end: str) -> CallResult:
    return answered_call(
        playback_failed=report.get("playback", "").upper() == "FAILED",
        played_to_end=report.get("done") == "1",
        answered_at=_float(report, "answered"),
        ended_at=_float(report, "ended"),
        unknown_end_reason=unknown_end,
        hangup_cause=report.get("cause"),
        channel=None,
        fallback_end=seen_at,
    )


def unfinished_answered_call(
    report: Mapping[str, str], call: CallRequest, now: float, grace: Deadlines
) -> CallResult | None:
    """An answered call whose end Asterisk never reported (it died mid-call: the `h` line is
    missing and the file stays in `outgoing/`), once the message must be over."""
    answered = _float(report, "answered")
    if answered is None or "ended" in report:
        return None
    if now <= answered + ANSWER_WAIT_S + call.longest_talk_s + grace.talk_grace_s:
        return None
    return _completed(report, now, "hangup_not_seen")


def spool_result(spool: SpoolFile, report: Mapping[str, str], seen_at: float) -> CallResult:
    """The outcome of a call file Asterisk archived with a Status line."""
    if spool.status == "Completed":
        return _completed(report, seen_at, "completed")
    if spool.status == "Expired" and "answered" in report:
        # Answered, then Asterisk stopped before the end: pbx_spool archives such a file as
        # Expired when it finds it again after a restart (RetryTime later), never redialing.
        return _completed(report, seen_at, "hangup_not_seen")
    if spool.status == "Expired":
        code = report.get("reason")
        if code is None:
            # Busy, no answer and congestion all end Expired: no answer is the honest guess.
            return CallResult(CallOutcome.NO_ANSWER, reason="expired", ended_at=seen_at)
        outcome = REASON_OUTCOMES.get(code, CallOutcome.FAILED)
        return CallResult(outcome, reason=code, ended_at=seen_at)
    if spool.status == "Failed":
        return CallResult(CallOutcome.FAILED, reason="invalid_call_file", ended_at=seen_at)
    return CallResult(CallOutcome.FAILED, reason=f"status {spool.status}", ended_at=seen_at)
