"""Where a request's chunks and result go: back to the thread or loop that asked.

All methods run on the engine thread and must be cheap.  Results for an asyncio
caller cross over through that caller loop's ``Mailbox`` (one wake-up per batch).
"""

from __future__ import annotations

import asyncio
import collections
import queue
import threading
from typing import Any

from .loop import Mailbox

__all__ = [
    "BatchSink",
    "Channel",
    "FutureSink",
    "LoopFutureSink",
    "LoopQueueSink",
    "Progress",
    "QueueSink",
    "Sink",
    "StreamEnd",
]


class Sink:
    def chunk(self, text: str) -> None:
        """Part of a streamed answer (ignored by non-streaming sinks)."""

    def progress(self, value: Any) -> None:
        """A progress report of a long call (Ollama's pull), not part of any answer."""

    def done(self, result: Any) -> None:
        raise NotImplementedError

    def fail(self, error: BaseException) -> None:
        raise NotImplementedError


_PENDING = object()


class FutureSink(Sink):
    """A blocking caller waits for one result.

    A bare lock instead of a ``concurrent.futures.Future`` (about 1.3 KB with its
    condition and waiter deque): 100,000 queued requests must stay small.
    """

    __slots__ = ("_lock", "_ok", "_value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._ok = False
        self._value: Any = _PENDING

    def done(self, result: Any) -> None:
        self._settle(True, result)

    def fail(self, error: BaseException) -> None:
        self._settle(False, error)

    def _settle(self, ok: bool, value: Any) -> None:
        if self._value is _PENDING:
            self._ok, self._value = ok, value
            self._lock.release()

    def wait(self, timeout: float) -> bool:
        """True once the result is there (waits at most ``timeout`` seconds)."""
        if self._lock.acquire(timeout=timeout):
            self._lock.release()
            return True
        return False

    def result(self) -> Any:
        if not self._ok:
            raise self._value
        return self._value


class BatchSink(Sink):
    """One item of a batch: its outcome goes to the batch's shared queue with its index."""

    __slots__ = ("index", "_outcomes")

    def __init__(self, index: int, outcomes: queue.SimpleQueue[tuple[int, bool, Any]]) -> None:
        self.index = index
        self._outcomes = outcomes

    def done(self, result: Any) -> None:
        self._outcomes.put((self.index, True, result))

    def fail(self, error: BaseException) -> None:
        self._outcomes.put((self.index, False, error))


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


class Channel:
    """A queue on the consumer's loop that wakes its reader once per batch, not per item.

    The engine's chunks arrive through the loop's ``Mailbox`` in batches; pushing a batch
    here costs one wake-up of the ``async for`` reader, which then drains every item
    without going back to the event loop (``asyncio.Queue`` would wake it per item).
    """

    __slots__ = ("items", "_waiter", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.items: collections.deque[Any] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._loop = loop

    def push(self, item: Any) -> None:
        self.items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> None:
        """Until at least one item is there."""
        while not self.items:
            self._waiter = self._loop.create_future()
            await self._waiter


class LoopQueueSink(Sink):
    """An ``async for`` consumer reads from a ``Channel`` of its own loop."""

    __slots__ = ("channel", "_mailbox", "_push")

    def __init__(self, mailbox: Mailbox, channel: Channel) -> None:
        self._mailbox = mailbox
        self.channel = channel
        # bound once, on the caller's thread, not per chunk on the engine's (twenty a stream)
        self._push = channel.push

    def chunk(self, text: str) -> None:
        self._mailbox.post(self._push, text)

    def progress(self, value: Any) -> None:
        self._mailbox.post(self._push, Progress(value))

    def done(self, result: Any) -> None:
        self._mailbox.post(self._push, StreamEnd(True, result))

    def fail(self, error: BaseException) -> None:
        self._mailbox.post(self._push, StreamEnd(False, error))
