"""Hugging Face text-embeddings-inference (TEI) 1.x, as its router speaks.

``POST /embed`` (and ``POST /``) → ``[[float…]…]``, unit rows unless ``normalize: false``;
``POST /rerank`` → ``[{index, score, text?}]`` best first; ``POST /embed_sparse`` →
``[[{index, value}…]…]``; ``GET /info`` / ``GET /health``.  The vectors are honest
(``vectors.py``): similar texts are close, a rerank score is the query's similarity to
the text through a sigmoid, a sparse vector weighs each word at its hashed index.

Validated as TEI does: an empty batch, more than ``max_client_batch_size`` inputs or an
input over ``max_input_length`` tokens (without ``truncate``) is ``413 Validation``; a
body over the payload limit is axum's plain-text 413.  Token counts go in
``x-compute-tokens``.  One deliberate difference: a real instance serves one model
type and answers ``424 Backend`` on the other routes; this one serves all three.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from ..providers import hf_tei as adapters
from ..tokens import count_tokens, split_tokens
from .base import BadRequest, Call, Protocol, Reply, Route, bearer
from .hf import HFServer, axum_rejection, compute_headers
from .vectors import embed, embed_many, sparse

__all__ = ["TEI"]


class TEI(HFServer, Protocol):
    adapter = adapters.TEI()
    model_id: ClassVar[str] = "BAAI/bge-small-en-v1.5"
    dims: ClassVar[int] = 384
    max_client_batch_size: ClassVar[int] = 32
    max_input_length: ClassVar[int] = 512
    error_types: ClassVar[dict[int, tuple[str, str]]] = {
        413: ("Validation", "Input validation error: `inputs` cannot be empty"),
        422: ("Tokenizer", "Tokenization error: the input could not be tokenized"),
        424: ("Backend", "Inference failed"),
        429: ("Overloaded", "Model is overloaded"),
        500: ("Backend", "Inference failed: the backend returned an error"),
        503: ("Unhealthy", "unhealthy"),
    }

    def routes(self) -> list[Route]:
        return [
            Route("POST", "", self.embed),
            Route("POST", "/embed", self.embed),
            Route("POST", "/rerank", self.rerank),
            Route("POST", "/embed_sparse", self.embed_sparse),
            Route("GET", "/info", self.info, meta=True),
            Route("GET", "/health", self.health, meta=True),
        ]

    def api_key(self, request: Any) -> str | None:
        return bearer(request)

    def info_body(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "model_sha": None,
            "model_dtype": "float16",
            "model_type": {"embedding": {"pooling": "cls"}},
            "max_concurrent_requests": 512,
            "max_input_length": self.max_input_length,
            "max_batch_tokens": 16384,
            "max_batch_requests": None,
            "max_client_batch_size": self.max_client_batch_size,
            "auto_truncate": False,
            "tokenization_workers": 8,
            "version": "1.8.2",
            "sha": None,
            "docker_label": None,
        }

    # -- input checks, as TEI words them --------------------------------------------------
    def texts(self, call: Call, body: dict[str, Any], field: str = "inputs") -> list[str]:
        """The batch, checked and (with ``truncate``) cut to ``max_input_length`` tokens."""
        self.check_size(call)
        texts = body.get(field)
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise axum_rejection(f"{field}: data did not match any variant of untagged enum Input")
        if not texts:
            raise BadRequest(f"Input validation error: `{field}` cannot be empty", 413)
        if len(texts) > self.max_client_batch_size:
            raise BadRequest(f"batch size {len(texts)} > maximum allowed batch size {self.max_client_batch_size}", 413)
        limit = self.max_input_length
        if body.get("truncate"):
            return ["".join(split_tokens(t)[:limit]) for t in texts]
        for text in texts:
            if (n := count_tokens(text)) > limit:
                message = f"Input validation error: `inputs` must have less than {limit} tokens. Given: {n}"
                raise BadRequest(message, 413)
        return texts

    def served(self, call: Call, body: Any, texts: list[str], tokens: int) -> Reply:
        call.headers.update(compute_headers(
            call, sum(len(t) for t in texts), compute_tokens=tokens, tokenization_time=0,
        ))
        return Reply(body, self.model_id, input_tokens=tokens)

    # -- routes ---------------------------------------------------------------------------
    def embed(self, call: Call, body: dict[str, Any]) -> Reply:
        texts = self.texts(call, body)
        vectors = embed_many(texts, self.dims).astype(np.float64)
        if body.get("normalize", True) is False:  # a raw pooled vector: same direction, its own length
            vectors *= np.array([[1.0 + count_tokens(t) / 8] for t in texts])
        rows = np.round(vectors, 7).tolist()  # about what TEI's float32 printing gives
        return self.served(call, rows, texts, sum(count_tokens(t) for t in texts))

    def rerank(self, call: Call, body: dict[str, Any]) -> Reply:
        query = body.get("query")
        if not isinstance(query, str):
            raise axum_rejection("missing field `query` at line 1 column 2")
        texts = self.texts(call, body, "texts")
        target = embed(query, self.dims)
        ranks = []
        for index, text in enumerate(texts):
            logit = 10.0 * float(target @ embed(text, self.dims)) - 4.0
            score = logit if body.get("raw_scores") else 1.0 / (1.0 + math.exp(-logit))
            rank: dict[str, Any] = {"index": index, "score": round(score, 7)}
            if body.get("return_text"):
                rank["text"] = text
            ranks.append(rank)
        ranks.sort(key=lambda rank: rank["score"], reverse=True)
        tokens = sum(count_tokens(query) + count_tokens(t) for t in texts)
        return self.served(call, ranks, texts, tokens)

    def embed_sparse(self, call: Call, body: dict[str, Any]) -> Reply:
        texts = self.texts(call, body)
        rows = [[{"index": i, "value": v} for i, v in sparse(text).items()] for text in texts]
        return self.served(call, rows, texts, sum(count_tokens(t) for t in texts))
