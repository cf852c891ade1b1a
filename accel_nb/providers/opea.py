"""OPEA: the ChatQnA megaservice (``/v1/chatqna``) and the GenAIComps microservices behind it.

The megaservice streams by default, and its frames are not JSON: each is Python's
repr of the token's UTF-8 bytes (``data: b' world'``), ended by ``data: [DONE]``.
Those are read with ``ast.literal_eval`` on a bytes literal only (it parses literals,
it never runs code) and decoded; anything else in that place is a ``ProtocolError``.
It reports no token usage (the non-streaming reply carries zeros), so usage is
estimated and marked ``estimated``.

Targets: ``opea`` (or ``opea:chatqna``) is the megaservice; ``opea:llm`` (or
``opea:llm/<model id>``) the LLM microservice's OpenAI-shaped ``/v1/chat/completions``.
``embed`` goes to the embedding microservice (``/v1/embeddings``), ``retrieve`` to the
retriever (``/v1/retrieval``), ``rerank`` to the reranker (``/v1/reranking``).  Each
microservice has its own URL (``OPEA_EMBEDDING_URL``…), by default the megaservice's
host on the port of GenAIComps' examples.  Errors are FastAPI's ``{detail}``.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from .. import errors
from ..types import Request, Usage
from .base import Delta, HttpCall, Reply, classify_status, parse_json, protocol_error
from .openai import OpenAICompatible

__all__ = ["OPEA", "bytes_literal"]

_KIND_SERVICE = {"embed": "embedding", "retrieve": "retrieval", "rerank": "reranking"}
_LLM = "llm"


def bytes_literal(data: str) -> str | None:
    """The text of ``b'…'`` (Python's repr of UTF-8 bytes), or ``None`` when ``data`` is not one.

    Most tokens have no escapes: their text is the literal's inside, taken as is (a bytes
    literal holds ASCII only, and no bare quote of its own kind).  The rest go through
    ``ast.literal_eval``, which is a hundred times slower.
    """
    if len(data) < 3 or data[0] != "b" or data[1] not in "'\"" or data[-1] != data[1]:
        return None
    inside = data[2:-1]
    if "\\" not in inside and data[1] not in inside and inside.isascii():
        return inside
    try:
        value = ast.literal_eval(data)  # literals only: never evaluates code
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else None


def _llm_model(model: str) -> str | None:
    """``llm`` -> ``""`` (the microservice's own model), ``llm/<id>`` -> ``<id>``, else ``None``."""
    if model == _LLM:
        return ""
    return model[len(_LLM) + 1 :] if model.startswith(_LLM + "/") else None


class OPEA(OpenAICompatible):
    """No key unless a gateway in front asks for one (``OPEA_API_KEY``, sent as Bearer)."""

    id = "opea"
    title = "OPEA ChatQnA"
    key_env = ("OPEA_API_KEY",)
    base_url_env = ("OPEA_BASE_URL",)
    default_base_url = "http://localhost:8888"
    sim_path = "/opea"
    default_model = "chatqna"
    default_embed_model = "BAAI/bge-base-en-v1.5"
    models = ("chatqna", "llm")
    needs_key = False
    kinds = frozenset({"chat", "embed", "retrieve", "rerank"})
    services: ClassVar[dict[str, tuple[str, int]]] = {
        "embedding": ("OPEA_EMBEDDING_URL", 6000),
        "retrieval": ("OPEA_RETRIEVAL_URL", 7000),
        "reranking": ("OPEA_RERANKING_URL", 8000),
        "llm": ("OPEA_LLM_URL", 9000),
    }
    chat_path = "/v1/chat/completions"
    embed_path = "/v1/embeddings"
    default_concurrency = 8

    def service(self, req: Request) -> str | None:
        if req.kind == "chat":
            return _LLM if _llm_model(req.model) is not None else None
        return _KIND_SERVICE.get(req.kind)

    def models_call(self, base_url: str, key: str | None) -> HttpCall | None:
        return None  # no model list: the configured models are the answer

    # -- requests -------------------------------------------------------------------------
    def build(self, req: Request, base_url: str, key: str | None, info: Any = None) -> HttpCall:
        self.check_kind(req)
        headers = self.headers(key)
        if req.kind == "retrieve":
            body = {**req.payload, **req.params}
            return HttpCall("POST", base_url + "/v1/retrieval", headers, body)
        if req.kind == "rerank":  # client.rerank: the texts are the inputs, the query is in the payload
            docs = [{"text": text} for text in req.inputs]
            body = {"input": req.payload["query"], "retrieved_docs": docs, **req.params}
            return HttpCall("POST", base_url + "/v1/reranking", headers, body)
        model = _llm_model(req.model) if req.kind == "chat" else None
        if req.kind == "embed" or model is not None:
            call = super().build(dataclasses.replace(req, model=model) if model is not None else req, base_url, key)
            if model == "":
                del call.json["model"]
            return call
        return HttpCall("POST", base_url + "/v1/chatqna", headers, self._chatqna_body(req))

    @staticmethod
    def _chatqna_body(req: Request) -> dict[str, Any]:
        messages: Any = list(req.messages)
        if req.system:
            messages.insert(0, {"role": "system", "content": req.system})
        elif len(messages) == 1:
            messages = messages[0]["content"]  # the plain question, as ChatQnA's own examples send it
        return {"messages": messages, "stream": req.stream, **req.params}

    # -- replies --------------------------------------------------------------------------
    def parse(self, req: Request, body: Any) -> Reply:
        if req.kind == "retrieve":
            docs = body.get("retrieved_docs") if isinstance(body, dict) else None
            if not isinstance(docs, list):
                raise protocol_error("opea retrieval reply has no retrieved_docs", body)
            return Reply(data=docs, raw=body, usage=Usage())
        if req.kind == "rerank":
            ranked = body.get("reranked_docs") if isinstance(body, dict) else None
            if not isinstance(ranked, list):
                raise protocol_error("opea reranking reply has no reranked_docs", body)
            keep_text = bool(req.payload.get("return_text"))
            rows = [(row["index"], row["score"], row["text"] if keep_text else None)
                    for row in _with_indices(ranked, list(req.inputs))]
            return Reply(data=rows, raw=body, usage=Usage())
        return super().parse(req, body)

    @staticmethod
    def usage(data: Mapping[str, Any] | None) -> Usage | None:
        """OPEA's replies carry zeros: that is "not reported", so the engine estimates it."""
        usage = OpenAICompatible.usage(data)
        return usage if usage is not None and (usage.input_tokens or usage.output_tokens) else None

    def parse_frame(self, req: Request, event: str | None, data: str) -> Delta | None:
        if self.service(req) == _LLM:
            return super().parse_frame(req, event, data)
        if data == "[DONE]":
            return Delta(finish_reason="stop")
        text = bytes_literal(data)
        if text is not None:
            return Delta(text=text)
        if data.startswith("{"):  # a gateway that passes the LLM's own chunks through
            return super().parse_frame(req, event, data)
        raise protocol_error("opea chatqna frame is neither b'…' nor [DONE]", data)

    def classify(self, status: int, headers: Mapping[str, str], body: bytes) -> errors.AccelError:
        data = parse_json(body)
        detail = data.get("detail") if isinstance(data, dict) else None
        if isinstance(detail, list):  # FastAPI's 422: [{loc, msg, type}]
            parts = [f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}" for d in detail
                     if isinstance(d, dict)]
            return classify_status(status, "; ".join(parts) or "invalid request", headers=headers)
        return super().classify(status, headers, body)


def _with_indices(ranked: list[Any], texts: list[str]) -> list[dict[str, Any]]:
    """Each reranked ``{text, score}`` with the index of its text in the request, best first."""
    unused: dict[str, list[int]] = {}
    for index, text in enumerate(texts):
        unused.setdefault(text, []).append(index)
    result = []
    for doc in ranked:
        text = doc.get("text") if isinstance(doc, dict) else str(doc)
        positions = unused.get(text)
        index = positions.pop(0) if positions else None
        result.append({"index": index, "text": text, "score": doc.get("score") if isinstance(doc, dict) else None})
    return result
