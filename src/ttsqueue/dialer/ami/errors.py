"""What can go wrong talking to the Asterisk Manager Interface."""

from __future__ import annotations

from ttsqueue.errors import ConnectionLostError, TTSQueueError


class AmiProtocolError(ConnectionLostError):
    """The byte stream is not AMI (no banner, a message too long): the connection is dropped."""


class AmiNotConnected(ConnectionLostError):
    """No authenticated session right now; the action was NOT sent."""


class AmiConnectionClosed(ConnectionLostError):
    """The connection ended after the action was sent and before its response arrived: whether
    Asterisk executed it is unknown."""


class AmiResponseTimeout(ConnectionLostError):
    """The action was sent but no response came in time: whether it ran is unknown."""


class AmiAuthError(ConnectionLostError):
    """Asterisk refused the login (wrong user or secret, or host not permitted)."""


class AmiActionError(TTSQueueError):
    """Asterisk answered `Response: Error` (its `Message` is kept, e.g. "Permission denied")."""

    def __init__(self, action: str, message: str) -> None:
        self.action = action
        self.message = message
        super().__init__(f"Asterisk refused {action}: {message}")
