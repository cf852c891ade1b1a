"""OPEA's ChatQnA megaservice and the GenAIComps microservices behind it, under one prefix.

``/v1/chatqna`` streams by default, each frame Python's repr of a token's UTF-8 bytes
(``data: b' world'``) and a last ``data: [DONE]``; without streaming it answers
OpenAI-shaped with usage zeros.  The microservices sit under sub-paths, one per
service name our client uses (``/embedding``, ``/retrieval``, ``/reranking``, ``/llm``),
as they would sit on their own ports: OpenAI-shaped embeddings and LLM chat, a
retriever over a small built-in corpus (cosine similarity of the feature-hashing
vectors) and a reranker.  Errors are FastAPI's ``{"detail": …}`` (a list for 422);
a failure mid-stream closes the connection, as a failing generator does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..providers import opea as adapters
from .base import BadRequest, Call, Chat, Failure, Frame, MessageErrors, Reply, Route, bearer_or_anonymous, text_of
from .openai import OpenAI
from .vectors import embed, embed_many

if TYPE_CHECKING:
    from .server import Window

__all__ = ["CORPUS", "OPEA"]

EMBEDDING_MODEL = "BAAI/bge-base-en-v1.5"
LLM_MODEL = "Intel/neural-chat-7b-v3-3"
DIMS = 768
#: What the retriever's vector store holds: (text, source).
CORPUS: tuple[tuple[str, str], ...] = (
    ("OPEA, the Open Platform for Enterprise AI, composes generative AI systems from microservices.", "opea.md"),
    ("ChatQnA is OPEA's retrieval-augmented chatbot: embed, retrieve, rerank, then generate.", "chatqna.md"),
    ("The embedding microservice turns text into vectors with a TEI backend.", "embedding.md"),
    ("The retriever microservice searches a vector database such as Redis for similar passages.", "retriever.md"),
    ("The reranking microservice orders retrieved passages by relevance to the question.", "reranking.md"),
    ("The LLM microservice serves text generation through TGI or vLLM with an OpenAI-compatible API.", "llm.md"),
    ("Dataprep ingests PDF and text documents into the vector database.", "dataprep.md"),
    ("Guardrails filter unsafe questions and answers before they reach the user.", "guardrails.md"),
    ("Gaudi accelerators and Xeon processors both run the OPEA reference deployments.", "hardware.md"),
    ("Kubernetes manifests and Helm charts deploy the megaservice with its microservices.", "deploy.md"),
)


class OPEA(MessageErrors, OpenAI):
    """FastAPI errors; no key unless a gateway in front checks one (``require_key``)."""

    adapter = adapters.OPEA()
    overload_status = 503
    request_id_header = None
    token_frames_vary = True  # a chatqna token frame is a bytes repr, not a JSON template
    error_key = "detail"
    embedding_dims: ClassVar[dict[str, int]] = {EMBEDDING_MODEL: DIMS}
    invalid_json_message = "There was an error parsing the body"
    messages: ClassVar[dict[int, str]] = {
        400: "Bad Request",
        401: "Not authenticated",
        403: "Forbidden",
        404: "Not Found",
        413: "Request Entity Too Large",
        429: "Too Many Requests",
        500: "Internal Server Error",
        503: "Service Unavailable",
    }

    def __init__(self) -> None:
        self.corpus = embed_many([text for text, _ in CORPUS], DIMS)

    def routes(self) -> list[Route]:
        health = [Route("GET", "/v1/health_check", self.health)]
        for service in self.adapter.services:
            health.append(Route("GET", f"/{service}/v1/health_check", self.health))
        return [
            Route("POST", "/v1/chatqna", self.chatqna),
            Route("POST", "/embedding/v1/embeddings", self.embeddings),
            Route("POST", "/retrieval/v1/retrieval", self.retrieval),
            Route("POST", "/reranking/v1/reranking", self.reranking),
            Route("POST", "/llm/v1/chat/completions", self.llm),
            *health,
        ]

    def api_key(self, request: Any) -> str | None:
        return bearer_or_anonymous(request)

    def rate_headers(self, window: Window) -> dict[str, str]:
        return {}

    def reply_headers(self, call: Call) -> dict[str, str]:
        return {}

    def error(self, call: Call, status: int, message: str | None = None) -> Failure:
        if status != 422:
            return super().error(call, status, message)
        detail = [
            {"type": "value_error", "loc": ["body"], "msg": message or "Input should be a valid request", "input": None}
        ]
        return Failure(422, {"detail": detail})

    def stream_error(self, call: Call) -> Frame | None:
        return None  # the generator raises and uvicorn closes the connection

    @staticmethod
    def _required(body: dict[str, Any], field: str) -> Any:
        if field not in body:
            raise BadRequest(f"Field required: {field}", 422)
        return body[field]

    # -- the megaservice --------------------------------------------------------------------
    def chatqna(self, call: Call, body: dict[str, Any]) -> Chat:
        raw = self._required(body, "messages")
        if isinstance(raw, str):
            messages, system = [{"role": "user", "content": raw}], None
        elif isinstance(raw, list) and raw and all(isinstance(m, dict) for m in raw):
            system = "\n".join(text_of(m.get("content")) for m in raw if m.get("role") == "system") or None
            messages = [
                {"role": str(m.get("role")), "content": text_of(m.get("content"))}
                for m in raw
                if m.get("role") != "system"
            ]
        else:
            raise BadRequest("messages must be a string or a list of {role, content}", 422)
        return self.new_chat(
            call,
            "chatqna",
            messages,
            system=system,
            max_tokens=body.get("max_tokens", 1024),
            stop=body.get("stop"),
            stream=body.get("stream", True) is not False,
        )

    @staticmethod
    def _megaservice(call: Call) -> bool:
        return call.request.path.endswith("/chatqna")

    def reply(self, call: Call, chat: Chat) -> dict[str, Any]:
        if not self._megaservice(call):
            return super().reply(call, chat)
        choice = {"index": 0, "message": {"role": "assistant", "content": chat.gen.text}, "finish_reason": "stop"}
        return {
            "id": "chatcmpl-" + call.uid,
            "object": "chat.completion",
            "created": call.created,
            "model": "chatqna",
            "choices": [choice],
            "usage": {"prompt_tokens": 0, "total_tokens": 0, "completion_tokens": 0},
        }

    def head(self, call: Call, chat: Chat) -> list[Frame]:
        return [] if self._megaservice(call) else super().head(call, chat)

    def token(self, call: Call, chat: Chat, index: int, text: str) -> Frame:
        if self._megaservice(call):
            return None, repr(text.encode("utf-8"))
        return super().token(call, chat, index, text)

    def tail(self, call: Call, chat: Chat) -> list[Frame]:
        return [(None, "[DONE]")] if self._megaservice(call) else super().tail(call, chat)

    # -- the microservices ------------------------------------------------------------------
    def llm(self, call: Call, body: dict[str, Any]) -> Chat:
        return self.chat(call, {**body, "model": body.get("model") or LLM_MODEL})

    def embeddings(self, call: Call, body: dict[str, Any]) -> Reply:
        return super().embeddings(call, {**body, "model": EMBEDDING_MODEL})  # it serves one model, whatever is asked

    def retrieval(self, call: Call, body: dict[str, Any]) -> Reply:
        vector = self._required(body, "embedding")
        if not isinstance(vector, list) or len(vector) != DIMS or not all(isinstance(x, (int, float)) for x in vector):
            raise BadRequest(f"embedding must be a list of {DIMS} numbers", 422)
        k = body.get("k", 4)
        if type(k) is not int or k < 1:
            raise BadRequest("k must be a positive integer", 422)
        query = np.asarray(vector, dtype=np.float32)
        scores = self.corpus @ (query / (np.linalg.norm(query) or 1.0))
        best = np.argsort(-scores, kind="stable")[:k]
        docs = [
            {"text": CORPUS[i][0], "metadata": {"source": CORPUS[i][1], "score": round(float(scores[i]), 6)}}
            for i in best
        ]
        return Reply({"retrieved_docs": docs})

    def reranking(self, call: Call, body: dict[str, Any]) -> Reply:
        query = self._required(body, "input")
        docs = self._required(body, "retrieved_docs")
        if not isinstance(query, str) or not isinstance(docs, list):
            raise BadRequest("input must be a string and retrieved_docs a list", 422)
        texts = [d.get("text") if isinstance(d, dict) else d for d in docs]
        if not all(isinstance(t, str) for t in texts):
            raise BadRequest("each retrieved doc needs a text", 422)
        top_n = body.get("top_n", 1)
        if type(top_n) is not int or top_n < 1:
            raise BadRequest("top_n must be a positive integer", 422)
        if not texts:
            return Reply({"reranked_docs": []})
        scores = embed_many(texts, DIMS) @ embed(query, DIMS)
        order = np.argsort(-scores, kind="stable")[:top_n]
        return Reply({"reranked_docs": [{"text": texts[i], "score": round(float(scores[i]), 6)} for i in order]})

    def health(self, call: Call, body: None) -> Reply:
        return Reply(
            {"Service Title": "opea_service@simulator", "Service Description": "OPEA Microservice Infrastructure"}
        )
