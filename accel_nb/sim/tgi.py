"""Hugging Face text-generation-inference (TGI) 3.x, as its router speaks.

``POST /generate`` (``{generated_text, details}``), ``POST /generate_stream`` (data-only
SSE of ``{index, token, generated_text, details}``, no ``[DONE]``), ``POST /`` (either,
by ``stream``; the plain reply wrapped in a list), the OpenAI-compatible
``/v1/chat/completions`` and ``/v1/models``, and ``GET /info`` / ``GET /health``.

Requests are validated as TGI does, with its messages: a prompt over
``max_input_tokens`` or prompt + ``max_new_tokens`` over ``max_total_tokens`` is a
422 ``validation``.  A streaming call gets its errors (validation, overload, a failed
generation) as one ``{error, error_type}`` frame of a 200 stream, as TGI sends them.
``generated_tokens`` counts the end-of-sequence token, which the stream sends as a
``special`` token.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, ClassVar

from ..providers import hf_tgi as adapters
from ..tokens import count_tokens
from .base import BadRequest, Call, Chat, Frame, Reply, Route
from .hf import HFServer, axum_rejection, compute_headers
from .openai import OpenAI

__all__ = ["TGI"]

_FINISH = {"stop": "eos_token", "length": "length", "stop_sequence": "stop_sequence"}
_EOS = {"id": 128009, "text": "<|eot_id|>", "logprob": -0.02, "special": True}


@dataclass(slots=True)
class Generate(Chat):
    """A raw prompt (``/generate``): rendered in TGI's own shape, not as a chat completion."""

    details: bool = False
    wrap: bool = False  # the compat route `POST /` answers a list

    @property
    def generated_tokens(self) -> int:
        return self.output_tokens + (self.gen.finish == "stop")  # the end-of-sequence token counts


class TGI(HFServer, OpenAI):
    adapter = adapters.TGI()
    errors_in_stream = True
    token_frames_vary = True  # each /generate_stream frame has its own index and token id
    refusal_fields = False
    fingerprint = "3.3.6-native"
    embeddings_path = None
    chat_path = "/v1/chat/completions"
    models_path = "/v1/models"
    model_id: ClassVar[str] = "meta-llama/Llama-3.1-8B-Instruct"
    max_input_tokens: ClassVar[int] = 8191
    max_total_tokens: ClassVar[int] = 8192
    max_stop_sequences: ClassVar[int] = 4
    error_types: ClassVar[dict[int, tuple[str, str]]] = {
        422: ("validation", "Input validation error: `inputs` cannot be empty"),
        424: (
            "generation",
            "Request failed during generation: Server error: CUDA out of memory. Tried to allocate 2.00 GiB",
        ),
        429: ("overloaded", "Model is overloaded"),
        500: ("incomplete_generation", "Incomplete generation"),
        503: ("healthcheck", "unhealthy"),
    }

    def routes(self) -> list[Route]:
        return [
            Route("POST", "", self.compat),
            Route("POST", "/generate", self.generate),
            Route("POST", "/generate_stream", self.generate_stream),
            Route("POST", self.chat_path, self.chat),
            Route("GET", self.models_path, self.models),
            Route("GET", "/info", self.info, meta=True),
            Route("GET", "/health", self.health, meta=True),
        ]

    def info_body(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "model_sha": "0e9e39f249a16976918f6564b8830bc894c89659",
            "model_pipeline_tag": "text-generation",
            "max_concurrent_requests": 128,
            "max_best_of": 2,
            "max_stop_sequences": self.max_stop_sequences,
            "max_input_tokens": self.max_input_tokens,
            "max_total_tokens": self.max_total_tokens,
            "validation_workers": 2,
            "max_client_batch_size": 4,
            "router": "text-generation-router",
            "version": "3.3.6",
            "sha": None,
            "docker_label": None,
        }

    # -- validation, as TGI's router words it ---------------------------------------------
    def check_parameters(self, max_new_tokens: Any, stop: Any = None, **sampling: Any) -> None:
        for name, value in sampling.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise axum_rejection(f"parameters.{name}: invalid type: expected f32")
        if max_new_tokens is not None and (type(max_new_tokens) is not int or max_new_tokens < 1):
            raise _invalid("`max_new_tokens` must be strictly positive")
        temperature, top_p, top_k = sampling.get("temperature"), sampling.get("top_p"), sampling.get("top_k")
        if temperature is not None and not temperature > 0:
            raise _invalid("`temperature` must be strictly positive")
        if top_p is not None and not 0 < top_p < 1:
            raise _invalid("`top_p` must be > 0.0 and < 1.0")
        if top_k is not None and not top_k > 0:
            raise _invalid("`top_k` must be strictly positive")
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        if len(stops) > self.max_stop_sequences:
            raise _invalid(f"`stop` supports up to {self.max_stop_sequences} stop sequences. Given: {len(stops)}")

    def check_length(self, input_tokens: int, max_new_tokens: int | None) -> None:
        if input_tokens == 0:
            raise _invalid("`inputs` cannot be empty")
        if input_tokens > self.max_input_tokens:
            raise _invalid(f"`inputs` must have less than {self.max_input_tokens} tokens. Given: {input_tokens}")
        if max_new_tokens is not None and input_tokens + max_new_tokens > self.max_total_tokens:
            raise _invalid(
                f"`inputs` tokens + `max_new_tokens` must be <= {self.max_total_tokens}. "
                f"Given: {input_tokens} `inputs` tokens and {max_new_tokens} `max_new_tokens`"
            )

    # -- /generate, /generate_stream, POST / ---------------------------------------------
    def generate(self, call: Call, body: dict[str, Any], *, stream: bool = False, wrap: bool = False) -> Generate:
        call.streaming = stream
        self.check_size(call)
        inputs = body.get("inputs")
        if not isinstance(inputs, str):
            raise axum_rejection("missing field `inputs` at line 1 column 2")
        parameters = body.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise axum_rejection("parameters: invalid type: expected struct GenerateParameters")
        max_new, stop = parameters.get("max_new_tokens"), parameters.get("stop") or []
        sampling = {name: parameters.get(name) for name in ("temperature", "top_p", "top_k")}
        input_tokens = count_tokens(inputs)
        self.check_parameters(max_new, stop, **sampling)
        self.check_length(input_tokens, max_new)
        chat = self.new_chat(call, self.model_id, [{"role": "user", "content": inputs}], max_tokens=max_new, stop=stop)
        job = Generate(chat.model, chat.gen, input_tokens, stream, details=bool(parameters.get("details")), wrap=wrap)
        if not stream:
            headers = compute_headers(
                call, len(inputs), prompt_tokens=input_tokens, generated_tokens=job.generated_tokens,
                validation_time=0, time_per_token=0,
            )
            headers["x-compute-time"] = f"{int(headers['x-compute-time']) / 1000:g}"  # TGI says it in seconds
            call.headers.update(headers)
        return job

    def generate_stream(self, call: Call, body: dict[str, Any]) -> Generate:
        return self.generate(call, body, stream=True)

    def compat(self, call: Call, body: dict[str, Any]) -> Generate:
        stream = bool(body.get("stream"))
        return self.generate(call, body, stream=stream, wrap=not stream)

    def end(self, job: Generate) -> dict[str, Any]:
        details = {"finish_reason": _FINISH[job.gen.finish], "generated_tokens": job.generated_tokens, "seed": None}
        return {"generated_text": job.gen.text, "details": {**details, "input_length": job.input_tokens}}

    def reply(self, call: Call, chat: Chat) -> Any:
        if not isinstance(chat, Generate):
            return super().reply(call, chat)
        reply: dict[str, Any] = {"generated_text": chat.gen.text}
        if chat.details:
            tokens = [_token(text) for text in chat.gen.tokens]
            if chat.gen.finish == "stop":
                tokens.append(_EOS)
            reply["details"] = {
                "finish_reason": _FINISH[chat.gen.finish],
                "generated_tokens": chat.generated_tokens,
                "seed": None,
                "prefill": [],
                "tokens": tokens,
                "top_tokens": [],
                "best_of_sequences": None,
            }
        return [reply] if chat.wrap else reply

    def head(self, call: Call, chat: Chat) -> list[Frame]:
        return [] if isinstance(chat, Generate) else super().head(call, chat)

    def token(self, call: Call, chat: Chat, index: int, text: str) -> Frame:
        if not isinstance(chat, Generate):
            return super().token(call, chat, index, text)
        frame: dict[str, Any] = {"index": index + 1, "token": _token(text), "generated_text": None, "details": None}
        if index == len(chat.gen.tokens) - 1 and chat.gen.finish != "stop":
            frame.update(self.end(chat))  # the last token ends the stream unless an EOS token follows
        return None, frame

    def tail(self, call: Call, chat: Chat) -> list[Frame]:
        if not isinstance(chat, Generate):
            return super().tail(call, chat)
        if chat.gen.finish != "stop" and chat.gen.tokens:
            return []
        return [(None, {"index": len(chat.gen.tokens) + 1, "token": _EOS, **self.end(chat)})]

    def stream_error(self, call: Call) -> Frame:
        return None, self.error(call, 424).body

    # -- /v1 ----------------------------------------------------------------------------
    def chat(self, call: Call, body: dict[str, Any]) -> Chat:
        call.streaming = bool(body.get("stream"))
        self.check_size(call)
        sampling = {name: body.get(name) for name in ("temperature", "top_p")}
        if sampling["temperature"] == 0:
            sampling["temperature"] = None  # greedy, as TGI's chat route reads it
        self.check_parameters(body.get("max_tokens"), body.get("stop"), **sampling)
        chat = super().chat(call, {**body, "model": self.model_id})  # TGI serves one model whatever is asked
        self.check_length(chat.input_tokens, body.get("max_tokens"))
        return chat

    def usage(self, chat: Chat) -> dict[str, Any]:
        return {
            "prompt_tokens": chat.input_tokens,
            "completion_tokens": chat.output_tokens,
            "total_tokens": chat.input_tokens + chat.output_tokens,
        }

    def models(self, call: Call, body: None) -> Reply:
        entry = {"id": self.model_id, "object": "model", "created": 0, "owned_by": self.model_id}
        return Reply({"object": "list", "data": [entry]})


def _invalid(message: str) -> BadRequest:
    return BadRequest("Input validation error: " + message, 422)


def _token(text: str) -> dict[str, Any]:
    """A generated token as TGI describes it (a stable made-up id and log-probability)."""
    digest = zlib.crc32(text.encode())
    return {"id": digest % 128000, "text": text, "logprob": -round((digest % 1000) / 400, 4), "special": False}
