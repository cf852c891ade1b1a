"""Pure transformations from engine state (``Stats``, events, settings) to what the widgets show.

No widget is imported here, so every rule — which dot is red, what a lane's state
says, where a chart point comes from — is tested as a plain function.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..engine.tracker import percentile
from ..types import Response

if TYPE_CHECKING:
    from ..config import Settings
    from ._feed import Record

__all__ = [
    "GREEN",
    "GREY",
    "RED",
    "YELLOW",
    "ChartState",
    "Health",
    "Point",
    "compare_row",
    "health",
    "key_rows",
    "lane_text",
]

GREEN, YELLOW, RED, GREY = "#2e9e44", "#f0a202", "#d62728", "#9e9e9e"


@dataclass(frozen=True)
class Health:
    colour: str
    text: str


def health(entry: Mapping[str, Any] | None, has_keys: bool) -> Health:
    """A provider's dot: grey without a key, red when no lane can send, yellow when some
    lane is held back (cooling down, breaker open or probing), green otherwise."""
    if not has_keys:
        return Health(GREY, "no key")
    lanes = list((entry or {}).get("lanes", ()))
    live = [lane for lane in lanes if lane["state"] != "retired"]
    if lanes and not live:
        return Health(RED, "every key was rejected")
    states = collections.Counter(lane["state"] for lane in live)
    if live and states["open"] == len(live):
        return Health(RED, "circuit breaker open")
    held = [f"{n} {_STATE_WORDS[s]}" for s, n in sorted(states.items()) if s in _STATE_WORDS]
    if held:
        return Health(YELLOW, ", ".join(held))
    return Health(GREEN, "ready")


_STATE_WORDS = {"cooling": "cooling down", "open": "breaker open", "half_open": "probing"}


def lane_text(lane: Mapping[str, Any] | None, now: float | None = None) -> str:
    """``active``, ``cooling down until 14:03:07 (12 s)``, ``retired: rejected (401)``, …"""
    if lane is None:
        return "not used yet"
    state = lane["state"]
    if state == "cooling":
        until = (now if now is not None else time.time()) + lane["cooling_s"]
        return f"cooling down until {time.strftime('%H:%M:%S', time.localtime(until))} ({lane['cooling_s']:.0f} s)"
    if state == "retired":
        return f"retired: {lane['retired']}"
    return {"open": "breaker open", "half_open": "breaker half-open (probing)"}.get(state, state)


def key_rows(settings: Settings, stats: Mapping[str, Any], now: float | None = None) -> list[dict[str, str]]:
    """One row per configured key: provider, label, source, last 4 characters, lane state.
    Built from ``Secret.label`` / ``.source`` only: the key itself is never read."""
    rows = []
    for pid, cfg in settings.providers.items():
        lanes = {lane["key"]: lane for lane in stats.get("providers", {}).get(pid, {}).get("lanes", ())}
        for key in cfg.keys:
            rows.append({
                "provider": pid,
                "label": key.label,
                "source": key.source,
                "last4": key.last4,
                "state": lane_text(lanes.get(key.label), now),
            })
    return rows


# -- charts ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Point:
    """One provider's chart point for one render interval."""

    time: float
    stamp: str  # the time as local ISO 8601, what plotly reads as a date
    latency_p50: float | None
    latency_p95: float | None
    ttft_p50: float | None
    tokens_per_s: float | None
    tokens: int
    cost_usd: float


@dataclass
class ChartState:
    """What the live charts have seen: a bounded history of points per provider, and retries
    and failures by class (counted since the charts opened)."""

    history: int = 300
    points: dict[str, collections.deque[Point]] = field(default_factory=dict)
    classes: dict[str, collections.Counter[str]] = field(default_factory=dict)

    def add(self, records: Iterable[Record], stats: Mapping[str, Any], now: float) -> set[str]:
        """Fold one batch in; returns the providers whose chart data changed."""
        finished: dict[str, list[Record]] = collections.defaultdict(list)
        changed = set()
        for rec in records:
            if rec.kind != "retry":
                finished[rec.provider].append(rec)
            if rec.kind != "done":
                self.classes.setdefault(rec.provider, collections.Counter())[f"{rec.kind}: {rec.error}"] += 1
                changed.add(rec.provider)
        providers = stats.get("providers", {})
        for pid, rows in finished.items():
            entry = providers.get(pid, {})
            point = interval_point(rows, entry, now)
            self.points.setdefault(pid, collections.deque(maxlen=self.history)).append(point)
            changed.add(pid)
        return changed

    def columns(self, pid: str) -> dict[str, list[Any]]:
        """The provider's history as plot columns (``time`` in epoch seconds)."""
        points = self.points.get(pid, ())
        return {name: [getattr(p, name) for p in points] for name in Point.__dataclass_fields__}


def interval_point(rows: Iterable[Record], entry: Mapping[str, Any], now: float) -> Point:
    """Latency, TTFT and tokens/s of the requests that finished in one interval (answers from
    the cache excluded: they say nothing about the provider), with the tracker's running
    totals of tokens and cost."""
    latencies, ttfts, rates = [], [], []
    for row in rows:
        if row.kind != "done" or row.cached:
            continue
        latency, ttft = row.latency_s, row.ttft_s
        latencies.append(latency)
        if ttft is not None:
            ttfts.append(ttft)
        generating = latency - (ttft or 0.0)
        if row.output_tokens and generating > 0:
            rates.append(row.output_tokens / generating)
    return Point(
        time=now,
        stamp=time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}",
        latency_p50=percentile(latencies, 50),
        latency_p95=percentile(latencies, 95),
        ttft_p50=percentile(ttfts, 50),
        tokens_per_s=percentile(rates, 50),
        tokens=(entry.get("input_tokens") or 0) + (entry.get("output_tokens") or 0),
        cost_usd=entry.get("cost_usd") or 0.0,
    )


# -- compare -----------------------------------------------------------------------------------
def compare_row(target: str, outcome: Any) -> dict[str, Any]:
    """A compare-table row from a ``Response`` or the error that ended the stream."""
    if not isinstance(outcome, Response):
        error = f"{type(outcome).__name__}: {getattr(outcome, 'message', outcome)}"
        return {"target": target, "ok": False, "error": error}
    return {
        "target": target,
        "ok": True,
        "latency_s": outcome.latency_s,
        "ttft_s": outcome.ttft_s,
        "input_tokens": outcome.usage.input_tokens,
        "output_tokens": outcome.usage.output_tokens,
        "tokens_per_s": _rate(outcome),
        "cost_usd": outcome.cost_usd,
        "attempts": outcome.attempts,
    }


def _rate(response: Response) -> float | None:
    generating = response.latency_s - (response.ttft_s or 0.0)
    return response.usage.output_tokens / generating if generating > 0 and response.usage.output_tokens else None
