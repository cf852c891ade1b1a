"""The process-wide pieces the notebook faces share: the kernel's default client and the
observers of engines starting.  Kept free of heavy imports, so the magics and the lab
extension's comm can watch without loading the engine (``%load_ext`` stays instant)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import Client

__all__ = ["engine_started", "on_engine_start", "peek_default_client"]

log = logging.getLogger("accel_nb")

lock = threading.Lock()
default: Client | None = None
_observers: list[Callable[[Client], Any]] = []


def peek_default_client() -> Client | None:
    """The kernel's shared client if one was made, without making one."""
    return default


def on_engine_start(observer: Callable[[Client], Any]) -> Callable[[], None]:
    """Call ``observer(client)`` when any client starts its engine, before its first request
    is queued — so a watcher never has to start one itself.  Returns a remover."""
    _observers.append(observer)

    def remove() -> None:
        if observer in _observers:
            _observers.remove(observer)

    return remove


def engine_started(client: Client) -> None:
    for observer in list(_observers):
        try:
            observer(client)
        except Exception:  # a watcher (a widget, the lab comm) must not break requests
            log.exception("accel_nb engine observer %r failed", observer)
