"""LLVM: the seed project's own model-server REST protocol (generic models such as resnet50, bert-base).

``POST /models/{id}/infer {input, parameters}`` answers ``{output | result, …}``;
``/batch_infer {inputs, parameters}`` answers ``{results: [...]}`` in input order.
Management: ``/models``, ``/models/{id}``, ``/models/{id}/statistics``,
``/models/{id}/optimize {optimization_type}``, ``/status``.  Errors are ``{error}``.
Every request carries ``X-Request-ID`` = our request id, as the seed's client sent one.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

from ..types import Request, Usage
from .admin import AdminOp, admin_call, admin_reply
from .base import Adapter, HttpCall, Reply, protocol_error

__all__ = ["Llvm"]


class Llvm(Adapter):
    """Optional Bearer key (``LLVM_API_KEY``); no streaming."""

    id = "llvm"
    title = "LLVM model server"
    key_env = ("LLVM_API_KEY",)
    base_url_env = ("LLVM_BASE_URL",)
    default_base_url = "http://localhost:8090"
    sim_path = "/llvm"
    default_model = "bert-base"
    models = ("resnet50", "bert-base", "gpt2")
    needs_key = False
    kinds = frozenset({"infer", "infer_batch", "admin"})
    trace_header = "X-Request-ID"

    admin_ops: ClassVar[dict[str, AdminOp]] = {
        "models": AdminOp("GET", "/models", "models"),
        "model": AdminOp("GET", "/models/{model}"),
        "statistics": AdminOp("GET", "/models/{model}/statistics"),
        "optimize": AdminOp("POST", "/models/{model}/optimize"),
        "status": AdminOp("GET", "/status"),
    }

    def build(self, req: Request, base_url: str, key: str | None, info: Any = None) -> HttpCall:
        self.check_kind(req)
        if req.kind == "admin":
            return admin_call(self, req, base_url, key)
        model = quote(req.model, safe="")
        if req.kind == "infer_batch":
            body: dict[str, Any] = {"inputs": list(req.payload)}
            url = f"{base_url}/models/{model}/batch_infer"
        else:
            body = {"input": req.payload}
            url = f"{base_url}/models/{model}/infer"
        if req.params:
            body["parameters"] = req.params
        return HttpCall("POST", url, self.headers(key), body)

    def models_call(self, base_url: str, key: str | None) -> HttpCall | None:
        return HttpCall("GET", base_url + "/models", self.headers(key))

    def parse_models(self, body: Any) -> list[str]:
        models = body.get("models", []) if isinstance(body, dict) else []
        return [m["id"] if isinstance(m, dict) else str(m) for m in models if not isinstance(m, dict) or "id" in m]

    def parse(self, req: Request, body: Any) -> Reply:
        if req.kind == "admin":
            return admin_reply(self, req, body)
        if not isinstance(body, dict):
            raise protocol_error("llvm reply is not an object", body)
        if req.kind == "infer_batch":
            results = body.get("results")
            if not isinstance(results, list) or len(results) != len(req.payload):
                raise protocol_error(f"llvm batch reply has no results list of {len(req.payload)}", body)
            return Reply(data=results, raw=body, usage=Usage(), model=body.get("model"))
        for field in ("output", "result"):
            if field in body:
                output = body[field]
                return Reply(text=output if isinstance(output, str) else "", data=output, raw=body,
                             usage=Usage(), model=body.get("model"))
        raise protocol_error("llvm reply has neither output nor result", body)
