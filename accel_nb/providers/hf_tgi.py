"""Hugging Face text-generation-inference (TGI): chat on ``/v1``, raw prompts on ``/generate``.

``chat`` uses TGI's OpenAI-compatible ``/v1/chat/completions`` (the model's own chat
template is applied by the server), so it is ``OpenAICompatible`` with TGI's error
shapes.  ``generate`` sends a raw prompt to ``/generate`` (``/generate_stream`` when
streamed) with ``details: true``, so the answer carries its finish reason and token
counts; the prompt's count comes from the ``x-prompt-tokens`` header (or the last
stream frame's ``details.input_length``).

The server's limits are read once per lane from ``GET /info``; a prompt over
``max_input_tokens`` (or prompt + ``max_tokens`` over ``max_total_tokens``) fails
here with the numbers, before anything is sent.  The prompt is counted with
``accel_nb.tokens`` — an estimate of the model's own tokenizer, hence "about".

Where TGI differs from PROTOCOLS.md §5 (read from the router's source):
``/generate_stream`` (and a streamed ``/v1/chat/completions``) answers a full queue
or an invalid request with HTTP 200 and one ``{error, error_type}`` frame, not a 429
or 422; TGI sends no ``x-request-id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import errors
from ..tokens import count_tokens, estimate_prompt_tokens
from ..types import Request, Usage
from .base import Delta, HttpCall, Reply, protocol_error
from .hf import classify_hf, frame_error, header_int
from .openai import OpenAICompatible

__all__ = ["TGI", "TGIInfo"]

_RENAMED = {"max_tokens": "max_new_tokens"}


@dataclass(frozen=True, slots=True)
class TGIInfo:
    """What ``/info`` says that matters to a request (``None``: the server did not say)."""

    model_id: str | None = None
    max_input_tokens: int | None = None
    max_total_tokens: int | None = None


class TGI(OpenAICompatible):
    id = "tgi"
    title = "Hugging Face TGI"
    aliases = ("hf_tgi",)
    key_env = ("HF_TOKEN",)
    base_url_env = ("TGI_BASE_URL", "HF_TGI_BASE_URL")
    default_base_url = "http://localhost:8080"
    sim_path = "/tgi"
    default_model = "tgi"  # TGI serves one model; "tgi" is what its docs send as `model`
    models = ("tgi",)
    needs_key = False
    kinds = frozenset({"chat", "generate"})
    chat_path = "/v1/chat/completions"
    models_path = "/v1/models"
    default_concurrency = 32

    # -- discovery ----------------------------------------------------------------------
    def discover(self, base_url: str, key: str | None) -> HttpCall | None:
        return HttpCall("GET", base_url + "/info", self.headers(key))

    def learn(self, body: Any) -> TGIInfo:
        if not isinstance(body, dict):
            raise protocol_error("TGI /info is not a JSON object", body)
        # `max_input_length` is the name before TGI 2.1
        limit = body.get("max_input_tokens", body.get("max_input_length"))
        total = body.get("max_total_tokens")
        return TGIInfo(
            model_id=body.get("model_id"),
            max_input_tokens=limit if isinstance(limit, int) else None,
            max_total_tokens=total if isinstance(total, int) else None,
        )

    # -- requests -----------------------------------------------------------------------
    def build(self, req: Request, base_url: str, key: str | None, info: Any = None) -> HttpCall:
        self.check_kind(req)
        if isinstance(info, TGIInfo):
            self.check_fits(req, info)
        if req.kind == "chat":
            return super().build(req, base_url, key, info)
        body = {"inputs": req.messages[-1]["content"], "parameters": generate_parameters(req.params)}
        return HttpCall("POST", base_url + ("/generate_stream" if req.stream else "/generate"), self.headers(key), body)

    def check_fits(self, req: Request, info: TGIInfo) -> None:
        """Refuse a prompt the server would refuse, with the numbers, before sending it."""
        if req.kind == "chat":
            prompt = estimate_prompt_tokens(req.messages, req.system)
        else:
            prompt = count_tokens(req.messages[-1]["content"])
        server = f"this TGI server ({info.model_id or 'model unknown'})"
        if info.max_input_tokens is not None and prompt > info.max_input_tokens:
            raise errors.ContextLengthError(
                f"the prompt is about {prompt} tokens; {server} takes at most {info.max_input_tokens} "
                "(max_input_tokens in its /info)",
                provider=self.id,
                hint="shorten the prompt, or start TGI with a larger --max-input-tokens",
            )
        wanted = req.params.get("max_tokens")
        if info.max_total_tokens is not None and isinstance(wanted, int) and prompt + wanted > info.max_total_tokens:
            raise errors.ContextLengthError(
                f"the prompt (about {prompt} tokens) plus max_tokens={wanted} makes {prompt + wanted}; {server} "
                f"takes at most {info.max_total_tokens} in all (max_total_tokens in its /info)",
                provider=self.id,
                hint=f"lower max_tokens to at most {max(1, info.max_total_tokens - prompt)} or shorten the prompt",
            )

    # -- replies ------------------------------------------------------------------------
    def parse(self, req: Request, body: Any) -> Reply:
        if req.kind == "chat":
            return super().parse(req, body)
        if isinstance(body, list) and body:  # the compat route `POST /` wraps it in a list
            body = body[0]
        if not isinstance(body, dict) or not isinstance(body.get("generated_text"), str):
            raise protocol_error("TGI /generate reply has no generated_text", body)
        details = body.get("details") or {}
        return Reply(text=body["generated_text"], finish_reason=details.get("finish_reason"), raw=body)

    def parse_frame(self, req: Request, event: str | None, data: str) -> Delta | None:
        if req.kind == "chat":
            return super().parse_frame(req, event, data)
        frame = self.frame_json(data)
        if "error" in frame:
            return Delta(error=frame_error(frame, self.title))
        token = frame.get("token") or {}
        delta = Delta(text="" if token.get("special") else token.get("text") or "", raw=frame)
        details = frame.get("details")
        if isinstance(details, dict):  # the last frame
            delta.finish_reason = details.get("finish_reason") or "stop"
            delta.input_tokens = details.get("input_length")
            delta.output_tokens = details.get("generated_tokens")
        return delta

    def stream_error(self, frame: dict) -> errors.AccelError:
        return frame_error(frame, self.title)

    def header_usage(self, headers: Mapping[str, str]) -> Usage | None:
        prompt, generated = header_int(headers, "x-prompt-tokens"), header_int(headers, "x-generated-tokens")
        if prompt is None or generated is None:
            return None
        return Usage(prompt, generated)

    def classify(self, status: int, headers: Mapping[str, str], body: bytes) -> errors.AccelError:
        return classify_hf(status, headers, body, self.title)


def generate_parameters(params: Mapping[str, Any]) -> dict[str, Any]:
    """The common options in TGI's terms: ``max_new_tokens``, ``stop`` as a list, greedy for
    ``temperature=0`` and no nucleus for ``top_p=1`` (TGI refuses both values as such)."""
    parameters: dict[str, Any] = {"details": True}
    for name, value in params.items():
        if name == "temperature" and value == 0:
            parameters["do_sample"] = False
        elif name == "top_p" and isinstance(value, (int, float)) and value >= 1:
            continue
        elif name == "stop":
            parameters["stop"] = [value] if isinstance(value, str) else list(value)
        else:
            parameters[_RENAMED.get(name, name)] = value
    return parameters
