"""The seed's LLVM model server: generic models with deterministic toy outputs tests can check.

* ``bert-base``: text -> the 768-wide feature-hashing vector of ``sim.vectors.embed``;
* ``resnet50``: a numeric array (any shape) -> scores over 10 ImageNet classes, the
  softmax of ``logit[c] = sum_j x[j] * sin((c + 1) * (j + 1))``, with the top label;
* ``gpt2``: text -> generated text (``parameters.max_length`` caps its tokens).

The server counts requests per model (``/statistics``) and remembers each model's
optimization (``/optimize``).  It echoes the caller's ``X-Request-ID``.  Errors are
``{"error": "…"}``; overload is ``503``.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, ClassVar

from .. import __version__
from ..providers import llvm as adapters
from . import textgen
from .base import BadRequest, Call, MessageErrors, Protocol, Reply, Route, bearer_or_anonymous
from .vectors import embed

__all__ = ["LABELS", "Llvm", "classify"]

LABELS = (
    "tench",
    "goldfish",
    "great white shark",
    "tiger shark",
    "hammerhead",
    "electric ray",
    "stingray",
    "cock",
    "hen",
    "ostrich",
)
OPTIMIZATIONS = ("speed", "memory", "balanced")
#: id -> (type, what it takes, what it gives)
MODELS: dict[str, tuple[str, str, str]] = {
    "resnet50": ("vision", "numeric array", "class scores"),
    "bert-base": ("nlp", "text", "768-float embedding"),
    "gpt2": ("nlp", "text", "generated text"),
}


def classify(values: Any) -> dict[str, Any]:
    """resnet50's toy answer for a numeric array (see the module docstring)."""
    flat = list(_numbers(values))
    if not flat:
        raise BadRequest("resnet50 expects a non-empty numeric array as input")
    logits = [sum(x * math.sin((c + 1) * (j + 1)) for j, x in enumerate(flat)) for c in range(len(LABELS))]
    top = max(logits)
    weights = [math.exp(v - top) for v in logits]
    total = sum(weights)
    scores = [w / total for w in weights]
    best = scores.index(max(scores))
    return {"class_id": best, "label": LABELS[best], "scores": scores}


def _numbers(values: Any) -> Any:
    if isinstance(values, bool) or not isinstance(values, (int, float, list)):
        raise BadRequest("resnet50 expects a numeric array as input")
    if isinstance(values, list):
        for value in values:
            yield from _numbers(value)
    else:
        yield float(values)


def _text(model: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{model} expects a non-empty text as input")
    return value


class Llvm(MessageErrors, Protocol):
    """Optional Bearer key; requests and errors per model; ``X-Request-ID`` echoed on every reply."""

    adapter = adapters.Llvm()
    overload_status = 503
    request_id_header = None  # it echoes the caller's X-Request-ID instead (see reply_headers)
    invalid_json_message = "Invalid JSON in request body"
    messages: ClassVar[dict[int, str]] = {
        400: "Invalid request",
        401: "Invalid or missing API key",
        403: "Forbidden",
        404: "Model '{model}' not found",
        413: "Request entity too large",
        422: "Unprocessable input",
        429: "Rate limit exceeded",
        500: "Internal server error",
        503: "Server overloaded, try again later",
    }

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.requests: Counter[str] = Counter()
        self.inputs: Counter[str] = Counter()
        self.optimization = dict.fromkeys(MODELS, "balanced")

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/models", self.models),
            Route("GET", "/models/{model_id}", self.model),
            Route("POST", "/models/{model_id}/infer", self.infer),
            Route("POST", "/models/{model_id}/batch_infer", self.batch_infer),
            Route("GET", "/models/{model_id}/statistics", self.statistics),
            Route("POST", "/models/{model_id}/optimize", self.optimize),
            Route("GET", "/status", self.status),
        ]

    def api_key(self, request: Any) -> str | None:
        return bearer_or_anonymous(request)

    def reply_headers(self, call: Call) -> dict[str, str]:
        return {"X-Request-ID": call.request.headers.get("X-Request-ID") or call.request_id}

    # -- models -----------------------------------------------------------------------------
    @staticmethod
    def _id(call: Call) -> str:
        model_id = call.request.match_info["model_id"]
        if model_id not in MODELS:
            raise BadRequest(f"Model '{model_id}' not found", 404)
        return model_id

    def _card(self, model_id: str) -> dict[str, Any]:
        kind, takes, gives = MODELS[model_id]
        return {
            "id": model_id,
            "type": kind,
            "input": takes,
            "output": gives,
            "status": "loaded",
            "batch_support": True,
            "precisions": ["fp32", "fp16", "int8"],
            "optimization": self.optimization[model_id],
        }

    def models(self, call: Call, body: None) -> Reply:
        return Reply({"models": [self._card(m) for m in MODELS]})

    def model(self, call: Call, body: None) -> Reply:
        model_id = self._id(call)
        return Reply(self._card(model_id), model_id)

    # -- inference --------------------------------------------------------------------------
    def _runner(self, call: Call, model_id: str, parameters: Any) -> Callable[[Any], Any]:
        if parameters is not None and not isinstance(parameters, dict):
            raise BadRequest("parameters must be an object")
        parameters = parameters or {}
        if model_id == "resnet50":
            return classify
        if model_id == "bert-base":
            return lambda value: [round(float(x), 7) for x in embed(_text(model_id, value), 768)]
        limit = parameters.get("max_length", 40)
        if type(limit) is not int or limit < 1:
            raise BadRequest("max_length must be a positive integer")
        return lambda value: textgen.generate(call.sim.seed, "gpt2", _text(model_id, value), limit).text

    def infer(self, call: Call, body: dict[str, Any]) -> Reply:
        model_id = self._id(call)
        if "input" not in body:
            raise BadRequest("Missing 'input' in request body")
        output = self._runner(call, model_id, body.get("parameters"))(body["input"])
        self.requests[model_id] += 1
        self.inputs[model_id] += 1
        metrics = {"inference_time": 0.0042, "throughput": 238.1}
        return Reply({"model": model_id, "result": output, "status": "success", "metrics": metrics}, model_id)

    def batch_infer(self, call: Call, body: dict[str, Any]) -> Reply:
        model_id = self._id(call)
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise BadRequest("'inputs' must be a non-empty list")
        run = self._runner(call, model_id, body.get("parameters"))
        results = [run(value) for value in inputs]
        self.requests[model_id] += 1
        self.inputs[model_id] += len(inputs)
        metrics = {"batch_size": len(inputs), "inference_time": round(0.0042 * len(inputs) * 0.6, 6)}
        return Reply({"model": model_id, "results": results, "status": "success", "metrics": metrics}, model_id)

    # -- management -------------------------------------------------------------------------
    def statistics(self, call: Call, body: None) -> Reply:
        model_id = self._id(call)
        return Reply(
            {
                "model_id": model_id,
                "requests": self.requests[model_id],
                "inputs": self.inputs[model_id],
                "average_latency_ms": 4.2 if self.requests[model_id] else 0.0,
                "optimization": self.optimization[model_id],
            },
            model_id,
        )

    def optimize(self, call: Call, body: dict[str, Any]) -> Reply:
        model_id = self._id(call)
        kind = body.get("optimization_type", "balanced")
        if kind not in OPTIMIZATIONS:
            raise BadRequest(f"optimization_type must be one of {', '.join(OPTIMIZATIONS)}")
        self.optimization[model_id] = kind
        return Reply(
            {
                "model_id": model_id,
                "optimization_type": kind,
                "status": "success",
                "message": f"{model_id} recompiled for {kind}",
            },
            model_id,
        )

    def status(self, call: Call, body: None) -> Reply:
        return Reply(
            {
                "status": "ok",
                "version": f"{__version__}-sim",
                "models_loaded": len(MODELS),
                "uptime_s": round(time.monotonic() - self.started, 3),
            }
        )
