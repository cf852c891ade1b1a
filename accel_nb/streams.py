"""``Stream`` and ``AsyncStream``: a streamed answer as it arrives, cancellable at any point."""

from __future__ import annotations

import queue
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from . import errors
from .engine.sinks import Channel, QueueSink, StreamEnd
from .types import Chunk, Response

if TYPE_CHECKING:
    from .engine.core import Engine
    from .engine.job import Job

__all__ = ["POLL_S", "AsyncStream", "Stream", "wait_get"]

# A blocked wait wakes this often: a SIGINT (kernel interrupt) that lands on another
# thread is only seen when the main thread runs Python code again.
POLL_S = 0.1


def wait_get(q: queue.SimpleQueue[Any]) -> Any:
    """``q.get()`` that a KeyboardInterrupt can still reach."""
    while True:
        try:
            return q.get(timeout=POLL_S)
        except queue.Empty:
            continue


class _Streamed:
    """What both streams keep: the text so far, the response at the end, and the cancel."""

    def __init__(self, engine: Engine, job: Job) -> None:
        self._engine = engine
        self._job = job
        self._parts: list[str] = []
        self.response: Response | None = None
        self._finished = False

    @property
    def request_id(self) -> str:
        return self._job.id

    @property
    def text(self) -> str:
        """What has arrived so far (all of it, once the stream is done)."""
        return "".join(self._parts)

    def _chunk(self, item: Any) -> Chunk | None:
        """The ``Chunk`` of a text piece; ``None`` once ``item`` ends the stream (raising its error)."""
        if isinstance(item, StreamEnd):
            self._finished = True
            if not item.ok:
                raise item.value
            self.response = item.value
            return None
        self._parts.append(item)
        return Chunk(item, self._job.id)

    def _cancel(self) -> None:
        if not self._finished:
            self._finished = True
            self._engine.cancel(self._job, errors.CancelledError("stream closed", provider=self._job.request.provider))


class Stream(_Streamed):
    """A blocking iterator of ``Chunk``s; ``.response`` is set once the stream ends."""

    def __init__(self, engine: Engine, job: Job, sink: QueueSink) -> None:
        super().__init__(engine, job)
        self._queue = sink.queue

    def __iter__(self) -> Iterator[Chunk]:
        while not self._finished:
            try:
                item = wait_get(self._queue)
            except KeyboardInterrupt:
                self.close()
                raise
            chunk = self._chunk(item)
            if chunk is None:
                return
            yield chunk

    def close(self) -> None:
        """Stop the stream: the request is cancelled and its connection closed."""
        self._cancel()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncStream(_Streamed):
    """``async for chunk in stream``; ``.response`` is set once the stream ends."""

    def __init__(self, engine: Engine, job: Job, channel: Channel) -> None:
        super().__init__(engine, job)
        self._channel = channel

    async def __aiter__(self) -> AsyncIterator[Chunk]:
        items = self._channel.items
        try:
            while not self._finished:
                if not items:
                    await self._channel.wait()
                chunk = self._chunk(items.popleft())
                if chunk is None:
                    return
                yield chunk
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Stop the stream: the request is cancelled and its connection closed."""
        self._cancel()
