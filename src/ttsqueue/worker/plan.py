"""What to do with a delivered message, given the job's stored state. Pure.

`job.attempts` counts the attempts that reached `calling`; a message names the attempt it is
for. RabbitMQ delivers at least once, so stale copies and redeliveries are expected here.
"""

from __future__ import annotations

from enum import StrEnum

from ttsqueue.domain import Job, JobStatus


class Plan(StrEnum):
    START = "start"  # run the attempt: speech, then (at most once) the call
    RESUME = "resume"  # the attempt's call was placed: follow it to its outcome, never redial
    REPARK = "repark"  # job waits for its next attempt but that message was lost: send it again
    DROP = "drop"  # nothing to do: canceled, finished, stale or duplicate copy


_STARTABLE = frozenset(
    {JobStatus.SCHEDULED, JobStatus.QUEUED, JobStatus.RETRYING, JobStatus.PROCESSING}
)


def plan_for(job: Job, attempt: int) -> Plan:
    if job.status.terminal:
        return Plan.DROP
    if attempt == job.attempts:
        if job.status is JobStatus.CALLING:
            return Plan.RESUME
        if job.status is JobStatus.RETRYING:
            return Plan.REPARK
        return Plan.DROP
    if attempt == job.attempts + 1 and job.status in _STARTABLE:
        return Plan.START
    return Plan.DROP
