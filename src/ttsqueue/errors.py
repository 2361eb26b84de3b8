"""One exception hierarchy, split by layer; mapped to HTTP only at the API edge."""

from __future__ import annotations


class TTSQueueError(Exception):
    """Base of every error the product raises on purpose."""


class ConfigError(TTSQueueError):
    """Settings are missing or invalid; the message names the variable."""


# Connections to external parts -------------------------------------------------------------
class ConnectionLostError(TTSQueueError):
    """A dependency (RabbitMQ, Redis, Asterisk) is unreachable; retrying later may work."""


class BrokerUnavailableError(ConnectionLostError):
    """RabbitMQ refused or did not confirm a publish."""


class StoreError(TTSQueueError):
    """Redis refused a command (every failure of the store leaves it as this or a subclass)."""


class StoreUnavailableError(ConnectionLostError, StoreError):
    """Redis is unreachable, restarting, or refusing writes for a while; retry later."""


class TopologyMismatchError(TTSQueueError):
    """A queue exists with other arguments than the ones this version declares."""

    def __init__(self, queue: str, detail: str) -> None:
        self.queue = queue
        super().__init__(
            f"queue {queue!r} already exists with different arguments ({detail}). "
            "Fix: drain and delete it with `./manage.sh clean --queues`, "
            "or migrate it to the new arguments."
        )


# Jobs ---------------------------------------------------------------------------------------
class JobError(TTSQueueError):
    """A job cannot be processed as it is."""

    def __init__(self, message: str, *, job_id: str | None = None, reason: str = "error") -> None:
        self.job_id = job_id
        self.reason = reason
        super().__init__(message)


class TransientJobError(JobError):
    """Worth a technical retry with backoff (engine throttled, connection lost)."""


class PermanentJobError(JobError):
    """Retrying cannot help (bad audio, unsupported language found late, disk full)."""


class PoisonMessageError(TTSQueueError):
    """A queue message that cannot be parsed or does not match its job record."""


class TTSError(TransientJobError):
    """A speech engine failed."""


class DialerError(TransientJobError):
    """The telephony backend could not take the call request."""
