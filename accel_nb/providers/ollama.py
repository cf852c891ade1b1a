"""Ollama's native API: ``/api/chat``, ``/api/generate``, ``/api/embed`` and model management.

Streams are NDJSON (one JSON object a line); the last line has ``done: true``, the
token counts (``prompt_eval_count``, ``eval_count``) and durations in nanoseconds.
A failure after the 200 is a last line ``{"error": …}``.  ``/api/pull`` streams
progress lines (``status``, ``digest``, ``total``, ``completed``) that go to the
caller's progress bar, not into the text.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any, ClassVar

from .. import errors
from ..types import Request, Usage
from .admin import AdminOp, admin_call, admin_reply
from .base import Adapter, Delta, HttpCall, Reply, classify_status, parse_json, protocol_error, snippet

__all__ = ["Ollama", "ollama_host"]

DEFAULT_PORT = 11434

#: Request fields that are top-level in Ollama's body; any other extra goes into ``options``.
_TOP_LEVEL = frozenset({"format", "keep_alive", "think", "tools", "raw", "suffix", "images", "template", "context",
                        "truncate", "dimensions"})
_OPTION_NAMES = {"max_tokens": "num_predict", "temperature": "temperature", "top_p": "top_p", "stop": "stop"}
_NOT_PULLED = re.compile(r"""model ["']([^"']+)["'] not found""")
_NANOS = {"total_duration": "total_s", "load_duration": "load_s", "prompt_eval_duration": "prompt_eval_s",
          "eval_duration": "eval_s"}


def ollama_host(value: str) -> str:
    """``OLLAMA_HOST`` as the official client reads it: ``host``, ``host:port``, ``:port`` or a URL;
    the scheme defaults to http and the port to 11434 (80/443 when a scheme is given)."""
    host, port = value.strip(), DEFAULT_PORT
    scheme, sep, rest = host.partition("://")
    if not sep:
        scheme, rest = "http", host
    elif scheme in ("http", "https"):
        port = 80 if scheme == "http" else 443
    split = urllib.parse.urlsplit(f"{scheme}://{rest}")
    name = split.hostname or "127.0.0.1"
    try:
        if isinstance(ipaddress.ip_address(name), ipaddress.IPv6Address):
            name = f"[{name}]"
    except ValueError:
        pass
    path = split.path.strip("/")
    return f"{scheme}://{name}:{split.port or port}" + (f"/{path}" if path else "")


class Ollama(Adapter):
    """No key by default (``OLLAMA_API_KEY`` is sent as a Bearer token when set, as the
    official client does); ``OLLAMA_HOST`` may omit the scheme and port."""

    id = "ollama"
    title = "Ollama"
    key_env = ("OLLAMA_API_KEY",)
    base_url_env = ("OLLAMA_HOST",)
    default_base_url = "http://localhost:11434"
    sim_path = "/ollama"
    default_model = "llama3.2"
    default_embed_model = "nomic-embed-text"
    models = ("llama3.2", "llama3.1", "qwen2.5", "mistral", "gemma3", "nomic-embed-text")
    needs_key = False
    kinds = frozenset({"chat", "generate", "embed", "admin"})
    stream_format = "ndjson"
    default_concurrency = 4  # one GPU: Ollama queues the rest (OLLAMA_NUM_PARALLEL)

    admin_ops: ClassVar[dict[str, AdminOp]] = {
        "list": AdminOp("GET", "/api/tags", "models"),
        "ps": AdminOp("GET", "/api/ps", "models"),
        "version": AdminOp("GET", "/api/version", "version"),
        "show": AdminOp("POST", "/api/show"),
        "pull": AdminOp("POST", "/api/pull"),
        "delete": AdminOp("DELETE", "/api/delete", empty_ok=True),
    }

    def normalize_url(self, url: str) -> str:
        return ollama_host(url)

    # -- requests -------------------------------------------------------------------------
    def build(self, req: Request, base_url: str, key: str | None, info: Any = None) -> HttpCall:
        self.check_kind(req)
        if req.kind == "admin":
            call = admin_call(self, req, base_url, key)
            if req.payload.op == "pull":
                call.json = {**(call.json or {}), "stream": req.stream}
            return call
        body: dict[str, Any] = {"model": req.model}
        if req.kind == "embed":
            body["input"] = req.inputs
            body.update(req.params)
            return HttpCall("POST", base_url + "/api/embed", self.headers(key), body)
        if req.kind == "generate":
            body["prompt"] = req.messages[-1]["content"]
            if req.system:
                body["system"] = req.system
            path = "/api/generate"
        else:
            messages = list(req.messages)
            if req.system:
                messages.insert(0, {"role": "system", "content": req.system})
            body["messages"] = messages
            path = "/api/chat"
        body["stream"] = req.stream
        options: dict[str, Any] = {}
        for name, value in req.params.items():
            if name == "options" and isinstance(value, Mapping):
                options.update(value)
            elif name in _TOP_LEVEL:
                body[name] = value
            else:
                options[_OPTION_NAMES.get(name, name)] = value
        if options:
            body["options"] = options
        return HttpCall("POST", base_url + path, self.headers(key), body)

    def models_call(self, base_url: str, key: str | None) -> HttpCall | None:
        return HttpCall("GET", base_url + "/api/tags", self.headers(key))

    def parse_models(self, body: Any) -> list[str]:
        return [m["name"] for m in body.get("models", []) if isinstance(m, dict) and "name" in m]

    # -- replies --------------------------------------------------------------------------
    def parse(self, req: Request, body: Any) -> Reply:
        if req.kind == "admin":
            return admin_reply(self, req, body)
        try:
            if req.kind == "embed":
                return Reply(vectors=body["embeddings"], usage=self.usage(body), model=body.get("model"), raw=body)
            text = body["response"] if req.kind == "generate" else body["message"].get("content")
        except (KeyError, TypeError, AttributeError):
            what = "response" if req.kind == "generate" else "message" if req.kind == "chat" else "embeddings"
            raise protocol_error(f"ollama reply has no {what}", body) from None
        return Reply(text=text or "", usage=self.usage(body), finish_reason=body.get("done_reason") or "stop",
                     model=body.get("model"), raw=body)

    def parse_frame(self, req: Request, event: str | None, data: str) -> Delta | None:
        frame = self.frame_json(data)
        if not isinstance(frame, dict):
            raise protocol_error("ollama stream line is not an object", data)
        if "error" in frame:
            return Delta(error=self.stream_error(str(frame["error"])))
        if req.kind == "admin":  # pull progress
            done = frame.get("status") == "success"
            return Delta(progress=frame, finish_reason="success" if done else None, raw=frame)
        if req.kind == "generate":
            text = frame.get("response") or ""
        else:
            text = (frame.get("message") or {}).get("content") or ""
        delta = Delta(text=text, raw=frame)
        if frame.get("done"):
            delta.finish_reason = frame.get("done_reason") or "stop"
            delta.input_tokens = frame.get("prompt_eval_count")
            delta.output_tokens = frame.get("eval_count")
        return delta

    @staticmethod
    def usage(body: Mapping[str, Any]) -> Usage | None:
        if "prompt_eval_count" not in body and "eval_count" not in body:
            return None
        return Usage(body.get("prompt_eval_count") or 0, body.get("eval_count") or 0)

    def timings(self, raw: Any) -> dict[str, float] | None:
        if not isinstance(raw, dict):
            return None
        found = {name: raw[field] / 1e9 for field, name in _NANOS.items() if isinstance(raw.get(field), (int, float))}
        if raw.get("eval_count") and raw.get("eval_duration"):
            found["tokens_per_s"] = raw["eval_count"] / (raw["eval_duration"] / 1e9)
        return found or None

    # -- errors ---------------------------------------------------------------------------
    def classify(self, status: int, headers: Mapping[str, str], body: bytes) -> errors.AccelError:
        data = parse_json(body)
        message = data.get("error") if isinstance(data, dict) and isinstance(data.get("error"), str) else None
        error = classify_status(status, message or snippet(body) or f"HTTP {status}", headers=headers)
        return self._hint(error)

    def stream_error(self, message: str) -> errors.AccelError:
        """A ``{"error"}`` line under a 200: the model failed mid-answer (retryable), or a pull
        found no such model (not)."""
        if "file does not exist" in message or "not found" in message:
            return self._hint(errors.NotFoundError(message, status=404))
        return errors.ServerError(message, status=500)

    @staticmethod
    def _hint(error: errors.AccelError) -> errors.AccelError:
        if isinstance(error, errors.NotFoundError):
            match = _NOT_PULLED.search(error.message)
            if match:
                error.hint = f"pull it first: client.ollama.pull({match.group(1)!r})"
            elif "manifest" in error.message or "file does not exist" in error.message:
                error.hint = "no such model in the Ollama library: check the name at https://ollama.com/library"
        return error
