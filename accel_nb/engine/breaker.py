"""A circuit breaker per lane: stop hammering an endpoint that keeps failing."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["CircuitBreaker"]

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    """closed → open after ``failures`` consecutive retryable failures → half-open once
    ``cooldown_s`` has passed, letting exactly one probe through at a time → closed after
    ``successes`` probe successes (a failed probe opens it again).

    Outcomes that say nothing about the endpoint's health (a 400, a cancel) only free
    the probe slot.  The clock is injected so tests never wait.
    """

    __slots__ = (
        "failures", "cooldown_s", "successes", "_clock", "_state", "_streak", "_opened_at", "_probing", "_probe_ok"
    )

    def __init__(
        self,
        failures: int = 5,
        cooldown_s: float = 30.0,
        successes: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = max(1, failures)
        self.cooldown_s = cooldown_s
        self.successes = max(1, successes)
        self._clock = clock
        self._state = CLOSED
        self._streak = 0
        self._opened_at = 0.0
        self._probing = False
        self._probe_ok = 0

    @property
    def state(self) -> str:
        if self._state == OPEN and self._clock() >= self._opened_at + self.cooldown_s:
            self._state = HALF_OPEN
            self._probing = False
            self._probe_ok = 0
        return self._state

    @property
    def retry_at(self) -> float:
        """Clock time at which an open breaker lets a probe through."""
        return self._opened_at + self.cooldown_s

    def available(self) -> bool:
        """Whether a call may start now (without taking the probe slot)."""
        state = self.state
        return state == CLOSED or (state == HALF_OPEN and not self._probing)

    def on_start(self) -> None:
        if self.state == HALF_OPEN:
            self._probing = True

    def on_success(self) -> None:
        self._streak = 0
        if self._state == HALF_OPEN:
            self._probing = False
            self._probe_ok += 1
            if self._probe_ok >= self.successes:
                self._state = CLOSED

    def on_failure(self) -> None:
        self._streak += 1
        if self._state == HALF_OPEN or (self._state == CLOSED and self._streak >= self.failures):
            self._open()

    def on_neutral(self) -> None:
        if self._state == HALF_OPEN:
            self._probing = False

    def _open(self) -> None:
        self._state = OPEN
        self._opened_at = self._clock()
        self._probing = False
