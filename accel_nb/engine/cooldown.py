"""How long a key rests after a 429: the server's hint, else a growing jittered backoff."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

__all__ = ["Cooldown"]


class Cooldown:
    """One key's rest period; other keys of the provider go on working meanwhile."""

    __slots__ = ("until", "_streak", "_clock")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.until = 0.0
        self._streak = 0
        self._clock = clock

    def remaining_s(self) -> float:
        return max(0.0, self.until - self._clock())

    def cool(self, hint_s: float | None, base_s: float, cap_s: float) -> float:
        """Rest for the server's hint, else for full-jitter backoff growing with each 429 in a row."""
        if hint_s is None:
            ceiling = min(cap_s, base_s * 2**self._streak)
            hint_s = ceiling / 2 + random.uniform(0, ceiling / 2)
        self._streak += 1
        self.until = max(self.until, self._clock() + hint_s)
        return hint_s

    def warm(self) -> None:
        """A success: the next 429 starts the backoff from the bottom again."""
        self._streak = 0
