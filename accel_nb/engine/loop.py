"""The engine's own asyncio loop on a daemon thread, and cheap hand-offs across threads.

Jupyter kernels already run a loop; owning a second one on a daemon thread works
the same in JupyterLab, Notebook, VS Code, scripts and tests, needs no patching of
asyncio, and keeps widgets updating while a cell waits.  That loop is uvloop's where it is
installed (it is a dependency on Linux and macOS): the engine's loop does nothing but network
I/O and hand-offs, which uvloop runs with about 7 % fewer instructions and, on one core, 7-13 %
more requests per second (``benchmarks/overhead.py``).  ``ACCEL_NB_LOOP=asyncio`` opts out.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["EngineLoop", "Mailbox", "new_engine_loop"]

log = logging.getLogger("accel_nb")


def new_engine_loop() -> asyncio.AbstractEventLoop:
    """A new loop for an engine thread: uvloop's when available, unless ``ACCEL_NB_LOOP=asyncio``."""
    if os.environ.get("ACCEL_NB_LOOP", "").strip().lower() != "asyncio":
        try:
            import uvloop
        except ImportError:  # Windows, PyPy, or a trimmed install: asyncio's loop does the same job
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


class Mailbox:
    """Runs ``fn(arg)`` on ``loop`` from any thread, waking the loop once per batch.

    ``call_soon_threadsafe`` writes to the loop's self-pipe on every call; under load
    (thousands of submissions or stream chunks a second) that syscall and wake-up
    dominate.  Posting into a deque and scheduling one drain per batch keeps the
    order and drops most of that cost.
    """

    __slots__ = ("_loop", "_sender", "_items", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop, sender: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop
        self._sender = sender
        self._items: collections.deque[tuple[Callable[[Any], Any], Any]] = collections.deque()
        self._scheduled = False

    def post(self, fn: Callable[[Any], Any], arg: Any = None) -> None:
        """Called from any thread; or, when the mailbox has a ``sender`` loop, from that loop only:
        then the wake-up waits for the end of the sender's current turn, so everything that
        turn posts crosses over together."""
        self._items.append((fn, arg))
        if not self._scheduled:
            self._scheduled = True
            if self._sender is not None:
                self._sender.call_soon(self._wake)
            else:
                self._wake()

    def _wake(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # the loop is closed: nothing will run these any more
            self._scheduled = False

    def _drain(self) -> None:
        self._scheduled = False  # before popping: a post racing with us schedules another drain
        items = self._items
        while items:
            fn, arg = items.popleft()
            try:
                fn(arg)
            except Exception:  # one failing hand-off must not strand the posts queued behind it
                log.exception("accel_nb hand-off %r failed", fn)


class EngineLoop:
    """Starts, serves and stops the engine's event loop thread."""

    def __init__(self, name: str = "accel_nb-engine") -> None:
        self.loop = new_engine_loop()
        self.mailbox = Mailbox(self.loop)
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def in_loop(self) -> bool:
        return threading.current_thread() is self._thread

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float | None = None) -> Any:
        """Run a coroutine on the engine loop and wait for it (from any other thread)."""
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        except RuntimeError:  # the loop is closed (the client was closed): nothing will run it
            coro.close()
            raise
        return future.result(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
