"""The one mechanism every widget updates through: engine events in, batched renders out.

The tracker calls listeners on the engine thread for the kinds of event they subscribe
to, thousands a second under load, so the listener only keeps what the panels draw — a
small ``Record`` of each finished request and retry, never the event or its ledger row
(holding those until the next render would push thousands of dicts, prompts and answers
included, through the garbage collector's older generations) — and sets a flag.  One daemon
thread per client (``accel_nb-widgets``) wakes on that flag, waits until at least
``1 / max_hz`` has passed since its last render, takes one ``stats()`` snapshot and
hands every attached view the same ``Batch``.  That thread is the only one that
writes engine-driven state into widgets, so their comm messages go out in order and
at most ``max_hz`` times a second however busy the engine is.  The gap between renders
also grows with what renders cost (their recent thread CPU time over ``budget``), so
widgets take no more than that share of the kernel's time from the engine, up to
``max_gap_s`` between renders, so the panels stay live even on a slow machine.  While
something is queued, in flight, cooling down or behind an open breaker it also ticks
at ``busy_hz`` without events, so countdowns and breaker transitions show.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from ..client import Client
    from ..engine.tracker import Event
    from ..stats import Stats

__all__ = ["Batch", "Feed", "Record", "feed"]

log = logging.getLogger("accel_nb")

View = Callable[["Batch"], Any]
# what the panels draw (done, failed, retry) and what starts the picture moving (queued: from
# then on the feed ticks while busy, so "started" and "first_token" need no wake-up of their own)
_WAKING_KINDS = ("queued", "retry", "done", "failed")


class Record(NamedTuple):
    """A finished request (``done`` / ``failed``) or a ``retry``, as the charts need it."""

    kind: str
    provider: str
    latency_s: float | None = None
    ttft_s: float | None = None
    output_tokens: int | None = None
    cached: bool = False
    error: str | None = None  # the error class of a failure or of the attempt being retried


def record(event: Event) -> Record | None:
    """The ``Record`` of an event, ``None`` for events that only mean "something changed"."""
    kind, data = event.kind, event.data
    if kind in ("done", "failed"):
        return Record(kind, event.provider, data["latency_s"], data["ttft_s"], data["output_tokens"],
                      data["cached"], data["error_class"])  # fmt: skip
    if kind == "retry":
        return Record(kind, event.provider, error=data["error"])
    return None


class Batch(NamedTuple):
    """What one render sees: what finished or was retried since the previous render, and a
    fresh snapshot."""

    records: list[Record]
    stats: Stats
    time: float  # wall clock, seconds since the epoch


def busy(stats: Stats) -> bool:
    """Whether the picture changes with time alone (queues, requests, cooldowns, breakers)."""
    if stats.get("queued") or stats.get("waiting") or stats.get("in_flight"):
        return True
    return any(
        lane["state"] not in ("active", "retired")
        for entry in stats.get("providers", {}).values()
        for lane in entry.get("lanes", ())
    )


class Feed:
    """A client's tracker subscription, shared by all its widgets."""

    def __init__(
        self, client: Client, max_hz: float = 4.0, busy_hz: float = 1.0, budget: float = 0.005, max_gap_s: float = 2.0
    ) -> None:
        self.client = client
        self.interval = 1.0 / max_hz
        self.budget = budget
        self.max_gap_s = max_gap_s
        self._cost = 0.0  # recent render CPU time, smoothed: one costly render (new traces) is not a trend
        self._busy_interval = 1.0 / busy_hz
        self._records: collections.deque[Record] = collections.deque()
        self._posted: collections.deque[Callable[[], Any]] = collections.deque()
        self._views: list[View] = []
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._busy = False
        self.renders = 0
        self.render_cpu_s = 0.0  # thread CPU time spent rendering, all renders

    # -- any thread ----------------------------------------------------------------------
    def attach(self, view: View) -> None:
        """Start calling ``view(batch)`` on the render thread (at once, then on every render)."""
        with self._lock:
            self._views = [*self._views, view]
            if self._thread is None:
                self._unsubscribe = self.client.engine.tracker.subscribe(self._on_event, _WAKING_KINDS)
                self._thread = threading.Thread(target=self._run, name="accel_nb-widgets", daemon=True)
                self._thread.start()
        self.poke()

    def detach(self, view: View) -> None:
        """Stop calling ``view``; the subscription ends with the last view, and the thread at its
        next wake-up, without rendering again."""
        with self._lock:
            self._views = [v for v in self._views if v != view]  # bound methods: equal, not identical
            if self._views or self._thread is None:
                return
            self._thread = None
            if self._unsubscribe is not None:
                self._unsubscribe()
            _feeds.pop(id(self.client), None)
        self.poke()

    def post(self, fn: Callable[[], Any]) -> None:
        """Run ``fn()`` on the render thread before the next render (results of worker threads)."""
        self._posted.append(fn)
        self.poke()

    def poke(self) -> None:
        """Ask for a render soon (still at most ``max_hz``)."""
        if not self._wake.is_set():
            self._wake.set()

    def _on_event(self, event: Event) -> None:  # engine thread: keep it this small
        rec = record(event)
        if rec is not None:
            self._records.append(rec)
        if not self._wake.is_set():
            self._wake.set()

    # -- render thread -------------------------------------------------------------------
    def _run(self) -> None:
        me = threading.current_thread()
        next_at = 0.0
        while self._thread is me:
            self._wake.wait(self._busy_interval if self._busy else None)
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._wake.clear()
            if self._thread is not me:
                return
            started, cpu = time.monotonic(), time.thread_time()
            try:
                self._render()
            except Exception:  # the engine is gone (client closed): nothing more to show
                log.debug("accel_nb widgets stopped rendering", exc_info=True)
                return
            spent = time.thread_time() - cpu
            self.render_cpu_s += spent
            self._cost = spent if not self._cost else (self._cost + spent) / 2
            next_at = started + min(self.max_gap_s, max(self.interval, self._cost / self.budget))

    def _render(self) -> None:
        while self._posted:
            self._call(self._posted.popleft())
        records = [self._records.popleft() for _ in range(len(self._records))]
        stats = self.client.stats()
        self._busy = busy(stats)
        batch = Batch(records, stats, time.time())
        for view in self._views:
            self._call(view, batch)
        self.renders += 1

    @staticmethod
    def _call(fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # one broken view must not stop the others
            log.exception("accel_nb widget update failed")


_feeds: dict[int, Feed] = {}
_feeds_lock = threading.Lock()


def feed(client: Client) -> Feed:
    """The client's feed (one per client, made on first use)."""
    with _feeds_lock:
        found = _feeds.get(id(client))
        if found is None or found.client is not client:
            found = _feeds[id(client)] = Feed(client)
        return found
