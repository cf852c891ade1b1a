"""accel_nb: call many AI APIs from notebooks through one queueing, retrying, tracking engine.

Importing the package is instant: the engine, HTTP client and numpy load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AsyncStream",
    "Chunk",
    "Client",
    "Priority",
    "Response",
    "Stream",
    "Usage",
    "dashboard",
    "default_client",
    "errors",
    "set_default_client",
    "sim",
]

_LAZY = {
    "AsyncStream": "accel_nb.client",
    "Client": "accel_nb.client",
    "Stream": "accel_nb.client",
    "default_client": "accel_nb.client",
    "set_default_client": "accel_nb.client",
    "Chunk": "accel_nb.types",
    "Priority": "accel_nb.types",
    "Response": "accel_nb.types",
    "Usage": "accel_nb.types",
    "dashboard": "accel_nb.widgets",  # ipywidgets and plotly load only when it is called
}

if TYPE_CHECKING:
    from . import errors, sim
    from .client import AsyncStream, Client, Stream, default_client, set_default_client
    from .types import Chunk, Priority, Response, Usage
    from .widgets import dashboard


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in ("errors", "sim"):
        return importlib.import_module(f"accel_nb.{name}")
    raise AttributeError(f"module 'accel_nb' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
