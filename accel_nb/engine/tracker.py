"""Request events and rolling metrics, in memory, on the engine thread.

Everything here runs on the hot path, so it only appends and counts; percentiles
are computed when someone asks (``snapshot``), and listeners (widgets, the lab
extension's comm) are expected to buffer and render at their own pace.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["Event", "ProviderMetrics", "Tracker", "percentile"]

log = logging.getLogger("accel_nb")

EVENT_KINDS = ("queued", "started", "first_token", "retry", "done", "failed")


@dataclass(slots=True)
class Event:
    kind: str
    request_id: str
    provider: str
    model: str
    time: float
    data: dict[str, Any]


def percentile(values: Any, q: float) -> float | None:
    """Nearest-rank percentile of a small sample; ``None`` when empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


class ProviderMetrics:
    """Counters and recent samples for one provider."""

    __slots__ = (
        "requests",
        "succeeded",
        "failed",
        "retries",
        "cached",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "latencies",
        "ttfts",
        "tokens_per_s",
        "errors",
        "last_error",
    )

    def __init__(self, window: int) -> None:
        self.requests = self.succeeded = self.failed = self.retries = self.cached = 0
        self.input_tokens = self.output_tokens = 0
        self.cost_usd = 0.0
        self.latencies: collections.deque[float] = collections.deque(maxlen=window)
        self.ttfts: collections.deque[float] = collections.deque(maxlen=window)
        self.tokens_per_s: collections.deque[float] = collections.deque(maxlen=window)
        self.errors: collections.Counter[str] = collections.Counter()
        self.last_error: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "retries": self.retries,
            "cached": self.cached,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": round(self.cost_usd, 6),
            "latency_p50_s": percentile(self.latencies, 50),
            "latency_p95_s": percentile(self.latencies, 95),
            "ttft_p50_s": percentile(self.ttfts, 50),
            "ttft_p95_s": percentile(self.ttfts, 95),
            "tokens_per_s": percentile(self.tokens_per_s, 50),
            "errors": dict(self.errors),
            "last_error": self.last_error,
        }


class Tracker:
    """Counts what the engine does and tells listeners, one ``Event`` at a time."""

    def __init__(self, window: int = 1000, recent: int = 200) -> None:
        self._window = window
        self.providers: dict[str, ProviderMetrics] = {}
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=recent)
        self._subscriptions: list[tuple[Callable[[Event], Any], frozenset[str]]] = []
        self._routes: dict[str, tuple[Callable[[Event], Any], ...]] = {}  # kind -> its listeners

    def subscribe(self, listener: Callable[[Event], Any], kinds: Iterable[str] = EVENT_KINDS) -> Callable[[], None]:
        """Call ``listener(event)`` on the engine thread for every event of ``kinds`` (all by
        default); returns an unsubscribe.  No ``Event`` is built for a kind nobody listens to."""
        wanted = frozenset(kinds)
        if unknown := wanted - set(EVENT_KINDS):
            raise ValueError(f"unknown event kinds {sorted(unknown)}; choose from {', '.join(EVENT_KINDS)}")
        self._route([*self._subscriptions, (listener, wanted)])

        def unsubscribe() -> None:
            self._route([entry for entry in self._subscriptions if entry[0] is not listener])

        return unsubscribe

    def _route(self, subscriptions: list[tuple[Callable[[Event], Any], frozenset[str]]]) -> None:
        """Replaced whole, never changed in place: the engine thread may be reading them."""
        self._subscriptions = subscriptions
        self._routes = {kind: found for kind in EVENT_KINDS
                        if (found := tuple(fn for fn, kinds in subscriptions if kind in kinds))}

    def metrics(self, provider: str) -> ProviderMetrics:
        metrics = self.providers.get(provider)
        if metrics is None:
            metrics = self.providers[provider] = ProviderMetrics(self._window)
        return metrics

    def emit(self, kind: str, request_id: str, provider: str, model: str, **data: Any) -> None:
        listeners = self._routes.get(kind)
        if listeners:
            self._send(listeners, Event(kind, request_id, provider, model, time.time(), data))

    def _send(self, listeners: tuple[Callable[[Event], Any], ...], event: Event) -> None:
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a broken widget must not break the engine
                log.exception("accel_nb event listener %r failed; unsubscribing it", listener)
                self._route([entry for entry in self._subscriptions if entry[0] is not listener])

    # -- what the engine reports ---------------------------------------------------------
    def queued(self, request_id: str, provider: str, model: str, priority: str) -> None:
        self.metrics(provider).requests += 1
        self.emit("queued", request_id, provider, model, priority=priority)

    def retry(self, request_id: str, provider: str, model: str, attempt: int, error: str, wait_s: float) -> None:
        self.metrics(provider).retries += 1
        self.emit("retry", request_id, provider, model, attempt=attempt, error=error, wait_s=wait_s)

    def finished(self, row: dict[str, Any]) -> None:
        """``row`` is the ledger's view of the request (see ``Ledger.COLUMNS``)."""
        metrics = self.metrics(row["provider"])
        if row["status"] == "ok":
            metrics.succeeded += 1
            metrics.cached += bool(row["cached"])
            metrics.input_tokens += row["input_tokens"] or 0
            metrics.output_tokens += row["output_tokens"] or 0
            metrics.cost_usd += row["cost_usd"] or 0.0
            if not row["cached"]:
                latency, ttft = row["latency_s"], row["ttft_s"]
                metrics.latencies.append(latency)
                if ttft is not None:
                    metrics.ttfts.append(ttft)
                generating = latency - (ttft or 0.0)
                if row["output_tokens"] and generating > 0:
                    metrics.tokens_per_s.append(row["output_tokens"] / generating)
        else:
            metrics.failed += 1
            metrics.errors[row["error_class"]] += 1
            metrics.last_error = f"{row['error_class']}: {row['error_message']}"
        self.recent.append(row)
        kind = "done" if row["status"] == "ok" else "failed"
        listeners = self._routes.get(kind)
        if listeners:
            self._send(listeners, Event(kind, row["id"], row["provider"], row["model"], time.time(), row))
