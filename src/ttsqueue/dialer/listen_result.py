"""An answered call's result refined by what it heard (keys, answering machine). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from ttsqueue.dialer.base import CallRequest, CallResult
from ttsqueue.dialer.listen import amd_verdict, heard, keys_pressed
from ttsqueue.domain import CallOutcome


def apply_listen(result: CallResult, facts: Mapping[str, str], call: CallRequest) -> CallResult:
    """`result` of an answered call, with the outcome SPEC §12 gives it when the call listened
    (confirm, machine_detection); any other result is returned as it is."""
    options = call.listen
    if options is None or not options.active or result.outcome is not CallOutcome.ANSWERED:
        return result
    if result.reason == "hangup_not_seen" and not facts.get("confirm"):
        # Asterisk went away mid-call: what it had reported is all there is to know.
        return replace(
            result,
            dtmf=keys_pressed(facts) or None,
            amd=amd_verdict(facts),
            confirmed=False if options.confirms else None,
        )
    found = heard(
        facts,
        options,
        played_to_end=result.reason == "played",
        message_s=call.audio_duration_s,
        ended_at=result.ended_at,
    )
    return replace(
        result,
        outcome=found.outcome,
        reason=found.reason,
        dtmf=found.dtmf,
        confirmed=found.confirmed,
        amd=found.amd,
    )
