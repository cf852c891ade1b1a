"""OpenAI Chat Completions and Embeddings — and every server that speaks them.

vLLM, TGI's ``/v1`` route, OVMS ``/v3``, Ollama's ``/v1`` and OPEA's LLM
microservice take the same bodies, so ``OpenAICompatible`` is the shared base;
a provider changes only what differs (its URL prefix, a usage field, an error code).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

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
    parse_duration,
    parse_json,
    protocol_error,
    rate_limits_from,
    snippet,
)

__all__ = ["OpenAI", "OpenAICompatible", "openai_rate_limits"]


class OpenAICompatible(Adapter):
    """The OpenAI wire format; subclasses set identity and a few switches."""

    kinds = frozenset({"chat", "embed"})  # add "generate" where the server has /completions
    chat_path: ClassVar[str] = "/chat/completions"
    completions_path: ClassVar[str] = "/completions"
    embed_path: ClassVar[str] = "/embeddings"
    max_tokens_field: ClassVar[str] = "max_tokens"

    models_path: ClassVar[str] = "/models"

    def build(self, req: Request, base_url: str, key: str | None, info: Any = None) -> HttpCall:
        self.check_kind(req)
        headers = self.headers(key)
        if req.kind == "embed":
            body: dict[str, Any] = {"model": req.model, "input": req.inputs, "encoding_format": "float"}
            body.update(req.params)
            return HttpCall("POST", base_url + self.embed_path, headers, body)
        if req.kind == "generate":  # the legacy Completions route: one prompt, no roles
            prompt = req.messages[-1]["content"]
            body = {"model": req.model, "prompt": f"{req.system}\n\n{prompt}" if req.system else prompt}
            path, tokens_field = self.completions_path, "max_tokens"
        else:
            messages = list(req.messages)
            if req.system:
                messages.insert(0, {"role": "system", "content": req.system})
            body = {"model": req.model, "messages": messages}
            path, tokens_field = self.chat_path, self.max_tokens_field
        for name, value in req.params.items():
            body[tokens_field if name == "max_tokens" else name] = value
        if req.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return HttpCall("POST", base_url + path, headers, body)

    def models_call(self, base_url: str, key: str | None) -> HttpCall | None:
        return HttpCall("GET", base_url + self.models_path, self.headers(key))

    def parse_models(self, body: Any) -> list[str]:
        return [m["id"] for m in body.get("data", []) if isinstance(m, dict) and "id" in m]

    def parse(self, req: Request, body: Any) -> Reply:
        try:
            if req.kind == "embed":
                rows = sorted(body["data"], key=lambda row: row["index"])
                return Reply(
                    vectors=[row["embedding"] for row in rows],
                    usage=self.usage(body.get("usage")),
                    model=body.get("model"),
                    raw=body,
                )
            choice = body["choices"][0]
            return Reply(
                text=(choice["text"] if req.kind == "generate" else choice["message"].get("content")) or "",
                finish_reason=choice.get("finish_reason"),
                usage=self.usage(body.get("usage")),
                model=body.get("model"),
                raw=body,
            )
        except (KeyError, IndexError, TypeError, AttributeError):
            what = "text" if req.kind == "generate" else "message"
            raise protocol_error(f"{self.id} reply has no choices[0].{what}", body) from None

    def parse_frame(self, req: Request, event: str | None, data: str) -> Delta | None:
        if data == "[DONE]":
            return None
        frame = self.frame_json(data)
        if "error" in frame:
            return Delta(error=self.stream_error(frame))
        delta = Delta(raw=frame)
        usage = self.stream_usage(frame)
        if usage:
            delta.input_tokens = usage.get("prompt_tokens")
            delta.output_tokens = usage.get("completion_tokens")
        choices = frame.get("choices")
        if choices:
            choice = choices[0]
            if req.kind == "generate":
                delta.text = choice.get("text") or ""
            else:
                delta.text = (choice.get("delta") or {}).get("content") or ""
            delta.finish_reason = choice.get("finish_reason")
        return delta

    def stream_usage(self, frame: dict) -> dict | None:
        return frame.get("usage")

    def stream_error(self, frame: dict) -> errors.AccelError:
        err = frame["error"]
        message = err.get("message") if isinstance(err, dict) else str(err)
        return classify_status(500, message or "error inside the stream")

    @staticmethod
    def usage(data: Mapping[str, Any] | None) -> Usage | None:
        if not data:
            return None
        return Usage(
            input_tokens=data.get("prompt_tokens") or 0,
            output_tokens=data.get("completion_tokens") or 0,
            total_tokens=data.get("total_tokens"),
        )

    def classify(self, status: int, headers: Mapping[str, str], body: bytes) -> errors.AccelError:
        data = parse_json(body)
        err = data.get("error") if isinstance(data, dict) else None
        if not isinstance(err, dict):
            return super().classify(status, headers, body)
        message = err.get("message") or snippet(body)
        code = err.get("code") or err.get("type")
        cls = self.error_codes.get(code) if isinstance(code, str) else None
        return classify_status(status, message, headers=headers, cls=cls)

    error_codes: ClassVar[dict[str, type[errors.AccelError]]] = {
        "insufficient_quota": errors.QuotaExceededError,
        "context_length_exceeded": errors.ContextLengthError,
        "invalid_api_key": errors.AuthenticationError,
        "model_not_found": errors.NotFoundError,
    }

    def rate_limits(self, headers: Mapping[str, str]) -> RateLimits | None:
        return openai_rate_limits(headers)


_RATE_LIMIT_HEADERS = RateLimitHeaders(lambda kind, field: f"x-ratelimit-{field}-{kind}")


def openai_rate_limits(headers: Mapping[str, str]) -> RateLimits | None:
    """``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``, resets as ``6m0s`` durations."""
    return rate_limits_from(headers, _RATE_LIMIT_HEADERS, parse_duration)


class OpenAI(OpenAICompatible):
    id = "openai"
    title = "OpenAI"
    key_env = ("OPENAI_API_KEY",)
    base_url_env = ("OPENAI_BASE_URL",)
    default_base_url = "https://api.openai.com/v1"
    sim_path = "/openai/v1"
    default_model = "gpt-4o-mini"
    default_embed_model = "text-embedding-3-small"
    models = ("gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o4-mini")
    max_tokens_field = "max_completion_tokens"
    default_concurrency = 32
