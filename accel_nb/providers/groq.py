"""Groq: the OpenAI wire format under ``/openai/v1``, with its own usage and capacity error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from .. import errors
from .openai import OpenAICompatible

__all__ = ["Groq"]


class Groq(OpenAICompatible):
    """Streams carry usage in the last chunk's ``x_groq.usage`` (read first), and
    ``498 capacity_exceeded`` is Groq's overload signal."""

    id = "groq"
    title = "Groq"
    key_env = ("GROQ_API_KEY",)
    base_url_env = ("GROQ_BASE_URL",)
    default_base_url = "https://api.groq.com"
    sim_path = "/groq"
    default_model = "llama-3.3-70b-versatile"
    models = ("llama-3.3-70b-versatile", "llama-3.1-8b-instant", "openai/gpt-oss-120b", "qwen/qwen3-32b")
    kinds = frozenset({"chat"})
    chat_path = "/openai/v1/chat/completions"
    models_path = "/openai/v1/models"
    default_concurrency = 32

    error_codes: ClassVar[dict[str, type[errors.AccelError]]] = {
        **OpenAICompatible.error_codes,
        "capacity_exceeded": errors.OverloadedError,
    }

    def stream_usage(self, frame: dict) -> dict | None:
        x_groq = frame.get("x_groq")
        if isinstance(x_groq, dict) and x_groq.get("usage"):
            return x_groq["usage"]
        return frame.get("usage")

    def classify(self, status: int, headers: Mapping[str, str], body: bytes) -> errors.AccelError:
        err = super().classify(status, headers, body)
        if status == 498 and not isinstance(err, errors.OverloadedError):
            return errors.OverloadedError(err.message, status=status, retry_after_s=err.retry_after_s)
        return err
