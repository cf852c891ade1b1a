"""``client.ollama``: list, pull (with progress bars), show, delete, ps and version.

``pull`` reads Ollama's NDJSON progress stream (``status``, and ``digest`` / ``total`` /
``completed`` per layer) into ``tqdm.auto`` bars, one per layer as the Ollama CLI draws
them: widgets in a notebook, text bars in a terminal.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .. import errors
from ..engine.sinks import Channel, LoopQueueSink, QueueSink, StreamEnd
from ..providers.admin import AdminCall
from ..streams import wait_get
from .base import ServerNamespace

__all__ = ["OllamaServer"]


class OllamaServer(ServerNamespace):
    """>>> client.ollama.pull("llama3.2")          # doctest: +SKIP
    >>> [m["name"] for m in client.ollama.list()]  # doctest: +SKIP
    """

    provider = "ollama"

    def list(self, **options: Any) -> list[dict[str, Any]]:
        """The models pulled to this server (``/api/tags``): ``name``, ``size``, ``digest``, ``details``…"""
        return self._admin("list", **options)

    def ps(self, **options: Any) -> list[dict[str, Any]]:
        """The models loaded in memory now (``/api/ps``)."""
        return self._admin("ps", **options)

    def version(self, **options: Any) -> str:
        return self._admin("version", **options)

    def show(self, name: str, **options: Any) -> dict[str, Any]:
        """A model's details, parameters, template and capabilities (``/api/show``)."""
        return self._admin("show", name, {"model": name}, **options)

    def delete(self, name: str, **options: Any) -> None:
        """Remove a pulled model from the server's disk."""
        self._admin("delete", name, {"model": name}, **options)

    def pull(self, name: str, *, progress: bool = True, **options: Any) -> dict[str, Any]:
        """Download ``name`` from the Ollama library; returns once Ollama says ``success``.

        Raises ``NotFoundError`` when the library has no such model.  An interrupted
        pull is retried by the engine and resumes where Ollama left off.
        """
        sink = QueueSink()
        job, _ = self._client._job("admin", self._target(name), AdminCall("pull", {"model": name}),
                                   {"cache": False, **options, "stream": True}, sink)
        with _PullBar(name, progress) as bar:
            try:
                while not isinstance(item := wait_get(sink.queue), StreamEnd):
                    bar.update(item.value)
            except KeyboardInterrupt:
                self._client.engine.cancel(job, errors.CancelledError("interrupted", provider=self.provider))
                raise
        return bar.finish(item)

    async def alist(self, **options: Any) -> list[dict[str, Any]]:
        return await self._aadmin("list", **options)

    async def aps(self, **options: Any) -> list[dict[str, Any]]:
        return await self._aadmin("ps", **options)

    async def aversion(self, **options: Any) -> str:
        return await self._aadmin("version", **options)

    async def ashow(self, name: str, **options: Any) -> dict[str, Any]:
        return await self._aadmin("show", name, {"model": name}, **options)

    async def adelete(self, name: str, **options: Any) -> None:
        await self._aadmin("delete", name, {"model": name}, **options)

    async def apull(self, name: str, *, progress: bool = True, **options: Any) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        channel = Channel(loop)
        inbox, outbox = self._client._link(loop)
        job, _ = self._client._job("admin", self._target(name), AdminCall("pull", {"model": name}),
                                   {"cache": False, **options, "stream": True}, LoopQueueSink(inbox, channel),
                                   outbox=outbox)
        with _PullBar(name, progress) as bar:
            try:
                while True:
                    if not channel.items:
                        await channel.wait()
                    item = channel.items.popleft()
                    if isinstance(item, StreamEnd):
                        break
                    bar.update(item.value)
            except asyncio.CancelledError:
                self._client.engine.cancel(job)
                raise
        return bar.finish(item)


class _PullBar:
    """One byte-counting bar per layer, as ``ollama pull`` draws them; statuses without a layer
    (``verifying sha256 digest``, ``success``…) show on the latest bar."""

    def __init__(self, name: str, enabled: bool) -> None:
        self._name = name
        self._enabled = enabled
        self._bars: dict[str, Any] = {}

    def update(self, frame: dict[str, Any]) -> None:
        if not self._enabled:
            return
        digest, status = frame.get("digest"), str(frame.get("status", ""))
        if digest and frame.get("total"):
            bar = self._bars.get(digest)
            if bar is None:
                from tqdm.auto import tqdm

                bar = self._bars[digest] = tqdm(total=int(frame["total"]), desc=f"{self._name} {status}",
                                                unit="B", unit_scale=True, unit_divisor=1024)
            bar.update(int(frame.get("completed") or 0) - bar.n)
        elif self._bars:
            bar = next(reversed(self._bars.values()))
            bar.set_postfix_str(status)

    def finish(self, end: StreamEnd) -> dict[str, Any]:
        if not end.ok:
            raise end.value
        raw = end.value.raw
        return raw if isinstance(raw, dict) else {"status": "success"}

    def __enter__(self) -> _PullBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        for bar in self._bars.values():
            bar.close()
