"""Anthropic Messages API (Claude)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from typing import Any

from .. import errors
from ..types import Request, Usage
from .base import (
    Adapter,
    Delta,
    HttpCall,
    RateLimitHeaders,
    RateLimits,
    Reply,
    classify_status,
    parse_json,
    protocol_error,
    rate_limits_from,
    snippet,
)

__all__ = ["Anthropic"]

DEFAULT_MAX_TOKENS = 1024  # the API requires max_tokens; the SDK has no default either

_ERROR_TYPES: dict[str, type[errors.AccelError]] = {
    "invalid_request_error": errors.BadRequestError,
    "authentication_error": errors.AuthenticationError,
    "billing_error": errors.QuotaExceededError,
    "permission_error": errors.PermissionDeniedError,
    "not_found_error": errors.NotFoundError,
    "request_too_large": errors.BadRequestError,
    "rate_limit_error": errors.RateLimitError,
    "api_error": errors.ServerError,
    "timeout_error": errors.TimeoutError,
    "overloaded_error": errors.OverloadedError,
}


class Anthropic(Adapter):
    """``system`` is a top-level field, ``max_tokens`` is required, and a stream is SSE with
    named events.  An ``error`` event can arrive inside a 200 stream (``overloaded_error``):
    it comes back as a retryable ``Delta.error`` so the engine can retry it when no text was
    shown yet."""

    id = "claude"
    title = "Anthropic Claude"
    aliases = ("anthropic",)
    key_env = ("ANTHROPIC_API_KEY",)
    base_url_env = ("ANTHROPIC_BASE_URL",)
    default_base_url = "https://api.anthropic.com"
    sim_path = "/anthropic"
    default_model = "claude-sonnet-4-5"
    models = ("claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1", "claude-3-5-haiku-latest")
    request_id_header = "request-id"
    version = "2023-06-01"

    def headers(self, key: str | None) -> dict[str, str]:
        headers = {"content-type": "application/json", "anthropic-version": self.version}
        if key:
            headers["x-api-key"] = key
        return headers

    def models_call(self, base_url: str, key: str | None) -> HttpCall | None:
        return HttpCall("GET", base_url + "/v1/models", self.headers(key))

    def parse_models(self, body: Any) -> list[str]:
        return [m["id"] for m in body.get("data", []) if isinstance(m, dict) and "id" in m]

    def build(self, req: Request, base_url: str, key: str | None, info: Any = None) -> HttpCall:
        self.check_kind(req)
        headers = self.headers(key)
        params = dict(req.params)
        body: dict[str, Any] = {
            "model": req.model,
            "max_tokens": params.pop("max_tokens", None) or DEFAULT_MAX_TOKENS,
            "messages": req.messages,
        }
        if req.system:
            body["system"] = req.system
        if "stop" in params:
            stop = params.pop("stop")
            body["stop_sequences"] = [stop] if isinstance(stop, str) else stop
        body.update(params)
        if req.stream:
            body["stream"] = True
        return HttpCall("POST", base_url + "/v1/messages", headers, body)

    def parse(self, req: Request, body: Any) -> Reply:
        try:
            text = "".join(block.get("text", "") for block in body["content"] if block.get("type") == "text")
            usage = body["usage"]
        except (KeyError, TypeError, AttributeError):
            raise protocol_error("claude reply has no content/usage", body) from None
        return Reply(
            text=text,
            finish_reason=body.get("stop_reason"),
            usage=Usage(usage.get("input_tokens") or 0, usage.get("output_tokens") or 0),
            model=body.get("model"),
            raw=body,
        )

    def parse_frame(self, req: Request, event: str | None, data: str) -> Delta | None:
        frame = self.frame_json(data)
        kind = frame.get("type", event)
        if kind == "content_block_delta":
            return Delta(text=frame.get("delta", {}).get("text", ""), raw=frame)
        if kind == "message_start":
            usage = frame.get("message", {}).get("usage", {})
            return Delta(input_tokens=usage.get("input_tokens"), output_tokens=usage.get("output_tokens"), raw=frame)
        if kind == "message_delta":
            return Delta(
                finish_reason=frame.get("delta", {}).get("stop_reason"),
                output_tokens=frame.get("usage", {}).get("output_tokens"),
                raw=frame,
            )
        if kind == "error":
            return Delta(error=self._error(frame, 200, {}, data), raw=frame)
        return None  # ping, content_block_start/stop, message_stop

    def classify(self, status: int, headers: Mapping[str, str], body: bytes) -> errors.AccelError:
        data = parse_json(body)
        if not (isinstance(data, dict) and isinstance(data.get("error"), dict)):
            return super().classify(status, headers, body)
        return self._error(data, status, headers, body)

    def _error(self, data: dict, status: int, headers: Mapping[str, str], body: bytes | str) -> errors.AccelError:
        err = data["error"]
        message = err.get("message") or snippet(body)
        cls = _ERROR_TYPES.get(err.get("type", ""))
        if cls is errors.BadRequestError and status != 413:
            cls = None  # let the message refine it (context length)
        if cls is errors.RateLimitError and _spend_cap(err, headers):
            cls = errors.QuotaExceededError
        error = classify_status(status if status >= 400 else 500, message, headers=headers, cls=cls)
        if status == 200:
            error.status = None  # it came inside a 200 stream; no HTTP status describes it
        error.request_id = data.get("request_id")
        return error

    def rate_limits(self, headers: Mapping[str, str]) -> RateLimits | None:
        """``anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}``, resets as RFC 3339 times."""
        return rate_limits_from(headers, _RATE_LIMIT_HEADERS, _seconds_until)


_RATE_LIMIT_HEADERS = RateLimitHeaders(lambda kind, field: f"anthropic-ratelimit-{kind}-{field}")


def _spend_cap(err: dict, headers: Mapping[str, str]) -> bool:
    """A 429 for a spent budget, not a busy minute: the API marks it with
    ``details.error_code = enforced_spend_limit_reached`` (and sends no ``retry-after``);
    older replies only said so in words."""
    details = err.get("details")
    if isinstance(details, dict) and details.get("error_code") == "enforced_spend_limit_reached":
        return True
    lowered = (err.get("message") or "").lower()
    spending = ("spend limit", "budget", "credit balance", "usage limits")
    return "retry-after" not in headers and any(word in lowered for word in spending)


def _seconds_until(rfc3339: str | None) -> float | None:
    if not rfc3339:
        return None
    try:
        when = dt.datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, when.timestamp() - time.time())
