"""Ollama's native API as ``ollama serve`` speaks it: chat, generate, embed and model management.

The server keeps a small model registry: a few models are "pulled" at start, any
tag of the library's models can be pulled (a stream of NDJSON progress with real-looking
digests and sizes, paced at realistic latency and instant at zero latency), deleted,
shown and listed; chat, generate and embed on a model that is not pulled is a 404.
Errors are ``{"error": "…"}``; a queue that is full is ``503 server busy``; a failure
after the 200 is a last NDJSON line ``{"error": …}``.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from ..providers import ollama as adapters
from ..tokens import count_tokens
from .base import (
    NDJSON,
    BadRequest,
    Call,
    Chat,
    Frame,
    Frames,
    MessageErrors,
    Protocol,
    Reply,
    Route,
    bearer_or_anonymous,
    text_of,
)
from .vectors import embed_many

__all__ = ["Ollama"]

VERSION = "0.12.6"
_MODIFIED_AT = "2025-10-01T09:30:00.000000000Z"


@dataclass(frozen=True, slots=True)
class LibraryModel:
    family: str
    parameter_size: str
    quantization: str
    size: int  # bytes of the weights layer
    dims: int  # embedding width
    embedding_only: bool = False


#: What ``ollama pull`` can fetch (any tag of these names), with real sizes and shapes.
LIBRARY: dict[str, LibraryModel] = {
    "llama3.2": LibraryModel("llama", "3.2B", "Q4_K_M", 2_019_377_376, 3072),
    "llama3.1": LibraryModel("llama", "8.0B", "Q4_K_M", 4_920_738_848, 4096),
    "qwen2.5": LibraryModel("qwen2", "7.6B", "Q4_K_M", 4_683_073_184, 3584),
    "mistral": LibraryModel("llama", "7.2B", "Q4_K_M", 4_372_812_000, 4096),
    "gemma3": LibraryModel("gemma3", "4.3B", "Q4_K_M", 3_338_792_000, 2560),
    "nomic-embed-text": LibraryModel("nomic-bert", "137M", "F16", 274_290_656, 768, embedding_only=True),
    "all-minilm": LibraryModel("bert", "23M", "F16", 45_949_216, 384, embedding_only=True),
}
PREPULLED = ("llama3.2:latest", "nomic-embed-text:latest")
_SMALL_LAYERS = (("template", 1_429), ("license", 7_711), ("params", 96))


def full_name(name: str) -> str:
    """``llama3.2`` -> ``llama3.2:latest`` (Ollama's own normalization)."""
    return name if ":" in name else name + ":latest"


def _digest(*parts: str) -> str:
    return "sha256:" + hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _details(entry: LibraryModel) -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": entry.family,
        "families": [entry.family],
        "parameter_size": entry.parameter_size,
        "quantization_level": entry.quantization,
    }


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


class Ollama(MessageErrors, Protocol):
    """No auth (a Bearer key is accepted, and checked with ``require_key``); no rate-limit headers."""

    adapter = adapters.Ollama()
    overload_status = 503
    request_id_header = None
    invalid_json_message = "invalid character 'x' looking for beginning of value"
    messages: ClassVar[dict[int, str]] = {
        400: "invalid request",
        401: "unauthorized",
        403: "forbidden",
        404: 'model "{model}" not found, try pulling it first',
        413: "http: request body too large",
        422: "invalid options",
        429: "too many requests, please slow down",
        500: "an error was encountered while running the model: unexpected EOF",
        503: "server busy, please try again.  maximum pending requests exceeded",
    }

    def __init__(self) -> None:
        self.pulled: dict[str, str] = {name: _MODIFIED_AT for name in PREPULLED}  # name -> modified_at
        self.loaded: dict[str, float] = {}  # name -> when it was last used

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/api/chat", self.chat),
            Route("POST", "/api/generate", self.generate),
            Route("POST", "/api/embed", self.embed),
            Route("GET", "/api/tags", self.tags),
            Route("POST", "/api/show", self.show),
            Route("POST", "/api/pull", self.pull),
            Route("DELETE", "/api/delete", self.delete),
            Route("GET", "/api/ps", self.ps),
            Route("GET", "/api/version", self.version),
        ]

    def api_key(self, request: Any) -> str | None:
        return bearer_or_anonymous(request)

    def encoder(self, call: Call) -> NDJSON:
        return NDJSON()

    # -- the registry -----------------------------------------------------------------------
    @staticmethod
    def _name(body: dict[str, Any]) -> str:
        name = body.get("model") or body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise BadRequest("model is required")
        return name.strip()

    def _pulled(self, name: str, message: str = 'model "{name}" not found, try pulling it first') -> LibraryModel:
        """The library entry of a pulled model (and mark it loaded), else the server's 404."""
        if full_name(name) not in self.pulled:
            raise BadRequest(message.format(name=name), 404)
        self.loaded[full_name(name)] = time.time()
        return LIBRARY[full_name(name).partition(":")[0]]

    def _entry(self, name: str) -> dict[str, Any]:
        entry = LIBRARY[name.partition(":")[0]]
        return {
            "name": name,
            "model": name,
            "modified_at": self.pulled[name],
            "size": self._size(entry),
            "digest": _digest(name, "manifest")[7:],
            "details": _details(entry),
        }

    @staticmethod
    def _size(entry: LibraryModel) -> int:
        return entry.size + sum(size for _, size in _SMALL_LAYERS)

    # -- generation -------------------------------------------------------------------------
    def chat(self, call: Call, body: dict[str, Any]) -> Chat:
        name = self._name(body)
        if self._pulled(name).embedding_only:
            raise BadRequest(f'"{name}" does not support chat')
        raw = body.get("messages")
        if not isinstance(raw, list):
            raise BadRequest("messages must be a list")
        system = [text_of(m.get("content")) for m in raw if isinstance(m, dict) and m.get("role") == "system"]
        messages = [
            {"role": str(m.get("role")), "content": text_of(m.get("content"))}
            for m in raw
            if isinstance(m, dict) and m.get("role") != "system"
        ]
        return self._chat(call, name, messages, "\n".join(system) or None, body)

    def generate(self, call: Call, body: dict[str, Any]) -> Chat:
        name = self._name(body)
        if self._pulled(name).embedding_only:
            raise BadRequest(f'"{name}" does not support generate')
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            raise BadRequest("prompt must be a string")
        chat = self._chat(call, name, [{"role": "user", "content": prompt}], body.get("system"), body)
        chat.input_tokens = count_tokens(prompt) + (count_tokens(body["system"]) if body.get("system") else 0)
        return chat

    def _chat(
        self, call: Call, name: str, messages: list[dict[str, str]], system: str | None, body: dict[str, Any]
    ) -> Chat:
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise BadRequest("options must be an object")
        limit = options.get("num_predict")
        return self.new_chat(
            call,
            name,
            messages,
            system=system,
            max_tokens=None if limit in (None, -1, -2) else limit,
            stop=options.get("stop"),
            stream=body.get("stream", True) is not False,
        )

    @staticmethod
    def _generating(call: Call) -> bool:
        return call.request.path.endswith("/generate")

    def _stats(self, chat: Chat) -> dict[str, Any]:
        prompt_ns, eval_ns, load_ns = chat.input_tokens * 250_000, chat.output_tokens * 12_500_000, 15_000_000
        return {
            "done_reason": "length" if chat.gen.finish == "length" else "stop",
            "done": True,
            "total_duration": load_ns + prompt_ns + eval_ns + 1_000_000,
            "load_duration": load_ns,
            "prompt_eval_count": chat.input_tokens,
            "prompt_eval_duration": prompt_ns,
            "eval_count": chat.output_tokens,
            "eval_duration": eval_ns,
        }

    def _piece(self, call: Call, chat: Chat, text: str) -> dict[str, Any]:
        body: dict[str, Any] = {"model": chat.model, "created_at": _now()}
        if self._generating(call):
            body["response"] = text
        else:
            body["message"] = {"role": "assistant", "content": text}
        return body

    def reply(self, call: Call, chat: Chat) -> dict[str, Any]:
        body = {**self._piece(call, chat, chat.gen.text), **self._stats(chat)}
        if self._generating(call):
            body["context"] = list(range(1, min(chat.input_tokens + chat.output_tokens, 32) + 1))
        return body

    def token(self, call: Call, chat: Chat, index: int, text: str) -> Frame:
        return None, {**self._piece(call, chat, text), "done": False}

    def tail(self, call: Call, chat: Chat) -> list[Frame]:
        return [(None, {**self._piece(call, chat, ""), **self._stats(chat)})]

    # -- embeddings -------------------------------------------------------------------------
    def embed(self, call: Call, body: dict[str, Any]) -> Reply:
        name = self._name(body)
        entry = self._pulled(name)
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise BadRequest("input must be a string or a list of strings")
        dims = body.get("dimensions") or entry.dims
        if type(dims) is not int or not 1 <= dims <= entry.dims:
            raise BadRequest(f"dimensions must be between 1 and {entry.dims}")
        tokens = sum(count_tokens(t) for t in texts)
        reply = {
            "model": name,
            "embeddings": embed_many(texts, dims).tolist(),
            "total_duration": 14_000_000 + tokens * 90_000,
            "load_duration": 1_000_000,
            "prompt_eval_count": tokens,
        }
        return Reply(reply, name, input_tokens=tokens)

    # -- management -------------------------------------------------------------------------
    def tags(self, call: Call, body: None) -> Reply:
        return Reply({"models": [self._entry(name) for name in sorted(self.pulled)]})

    def show(self, call: Call, body: dict[str, Any]) -> Reply:
        name = self._name(body)
        entry = self._pulled(name, "model '{name}' not found")
        return Reply(
            {
                "license": "LLAMA 3.2 COMMUNITY LICENSE AGREEMENT" if entry.family == "llama" else "Apache License 2.0",
                "modelfile": f'# Modelfile generated by "ollama show"\nFROM {full_name(name)}\n',
                "parameters": 'stop                           "<|eot_id|>"',
                "template": "{{ .Prompt }}",
                "details": _details(entry),
                "model_info": {"general.architecture": entry.family, f"{entry.family}.embedding_length": entry.dims},
                "capabilities": ["embedding"] if entry.embedding_only else ["completion", "tools"],
                "modified_at": self.pulled[full_name(name)],
            },
            name,
        )

    def delete(self, call: Call, body: dict[str, Any]) -> Reply:
        name = self._name(body)
        if full_name(name) not in self.pulled:
            raise BadRequest(f"model '{name}' not found", 404)
        del self.pulled[full_name(name)]
        self.loaded.pop(full_name(name), None)
        return Reply(None, name)

    def ps(self, call: Call, body: None) -> Reply:
        running = []
        for name, used in sorted(self.loaded.items()):
            entry = LIBRARY[name.partition(":")[0]]
            expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(used + 300))
            running.append(
                {**self._entry(name), "expires_at": expires, "size_vram": self._size(entry), "context_length": 4096}
            )
        return Reply({"models": running})

    def version(self, call: Call, body: None) -> Reply:
        return Reply({"version": VERSION})

    def pull(self, call: Call, body: dict[str, Any]) -> Frames | Reply:
        name = self._name(body)
        entry = LIBRARY.get(name.partition(":")[0])
        frames: list[Frame] = [(None, {"status": "pulling manifest"})]
        if entry is None:
            frames.append((None, {"error": "pull model manifest: file does not exist"}))
            if body.get("stream") is False:
                raise BadRequest("pull model manifest: file does not exist")
            return Frames(frames, model=name)
        layers = [("model", entry.size), *_SMALL_LAYERS]
        for layer, size in layers:
            digest = _digest(full_name(name), layer)
            steps = 4 if size > 1_000_000 else 1
            for step in range(steps + 1):
                frames.append(
                    (
                        None,
                        {
                            "status": f"pulling {digest[7:19]}",
                            "digest": digest,
                            "total": size,
                            "completed": size * step // steps,
                        },
                    )
                )
        frames += [
            (None, {"status": "verifying sha256 digest"}),
            (None, {"status": "writing manifest"}),
            (None, {"status": "success"}),
        ]

        def done() -> None:
            self.pulled[full_name(name)] = _now().replace(".000000Z", ".000000000Z")

        if body.get("stream") is False:
            done()
            return Reply({"status": "success"}, name)
        return Frames(frames, model=name, done=done)
