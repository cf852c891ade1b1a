"""OpenAI Chat Completions, Embeddings and Models, as ``api.openai.com/v1`` speaks them.

Groq (``groq.py``) is this protocol with its own prefix, usage fields and wording,
and the OpenAI-compatible local servers (vLLM, TGI ``/v1``, OVMS ``/v3``) can be too.

One deliberate difference from the real API: a wrong key's 401 message does not
repeat a masked form of the key, because the simulator never echoes a key.
"""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING, Any, ClassVar

from ..providers import openai as adapters
from ..tokens import count_tokens
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
    go_duration,
    seconds_text,
    text_of,
)
from .vectors import embed_many

if TYPE_CHECKING:
    from .server import Window

__all__ = ["OpenAI"]

_INPUT_INVALID = "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."


class OpenAI(Protocol):
    """Bearer auth; ``x-ratelimit-*`` headers with Go-style durations; errors as
    ``{error: {message, type, param, code}}``; streams of ``chat.completion.chunk``
    ending in ``data: [DONE]``, with a ``choices: []`` usage chunk first when
    ``stream_options.include_usage`` is set."""

    adapter = adapters.OpenAI()
    overload_status = 503
    chat_path: ClassVar[str] = "/chat/completions"
    models_path: ClassVar[str] = "/models"
    embeddings_path: ClassVar[str | None] = "/embeddings"
    embedding_dims: ClassVar[dict[str, int]] = {
        "text-embedding-3-small": 1536,
        "text-embedding-3-large": 3072,
        "text-embedding-ada-002": 1536,
    }
    retry_after_ms: ClassVar[bool] = True
    refusal_fields: ClassVar[bool] = True  # `refusal` / `annotations` on messages
    service_tier: ClassVar[str] = "default"
    organization: ClassVar[str] = "org-simulator"
    fingerprint: ClassVar[str] = "fp_0a1b2c3d4e"
    invalid_json_message = (
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
        "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
    )
    missing_key_message: ClassVar[str | None] = (
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
        "auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API key from "
        "https://platform.openai.com/account/api-keys."
    )
    rate_limit_message: ClassVar[str] = (
        "Rate limit reached for {model} in organization {org} on {what} per min ({unit}): Limit {limit}, "
        "Used {used}, Requested {requested}. Please try again in {wait}. "
        "Visit https://platform.openai.com/account/rate-limits to learn more."
    )
    quota_message: ClassVar[str] = (
        "You exceeded your current quota, please check your plan and billing details. For more information on "
        "this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
    )
    #: status -> (type, code, default message)
    errors: ClassVar[dict[int, tuple[str, str | None, str]]] = {
        400: ("invalid_request_error", None, "Invalid request: one or more parameters are not valid."),
        401: (
            "invalid_request_error",
            "invalid_api_key",
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
        ),
        403: (
            "request_forbidden",
            "unsupported_country_region_territory",
            "Country, region, or territory not supported",
        ),
        404: (
            "invalid_request_error",
            "model_not_found",
            "The model `{model}` does not exist or you do not have access to it.",
        ),
        413: (
            "invalid_request_error",
            "request_too_large",
            "Request too large: the request body exceeds the maximum size.",
        ),
        422: ("invalid_request_error", None, "Unprocessable request: the parameters could not be processed."),
        500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
        503: (
            "server_error",
            None,
            "That model is currently overloaded with other requests. You can retry your request, or contact us "
            "through our help center at help.openai.com if the error persists.",
        ),
    }

    def routes(self) -> list[Route]:
        routes = [Route("POST", self.chat_path, self.chat), Route("GET", self.models_path, self.models)]
        if self.embeddings_path:
            routes.append(Route("POST", self.embeddings_path, self.embeddings))
        return routes

    def api_key(self, request: Any) -> str | None:
        return bearer(request)

    # -- errors -------------------------------------------------------------------------
    def body(self, message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
        return {"error": {"message": message, "type": type_, "param": param, "code": code}}

    def unauthorized(self, call: Call, missing: bool) -> Failure:
        if missing and self.missing_key_message:
            return Failure(401, self.body(self.missing_key_message, "invalid_request_error"))
        return self.error(call, 401)

    def error(self, call: Call, status: int, message: str | None = None) -> Failure:
        fallback = ("server_error" if status >= 500 else "invalid_request_error", None, f"HTTP {status}")
        type_, code, default = self.errors.get(status, fallback)
        return Failure(status, self.body(message or default.format(model=call.model), type_, code))

    def rate_limited(self, call: Call, hint_s: float, limit: Limit, *, ms: bool = False) -> Failure:
        message = self.rate_limit_message.format(
            model=call.model,
            org=self.organization,
            what=limit.what,
            unit="RPM" if limit.what == "requests" else "TPM",
            limit=limit.limit,
            used=limit.used,
            requested=limit.requested,
            wait=go_duration(hint_s),
        )
        if ms and self.retry_after_ms:
            headers = {"retry-after-ms": str(round(hint_s * 1000))}
        else:
            headers = {"retry-after": seconds_text(hint_s)}
        return Failure(429, self.body(message, limit.what, "rate_limit_exceeded"), headers)

    def quota(self, call: Call) -> Failure:
        return Failure(429, self.body(self.quota_message, "insufficient_quota", "insufficient_quota"))

    def rate_headers(self, window: Window) -> dict[str, str]:
        reset = go_duration(window.reset_s)
        return {
            "x-ratelimit-limit-requests": str(window.requests_limit),
            "x-ratelimit-limit-tokens": str(window.tokens_limit),
            "x-ratelimit-remaining-requests": str(max(0, window.requests_remaining)),
            "x-ratelimit-remaining-tokens": str(max(0, window.tokens_remaining)),
            "x-ratelimit-reset-requests": reset,
            "x-ratelimit-reset-tokens": reset,
        }

    def reply_headers(self, call: Call) -> dict[str, str]:
        return {"openai-processing-ms": str(round((time.monotonic() - call.started) * 1000))}

    # -- chat ---------------------------------------------------------------------------
    def chat(self, call: Call, body: dict[str, Any]) -> Chat:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("you must provide a model parameter")
        raw = body.get("messages")
        if not isinstance(raw, list) or not raw:
            raise BadRequest("Missing required parameter: 'messages'.")
        system, messages = [], []
        for message in raw:
            if not isinstance(message, dict):
                raise BadRequest("Invalid type for 'messages': every message must be an object.")
            content = text_of(message.get("content"))
            if message.get("role") in ("system", "developer"):
                system.append(content)
            else:
                messages.append({"role": str(message.get("role")), "content": content})
        stream = bool(body.get("stream"))
        options = body.get("stream_options") or {}
        return self.new_chat(
            call,
            model,
            messages,
            system="\n".join(system) or None,
            max_tokens=body.get("max_completion_tokens", body.get("max_tokens")),
            stop=body.get("stop"),
            stream=stream,
            include_usage=stream and isinstance(options, dict) and bool(options.get("include_usage")),
        )

    @staticmethod
    def finish_reason(chat: Chat) -> str:
        return "length" if chat.gen.finish == "length" else "stop"

    def usage(self, chat: Chat) -> dict[str, Any]:
        return {
            "prompt_tokens": chat.input_tokens,
            "completion_tokens": chat.output_tokens,
            "total_tokens": chat.input_tokens + chat.output_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def extra(self, call: Call, chat: Chat, where: str) -> dict[str, Any]:
        """Provider fields for the ``reply``, the ``first`` chunk or the ``last`` chunk (Groq's ``x_groq``)."""
        return {}

    def reply(self, call: Call, chat: Chat) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": chat.gen.text}
        if self.refusal_fields:
            message.update(refusal=None, annotations=[])
        return {
            "id": "chatcmpl-" + call.uid,
            "object": "chat.completion",
            "created": call.created,
            "model": chat.model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish_reason(chat)}],
            "usage": self.usage(chat),
            "service_tier": self.service_tier,
            "system_fingerprint": self.fingerprint,
            **self.extra(call, chat, "reply"),
        }

    def chunk(self, call: Call, chat: Chat, choices: list[dict[str, Any]], **fields: Any) -> Frame:
        data: dict[str, Any] = {
            "id": "chatcmpl-" + call.uid,
            "object": "chat.completion.chunk",
            "created": call.created,
            "model": chat.model,
            "service_tier": self.service_tier,
            "system_fingerprint": self.fingerprint,
            "choices": choices,
        }
        if chat.include_usage:
            data["usage"] = None
        data.update(fields)
        return None, data

    @staticmethod
    def choice(delta: dict[str, Any], finish_reason: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]

    def head(self, call: Call, chat: Chat) -> list[Frame]:
        delta: dict[str, Any] = {"role": "assistant", "content": ""}
        if self.refusal_fields:
            delta["refusal"] = None
        return [self.chunk(call, chat, self.choice(delta), **self.extra(call, chat, "first"))]

    def token(self, call: Call, chat: Chat, index: int, text: str) -> Frame:
        return self.chunk(call, chat, self.choice({"content": text}))

    def tail(self, call: Call, chat: Chat) -> list[Frame]:
        finish = self.choice({}, self.finish_reason(chat))
        if not chat.include_usage:
            return [self.chunk(call, chat, finish, **self.extra(call, chat, "last")), (None, "[DONE]")]
        last = self.chunk(call, chat, [], usage=self.usage(chat), **self.extra(call, chat, "last"))
        return [self.chunk(call, chat, finish), last, (None, "[DONE]")]

    def stream_error(self, call: Call) -> Frame:
        return None, self.error(call, 500).body

    # -- embeddings and models ----------------------------------------------------------
    def embeddings(self, call: Call, body: dict[str, Any]) -> Reply:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("you must provide a model parameter")
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
            raise BadRequest(_INPUT_INVALID)
        native = self.embedding_dims.get(model, 1536)
        dims = body.get("dimensions")
        if dims is not None:
            if not model.startswith("text-embedding-3"):
                raise BadRequest("This model does not support specifying dimensions.")
            if type(dims) is not int or not 1 <= dims <= native:
                raise BadRequest(f"Invalid value for 'dimensions' = {dims!r}. Must be between 1 and {native}.")
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            raise BadRequest(f"Invalid value for 'encoding_format': {encoding!r}. Expected 'float' or 'base64'.")
        vectors = embed_many(texts, dims or native)
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode()
                if encoding == "base64"
                else v.tolist(),
            }
            for i, v in enumerate(vectors)
        ]
        tokens = sum(count_tokens(t) for t in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return Reply({"object": "list", "data": data, "model": model, "usage": usage}, model, input_tokens=tokens)

    def models(self, call: Call, body: None) -> Reply:
        names = (
            dict.fromkeys((*self.adapter.models, *self.embedding_dims)) if self.embeddings_path else self.adapter.models
        )
        return Reply({"object": "list", "data": [self.model_entry(name) for name in names]})

    def model_entry(self, name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": 1_715_367_049, "owned_by": "system"}
