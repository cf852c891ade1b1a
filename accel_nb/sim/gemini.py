"""Google Gemini (generativelanguage) generateContent, embeddings and models.

Served under both ``v1beta`` (what PROTOCOLS.md and our adapter use) and ``v1``
(what google-genai >= 3 uses by default), as the real API does.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..providers import gemini as adapters
from ..tokens import count_tokens
from .base import (
    SSE,
    BadRequest,
    Call,
    Chat,
    Failure,
    Frame,
    JSONArray,
    Limit,
    Protocol,
    Reply,
    Route,
    display_name,
    seconds_text,
    text_of,
)
from .vectors import embed

__all__ = ["Gemini"]

_RPC = "type.googleapis.com/google.rpc."
_QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more information on this "
    "error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n"
    "* Quota exceeded for metric: generativelanguage.googleapis.com/{metric}, limit: {limit}, model: {model}"
)
_INVALID_KEY = "API key not valid. Please pass a valid API key."


class Gemini(Protocol):
    """Key in ``x-goog-api-key`` (or ``?key=``); no rate-limit headers; errors as
    ``{error: {code, message, status, details}}`` with the 429 wait in a ``RetryInfo``
    detail; ``:streamGenerateContent?alt=sse`` is data-only SSE ended by closing,
    without ``alt=sse`` one JSON array."""

    adapter = adapters.Gemini()
    overload_status = 503
    request_id_header = None
    token_frames_vary = True  # each chunk carries the running usage
    invalid_json_message = "Invalid JSON payload received. Unexpected token."
    embedding_dims: ClassVar[dict[str, int]] = {"gemini-embedding-001": 3072, "text-embedding-004": 768}
    #: status -> (gRPC status name, default message)
    errors: ClassVar[dict[int, tuple[str, str]]] = {
        400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
        401: (
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
            "valid authentication credential.",
        ),
        403: ("PERMISSION_DENIED", "The caller does not have permission"),
        404: (
            "NOT_FOUND",
            "models/{model} is not found for API version v1beta, or is not supported for generateContent. "
            "Call ListModels to see the list of available models and their supported methods.",
        ),
        413: ("INVALID_ARGUMENT", "Request payload size exceeds the limit: 20971520 bytes."),
        422: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
        500: (
            "INTERNAL",
            "An internal error has occurred. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting",
        ),
        503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
        504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
    }

    def routes(self) -> list[Route]:
        models = "/{version:v1beta|v1}/models"
        return [
            Route("POST", models + "/{model}:generateContent", self.generate),
            Route("POST", models + "/{model}:streamGenerateContent", self.stream_generate),
            Route("POST", models + "/{model}:embedContent", self.embed_content),
            Route("POST", models + "/{model}:batchEmbedContents", self.batch_embed_contents),
            Route("GET", models, self.models),
        ]

    def api_key(self, request: Any) -> str | None:
        return request.headers.get("x-goog-api-key") or request.query.get("key")

    # -- errors -------------------------------------------------------------------------
    @staticmethod
    def body(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        error: dict[str, Any] = {"code": code, "message": message, "status": status}
        if details:
            error["details"] = details
        return {"error": error}

    def unauthorized(self, call: Call, missing: bool) -> Failure:
        if missing:
            message = (
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API."
            )
            return Failure(403, self.body(403, "PERMISSION_DENIED", message))
        details = [
            {
                "@type": _RPC + "ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {"@type": _RPC + "LocalizedMessage", "locale": "en-US", "message": _INVALID_KEY},
        ]
        return Failure(400, self.body(400, "INVALID_ARGUMENT", _INVALID_KEY, details))

    def error(self, call: Call, status: int, message: str | None = None) -> Failure:
        name, default = self.errors.get(status, ("INTERNAL" if status >= 500 else "INVALID_ARGUMENT", f"HTTP {status}"))
        return Failure(status, self.body(status, name, message or default.format(model=call.model)))

    def rate_limited(self, call: Call, hint_s: float, limit: Limit, *, ms: bool = False) -> Failure:
        if limit.what == "requests":
            metric, quota_id = "generate_content_requests", "GenerateRequestsPerMinutePerProjectPerModel"
        else:
            metric, quota_id = "generate_content_input_token_count", "GenerateContentInputTokensPerModelPerMinute"
        return self._exhausted(call, metric, quota_id, limit.limit, hint_s)

    def quota(self, call: Call) -> Failure:
        limit = call.sim.book.nominal().limit
        return self._exhausted(call, "generate_content_requests", "GenerateRequestsPerDayPerProjectPerModel", limit)

    def _exhausted(self, call: Call, metric: str, quota_id: str, limit: int, hint_s: float | None = None) -> Failure:
        """RESOURCE_EXHAUSTED; a ``RetryInfo`` detail (the only wait hint Gemini gives) when a wait helps."""
        message = _QUOTA_MESSAGE.format(metric=metric, limit=limit, model=call.model)
        violation = {
            "quotaMetric": "generativelanguage.googleapis.com/" + metric,
            "quotaId": quota_id,
            "quotaDimensions": {"location": "global", "model": call.model},
            "quotaValue": str(limit),
        }
        details: list[dict[str, Any]] = [
            {"@type": _RPC + "QuotaFailure", "violations": [violation]},
            {
                "@type": _RPC + "Help",
                "links": [
                    {
                        "description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }
                ],
            },
        ]
        if hint_s is not None:
            delay = seconds_text(hint_s) + "s"
            message += f"\nPlease retry in {delay}."
            details.append({"@type": _RPC + "RetryInfo", "retryDelay": delay})
        return Failure(429, self.body(429, "RESOURCE_EXHAUSTED", message, details))

    # -- generateContent ----------------------------------------------------------------
    def generate(self, call: Call, body: dict[str, Any]) -> Chat:
        return self._chat(call, body, stream=False)

    def stream_generate(self, call: Call, body: dict[str, Any]) -> Chat:
        return self._chat(call, body, stream=True)

    def _chat(self, call: Call, body: dict[str, Any], stream: bool) -> Chat:
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            raise BadRequest("* GenerateContentRequest.contents: contents is not specified")
        if not all(isinstance(c, dict) for c in contents):
            raise BadRequest("Invalid JSON payload received. Invalid value at 'contents'.")
        messages = [
            {"role": "assistant" if c.get("role") == "model" else "user", "content": text_of(c.get("parts"))}
            for c in contents
        ]
        system = _field(body, "systemInstruction", "system_instruction")
        config = _field(body, "generationConfig", "generation_config") or {}
        return self.new_chat(
            call,
            call.request.match_info["model"],
            messages,
            system=text_of(system.get("parts") if isinstance(system, dict) else system) or None,
            max_tokens=_field(config, "maxOutputTokens", "max_output_tokens"),
            stop=_field(config, "stopSequences", "stop_sequences"),
            stream=stream,
        )

    def response(self, call: Call, chat: Chat, text: str, output_tokens: int, done: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
        if done:
            candidate["finishReason"] = "MAX_TOKENS" if chat.gen.finish == "length" else "STOP"
        usage = {
            "promptTokenCount": chat.input_tokens,
            "candidatesTokenCount": output_tokens,
            "totalTokenCount": chat.input_tokens + output_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": chat.input_tokens}],
        }
        return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": chat.model, "responseId": call.uid}

    def reply(self, call: Call, chat: Chat) -> dict[str, Any]:
        return self.response(call, chat, chat.gen.text, chat.output_tokens, done=True)

    def token(self, call: Call, chat: Chat, index: int, text: str) -> Frame:
        return None, self.response(call, chat, text, index + 1, done=False)

    def tail(self, call: Call, chat: Chat) -> list[Frame]:
        return [(None, self.response(call, chat, "", chat.output_tokens, done=True))]

    def stream_error(self, call: Call) -> Frame:
        return None, self.error(call, self.overload_status).body

    def encoder(self, call: Call) -> SSE | JSONArray:
        return SSE() if call.request.query.get("alt") == "sse" else JSONArray()

    # -- embeddings and models ----------------------------------------------------------
    def embed_content(self, call: Call, body: dict[str, Any]) -> Reply:
        model = call.request.match_info["model"]
        text, dims = self._embed_request(body, model)
        return Reply({"embedding": {"values": embed(text, dims).tolist()}}, model, input_tokens=count_tokens(text))

    def batch_embed_contents(self, call: Call, body: dict[str, Any]) -> Reply:
        model = call.request.match_info["model"]
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests or not all(isinstance(r, dict) for r in requests):
            raise BadRequest("* BatchEmbedContentsRequest.requests: requests is not specified")
        items = [self._embed_request(request, model) for request in requests]
        embeddings = [{"values": embed(text, dims).tolist()} for text, dims in items]
        tokens = sum(count_tokens(text) for text, _ in items)
        return Reply({"embeddings": embeddings}, model, input_tokens=tokens)

    def _embed_request(self, request: dict[str, Any], model: str) -> tuple[str, int]:
        content = request.get("content")
        text = text_of(content.get("parts")) if isinstance(content, dict) else ""
        if not text:
            raise BadRequest("* EmbedContentRequest.content: contents is not specified")
        native = self.embedding_dims.get(model, 768)
        dims = _field(request, "outputDimensionality", "output_dimensionality") or native
        if type(dims) is not int or not 1 <= dims <= native:
            raise BadRequest(f"* EmbedContentRequest.output_dimensionality: must be between 1 and {native}")
        return text, dims

    def models(self, call: Call, body: None) -> Reply:
        chat = [
            {
                "name": f"models/{name}",
                "version": "001",
                "displayName": display_name(name),
                "inputTokenLimit": 1_048_576,
                "outputTokenLimit": 65_536,
                "supportedGenerationMethods": ["generateContent", "countTokens"],
                "temperature": 1,
                "topP": 0.95,
                "topK": 64,
                "maxTemperature": 2,
            }
            for name in self.adapter.models
        ]
        embedders = [
            {
                "name": f"models/{name}",
                "version": "001",
                "displayName": display_name(name),
                "inputTokenLimit": 2048,
                "outputTokenLimit": 1,
                "supportedGenerationMethods": ["embedContent", "countTextTokens", "countTokens"],
            }
            for name in self.embedding_dims
        ]
        return Reply({"models": chat + embedders})


def _field(data: Any, camel: str, snake: str) -> Any:
    """A field in proto-JSON, which accepts both spellings."""
    if not isinstance(data, dict):
        return None
    return data.get(camel, data.get(snake))
