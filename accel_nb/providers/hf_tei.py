"""Hugging Face text-embeddings-inference (TEI): ``/embed``, ``/rerank``, ``/embed_sparse``.

A TEI server refuses a list longer than ``max_client_batch_size`` (read once per lane
from ``GET /info``) or a body over ``--payload-limit`` (2 MB unless set otherwise);
``batch_limits`` says so, and the client splits long lists into parts within them.
Token counts come from the ``x-compute-tokens`` header.

Where TEI differs from PROTOCOLS.md §6 (read from the router's source): a batch over
``max_client_batch_size``, an empty batch and an input over ``max_input_length`` are
``413 {error_type: "Validation"}``, not 422 (422 is ``Tokenizer``); ``error_type`` is
the Rust variant name (``Overloaded``, ``Validation``, ``Backend``…), capitalized.
One TEI instance serves one model type: ``/rerank`` needs a reranker, ``/embed_sparse``
a SPLADE model, ``/embed`` an embedding model (each answers 424 ``Backend`` otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import errors
from ..types import Request, Usage
from .base import Adapter, BatchLimits, HttpCall, Reply, protocol_error
from .hf import classify_hf, header_int

__all__ = ["TEI", "TEIInfo"]

PAYLOAD_LIMIT = 2_000_000  # TEI's default --payload-limit (bytes); /info does not report it
CLIENT_BATCH = 32  # TEI's default --max-client-batch-size, until /info says otherwise


@dataclass(frozen=True, slots=True)
class TEIInfo:
    model_id: str | None = None
    max_client_batch_size: int = CLIENT_BATCH
    max_input_length: int | None = None


class TEI(Adapter):
    id = "tei"
    title = "Hugging Face TEI"
    aliases = ("hf_tei",)
    key_env = ("HF_TOKEN",)
    base_url_env = ("TEI_BASE_URL",)
    # TEI's own default port is 8080 too; 8081 keeps it apart from a local TGI by default
    default_base_url = "http://localhost:8081"
    sim_path = "/tei"
    default_model = "tei"  # a label: the server embeds with the one model it was started with
    models = ("tei",)
    needs_key = False
    kinds = frozenset({"embed", "rerank", "embed_sparse"})
    default_concurrency = 32

    # -- discovery ----------------------------------------------------------------------
    def discover(self, base_url: str, key: str | None) -> HttpCall | None:
        return HttpCall("GET", base_url + "/info", self.headers(key))

    def learn(self, body: Any) -> TEIInfo:
        if not isinstance(body, dict):
            raise protocol_error("TEI /info is not a JSON object", body)
        batch = body.get("max_client_batch_size")
        length = body.get("max_input_length")
        return TEIInfo(
            model_id=body.get("model_id"),
            max_client_batch_size=batch if isinstance(batch, int) and batch > 0 else CLIENT_BATCH,
            max_input_length=length if isinstance(length, int) else None,
        )

    def batch_limits(self, info: Any) -> BatchLimits:
        batch = info.max_client_batch_size if isinstance(info, TEIInfo) else CLIENT_BATCH
        return BatchLimits(items=batch, bytes=PAYLOAD_LIMIT)

    def models_call(self, base_url: str, key: str | None) -> HttpCall | None:
        return self.discover(base_url, key)

    def parse_models(self, body: Any) -> list[str]:
        model = body.get("model_id") if isinstance(body, dict) else None
        return [model] if isinstance(model, str) else []

    # -- requests -----------------------------------------------------------------------
    def build(self, req: Request, base_url: str, key: str | None, info: Any = None) -> HttpCall:
        self.check_kind(req)
        extra = req.payload if isinstance(req.payload, dict) else {}
        if req.kind == "rerank":
            body: dict[str, Any] = {"query": extra.get("query", ""), "texts": req.inputs}
            body.update((name, extra[name]) for name in ("return_text", "raw_scores") if name in extra)
        else:
            body = {"inputs": req.inputs}
            if req.kind == "embed":
                body["normalize"] = bool(extra.get("normalize", True))
        body.update(req.params)
        path = {"embed": "/embed", "rerank": "/rerank", "embed_sparse": "/embed_sparse"}[req.kind]
        return HttpCall("POST", base_url + path, self.headers(key), body)

    # -- replies ------------------------------------------------------------------------
    def parse(self, req: Request, body: Any) -> Reply:
        if not isinstance(body, list) or len(body) != len(req.inputs):
            raise protocol_error(f"TEI {req.kind} reply is not a list with one entry per input", body)
        try:
            if req.kind == "embed":
                return Reply(vectors=body)
            if req.kind == "rerank":
                rows = [(int(r["index"]), float(r["score"]), r.get("text")) for r in body]
                return Reply(data=rows)
            sparse = [{int(v["index"]): float(v["value"]) for v in row} for row in body]
            return Reply(data=sparse)
        except (KeyError, TypeError, ValueError):
            raise protocol_error(f"TEI {req.kind} reply has the wrong shape", body) from None

    def header_usage(self, headers: Mapping[str, str]) -> Usage | None:
        tokens = header_int(headers, "x-compute-tokens")
        return None if tokens is None else Usage(tokens, 0)

    def classify(self, status: int, headers: Mapping[str, str], body: bytes) -> errors.AccelError:
        return classify_hf(status, headers, body, self.title)
