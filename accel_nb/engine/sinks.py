"""Where a request's chunks and result go: back to the thread or loop that asked.

All methods run on the engine thread and must be cheap.  Results for an asyncio
caller cross over through that caller loop's ``Mailbox`` (one wake-up per batch).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
from typing import Any

from .loop import Mailbox

__all__ = ["FutureSink", "LoopFutureSink", "LoopQueueSink", "Progress", "QueueSink", "Sink", "StreamEnd"]


class Sink:
    def chunk(self, text: str) -> None:
        """Part of a streamed answer (ignored by non-streaming sinks)."""

    def progress(self, value: Any) -> None:
        """A progress report of a long call (Ollama's pull), not part of any answer."""

    def done(self, result: Any) -> None:
        raise NotImplementedError

    def fail(self, error: BaseException) -> None:
        raise NotImplementedError


class FutureSink(Sink):
    """A blocking caller waits on a ``concurrent.futures.Future``."""

    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def done(self, result: Any) -> None:
        if not self.future.done():
            self.future.set_result(result)

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


def _resolve(item: tuple[asyncio.Future[Any], bool, Any]) -> None:
    future, ok, value = item
    if not future.done():
        future.set_result(value) if ok else future.set_exception(value)


class LoopFutureSink(Sink):
    """An asyncio caller awaits a future of its own loop."""

    __slots__ = ("future", "_mailbox")

    def __init__(self, mailbox: Mailbox, future: asyncio.Future[Any]) -> None:
        self._mailbox = mailbox
        self.future = future

    def done(self, result: Any) -> None:
        self._mailbox.post(_resolve, (self.future, True, result))

    def fail(self, error: BaseException) -> None:
        self._mailbox.post(_resolve, (self.future, False, error))


class StreamEnd:
    """The last item of a stream queue: the result or the error."""

    __slots__ = ("ok", "value")

    def __init__(self, ok: bool, value: Any) -> None:
        self.ok = ok
        self.value = value


class Progress:
    """A progress report in a stream queue, between the text pieces."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class QueueSink(Sink):
    """A blocking stream consumer reads text pieces (and ``Progress``), then one ``StreamEnd``."""

    __slots__ = ("queue",)

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def chunk(self, text: str) -> None:
        self.queue.put(text)

    def progress(self, value: Any) -> None:
        self.queue.put(Progress(value))

    def done(self, result: Any) -> None:
        self.queue.put(StreamEnd(True, result))

    def fail(self, error: BaseException) -> None:
        self.queue.put(StreamEnd(False, error))


class LoopQueueSink(Sink):
    """An ``async for`` consumer reads from an ``asyncio.Queue`` of its own loop."""

    __slots__ = ("queue", "_mailbox")

    def __init__(self, mailbox: Mailbox, q: asyncio.Queue[Any]) -> None:
        self._mailbox = mailbox
        self.queue = q

    def chunk(self, text: str) -> None:
        self._mailbox.post(self.queue.put_nowait, text)

    def progress(self, value: Any) -> None:
        self._mailbox.post(self.queue.put_nowait, Progress(value))

    def done(self, result: Any) -> None:
        self._mailbox.post(self.queue.put_nowait, StreamEnd(True, result))

    def fail(self, error: BaseException) -> None:
        self._mailbox.post(self.queue.put_nowait, StreamEnd(False, error))
