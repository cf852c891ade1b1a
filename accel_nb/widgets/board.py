"""``Dashboard``: every panel in one layout — providers and queue side by side, the live
charts under them, then tabs for comparing providers and managing keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

import ipywidgets as w

from .charts import LiveCharts
from .compare import ComparePanel
from .keys import KeyManager
from .picker import ProviderPicker
from .queue import QueueMonitor

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["Dashboard"]


class Dashboard(w.VBox):
    """The panels share the client's feed: one subscription, one render thread, ≤ 4 renders/s."""

    def __init__(self, client: Client | None = None) -> None:
        self.picker = ProviderPicker(client)
        client = self.picker.client
        self.queue = QueueMonitor(client)
        self.charts = LiveCharts(client)
        self.compare = ComparePanel(client)
        self.key_manager = KeyManager(client)
        tabs = w.Tab(children=[self.compare, self.key_manager], titles=("Compare", "Keys"))
        top = w.HBox([self.picker, self.queue], layout=w.Layout(grid_gap="24px", flex_flow="row wrap"))
        super().__init__([top, self.charts, tabs])
        self.client = client
        self.add_class("accel-dashboard")

    def close(self) -> None:
        for panel in (self.picker, self.queue, self.charts, self.compare, self.key_manager):
            panel.close()
        super().close()
