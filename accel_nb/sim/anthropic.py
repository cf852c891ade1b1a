"""Anthropic Messages and Models, as ``api.anthropic.com`` speaks them.

``quota`` is rendered as the spend-cap 429: ``rate_limit_error`` with
``details.error_code: enforced_spend_limit_reached`` and no ``retry-after`` (the
anthropic SDK maps it to ``EnforcedSpendLimitReachedError``, a ``RateLimitError``),
which is what an organization over its monthly tier limit gets; ``402
billing_error`` is the rarer credit-balance case and is not simulated.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, ClassVar

from ..providers import anthropic as adapters
from .base import (
    BadRequest,
    Call,
    Chat,
    Failure,
    Frame,
    Limit,
    Protocol,
    Reply,
    Route,
    bearer,
    display_name,
    seconds_text,
    text_of,
)

if TYPE_CHECKING:
    from .server import Window

__all__ = ["Anthropic"]

_STOP_REASONS = {"stop": "end_turn", "stop_sequence": "stop_sequence", "length": "max_tokens"}


class Anthropic(Protocol):
    """``x-api-key`` auth and a required ``anthropic-version``; ``anthropic-ratelimit-*`` headers with
    RFC 3339 resets; errors as ``{type: error, error: {type, message}, request_id}``; streams of named
    events from ``message_start`` to ``message_stop``, failures inside them as ``event: error``."""

    adapter = adapters.Anthropic()
    overload_status = 529
    request_id_header = "request-id"
    invalid_json_message = "There was an error parsing the body of your request: it is not valid JSON."
    #: status -> (error type, default message)
    errors: ClassVar[dict[int, tuple[str, str]]] = {
        400: ("invalid_request_error", "Your request was malformed or missing some required parameters."),
        401: ("authentication_error", "invalid x-api-key"),
        402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
        403: ("permission_error", "Your API key does not have permission to use the specified resource."),
        404: ("not_found_error", "model: {model}"),
        413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
        422: ("invalid_request_error", "The request could not be processed."),
        500: ("api_error", "Internal server error"),
        503: ("api_error", "Service unavailable"),
        504: ("timeout_error", "Request timed out"),
        529: ("overloaded_error", "Overloaded"),
    }

    def routes(self) -> list[Route]:
        return [Route("POST", "/v1/messages", self.messages), Route("GET", "/v1/models", self.models)]

    def api_key(self, request: Any) -> str | None:
        return request.headers.get("x-api-key") or bearer(request)

    # -- errors -------------------------------------------------------------------------
    def body(self, call: Call, type_: str, message: str, **details: Any) -> dict[str, Any]:
        error: dict[str, Any] = {"type": type_, "message": message}
        if details:
            error["details"] = details
        return {"type": "error", "error": error, "request_id": call.request_id}

    def unauthorized(self, call: Call, missing: bool) -> Failure:
        if missing:
            return Failure(401, self.body(call, "authentication_error", "x-api-key header is required"))
        return self.error(call, 401)

    def error(self, call: Call, status: int, message: str | None = None) -> Failure:
        type_, default = self.errors.get(
            status, ("api_error" if status >= 500 else "invalid_request_error", f"HTTP {status}")
        )
        return Failure(status, self.body(call, type_, message or default.format(model=call.model)))

    def rate_limited(self, call: Call, hint_s: float, limit: Limit, *, ms: bool = False) -> Failure:
        unit = "requests" if limit.what == "requests" else "tokens"
        message = (
            f"This request would exceed the rate limit for your organization (simulator) of {limit.limit} {unit} "
            "per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the "
            "response headers for current usage. Please reduce the prompt length or the maximum tokens requested, "
            "or try again later."
        )
        return Failure(429, self.body(call, "rate_limit_error", message), {"retry-after": seconds_text(hint_s)})

    def quota(self, call: Call) -> Failure:
        message = (
            "Your organization has reached its monthly spend limit for its usage tier. API access resumes on the "
            "first of next month at 00:00 UTC, or sooner if you move to a higher tier."
        )
        return Failure(429, self.body(call, "rate_limit_error", message, error_code="enforced_spend_limit_reached"))

    def rate_headers(self, window: Window) -> dict[str, str]:
        reset = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(math.ceil(time.time() + window.reset_s)))
        remaining = {
            "requests": (window.requests_limit, window.requests_remaining),
            "tokens": (window.tokens_limit, window.tokens_remaining),
            "input-tokens": (window.tokens_limit, window.input_tokens_remaining),
            "output-tokens": (window.tokens_limit, window.output_tokens_remaining),
        }
        headers = {}
        for name, (limit, left) in remaining.items():
            prefix = f"anthropic-ratelimit-{name}-"
            headers.update(
                {prefix + "limit": str(limit), prefix + "remaining": str(max(0, left)), prefix + "reset": reset}
            )
        return headers

    # -- messages -----------------------------------------------------------------------
    def messages(self, call: Call, body: dict[str, Any]) -> Chat:
        self._check_version(call)
        for field in ("model", "messages", "max_tokens"):
            if field not in body:
                raise BadRequest(f"{field}: Field required")
        raw = body["messages"]
        if not isinstance(raw, list) or not all(isinstance(m, dict) for m in raw):
            raise BadRequest("messages: Input should be a valid list")
        messages = [{"role": str(m.get("role")), "content": text_of(m.get("content"))} for m in raw]
        return self.new_chat(
            call,
            str(body["model"]),
            messages,
            system=text_of(body.get("system")) or None,
            max_tokens=body["max_tokens"],
            stop=body.get("stop_sequences"),
            stream=bool(body.get("stream")),
        )

    def _check_version(self, call: Call) -> None:
        if not call.request.headers.get("anthropic-version"):
            raise BadRequest("anthropic-version: header is required")

    @staticmethod
    def usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
        return {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
            "service_tier": "standard",
        }

    def message(self, call: Call, chat: Chat, content: list[dict[str, Any]], output_tokens: int, done: bool) -> dict:
        return {
            "id": "msg_" + call.uid,
            "type": "message",
            "role": "assistant",
            "model": chat.model,
            "content": content,
            "stop_reason": _STOP_REASONS[chat.gen.finish] if done else None,
            "stop_sequence": chat.gen.stop_sequence if done else None,
            "usage": self.usage(chat.input_tokens, output_tokens),
        }

    def reply(self, call: Call, chat: Chat) -> dict[str, Any]:
        return self.message(call, chat, [{"type": "text", "text": chat.gen.text}], chat.output_tokens, done=True)

    def head(self, call: Call, chat: Chat) -> list[Frame]:
        return [
            ("message_start", {"type": "message_start", "message": self.message(call, chat, [], 1, done=False)}),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
            ("ping", {"type": "ping"}),
        ]

    def token(self, call: Call, chat: Chat, index: int, text: str) -> Frame:
        delta = {"type": "text_delta", "text": text}
        return "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}

    def tail(self, call: Call, chat: Chat) -> list[Frame]:
        delta = {"stop_reason": _STOP_REASONS[chat.gen.finish], "stop_sequence": chat.gen.stop_sequence}
        return [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {"type": "message_delta", "delta": delta, "usage": {"output_tokens": chat.output_tokens}},
            ),
            ("message_stop", {"type": "message_stop"}),
        ]

    def stream_error(self, call: Call) -> Frame:
        return "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}

    # -- models -------------------------------------------------------------------------
    def models(self, call: Call, body: None) -> Reply:
        self._check_version(call)
        data = [
            {"type": "model", "id": name, "display_name": display_name(name), "created_at": "2025-09-29T00:00:00Z"}
            for name in self.adapter.models
        ]
        return Reply({"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]})
