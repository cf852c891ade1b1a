"""What the simulated TGI and TEI share: how Hugging Face's axum servers describe themselves
and say no.

* ``{error, error_type}`` bodies — TGI writes the type in lower case, TEI capitalized
  (each protocol's ``error_types`` holds its own spelling);
* an empty 401 from the ``--api-key`` middleware, and an empty 404 for an unknown route;
* axum's own rejections in plain text, each beginning "Failed to": a body that is not
  JSON (400) or not the expected shape (422), a body over ``--payload-limit`` (413);
* ``GET /info`` and ``GET /health`` (200, empty body); no request-id header and no
  rate-limit headers.

Neither server limits rates: the simulator's per-minute window and a ``429`` fault
come out as the overload both answer when their concurrency limit is full.  A
``quota`` fault is what Hugging Face's hosted router answers once the account's
credits are spent: ``402 {error}``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from .base import BadRequest, Call, Failure, Limit, Reply

if TYPE_CHECKING:
    from .server import Window

__all__ = ["HFServer", "axum_rejection", "compute_headers"]

_QUOTA = (
    "You have exceeded your monthly included credits for Inference Providers. Subscribe to PRO to get 20x more "
    "monthly included credits."
)
BODY_LIMIT = "Failed to buffer the request body: length limit exceeded"


def axum_rejection(what: str, status: int = 422) -> BadRequest:
    """A body axum itself refuses (plain text): ``missing field `inputs```, ``invalid type``…"""
    return BadRequest(f"Failed to deserialize the JSON body into the target type: {what}", status)


def compute_headers(call: Call, characters: int, **extra: int) -> dict[str, str]:
    """The ``x-compute-*`` / ``x-*-time`` headers both servers put on a successful reply (times in ms)."""
    elapsed_ms = str(round((time.monotonic() - call.started) * 1000))
    headers = {"x-compute-type": "gpu+optimized", "x-compute-characters": str(characters)}
    for name in ("x-compute-time", "x-total-time", "x-queue-time", "x-inference-time"):
        headers[name] = elapsed_ms
    headers.update({f"x-{name.replace('_', '-')}": str(value) for name, value in extra.items()})
    return headers


class HFServer:
    """Mixed in before a ``Protocol`` base: the error rendering and the self-description routes."""

    overload_status: ClassVar[int] = 429
    request_id_header: ClassVar[str | None] = None
    invalid_json_message: ClassVar[str] = "Failed to parse the request body as JSON: expected value at line 1 column 1"
    payload_limit: ClassVar[int] = 2_000_000  # both servers' default --payload-limit, in bytes
    #: status -> (error_type as the server spells it, default message)
    error_types: ClassVar[dict[int, tuple[str, str]]]

    def info_body(self) -> dict[str, Any]:
        raise NotImplementedError

    # -- self-description -----------------------------------------------------------
    def info(self, call: Call, body: None) -> Reply:
        return Reply(self.info_body())

    def health(self, call: Call, body: None) -> Reply:
        return Reply(None)

    def check_size(self, call: Call) -> None:
        if (call.request.content_length or 0) > self.payload_limit:
            raise BadRequest(BODY_LIMIT, 413)

    # -- errors ---------------------------------------------------------------------
    def unauthorized(self, call: Call, missing: bool) -> Failure:
        return Failure(401, None)

    def error(self, call: Call, status: int, message: str | None = None) -> Failure:
        if message is not None and message.startswith("Failed to"):
            return Failure(status, message)
        if message is None and status in (400, 413):  # what a 400 or 413 from these servers usually is
            return Failure(status, self.invalid_json_message if status == 400 else BODY_LIMIT)
        if status in (401, 404):
            return Failure(status, None)
        fallback = ("Backend" if status >= 500 else "validation", f"HTTP {status}")
        error_type, default = self.error_types.get(status, fallback)
        return Failure(status, {"error": message or default, "error_type": error_type})

    def rate_limited(self, call: Call, hint_s: float, limit: Limit, *, ms: bool = False) -> Failure:
        return self.error(call, self.overload_status)

    def quota(self, call: Call) -> Failure:
        return Failure(402, {"error": _QUOTA})

    def rate_headers(self, window: Window) -> dict[str, str]:
        return {}

    def reply_headers(self, call: Call) -> dict[str, str]:
        return {}
