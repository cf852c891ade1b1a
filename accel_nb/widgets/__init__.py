"""Live ipywidgets panels over the kernel's engine: provider picker, key manager, charts, queue
monitor, compare panel, and a dashboard holding them all.

Each panel takes an optional ``client`` (the kernel's shared ``default_client()`` otherwise)
and is fed by the engine's tracker events through one shared, rate-limited render thread
(see ``_feed``).  Nothing here is imported by ``import accel_nb`` or ``%load_ext accel_nb``;
this module itself only imports ipywidgets (and plotly) when a panel is first used.

>>> import accel_nb.widgets as aw                       # doctest: +SKIP
>>> aw.dashboard()                                      # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "ComparePanel",
    "Dashboard",
    "KeyManager",
    "LiveCharts",
    "ProviderPicker",
    "QueueMonitor",
    "dashboard",
    "key_manager",
    "panel",
]

_LAZY = {
    "ComparePanel": "compare",
    "Dashboard": "board",
    "KeyManager": "keys",
    "LiveCharts": "charts",
    "ProviderPicker": "picker",
    "QueueMonitor": "queue",
}

if TYPE_CHECKING:
    from ..client import Client
    from .board import Dashboard
    from .charts import LiveCharts
    from .compare import ComparePanel
    from .keys import KeyManager
    from .picker import ProviderPicker
    from .queue import QueueMonitor


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def dashboard(client: Client | None = None) -> Dashboard:
    """Every panel in one layout (``%accel dashboard``)."""
    from .board import Dashboard

    return Dashboard(client)


def panel(client: Client | None = None) -> Any:
    """The provider picker with a compact queue status under it (``%accel panel``)."""
    import ipywidgets as w

    from .picker import ProviderPicker
    from .queue import QueueMonitor

    return w.VBox([ProviderPicker(client), QueueMonitor(client, lanes=False)])


def key_manager(client: Client | None = None) -> KeyManager:
    """Enter, check and (optionally) save API keys without them reaching the notebook (``%accel keys``)."""
    from .keys import KeyManager

    return KeyManager(client)
