"""Exponential backoff with jitter, for reconnecting without hammering Asterisk."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    base_s: float
    cap_s: float
    factor: float = 2.0
    jitter: float = 0.2
    _failures: int = field(default=0, init=False)

    def next(self) -> float:
        """The delay before the next try; grows with each consecutive failure up to `cap_s`."""
        delay = min(self.cap_s, self.base_s * self.factor**self._failures)
        self._failures += 1
        return delay * random.uniform(1 - self.jitter, 1 + self.jitter)

    def reset(self) -> None:
        self._failures = 0

    @property
    def failures(self) -> int:
        return self._failures
