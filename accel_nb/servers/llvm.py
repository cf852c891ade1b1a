"""``client.llvm``: the LLVM model server's models, statistics, optimization and status."""

from __future__ import annotations

from typing import Any

from .. import errors
from .base import ServerNamespace

__all__ = ["LlvmServer"]

OPTIMIZATIONS = ("speed", "memory", "balanced")


def _optimization(kind: str) -> dict[str, str]:
    if kind not in OPTIMIZATIONS:
        raise errors.BadRequestError(
            f"optimization_type must be one of {', '.join(OPTIMIZATIONS)}, not {kind!r}", provider="llvm"
        )
    return {"optimization_type": kind}


class LlvmServer(ServerNamespace):
    """>>> client.llvm.optimize("resnet50", "speed")      # doctest: +SKIP"""

    provider = "llvm"

    def models(self, **options: Any) -> list[Any]:
        """The models the server has loaded (``/models``)."""
        return self._admin("models", **options)

    def model(self, model_id: str, **options: Any) -> dict[str, Any]:
        """One model's description (``/models/{id}``)."""
        return self._admin("model", model_id, **options)

    def statistics(self, model_id: str, **options: Any) -> dict[str, Any]:
        """The server's counters for one model (``/models/{id}/statistics``)."""
        return self._admin("statistics", model_id, **options)

    def optimize(self, model_id: str, optimization_type: str = "balanced", **options: Any) -> dict[str, Any]:
        """Recompile a model for ``speed``, ``memory`` or ``balanced`` (``/models/{id}/optimize``)."""
        return self._admin("optimize", model_id, _optimization(optimization_type), **options)

    def status(self, **options: Any) -> dict[str, Any]:
        """The server's health and version (``/status``)."""
        return self._admin("status", **options)

    async def amodels(self, **options: Any) -> list[Any]:
        return await self._aadmin("models", **options)

    async def amodel(self, model_id: str, **options: Any) -> dict[str, Any]:
        return await self._aadmin("model", model_id, **options)

    async def astatistics(self, model_id: str, **options: Any) -> dict[str, Any]:
        return await self._aadmin("statistics", model_id, **options)

    async def aoptimize(self, model_id: str, optimization_type: str = "balanced", **options: Any) -> dict[str, Any]:
        return await self._aadmin("optimize", model_id, _optimization(optimization_type), **options)

    async def astatus(self, **options: Any) -> dict[str, Any]:
        return await self._aadmin("status", **options)
