"""Following one call file from what each look at the spool shows. Pure.

The file is in `outgoing/` while Asterisk waits to dial it or is dialing it, then in
`outgoing_done/` with its `Status:` line; the dialplan's status file says more (see
`format.py`). The outcome is known when:
- the archive has its Status and the dialplan's report has come (or `REPORT_GRACE_S` passed:
  without our dialplan it never comes);
- the file is gone from both places for `VANISHED_S` (deleted behind our back): lost track;
- the call was answered, the file is still in `outgoing/` and the message must be over
  (Asterisk died mid-call: the end is never written): answered, `hangup_not_seen`.
A file Asterisk never starts is taken back near CALL_MAX_DURATION (`may_withdraw`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ttsqueue.dialer.base import CallRequest, CallResult
from ttsqueue.dialer.callfile.format import (
    parse_report,
    parse_spool_file,
    report_complete,
    spool_result,
    unfinished_answered_call,
)
from ttsqueue.dialer.callfile.spool_watcher import Sighting
from ttsqueue.dialer.listen_result import apply_listen
from ttsqueue.dialer.outcome import Deadlines
from ttsqueue.domain import CallOutcome

# How long to wait for the dialplan's status file once the call file is archived.
REPORT_GRACE_S = 2.0
# A call file gone from outgoing/ and absent from outgoing_done/ this long was deleted.
VANISHED_S = 2.0
# Before CALL_MAX_DURATION ends, a file Asterisk never started is taken back.
WITHDRAW_MARGIN_S = 5.0
# The reason of a call file taken back unstarted: the callee was never rung.
NOT_DIALED = "not_dialed"


@dataclass(slots=True)
class CallFileProgress:
    call: CallRequest
    max_duration_s: float
    grace: Deadlines
    finished_at: float | None = None
    missing_since: float | None = None

    def result(self, seen: Sighting) -> CallResult | None:
        """The outcome when `seen` (with what was seen before) tells it, else None."""
        report = parse_report(seen.report_text or "")
        spool = parse_spool_file(seen.done_text) if seen.done_text is not None else None
        if spool is not None and spool.status:
            self.finished_at = self.finished_at or seen.at
            if report_complete(spool.status, report) or seen.at > self.finished_at + REPORT_GRACE_S:
                found = spool_result(spool, report, self.finished_at)
                return apply_listen(found, report, self.call)
            return None
        if seen.done_text is None and not seen.in_outgoing:
            self.missing_since = self.missing_since or seen.at
            if seen.at > self.missing_since + VANISHED_S:
                return CallResult(CallOutcome.FAILED, reason="lost_track", ended_at=seen.at)
            return None
        self.missing_since = None
        if seen.in_outgoing:
            unfinished = unfinished_answered_call(report, self.call, seen.at, self.grace)
            return apply_listen(unfinished, report, self.call) if unfinished else None
        return None

    def may_withdraw(self, seen: Sighting) -> bool:
        """Time to take the file back if Asterisk has not started it."""
        deadline = self.call.originated_at + self.max_duration_s - WITHDRAW_MARGIN_S
        return seen.in_outgoing and seen.at > deadline
