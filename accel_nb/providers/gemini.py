"""Google Gemini API (generativelanguage, ``v1beta``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import errors
from ..types import Request, Usage
from .base import Adapter, Delta, HttpCall, Reply, classify_status, parse_duration, parse_json, protocol_error, snippet

__all__ = ["Gemini"]

_STATUS_NAMES: dict[str, type[errors.AccelError]] = {
    "INVALID_ARGUMENT": errors.BadRequestError,
    "FAILED_PRECONDITION": errors.BadRequestError,
    "UNAUTHENTICATED": errors.AuthenticationError,
    "PERMISSION_DENIED": errors.PermissionDeniedError,
    "NOT_FOUND": errors.NotFoundError,
    "RESOURCE_EXHAUSTED": errors.RateLimitError,
    "INTERNAL": errors.ServerError,
    "UNAVAILABLE": errors.OverloadedError,
    "DEADLINE_EXCEEDED": errors.TimeoutError,
}

_GENERATION_FIELDS = {
    "max_tokens": "maxOutputTokens",
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "stop": "stopSequences",
}


class Gemini(Adapter):
    """The base URL follows google-genai: without the API version, which this adapter adds.
    The key goes in the ``x-goog-api-key`` header, never in ``?key=``, so it stays out of
    URLs and logs.  The wait hint of a 429 is ``RetryInfo.retryDelay`` in the body; an
    invalid key is a 400 whose details say ``API_KEY_INVALID``."""

    id = "gemini"
    title = "Google Gemini"
    aliases = ("google",)
    key_env = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    base_url_env = ("GEMINI_BASE_URL", "GOOGLE_GEMINI_BASE_URL")
    default_base_url = "https://generativelanguage.googleapis.com"
    sim_path = "/gemini"
    default_model = "gemini-2.5-flash"
    default_embed_model = "gemini-embedding-001"
    models = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-lite", "gemini-2.0-flash")
    kinds = frozenset({"chat", "embed"})
    request_id_header = "x-goog-request-id"  # rarely sent; the body's responseId names the reply
    api_version = "v1beta"

    def headers(self, key: str | None) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if key:
            headers["x-goog-api-key"] = key
        return headers

    def models_call(self, base_url: str, key: str | None) -> HttpCall | None:
        return HttpCall("GET", f"{base_url}/{self.api_version}/models", self.headers(key))

    def parse_models(self, body: Any) -> list[str]:
        names = [m.get("name", "") for m in body.get("models", []) if isinstance(m, dict)]
        return [name.removeprefix("models/") for name in names if name]

    def build(self, req: Request, base_url: str, key: str | None, info: Any = None) -> HttpCall:
        self.check_kind(req)
        headers = self.headers(key)
        prefix = f"{base_url}/{self.api_version}/models/{req.model}"
        if req.kind == "embed":
            model = f"models/{req.model}"
            requests = [{"model": model, "content": {"parts": [{"text": text}]}, **req.params} for text in req.inputs]
            return HttpCall("POST", prefix + ":batchEmbedContents", headers, {"requests": requests})
        contents = [
            {"role": "model" if m["role"] == "assistant" else "user", "parts": [{"text": m["content"]}]}
            for m in req.messages
        ]
        body: dict[str, Any] = {"contents": contents}
        if req.system:
            body["systemInstruction"] = {"parts": [{"text": req.system}]}
        config: dict[str, Any] = {}
        for name, value in req.params.items():
            if name in _GENERATION_FIELDS:
                if name == "stop" and isinstance(value, str):
                    value = [value]
                config[_GENERATION_FIELDS[name]] = value
            else:
                body[name] = value
        if config:
            body["generationConfig"] = config
        url = prefix + (":streamGenerateContent?alt=sse" if req.stream else ":generateContent")
        return HttpCall("POST", url, headers, body)

    def parse(self, req: Request, body: Any) -> Reply:
        if req.kind == "embed":
            try:
                return Reply(vectors=[e["values"] for e in body["embeddings"]], raw=body)
            except (KeyError, TypeError):
                raise protocol_error("gemini reply has no embeddings[].values", body) from None
        delta = self._delta(body)
        usage = Usage(delta.input_tokens or 0, delta.output_tokens or 0) if delta.input_tokens is not None else None
        return Reply(
            text=delta.text,
            usage=usage,
            finish_reason=delta.finish_reason,
            model=body.get("modelVersion"),
            raw=body,
        )

    def parse_frame(self, req: Request, event: str | None, data: str) -> Delta | None:
        frame = self.frame_json(data)
        if "error" in frame:
            return Delta(error=self._error(frame, 500, {}, data))
        return self._delta(frame)

    def _delta(self, body: Any) -> Delta:
        try:
            candidates = body.get("candidates") or []
            usage = body.get("usageMetadata") or {}
        except AttributeError:
            raise protocol_error("gemini reply is not an object", body) from None
        text, finish = "", None
        if candidates:
            candidate = candidates[0]
            parts = (candidate.get("content") or {}).get("parts") or []
            text = "".join(p.get("text", "") for p in parts if not p.get("thought"))
            finish = candidate.get("finishReason")
        output = usage.get("candidatesTokenCount")
        if output is not None:
            output += usage.get("thoughtsTokenCount") or 0
        return Delta(
            text=text,
            input_tokens=usage.get("promptTokenCount"),
            output_tokens=output,
            finish_reason=finish,
            raw=body,
        )

    def classify(self, status: int, headers: Mapping[str, str], body: bytes) -> errors.AccelError:
        data = parse_json(body)
        if not (isinstance(data, dict) and isinstance(data.get("error"), dict)):
            return super().classify(status, headers, body)
        return self._error(data, status, headers, body)

    def _error(self, data: dict, status: int, headers: Mapping[str, str], body: bytes | str) -> errors.AccelError:
        err = data["error"]
        message = err.get("message") or snippet(body)
        details = err.get("details") or []
        cls = _STATUS_NAMES.get(err.get("status", ""))
        if cls is errors.BadRequestError:
            cls = None  # let the message refine it (context length)
        delay, daily = None, False
        for detail in details:
            kind = detail.get("@type", "")
            if kind.endswith("google.rpc.RetryInfo") and detail.get("retryDelay"):
                delay = parse_duration(str(detail["retryDelay"]))
            if kind.endswith("google.rpc.ErrorInfo") and detail.get("reason") == "API_KEY_INVALID":
                cls = errors.AuthenticationError
            if kind.endswith("google.rpc.QuotaFailure"):
                daily |= any("PerDay" in v.get("quotaId", "") for v in detail.get("violations") or [])
        if cls is errors.RateLimitError and daily and delay is None:
            cls = errors.QuotaExceededError  # a spent daily quota: waiting a minute will not help
        return classify_status(err.get("code") or status, message, headers=headers, cls=cls, retry_after_s=delay)
