"""Attempts of SDK-backed adapters: a blocking SDK call in a thread pool, on the lane's client.

An adapter whose ``transport`` names an SDK binding (``accel_nb.sdk``) goes through the same
queue, lanes, retries, breaker, tracker and ledger as HTTP adapters; only the one exchange
of an attempt differs: ``SdkRunner.run`` replaces the aiohttp request.  The pool is as wide
as the provider's lanes allow in flight, so the lanes' concurrency limit is the only limit.

A cancelled attempt stops waiting at once; its thread finishes the SDK call in the background.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
from typing import Any

from ..providers.base import Reply, SdkCall
from ..types import Request
from .lanes import Lane

__all__ = ["SdkRunner"]


class SdkRunner:
    """One provider's SDK binding, its thread pool and one SDK client per lane."""

    def __init__(self, spec: str, options: dict[str, Any], connect_timeout_s: float, read_timeout_s: float,
                 width: int) -> None:
        module, _, name = spec.partition(":")
        binding = getattr(importlib.import_module(module), name)
        self._binding = binding(options, connect_timeout_s, read_timeout_s, width)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=width, thread_name_prefix="accel_nb-sdk")
        self._clients: dict[Lane, asyncio.Future[Any]] = {}

    async def run(self, lane: Lane, key: str | None, call: SdkCall, adapter: Any, req: Request) -> tuple[Reply, Any]:
        """One attempt: the reply, and the binding's ``(http_status, request_id)`` of the result."""
        loop = asyncio.get_running_loop()
        client = await self._client(loop, lane, key)
        result = await loop.run_in_executor(self._pool, self._binding.invoke, client, call)
        return adapter.parse(req, result), self._binding.meta(result)

    async def _client(self, loop: asyncio.AbstractEventLoop, lane: Lane, key: str | None) -> Any:
        """The lane's SDK client, made once (in a worker thread: it may read files); a failed
        creation is not kept, so the next attempt tries again."""
        made = self._clients.get(lane)
        if made is None:
            made = self._clients[lane] = loop.run_in_executor(self._pool, self._binding.connect, lane.base_url, key)
        try:
            return await asyncio.shield(made)
        except Exception:
            if self._clients.get(lane) is made:
                del self._clients[lane]
            raise

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
