"""The one retry loop: tenacity, with strategies that honour every server wait hint.

The first attempt runs outside tenacity (its bookkeeping costs ~40 µs, a sixth of
a fast request); a retryable failure hands over to ``AsyncRetrying``, which sees
that failure as its attempt 1 and from then on decides wait / stop / retry alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import tenacity
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_random_exponential

from ..config import RetrySettings
from ..errors import AccelError

__all__ = ["RetryPolicy", "stop_at_deadline", "wait_for_hint"]

T = TypeVar("T")


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, AccelError) and exc.retryable


class wait_for_hint(tenacity.wait.wait_base):
    """The server's hint when it gave one (never retry sooner), else ``fallback``.

    For errors scoped to one key (a 429 on that key, a rejected key) ``lane_wait`` says
    how long until *some* key of the provider may send: 0 when another key is free, the
    rest of the cooldown (which honours the hint) when none is.
    """

    def __init__(self, fallback: tenacity.wait.wait_base, lane_wait: Callable[[AccelError], float | None]) -> None:
        self.fallback = fallback
        self.lane_wait = lane_wait

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, AccelError):
            lane_wait = self.lane_wait(exc)
            if lane_wait is not None:
                return lane_wait
            if exc.retry_after_s is not None:
                return exc.retry_after_s
        return self.fallback(retry_state)


class stop_at_deadline(tenacity.stop.stop_base):
    """Stop when the next wait would end after ``deadline`` (a ``clock`` time): giving up
    now beats sleeping only to give up later."""

    def __init__(self, deadline: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.deadline = deadline
        self.clock = clock

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.clock() + (retry_state.upcoming_sleep or 0.0) > self.deadline


class RetryPolicy:
    """What is retried (``AccelError.retryable``), how long to wait, when to stop."""

    def __init__(
        self,
        settings: RetrySettings,
        *,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._clock = clock
        self._backoff = wait_random_exponential(multiplier=settings.backoff_base_s, max=settings.backoff_max_s)

    async def run_after_failure(
        self,
        failure: AccelError,
        attempt: Callable[[], Awaitable[T]],
        *,
        started_at: float,
        lane_wait: Callable[[AccelError], float | None],
        retryable: Callable[[BaseException], bool] = is_retryable,
        before_sleep: Callable[[RetryCallState], Any] | None = None,
    ) -> T:
        """Continue after ``failure`` (attempt 1) with ``attempt()`` until success or a stop."""
        replay = [failure]

        async def call() -> T:
            if replay:
                raise replay.pop()
            return await attempt()

        retrying = AsyncRetrying(
            retry=retry_if_exception(retryable),
            wait=wait_for_hint(self._backoff, lane_wait),
            stop=stop_after_attempt(self.settings.max_attempts)
            | stop_at_deadline(started_at + self.settings.max_time_s, self._clock),
            sleep=self._sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return await retrying(call)
