"""The rules every spoken text obeys (SPEC §2, `text`), as one pure function.

1..MAX_TEXT_LENGTH characters after trimming; no NUL or other C0 control character except
line feed and tab, and no DEL. Checked before trimming, since trimming also removes some
control characters.
"""

from __future__ import annotations

import re
from functools import lru_cache

ALLOWED_CONTROLS = "\n\t"


@lru_cache(maxsize=8)
def _controls(allowed: str) -> re.Pattern[str]:
    chars = "".join(chr(c) for c in [*range(0x20), 0x7F] if chr(c) not in allowed)
    return re.compile(f"[{re.escape(chars)}]")


def first_control_char(text: str, allowed: str = "") -> str | None:
    """The first C0 control character or DEL in `text` that is not in `allowed`."""
    found = _controls(allowed).search(text)
    return found.group() if found else None


def checked_text(text: str, max_length: int) -> str:
    """`text` trimmed, or ValueError saying which rule it breaks."""
    bad = first_control_char(text, ALLOWED_CONTROLS)
    if bad is not None:
        raise ValueError(f"must not contain control character U+{ord(bad):04X}")
    text = text.strip()
    if not text:
        raise ValueError("must not be empty or only whitespace")
    if len(text) > max_length:
        raise ValueError(f"is {len(text)} characters long; at most {max_length} are allowed")
    return text
