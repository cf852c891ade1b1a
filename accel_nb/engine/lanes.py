"""A lane is one (provider, key) pair: its concurrency slots, rate limiter, breaker and cooldown."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

from ..secret import Secret
from .breaker import CircuitBreaker
from .limiter import RateLimiter

__all__ = ["UNKNOWN", "Lane"]

UNKNOWN = object()


class Lane:
    """Everything that decides whether one key may send one more request now."""

    __slots__ = (
        "provider",
        "key",
        "label",
        "base_url",
        "concurrency",
        "in_flight",
        "limiter",
        "breaker",
        "cooling_until",
        "_cool_streak",
        "retired",
        "info",
        "discovery",
        "_clock",
    )

    def __init__(
        self,
        provider: str,
        key: Secret | None,
        base_url: str,
        concurrency: int,
        limiter: RateLimiter,
        breaker: CircuitBreaker,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.key = key
        self.label = key.label if key else "no key"
        self.base_url = base_url
        self.concurrency = max(1, concurrency)
        self.in_flight = 0
        self.limiter = limiter
        self.breaker = breaker
        self.cooling_until = 0.0
        self._cool_streak = 0
        self.retired: str | None = None
        self.info: Any = UNKNOWN  # what the adapter learned from its discovery call, once
        self.discovery: asyncio.Future[Any] | None = None
        self._clock = clock

    def state(self) -> str:
        """``active``, ``cooling``, ``retired``, or the breaker's ``open`` / ``half_open``."""
        if self.retired:
            return "retired"
        if self.cooling_until > self._clock():
            return "cooling"
        breaker = self.breaker.state
        return "active" if breaker == "closed" else breaker

    def ready_in(self, tokens: float) -> float | None:
        """0 when a request may start now; seconds to wait; ``inf`` until a slot frees;
        ``None`` when this lane cannot serve (retired, or its breaker is open)."""
        if self.retired or not self.breaker.available():
            return None
        wait = max(0.0, self.cooling_until - self._clock())
        if self.in_flight >= self.concurrency:
            return float("inf")
        return max(wait, self.limiter.wait_s(tokens))

    def start(self, tokens: float) -> None:
        self.in_flight += 1
        self.limiter.take(tokens)
        self.breaker.on_start()

    def finish(self) -> None:
        self.in_flight -= 1

    def cool_down(self, hint_s: float | None, base_s: float, cap_s: float) -> float:
        """A 429 on this key: rest it for the server's hint, else for a growing backoff."""
        if hint_s is None:
            ceiling = min(cap_s, base_s * 2**self._cool_streak)
            hint_s = ceiling / 2 + random.uniform(0, ceiling / 2)
        self._cool_streak += 1
        self.cooling_until = max(self.cooling_until, self._clock() + hint_s)
        return hint_s

    def warm(self) -> None:
        self._cool_streak = 0
