"""Coalescing: small requests to one model, held for a moment, sent as one call.

Requests whose adapter gives them the same ``merge_key`` (OVMS: same model and version, same
input names, dtypes and trailing dimensions) wait at most ``delay_ms`` for company, or until
``max_size`` rows are held; then the group goes out as one job through the usual queue, lane,
retries and breaker — one HTTP request — and the engine splits its reply by rows back to each
caller.  Each caller's request stays a request of its own: its own events, ledger row,
latency and timeout.  A request already as large as a batch is never held.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

from ..config import BatchSettings

if TYPE_CHECKING:
    from .job import Job

__all__ = ["Coalescer"]


class _Group:
    __slots__ = ("jobs", "rows", "timer")

    def __init__(self, timer: asyncio.TimerHandle) -> None:
        self.jobs: list[Job] = []
        self.rows = 0
        self.timer = timer


class Coalescer:
    """Holds mergeable jobs in groups; hands each group to ``send`` when it is due."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        batch_of: Callable[[str], BatchSettings | None],
        send: Callable[[list[Job]], None],
    ) -> None:
        self._loop = loop
        self._batch_of = batch_of
        self._send = send
        self._groups: dict[tuple[str, Hashable], _Group] = {}

    def hold(self, job: Job) -> bool:
        """Take ``job`` into a group (True), or leave it to be sent on its own (False)."""
        req = job.request
        batch = self._batch_of(req.provider)
        if batch is None or not batch.enabled:
            return False
        merge_key = job.adapter.merge_key(req)
        if merge_key is None:
            return False
        rows = job.adapter.rows(req)
        if rows >= batch.max_size:
            return False
        key = (req.provider, merge_key)
        group = self._groups.get(key)
        if group is not None and group.rows + rows > batch.max_size:
            self._flush(key)
            group = None
        if group is None:
            group = self._groups[key] = _Group(self._loop.call_later(batch.delay_ms / 1000, self._flush, key))
        group.jobs.append(job)
        group.rows += rows
        if group.rows >= batch.max_size:
            self._flush(key)
        return True

    def _flush(self, key: tuple[str, Hashable]) -> None:
        group = self._groups.pop(key, None)
        if group is not None:
            group.timer.cancel()
            self._send(group.jobs)

    def close(self) -> None:
        """Stop every timer; the held jobs are the engine's to answer."""
        for group in self._groups.values():
            group.timer.cancel()
        self._groups.clear()
