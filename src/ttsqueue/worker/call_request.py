"""The dialer's view of one attempt, rebuilt from the job record whoever needs it: the worker
that places the call, the one that follows it after a redelivery, the reaper that gives up."""

from __future__ import annotations

from ttsqueue.dialer.base import CallRequest
from ttsqueue.dialer.listen import ListenOptions
from ttsqueue.domain import Job, MachineDetection


def listen_options(job: Job) -> ListenOptions | None:
    """What the call listens for (SPEC §12); the prompt's audio is in `job.audio`."""
    confirm = job.confirm
    if confirm is None and job.machine_detection is MachineDetection.OFF:
        return None
    if confirm is None:
        return ListenOptions(machine_detection=job.machine_detection)
    return ListenOptions(
        machine_detection=job.machine_detection,
        confirm_keys=confirm.digits,
        repeat_key=confirm.repeat_digit or "",
        max_repeats=confirm.max_repeats,
        timeout_s=confirm.timeout_s,
        prompt_path=(job.audio.prompt_path or "").removesuffix(".wav"),
        prompt_duration_s=job.audio.prompt_duration_s or 0.0,
    )


def call_request(
    job: Job,
    attempt: int,
    *,
    ring_timeout_s: int,
    originated_at: float,
    not_before: float = 0.0,
) -> CallRequest:
    """`job.audio` must already name the prepared audio (set before the move to `calling`)."""
    return CallRequest(
        job_id=job.job_id,
        attempt=attempt,
        number=job.dial_number,
        e164=job.e164,
        caller_id=job.caller_id,
        # Playback() takes the path without its extension.
        audio_path=(job.audio.path or "").removesuffix(".wav"),
        audio_duration_s=job.audio.duration_s or 0.0,
        ring_timeout_s=ring_timeout_s,
        originated_at=originated_at,
        not_before=not_before,
        listen=listen_options(job),
    )
