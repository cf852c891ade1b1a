"""What every server namespace shares: a management call through the engine, sync and async."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ..providers.admin import AdminCall
from ..providers.base import Reply
from ..types import Response

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["ServerNamespace"]


def _output(reply: Reply, response: Response) -> Any:
    return reply.data


class ServerNamespace:
    """Calls of one provider's server; ``options`` are the usual ``priority``, ``timeout``, ``headers``."""

    provider: ClassVar[str]

    def __init__(self, client: Client) -> None:
        self._client = client

    def _target(self, model: str | None) -> str:
        return f"{self.provider}:{model}" if model else self.provider

    def _admin(self, op: str, model: str | None = None, body: dict[str, Any] | None = None, **options: Any) -> Any:
        """Run management call ``op`` and return the part of the reply worth having."""
        return self._client._call("admin", self._target(model), AdminCall(op, body), {"cache": False, **options},
                                  _output)

    async def _aadmin(self, op: str, model: str | None = None, body: dict[str, Any] | None = None,
                      **options: Any) -> Any:
        return await self._client._acall("admin", self._target(model), AdminCall(op, body),
                                         {"cache": False, **options}, _output)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {self._client!r}>"
