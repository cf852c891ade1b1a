"""``LiveBox``: the base of every panel — a ``VBox`` that a client's feed keeps up to date."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from ._feed import Batch, Feed, feed

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["LiveBox", "set_if_changed"]


def set_if_changed(widget: w.Widget, name: str, value: Any) -> None:
    """Assign a trait only when it differs: an unchanged panel sends no message at all."""
    if getattr(widget, name) != value:
        setattr(widget, name, value)


class LiveBox(w.VBox):
    """Subclasses build their children, then call ``_start()``; ``update(batch)`` then runs on
    the feed's render thread, the only thread that writes engine-driven state into them."""

    def __init__(self, client: Client | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if client is None:
            from ..client import default_client

            client = default_client()
        self.client = client
        self.feed: Feed = feed(client)

    def _start(self) -> None:
        self.feed.attach(self.update)

    def update(self, batch: Batch) -> None:
        raise NotImplementedError

    def in_background(self, work: Callable[[], Any], then: Callable[[Any], Any]) -> None:
        """Run ``work()`` (a network call) off the kernel's main thread so the notebook stays
        responsive; ``then(result or exception)`` runs on the render thread."""

        def run() -> None:
            try:
                result = work()
            except Exception as exc:
                result = exc
            self.feed.post(lambda: then(result))

        threading.Thread(target=run, name="accel_nb-widget-call", daemon=True).start()

    def close(self) -> None:
        self.feed.detach(self.update)
        super().close()
