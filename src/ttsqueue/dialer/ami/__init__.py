"""An asyncio client for the Asterisk Manager Interface, in layers:

- `protocol`: framing and parsing (pure),
- `actions`: matching responses to actions by ActionID,
- `connection`: one TCP connection (banner, reader task, requests),
- `session`: login, keepalive and reconnect with backoff (one per worker process).

Written here rather than taken from panoramisk: that library is lightly maintained, and the
parts that matter most to us (what happens on a refused login, on `Event: Shutdown`, on EOF
mid-call, secrets kept out of logs, CR/LF refused in values) are exactly the ones we want to
own and test against the recordings.
"""

from ttsqueue.dialer.ami.errors import (
    AmiActionError,
    AmiAuthError,
    AmiConnectionClosed,
    AmiNotConnected,
    AmiProtocolError,
    AmiResponseTimeout,
)
from ttsqueue.dialer.ami.protocol import AmiMessage, encode_action, parse_message
from ttsqueue.dialer.ami.session import AmiCredentials, AmiSession, SessionState, SessionTimings

__all__ = [
    "AmiActionError",
    "AmiAuthError",
    "AmiConnectionClosed",
    "AmiCredentials",
    "AmiMessage",
    "AmiNotConnected",
    "AmiProtocolError",
    "AmiResponseTimeout",
    "AmiSession",
    "SessionState",
    "SessionTimings",
    "encode_action",
    "parse_message",
]
