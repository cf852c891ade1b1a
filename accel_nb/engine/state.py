"""What a lane learns, behind small interfaces: its pacing, breaker and cooldown state.

One kernel keeps this state in memory (``MemoryLaneState``, the default).  Kernels or
machines sharing keys would share it instead: a shared store (Redis is the next step)
implements ``LaneState`` and the three protocols below, and the engine takes it as
``Engine(settings, state=...)``.  The engine calls these methods synchronously on its loop,
once or twice per request, so a shared store answers from a local copy it keeps in step in
the background, never with a network round trip per call.  Keys are named by their label
(source and last four characters), never by the secret.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from ..config import BreakerSettings
from ..providers.base import RateLimits
from .breaker import CircuitBreaker
from .cooldown import Cooldown
from .limiter import RateLimiter

__all__ = ["Breaker", "KeyCooldown", "LaneState", "Limiter", "MemoryLaneState"]


class Limiter(Protocol):
    """Request and token budgets: how long to wait before the next request may start."""

    @property
    def remaining_requests(self) -> float: ...

    def wait_s(self, tokens: float) -> float: ...

    def take(self, tokens: float) -> None: ...

    def settle(self, estimated: float, actual: float) -> None: ...

    def observe(self, limits: RateLimits) -> None: ...


class Breaker(Protocol):
    """closed / open / half_open, moved by the outcome of each call."""

    @property
    def state(self) -> str: ...

    @property
    def retry_at(self) -> float: ...

    def available(self) -> bool: ...

    def on_start(self) -> None: ...

    def on_success(self) -> None: ...

    def on_failure(self) -> None: ...

    def on_neutral(self) -> None: ...


class KeyCooldown(Protocol):
    """A key's rest after a 429."""

    def remaining_s(self) -> float: ...

    def cool(self, hint_s: float | None, base_s: float, cap_s: float) -> float: ...

    def warm(self) -> None: ...


class LaneState(Protocol):
    """Makes the state of each (provider, key) lane."""

    def limiter(self, provider: str, key: str, rpm: float | None, tpm: float | None) -> Limiter: ...

    def breaker(self, provider: str, key: str, policy: BreakerSettings) -> Breaker: ...

    def cooldown(self, provider: str, key: str) -> KeyCooldown: ...


class MemoryLaneState:
    """Each lane's state in this process only (the clock is injected so tests never wait)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock

    def limiter(self, provider: str, key: str, rpm: float | None, tpm: float | None) -> RateLimiter:
        return RateLimiter(rpm, tpm, self._clock)

    def breaker(self, provider: str, key: str, policy: BreakerSettings) -> CircuitBreaker:
        return CircuitBreaker(policy.failures, policy.cooldown_s, policy.successes, self._clock)

    def cooldown(self, provider: str, key: str) -> Cooldown:
        return Cooldown(self._clock)
