"""Spreading a provider's requests over its keys (lanes)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .lanes import Lane

__all__ = ["STRATEGIES", "KeyPool"]


def _round_robin(lanes: Sequence[Lane], start: int) -> list[Lane]:
    return [*lanes[start:], *lanes[:start]]


def _least_loaded(lanes: Sequence[Lane], start: int) -> list[Lane]:
    return sorted(_round_robin(lanes, start), key=lambda lane: lane.in_flight / lane.concurrency)


def _most_remaining(lanes: Sequence[Lane], start: int) -> list[Lane]:
    return sorted(_round_robin(lanes, start), key=lambda lane: -lane.limiter.remaining_requests)


STRATEGIES: dict[str, Callable[[Sequence[Lane], int], list[Lane]]] = {
    "round_robin": _round_robin,
    "least_loaded": _least_loaded,
    "most_remaining": _most_remaining,
}


class KeyPool:
    """Picks the lane for the next request; skips keys that are cooling, full, open or retired."""

    def __init__(self, lanes: list[Lane], strategy: str = "round_robin") -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"key_strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
        self.lanes = lanes
        self._order = STRATEGIES[strategy]
        self._cursor = 0

    def pick(self, tokens: float) -> tuple[Lane | None, float | None]:
        """``(lane, 0)`` to start now; ``(None, seconds)`` to wait; ``(None, inf)`` until a
        slot frees; ``(None, None)`` when no lane can serve at all."""
        lanes = self.lanes
        if len(lanes) == 1:  # the common case, kept cheap
            wait = lanes[0].ready_in(tokens)
            return (lanes[0], 0.0) if wait == 0.0 else (None, wait)
        best: float | None = None
        for lane in self._order(lanes, self._cursor):
            wait = lane.ready_in(tokens)
            if wait == 0.0:
                self._cursor = (lanes.index(lane) + 1) % len(lanes)
                return lane, 0.0
            if wait is not None and (best is None or wait < best):
                best = wait
        return None, best

    def live(self, exclude: Lane | None = None) -> list[Lane]:
        return [lane for lane in self.lanes if not lane.retired and lane is not exclude]
