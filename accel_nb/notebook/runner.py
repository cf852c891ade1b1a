"""Send one prompt to several targets at once and watch the answers arrive, interruptibly.

The kernel's main thread must stay free to see a kernel interrupt (SIGINT lands there as
``KeyboardInterrupt``), and the kernel's own event loop is busy running the cell, so the
requests run on a private asyncio loop in a worker thread (``client.astream`` /
``client.achat``: the public async API).  The worker puts ``(index, kind, value)`` events
on a queue; the main thread drains it and redraws at its own, bounded pace.  ``cancel``
cancels the tasks, which closes each stream and cancels its request in the engine.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Call", "Outcome", "Run"]

_CHUNK, _DONE, _ERROR, _CANCELLED, _EVENT = range(5)


@dataclass
class Call:
    """One target's request: what to pass to ``client.astream`` / ``client.achat``."""

    target: str
    label: str  # provider:model, for display
    provider: str
    prompt: Any  # str or a list of messages
    options: dict[str, Any] = field(default_factory=dict)
    stream: bool = True


@dataclass
class Outcome:
    """What one target has produced so far, and how it ended."""

    call: Call
    parts: list[str] = field(default_factory=list)
    response: Any = None  # accel_nb.Response once done
    error: BaseException | None = None
    interrupted: bool = False
    started: float = field(default_factory=time.monotonic)
    first_token: float | None = None
    ended: float | None = None
    note: str | None = None  # what the engine last said: queued, retrying after a 429, …

    @property
    def text(self) -> str:
        if self.response is not None:
            return self.response.text
        return "".join(self.parts)

    @property
    def finished(self) -> bool:
        return self.ended is not None

    @property
    def state(self) -> str:
        if self.response is not None:
            return "done"
        if self.interrupted:
            return "interrupted"
        if self.error is not None:
            return "error"
        return "streaming" if self.parts else "waiting"

    def elapsed(self, now: float | None = None) -> float:
        return (self.ended or now or time.monotonic()) - self.started


class Run:
    """The worker thread and its event queue for one cell."""

    def __init__(self, client: Any, calls: list[Call]) -> None:
        self.client = client
        self.outcomes = [Outcome(call) for call in calls]
        self._events: queue.SimpleQueue[tuple[int, int, Any]] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._cancelled = False
        self._ids: dict[str, int] = {}  # request id -> outcome index, for engine events
        self._thread = threading.Thread(target=self._work, name="accel-nb-cell", daemon=True)

    # -- main thread --------------------------------------------------------------------------
    def start(self) -> Run:
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return all(o.finished for o in self.outcomes)

    def poll(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for events, apply all that arrived; ``True`` if any did.

        A ``KeyboardInterrupt`` raised while waiting leaves every applied event in place.
        """
        try:
            item = self._events.get(timeout=timeout) if timeout > 0 else self._events.get_nowait()
        except queue.Empty:
            return False
        self._apply(item)
        while True:
            try:
                item = self._events.get_nowait()
            except queue.Empty:
                return True
            self._apply(item)

    def cancel(self, wait_s: float = 2.0) -> None:
        """Cancel what is still running (closing each stream), keep what arrived, mark the rest
        interrupted.  Waits a little for the worker to hand over its last events."""
        self._cancelled = True
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._cancel_tasks)
            except RuntimeError:  # the loop already finished
                pass
        deadline = time.monotonic() + wait_s
        while not self.done and time.monotonic() < deadline:
            self.poll(0.02)
        now = time.monotonic()
        for outcome in self.outcomes:
            if not outcome.finished:
                outcome.interrupted = True
                outcome.ended = now

    def _apply(self, item: tuple[int, int, Any]) -> None:
        index, kind, value = item
        outcome = self.outcomes[index]
        if outcome.finished:
            return
        if kind == _CHUNK:
            if outcome.first_token is None:
                outcome.first_token = time.monotonic()
            outcome.parts.append(value)
            return
        if kind == _EVENT:
            outcome.note = value
            return
        outcome.ended = time.monotonic()
        if kind == _DONE:
            outcome.response = value
        elif kind == _ERROR:
            outcome.error = value
        else:
            outcome.interrupted = True

    # -- worker thread ------------------------------------------------------------------------
    def _work(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        unsubscribe = None
        try:
            unsubscribe = self.client.engine.tracker.subscribe(self._on_event, ("retry",))
            loop.run_until_complete(self._main())
        except BaseException as exc:  # never leave the cell waiting for answers that cannot come
            for index in range(len(self.outcomes)):
                self._events.put((index, _ERROR, exc))
        finally:
            if unsubscribe is not None:
                unsubscribe()
            loop.close()

    def _on_event(self, event: Any) -> None:
        """Engine thread: a retry of one of our requests becomes a note on its outcome."""
        index = self._ids.get(event.request_id)
        if index is not None:
            data = event.data
            note = f"retry {data['attempt']} after {data['error']}"
            if data.get("wait_s"):
                note += f", waiting {data['wait_s']:.1f} s"
            self._events.put((index, _EVENT, note))

    async def _main(self) -> None:
        self._tasks = [asyncio.ensure_future(self._one(i, o.call)) for i, o in enumerate(self.outcomes)]
        if self._cancelled:
            self._cancel_tasks()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _cancel_tasks(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def _one(self, index: int, call: Call) -> None:
        put = self._events.put
        try:
            if call.stream:
                stream = self.client.astream(call.target, call.prompt, **call.options)
                self._ids[stream.request_id] = index
                async for chunk in stream:
                    put((index, _CHUNK, chunk.text))
                put((index, _DONE, stream.response))
            else:
                put((index, _DONE, await self.client.achat(call.target, call.prompt, **call.options)))
        except asyncio.CancelledError:
            put((index, _CANCELLED, None))
        except Exception as exc:  # an AccelError, or a bug: either way the cell shows it
            put((index, _ERROR, exc))
