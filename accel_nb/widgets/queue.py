"""``QueueMonitor``: the view to open when "nothing is happening" — what waits, what runs,
and which keys are held back (cooling down, breaker open) and until when."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from ._base import LiveBox, set_if_changed
from ._feed import Batch
from ._html import STYLE, esc, table
from ._model import lane_text

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["QueueMonitor", "queue_html"]

_PRIORITIES = ("high", "normal", "low")


def queue_html(stats: Mapping[str, Any], now: float | None = None, lanes: bool = True) -> str:
    """Totals, then per provider: queued per priority and in flight; then each lane's state."""
    providers = stats.get("providers", {})
    totals = (
        f"<div class='accel-queue-totals'>queued <b class='accel-queued'>{stats.get('queued', 0)}</b>"
        f" · waiting for queue space <b class='accel-waiting'>{stats.get('waiting', 0)}</b>"
        f" · in flight <b class='accel-in-flight'>{stats.get('in_flight', 0)}</b></div>"
    )
    if not providers:
        return totals + "<div class='accel-muted'>no requests yet</div>"
    rows = []
    for pid, entry in providers.items():
        by_priority = entry.get("queued_by_priority", {})
        rows.append([
            esc(pid),
            *(str(by_priority.get(p, 0)) for p in _PRIORITIES),
            str(entry.get("in_flight", 0)),
            str(entry.get("requests", 0)),
            str(entry.get("failed", 0)),
        ])
    html = totals + table(
        ["provider", "queued high", "normal", "low", "in flight", "requests", "failed"],
        rows,
        "accel-queue",
        numeric=range(1, 7),
    )
    if lanes:
        lane_rows = [
            [esc(pid), esc(lane["key"]), f"{lane['in_flight']}/{lane['concurrency']}", esc(lane["breaker"]),
             esc(lane_text(lane, now))]
            for pid, entry in providers.items()
            for lane in entry.get("lanes", ())
        ]
        html += table(["provider", "key", "in flight", "breaker", "state"], lane_rows, "accel-lanes", numeric=(2,))
    return html


class QueueMonitor(LiveBox):
    """Queued requests per priority, in flight per lane, breaker states and cooldowns.

    ``lanes=False`` keeps it to one table (the compact status under ``panel()``).
    """

    def __init__(self, client: Client | None = None, *, lanes: bool = True) -> None:
        super().__init__(client)
        self._lanes = lanes
        self.view = w.HTML(layout=w.Layout(min_width="360px"))
        self.children = [w.HTML("<b>Queue</b>" + STYLE), self.view]
        self.add_class("accel-queue-monitor")
        self._start()

    def update(self, batch: Batch) -> None:
        set_if_changed(self.view, "value", queue_html(batch.stats, batch.time, self._lanes))
