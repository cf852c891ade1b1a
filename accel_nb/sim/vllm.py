"""vLLM's OpenAI-compatible server (``vllm serve``): chat, completions and models under ``/v1``.

The OpenAI protocol with vLLM's differences: one served model (any other name is a
404), no rate-limit headers, errors ``{"error": {message, type, param, code}}`` whose
``code`` is the HTTP status and whose ``type`` is a Python exception name, a wrong
``--api-key`` answered with ``{"error": "Unauthorized"}``, and the legacy
``/v1/completions`` route (``choices[].text``), which backs ``generate``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ..providers import vllm as adapters
from ..tokens import count_tokens
from .base import BadRequest, Call, Chat, Failure, Frame, Limit, Route, bearer_or_anonymous, seconds_text
from .openai import OpenAI

if TYPE_CHECKING:
    from .server import Window

__all__ = ["VLLM"]


class VLLM(OpenAI):
    """Keyless unless started with ``--api-key`` (the simulator's ``require_key``)."""

    adapter = adapters.VLLM()
    overload_status = 503
    embeddings_path = None
    retry_after_ms = False
    service_tier = None
    fingerprint = None
    invalid_json_message = "JSON decode error"
    #: status -> (type, default message)
    error_types: ClassVar[dict[int, tuple[str, str]]] = {
        400: ("BadRequestError", "The request is invalid."),
        403: ("PermissionDeniedError", "Forbidden"),
        404: ("NotFoundError", "The model `{model}` does not exist."),
        413: ("BadRequestError", "Request too large."),
        422: ("UnprocessableEntityError", "Unprocessable request."),
        429: ("TooManyRequests", "Too many requests: the server is rate limited; try again later."),
        500: ("InternalServerError", "The engine failed while generating: EngineCore encountered an issue."),
        503: ("ServiceUnavailableError", "The server is overloaded or not ready; try again later."),
    }

    def routes(self) -> list[Route]:
        return [*super().routes(), Route("POST", "/completions", self.completions)]

    def api_key(self, request: Any) -> str | None:
        return bearer_or_anonymous(request)

    # -- errors -------------------------------------------------------------------------
    def error(self, call: Call, status: int, message: str | None = None) -> Failure:
        if status == 401:
            return self.unauthorized(call, missing=False)
        type_, default = self.error_types.get(
            status, ("InternalServerError" if status >= 500 else "BadRequestError", f"HTTP {status}")
        )
        return Failure(status, self.body(message or default.format(model=call.model), type_, status))

    def unauthorized(self, call: Call, missing: bool) -> Failure:
        return Failure(401, {"error": "Unauthorized"})

    def rate_limited(self, call: Call, hint_s: float, limit: Limit, *, ms: bool = False) -> Failure:
        return Failure(429, self.error(call, 429).body, {"retry-after": seconds_text(hint_s)})

    def quota(self, call: Call) -> Failure:  # a budget enforced by a gateway in front of vLLM
        return Failure(429, self.body("usage limit reached for this key", "RateLimitError", 429))

    def rate_headers(self, window: Window) -> dict[str, str]:
        return {}

    def reply_headers(self, call: Call) -> dict[str, str]:
        return {}

    # -- chat and completions -----------------------------------------------------------
    def _served(self, body: dict[str, Any]) -> None:
        model = body.get("model")
        if model not in self.adapter.models:
            raise BadRequest(f"The model `{model}` does not exist.", 404)

    def chat(self, call: Call, body: dict[str, Any]) -> Chat:
        self._served(body)
        return super().chat(call, body)

    def completions(self, call: Call, body: dict[str, Any]) -> Chat:
        self._served(body)
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise BadRequest("prompt must be a non-empty string")
        stream = bool(body.get("stream"))
        options = body.get("stream_options") or {}
        chat = self.new_chat(
            call,
            body["model"],
            [{"role": "user", "content": prompt}],
            max_tokens=body.get("max_tokens", 16),
            stop=body.get("stop"),
            stream=stream,
            include_usage=stream and isinstance(options, dict) and bool(options.get("include_usage")),
        )
        chat.input_tokens = count_tokens(prompt)
        return chat

    @staticmethod
    def _completing(call: Call) -> bool:
        return not call.request.path.endswith("/chat/completions")

    def reply(self, call: Call, chat: Chat) -> dict[str, Any]:
        if not self._completing(call):
            return super().reply(call, chat)
        choice = {
            "index": 0,
            "text": chat.gen.text,
            "logprobs": None,
            "finish_reason": self.finish_reason(chat),
            "stop_reason": None,
        }
        return {
            "id": "cmpl-" + call.uid,
            "object": "text_completion",
            "created": call.created,
            "model": chat.model,
            "choices": [choice],
            "usage": self.usage(chat),
        }

    def usage(self, chat: Chat) -> dict[str, Any]:
        return {
            "prompt_tokens": chat.input_tokens,
            "total_tokens": chat.input_tokens + chat.output_tokens,
            "completion_tokens": chat.output_tokens,
            "prompt_tokens_details": None,
        }

    def _text_chunk(self, call: Call, chat: Chat, choices: list[dict[str, Any]], **fields: Any) -> Frame:
        data = {
            "id": "cmpl-" + call.uid,
            "object": "text_completion",
            "created": call.created,
            "model": chat.model,
            "choices": choices,
            **fields,
        }
        return None, data

    @staticmethod
    def _text_choice(text: str, finish_reason: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason, "stop_reason": None}]

    def head(self, call: Call, chat: Chat) -> list[Frame]:
        return [] if self._completing(call) else super().head(call, chat)

    def token(self, call: Call, chat: Chat, index: int, text: str) -> Frame:
        if not self._completing(call):
            return super().token(call, chat, index, text)
        return self._text_chunk(call, chat, self._text_choice(text))

    def tail(self, call: Call, chat: Chat) -> list[Frame]:
        if not self._completing(call):
            return super().tail(call, chat)
        frames = [self._text_chunk(call, chat, self._text_choice("", self.finish_reason(chat)))]
        if chat.include_usage:
            frames.append(self._text_chunk(call, chat, [], usage=self.usage(chat)))
        return [*frames, (None, "[DONE]")]

    def model_entry(self, name: str) -> dict[str, Any]:
        return {
            "id": name,
            "object": "model",
            "created": 1_735_689_600,
            "owned_by": "vllm",
            "root": name,
            "parent": None,
            "max_model_len": 131_072,
        }
