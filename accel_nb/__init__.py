"""accel_nb: call many AI APIs from notebooks through one queueing, retrying, tracking engine.

Importing the package is instant: the engine, HTTP client and numpy load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any


def _source_version() -> str:
    import json
    import os

    package_json = os.path.join(os.path.dirname(__file__), os.pardir, "labextension", "package.json")
    try:
        with open(package_json, encoding="utf-8") as fh:
            return json.load(fh)["version"]
    except (OSError, ValueError, KeyError):
        return "0+unknown"


try:
    from ._version import __version__  # written by the build from labextension/package.json
except ImportError:  # a source checkout that was never built
    __version__ = _source_version()

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
    "load_ipython_extension",
    "set_default_client",
    "sim",
    "unload_ipython_extension",
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


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext accel_nb``: register ``%%accel`` / ``%accel``.  Imports only the magics module;
    the engine loads on the first request."""
    from .notebook.magics import load

    load(ipython)
    from .notebook import comm

    comm.start()  # the JupyterLab extension's status bar and sidebar (a no-op outside a kernel)


def unload_ipython_extension(ipython: Any) -> None:
    from .notebook.magics import unload

    unload(ipython)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in ("errors", "sim"):
        return importlib.import_module(f"accel_nb.{name}")
    raise AttributeError(f"module 'accel_nb' has no attribute {name!r}")


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the built lab extension is, for ``jupyter labextension develop``."""
    return [{"src": "labextension", "dest": "accel-nb-labextension"}]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
