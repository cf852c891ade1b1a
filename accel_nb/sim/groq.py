"""Groq: the OpenAI protocol under ``/openai/v1``, with Groq's usage timings, ``x_groq`` and wording."""

from __future__ import annotations

from typing import Any, ClassVar

from ..providers import groq as adapters
from .base import Call, Chat
from .openai import OpenAI

__all__ = ["Groq"]

_OWNERS = {"openai": "OpenAI", "qwen": "Alibaba Cloud", "moonshotai": "Moonshot AI"}


class Groq(OpenAI):
    """``usage`` adds queue/prompt/completion/total times in seconds; ``x_groq: {id}`` rides on
    the reply and the first chunk and ``x_groq: {id, usage}`` on the last chunk (as the groq
    SDK documents it); overload is ``498 capacity_exceeded``; no embeddings route."""

    adapter = adapters.Groq()
    overload_status = 498
    chat_path = "/openai/v1/chat/completions"
    models_path = "/openai/v1/models"
    embeddings_path = None
    retry_after_ms = False
    refusal_fields = False
    service_tier = "on_demand"
    organization = "org_simulator"
    fingerprint = "fp_9a8b7c6d5e"
    invalid_json_message = "The request body could not be parsed as JSON."
    missing_key_message = None  # Groq answers a missing key like a wrong one
    rate_limit_message = (
        "Rate limit reached for model `{model}` in organization `{org}` service tier `on_demand` on {what} per "
        "minute ({unit}): Limit {limit}, Used {used}, Requested {requested}. Please try again in {wait}. "
        "Need more tokens? Upgrade to Dev Tier today at https://console.groq.com/settings/billing"
    )
    quota_message = "You exceeded your current quota, please check your plan and billing details."
    errors: ClassVar[dict[int, tuple[str, str | None, str]]] = {
        **OpenAI.errors,
        401: ("invalid_request_error", "invalid_api_key", "Invalid API Key"),
        403: ("permission_denied", None, "Access denied. Please check your network settings."),
        413: (
            "tokens",
            "rate_limit_exceeded",
            "Request too large for model `{model}` in organization `org_simulator` service tier `on_demand` on "
            "tokens per minute (TPM): please reduce your message size and try again.",
        ),
        498: ("capacity_exceeded", "capacity_exceeded", "Flex tier capacity exceeded. Please try again later."),
        500: ("internal_server_error", None, "Internal Server Error"),
        503: ("service_unavailable", None, "Service Unavailable: the server is temporarily unable to handle requests."),
    }

    def usage(self, chat: Chat) -> dict[str, Any]:
        prompt_time = round(chat.input_tokens / 50_000, 6)
        completion_time = round(chat.output_tokens / 500, 6)
        return {
            "queue_time": 0.0002,
            "prompt_tokens": chat.input_tokens,
            "prompt_time": prompt_time,
            "completion_tokens": chat.output_tokens,
            "completion_time": completion_time,
            "total_tokens": chat.input_tokens + chat.output_tokens,
            "total_time": round(prompt_time + completion_time, 6),
        }

    def extra(self, call: Call, chat: Chat, where: str) -> dict[str, Any]:
        x_groq: dict[str, Any] = {"id": call.request_id}
        if where == "last":
            x_groq["usage"] = self.usage(chat)
        return {"x_groq": x_groq}

    def model_entry(self, name: str) -> dict[str, Any]:
        owner = _OWNERS.get(name.partition("/")[0], "Meta") if "/" in name else "Meta"
        return {
            "id": name,
            "object": "model",
            "created": 1_733_447_754,
            "owned_by": owner,
            "active": True,
            "context_window": 131_072,
            "public_apps": None,
            "max_completion_tokens": 32_768,
        }
