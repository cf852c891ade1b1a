"""``client.ovms``: OpenVINO Model Server health, readiness and model metadata.

Inference itself is ``client.infer("ovms:<model>", inputs=...)``; chat and embeddings are
``client.chat("ovms:<model>", ...)`` / ``client.embed(...)`` through its ``/v3`` API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import errors
from .providers.ovms import InferPayload
from .types import Request

if TYPE_CHECKING:
    from .client import Client

__all__ = ["OVMSKit"]

_UNAVAILABLE = (errors.OverloadedError, errors.ServerError, errors.ConnectionError, errors.TimeoutError)


class OVMSKit:
    def __init__(self, client: Client) -> None:
        self._client = client

    def health(self) -> bool:
        """Whether the server is up and ready to serve (``GET /v2/health/ready``); ``False`` when
        it answers 503 or cannot be reached."""
        try:
            self._client.engine.direct("ovms", lambda adapter, base, key: adapter.health_call(base, key))
        except _UNAVAILABLE:
            return False
        return True

    def ready(self, model: str, version: str | int | None = None) -> bool:
        """Whether ``model`` (at ``version``) is loaded and ready; a ``NotFoundError`` when the
        server does not have it."""
        version = None if version is None else str(version)
        try:
            self._client.engine.direct(
                "ovms", lambda adapter, base, key: adapter.ready_call(base, key, model, version)
            )
        except _UNAVAILABLE:
            return False
        except errors.NotFoundError as exc:
            exc.hint = "client.models('ovms') lists the models the server has"
            raise
        return True

    def metadata(self, model: str, version: str | int | None = None) -> dict[str, Any]:
        """The model's KServe v2 metadata (``name, versions, platform, inputs, outputs``), fetched
        now; requests are checked against it.  A model only the legacy TF-Serving API serves
        gives ``{"name": model, "legacy": True, "status": ...}``."""
        payload = InferPayload({}, version=None if version is None else str(version))
        info = self._client.engine.describe(Request("infer", "ovms", model, payload=payload), refresh=True)
        if info.legacy:
            return {"name": model, "legacy": True, "status": info.raw}
        return info.raw
