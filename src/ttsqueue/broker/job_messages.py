"""A job's first message, the same whoever sends it: the API when it accepts the job, or the
sweeper when the API died before RabbitMQ confirmed it."""

from __future__ import annotations

from datetime import datetime

from ttsqueue.broker.delays import DelayQueues, park
from ttsqueue.broker.publisher import Publisher
from ttsqueue.domain import Job, JobMessage, JobStatus


async def send_first_message(publisher: Publisher, delays: DelayQueues, job: Job) -> None:
    """Publish (with confirm) the message of the job's first attempt: straight to its work
    queue, or parked until `scheduled_for`."""
    queue = publisher.names.work_queue(job.priority)
    message = JobMessage(job_id=job.job_id, attempt=1, record=job.model_dump(mode="json"))
    if job.status is JobStatus.SCHEDULED and job.scheduled_for:
        due = datetime.fromisoformat(job.scheduled_for)
        message.not_before_ms = int(due.timestamp() * 1000)
        await park(publisher, queue, message, delays)
    else:
        await publisher.to_work_queue(queue, message.encode(), job.job_id)
