"""What each model is, as its server describes it: fetched once, shared, checked against.

Some APIs need a model's description before a request can be built or checked (OVMS: the
names, dtypes and shapes of its tensors, and whether only the legacy API serves it).  The
catalog keeps one description per distinct set of describe calls (so per server, model and
version); requests that arrive while it is being fetched wait for that one fetch; a failed
fetch is not kept, so the next request asks again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

__all__ = ["MISSING", "ModelCatalog"]

MISSING = object()


class ModelCatalog:
    def __init__(self) -> None:
        self._known: dict[Hashable, Any] = {}
        self._pending: dict[Hashable, asyncio.Future[Any]] = {}

    def get(self, key: Hashable) -> Any:
        """The description, or ``MISSING`` when it has not been fetched yet."""
        return self._known.get(key, MISSING)

    async def load(self, key: Hashable, fetch: Callable[[], Awaitable[Any]]) -> Any:
        """The description, fetched by ``fetch()`` unless a fetch for ``key`` is already under way.
        A waiter that is cancelled does not cancel the fetch for the others."""
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = asyncio.ensure_future(fetch())
            pending.add_done_callback(lambda done: self._settle(key, done))
        return await asyncio.shield(pending)

    def forget(self, key: Hashable) -> None:
        """Drop a description (the model was reloaded, or the caller asked for a fresh one)."""
        self._known.pop(key, None)

    def _settle(self, key: Hashable, done: asyncio.Future[Any]) -> None:
        self._pending.pop(key, None)
        if not done.cancelled() and done.exception() is None:
            self._known[key] = done.result()
