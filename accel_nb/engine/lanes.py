"""A lane is one (provider, key) pair: its concurrency slots, rate limiter, breaker and cooldown."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..secret import Secret

if TYPE_CHECKING:
    from .state import Breaker, KeyCooldown, Limiter

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
        "cooldown",
        "retired",
        "info",
        "discovery",
    )

    def __init__(
        self,
        provider: str,
        key: Secret | None,
        base_url: str,
        concurrency: int,
        limiter: Limiter,
        breaker: Breaker,
        cooldown: KeyCooldown,
    ) -> None:
        self.provider = provider
        self.key = key
        self.label = key.label if key else "no key"
        self.base_url = base_url
        self.concurrency = max(1, concurrency)
        self.in_flight = 0
        self.limiter = limiter
        self.breaker = breaker
        self.cooldown = cooldown
        self.retired: str | None = None
        self.info: Any = UNKNOWN  # what the adapter learned from its discovery call, once
        self.discovery: asyncio.Future[Any] | None = None

    def state(self) -> str:
        """``active``, ``cooling``, ``retired``, or the breaker's ``open`` / ``half_open``."""
        if self.retired:
            return "retired"
        if self.cooldown.remaining_s() > 0:
            return "cooling"
        breaker = self.breaker.state
        return "active" if breaker == "closed" else breaker

    def ready_in(self, tokens: float) -> float | None:
        """0 when a request may start now; seconds to wait; ``inf`` until a slot frees;
        ``None`` when this lane cannot serve (retired, or its breaker is open)."""
        if self.retired or not self.breaker.available():
            return None
        wait = self.cooldown.remaining_s()
        if self.in_flight >= self.concurrency:
            return float("inf")
        return max(wait, self.limiter.wait_s(tokens))

    def start(self, tokens: float) -> None:
        self.in_flight += 1
        self.limiter.take(tokens)
        self.breaker.on_start()

    def finish(self) -> None:
        self.in_flight -= 1
