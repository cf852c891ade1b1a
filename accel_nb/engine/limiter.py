"""Client-side rate limiting: slow down before the server says 429."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..providers.base import RateLimits, running_low

__all__ = ["RateLimiter", "TokenBucket"]


class TokenBucket:
    """``rate`` tokens a second up to ``capacity``; ``None`` rate means unlimited."""

    __slots__ = ("rate", "capacity", "tokens", "_stamp")

    def __init__(self, rate: float | None, capacity: float | None = None, now: float = 0.0) -> None:
        self.rate = rate
        self.capacity = capacity if capacity is not None else (rate * 60 if rate else 0.0)
        self.tokens = self.capacity
        self._stamp = now

    def _refill(self, now: float) -> None:
        if self.rate and now > self._stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def wait_s(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` tokens are there (0 when they are now)."""
        if self.rate is None:
            return 0.0
        self._refill(now)
        # a request larger than the bucket can never fit: let it go when the bucket is full
        need = min(amount, self.capacity)
        return 0.0 if self.tokens >= need else (need - self.tokens) / self.rate

    def take(self, amount: float, now: float) -> None:
        if self.rate is not None:
            self._refill(now)
            self.tokens -= amount

    def give_back(self, amount: float) -> None:
        if self.rate is not None:
            self.tokens = min(self.capacity, self.tokens + amount)

    def learn(self, limit: float | None, remaining: float | None, reset_s: float | None, now: float) -> None:
        """Align with what the server says: at most ``remaining`` left, full again after ``reset_s``."""
        if remaining is None or (self.rate is None and not running_low(limit, remaining)):
            return  # no budget to pace yet: an unlimited bucket costs nothing per request
        self._refill(now)
        if self.rate is None:  # first news of a limit: the server's count is all we know
            self.tokens = remaining
        if limit:
            self.capacity = limit
            if reset_s and reset_s > 0:
                self.rate = max(limit - remaining, 1.0) / reset_s
            elif self.rate is None:
                self.rate = limit / 60.0
        elif self.rate is None:
            return
        self.tokens = min(self.tokens, remaining)


class RateLimiter:
    """Requests-per-minute and tokens-per-minute buckets for one lane.

    Configured limits start the buckets; the provider's rate-limit headers then keep
    them in step with the server.  Tokens are debited up front (prompt estimate plus
    ``max_tokens``, as OpenAI counts them) and corrected when the usage is known.
    """

    __slots__ = ("requests", "tokens", "_clock")

    def __init__(
        self, rpm: float | None = None, tpm: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        now = clock()
        self.requests = TokenBucket(rpm / 60.0 if rpm else None, rpm, now)
        self.tokens = TokenBucket(tpm / 60.0 if tpm else None, tpm, now)

    def wait_s(self, tokens: float) -> float:
        if self.requests.rate is None and self.tokens.rate is None:
            return 0.0  # nothing configured or learned yet: the common lane, checked on every request
        now = self._clock()
        return max(self.requests.wait_s(1, now), self.tokens.wait_s(tokens, now))

    def take(self, tokens: float) -> None:
        if self.requests.rate is None and self.tokens.rate is None:
            return
        now = self._clock()
        self.requests.take(1, now)
        self.tokens.take(tokens, now)

    def settle(self, estimated: float, actual: float) -> None:
        self.tokens.give_back(estimated - actual)

    def observe(self, limits: RateLimits) -> None:
        if self.requests.rate is None and self.tokens.rate is None and not (
            running_low(limits.requests_limit, limits.requests_remaining)
            or running_low(limits.tokens_limit, limits.tokens_remaining)
        ):
            return  # no pace set and no budget half spent: nothing to learn (the common reply)
        now = self._clock()
        self.requests.learn(limits.requests_limit, limits.requests_remaining, limits.requests_reset_s, now)
        self.tokens.learn(limits.tokens_limit, limits.tokens_remaining, limits.tokens_reset_s, now)

    @property
    def remaining_requests(self) -> float:
        return self.requests.tokens if self.requests.rate is not None else float("inf")
