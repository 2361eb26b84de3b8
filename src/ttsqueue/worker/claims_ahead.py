"""The attempt's claim that each ask for a trunk line carries (worker/trunk.py `slot`), while
the job's calling policy needs nothing from Redis: the ask that gets the line takes the claim
in the same script."""

from __future__ import annotations

import dataclasses
import time

from ttsqueue.domain import Job
from ttsqueue.policy.gate import Open, policy_of
from ttsqueue.store.lifecycle import ClaimRequest
from ttsqueue.worker.context import WorkerContext


@dataclasses.dataclass(frozen=True, slots=True)
class Ahead:
    """A claim asked with a line: the policy's decision it rests on, and when it was made."""

    request: ClaimRequest
    decision: Open
    at: float


class ClaimsAhead:
    """The claim each ask for a line carries, while the job's calling policy needs nothing
    from Redis (window open, no contact cap): decided again before every ask, so a grant
    never rests on a decision older than its own step."""

    def __init__(self, ctx: WorkerContext, job: Job, attempt: int) -> None:
        self._ctx = ctx
        self._job = job
        self._attempt = attempt
        # The claim the latest ask carried (None: it carried none).
        self.last: Ahead | None = None

    def __call__(self) -> ClaimRequest | None:
        ctx, job = self._ctx, self._job
        decision = ctx.policy.open_without_cap(job.e164, policy_of(job))
        if decision is None:
            self.last = None
            return None
        at = time.time()
        request = ctx.lifecycle.claim_request(
            job.job_id, self._attempt, f"{ctx.worker_id}@{at}", refuse_listed=job.e164
        )
        self.last = Ahead(request, decision, at)
        return request
