"""Read timeouts for every exchange in flight from one periodic check, not a timer per read.

aiohttp's ``sock_read`` timeout cancels and re-arms a timer each time a response delivers
bytes; under load that timer churn was about 5 % of the engine's work per request.  The
engine instead notes when each exchange last made progress (a float store per read), and
one timer per engine, running only while exchanges are in flight, hands those silent for
longer than the read timeout to ``expire``.  It fires at most one tick late: a tenth of
the timeout, never more than a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .job import Job

__all__ = ["Watchdog"]


class Watchdog:
    """Watches jobs' ``t_read``: the ``now()`` of their last progress (the loop's clock: a read
    timeout is wall time, whatever clock the engine's pacing runs on)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout_s: float, expire: Callable[[Job], None]) -> None:
        self._loop = loop
        self.now = loop.time
        self.timeout_s = timeout_s
        self._expire = expire
        self._tick = min(1.0, max(0.01, timeout_s / 10))
        self._watched: dict[Job, None] = {}  # an ordered set: the oldest exchanges first
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, job: Job) -> None:
        """``job`` starts an exchange (engine loop only); it must ``unwatch`` when it ends."""
        job.t_read = self.now()
        self._watched[job] = None
        if self._timer is None:
            self._timer = self._loop.call_later(self._tick, self._check)

    def unwatch(self, job: Job) -> None:
        self._watched.pop(job, None)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._watched.clear()

    def _check(self) -> None:
        self._timer = None
        silent_since = self.now() - self.timeout_s
        for job in [job for job in self._watched if job.t_read < silent_since]:
            del self._watched[job]
            self._expire(job)
        if self._watched:
            self._timer = self._loop.call_later(self._tick, self._check)
