"""vLLM's OpenAI-compatible server: chat, completions (``generate``) and models under ``/v1``.

The seed project's "LLVM" backend was later renamed to this.  Errors are OpenAI-shaped
with the HTTP status as an integer ``code`` (``{"error": {"message", "type":
"BadRequestError", "code": 400}}``), except a wrong ``--api-key``: ``{"error": "Unauthorized"}``.
"""

from __future__ import annotations

from .openai import OpenAICompatible

__all__ = ["VLLM"]


class VLLM(OpenAICompatible):
    """Base URL with ``/v1``, as the openai SDK takes it; a key only when the server was
    started with ``--api-key``."""

    id = "vllm"
    title = "vLLM"
    key_env = ("VLLM_API_KEY",)
    base_url_env = ("VLLM_BASE_URL",)
    default_base_url = "http://localhost:8000/v1"
    sim_path = "/vllm/v1"
    default_model = "meta-llama/Llama-3.2-1B-Instruct"
    models = ("meta-llama/Llama-3.2-1B-Instruct",)
    needs_key = False
    kinds = frozenset({"chat", "generate"})
    default_concurrency = 64  # continuous batching: vLLM wants many requests in flight
