"""OpenVINO Model Server: KServe v2 tensors on toy models, legacy TF-Serving ``:predict``, and
the OpenAI-compatible ``/v3`` (the OpenAI protocol with OVMS's prefix and error shape).

The toy models compute row by row, so a test can check that every row of a coalesced batch
went back to the caller that sent it:

=================  =============================  =========================================
model              inputs                         outputs
=================  =============================  =========================================
``affine``         x FP32 (any, 4)                y FP32 = 2x + 1
``argmax``         scores FP32 (any, 10)          label INT64 (any,), score FP32 (any,)
``arith``          a, b INT32 (any, 3)            sum INT32 = a + b, product INT64 = a * b
``affine-b1``      x FP32 (1, 4)                  y = 2x + 1 (a fixed batch of one)
``identity-<dt>``  x <DT> (any, any)              y = x, for each of the 13 v2 datatypes
``legacy``         the TF-Serving API only        predictions = 2 * instances + 1
=================  =============================  =========================================

Cost model, with realistic latency: a model runs one inference at a time (as with a single
inference stream), each taking about 1 ms plus 20 µs a row — so a thousand one-row requests
queue behind each other while the same rows in batches of 64 take a few dozen requests'
time.  ``x-sim-ttft`` / ``x-sim-tps`` set the per-request time and the rows per second.

Errors are ``{"error": "message"}`` in OVMS's wording on every route.  OVMS has no reply of
its own for overload; the simulator answers it as its HTTP front end does, 503.  It has no
authentication, no rate-limit headers and no request-id header.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .. import tensors
from ..errors import AccelError
from ..providers import ovms as adapters
from .base import BadRequest, Call, Reply, Route
from .openai import OpenAI

if TYPE_CHECKING:
    from .server import Pace, Window

__all__ = ["MODELS", "OVMS", "ToyModel"]

Specs = dict[str, tuple[str, tuple[int, ...]]]


@dataclass(frozen=True)
class ToyModel:
    inputs: Specs
    outputs: Specs
    run: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]

    def metadata(self, name: str) -> dict[str, Any]:
        def tensors_of(specs: Specs) -> list[dict[str, Any]]:
            return [{"name": n, "datatype": dt, "shape": list(shape)} for n, (dt, shape) in specs.items()]

        return {"name": name, "versions": ["1"], "platform": "OpenVINO",
                "inputs": tensors_of(self.inputs), "outputs": tensors_of(self.outputs)}


def _affine(t: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"y": (2 * t["x"] + 1).astype(np.float32)}


MODELS: dict[str, ToyModel] = {
    "affine": ToyModel({"x": ("FP32", (-1, 4))}, {"y": ("FP32", (-1, 4))}, _affine),
    "argmax": ToyModel(
        {"scores": ("FP32", (-1, 10))},
        {"label": ("INT64", (-1,)), "score": ("FP32", (-1,))},
        lambda t: {"label": t["scores"].argmax(axis=1).astype(np.int64), "score": t["scores"].max(axis=1)},
    ),
    "arith": ToyModel(
        {"a": ("INT32", (-1, 3)), "b": ("INT32", (-1, 3))},
        {"sum": ("INT32", (-1, 3)), "product": ("INT64", (-1, 3))},
        lambda t: {"sum": t["a"] + t["b"], "product": t["a"].astype(np.int64) * t["b"]},
    ),
    "affine-b1": ToyModel({"x": ("FP32", (1, 4))}, {"y": ("FP32", (1, 4))}, _affine),
    **{
        f"identity-{datatype.lower()}": ToyModel({"x": (datatype, (-1, -1))}, {"y": (datatype, (-1, -1))},
                                                 lambda t: {"y": t["x"]})
        for datatype in tensors.DATATYPES
    },
}
LEGACY = {"legacy": 4}  # served only by the TF-Serving API: rows of this many FP32 values
_STATUS = {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                     "status": {"error_code": "OK", "error_message": ""}}]}


@dataclass(slots=True)
class Tensors(Reply):
    """An inference reply: its cost is counted in rows, not tokens."""

    rows: int = 0


def _shape(shape: Any) -> str:
    return "(" + ",".join(map(str, shape)) + ")"


class OVMS(OpenAI):
    adapter = adapters.OVMS()
    overload_status = 503
    request_id_header = None
    chat_path = "/v3/chat/completions"
    models_path = "/v3/models"
    embeddings_path = "/v3/embeddings"
    embedding_dims: ClassVar[dict[str, int]] = {"OpenVINO/bge-base-en-v1.5-fp16-ov": 768}
    retry_after_ms = False
    refusal_fields = False
    service_tier = None
    fingerprint = None
    invalid_json_message = "Request body should be JSON object"
    missing_key_message = None
    rate_limit_message = "Too many requests: {used} of {limit} {what} per minute used; try again in {wait}"
    quota_message = "Quota exceeded"
    errors: ClassVar[dict[int, tuple[str, str | None, str]]] = {
        400: ("", None, "Invalid request"),
        401: ("", None, "Unauthorized"),
        403: ("", None, "Forbidden"),
        404: ("", None, "Model with requested name is not found"),
        413: ("", None, "Request body too large"),
        422: ("", None, "Unprocessable request"),
        500: ("", None, "Internal server error"),
        503: ("", None, "Service Unavailable"),
    }
    #: The cost of an inference under realistic latency: 1 ms a request, 50,000 rows a second.
    infer_pace: ClassVar[tuple[float, float]] = (0.001, 50_000.0)

    def __init__(self) -> None:
        self._busy: dict[str, asyncio.Lock] = {}  # one inference at a time per model

    def routes(self) -> list[Route]:
        v2, v1 = "/v2/models/{model}", "/v1/models/{model}"
        routes = [Route("GET", "/v2/health/live", self.health), Route("GET", "/v2/health/ready", self.health),
                  Route("GET", "/v1/config", self.config)]
        for version in ("", "/versions/{version}"):
            routes += [
                Route("GET", v2 + version, self.metadata),
                Route("GET", v2 + version + "/ready", self.ready),
                Route("POST", v2 + version + "/infer", self.infer),
                Route("GET", v1 + version, self.status),
                Route("POST", v1 + version + ":predict", self.predict),
            ]
        return [*super().routes(), *routes]

    # -- the OVMS error shape ------------------------------------------------------------
    def body(self, message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
        return {"error": message}

    def rate_headers(self, window: Window) -> dict[str, str]:
        return {}

    def reply_headers(self, call: Call) -> dict[str, str]:
        return {}

    def model_entry(self, name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": 1_735_689_600, "owned_by": "OVMS"}

    # -- health, metadata, status ----------------------------------------------------------
    def health(self, call: Call, body: None) -> Reply:
        return Reply(None)

    def metadata(self, call: Call, body: None) -> Reply:
        name, model = self._model(call)
        return Reply(model.metadata(name), name)

    def ready(self, call: Call, body: None) -> Reply:
        name, _ = self._model(call)
        return Reply(None, name)

    def config(self, call: Call, body: None) -> Reply:
        return Reply({name: _STATUS for name in (*MODELS, *LEGACY)})

    def status(self, call: Call, body: None) -> Reply:
        name = self._name(call, (*MODELS, *LEGACY))
        return Reply(_STATUS, name)

    def _name(self, call: Call, served: Any) -> str:
        info = call.request.match_info
        name = info["model"]
        if name not in served:
            raise BadRequest("Model with requested name is not found", 404)
        if info.get("version", "1") != "1":
            raise BadRequest("Model with requested version is not found", 404)
        return name

    def _model(self, call: Call) -> tuple[str, ToyModel]:
        name = self._name(call, MODELS)
        return name, MODELS[name]

    # -- inference -----------------------------------------------------------------------
    def infer(self, call: Call, body: dict[str, Any]) -> Tensors:
        name, model = self._model(call)
        inputs = _inputs(model, body.get("inputs"))
        outputs = model.run(inputs)
        wanted = body.get("outputs")
        if wanted:
            names = [o.get("name") if isinstance(o, dict) else None for o in wanted]
            unknown = [n for n in names if n not in outputs]
            if unknown:
                raise BadRequest(f"Invalid output name - Requested: {unknown[0]}; Outputs: {', '.join(outputs)}")
            outputs = {n: outputs[n] for n in names}
        rows = next(iter(inputs.values())).shape[0]
        reply = {"model_name": name, "model_version": "1", "id": body.get("id") or call.uid,
                 "outputs": [tensors.encode(n, a) for n, a in outputs.items()]}
        return Tensors(reply, name, rows=rows)

    def predict(self, call: Call, body: dict[str, Any]) -> Tensors:
        name = self._name(call, LEGACY)
        instances = body.get("instances")
        if not isinstance(instances, list) or not instances:
            raise BadRequest("Invalid JSON structure. Missing instances in row format")
        try:
            x = np.asarray(instances, dtype=np.float32)
        except (TypeError, ValueError):
            raise BadRequest("Could not parse instance content. Not valid ndarray detected") from None
        if x.ndim != 2 or x.shape[1] != LEGACY[name]:
            raise BadRequest(f"Invalid input shape - Expected shape: (-1,{LEGACY[name]}); Actual: {_shape(x.shape)}")
        return Tensors({"predictions": (2 * x + 1).tolist()}, name, rows=len(x))

    async def work(self, call: Call, job: Any, pace: Pace | None) -> None:
        if not isinstance(job, Tensors):
            await super().work(call, job, pace)
            return
        if pace is None:
            return
        per_request, rows_per_s = self.infer_pace if pace is call.sim.latency.default else pace
        busy = self._busy.get(job.model)
        if busy is None:
            busy = self._busy[job.model] = asyncio.Lock()
        async with busy:
            await asyncio.sleep(per_request + job.rows / rows_per_s)


def _inputs(model: ToyModel, given: Any) -> dict[str, np.ndarray]:
    """The request's tensors checked as OVMS checks them, with its messages."""
    if not isinstance(given, list) or not given or not all(isinstance(t, dict) for t in given):
        raise BadRequest("Invalid JSON structure. Missing inputs in column format")
    if len(given) != len(model.inputs):
        raise BadRequest(f"Invalid number of inputs - Expected: {len(model.inputs)}; Actual: {len(given)}")
    arrays = {}
    for tensor in given:
        name = tensor.get("name")
        if name not in model.inputs:
            raise BadRequest(f"Missing input with specific name - Required input: {', '.join(model.inputs)}")
        datatype, shape = model.inputs[name]
        got, data = tensor.get("shape"), tensor.get("data")
        if tensor.get("datatype") != datatype:
            raise BadRequest(f"Invalid input precision - Expected: {datatype}; Actual: {tensor.get('datatype')}; "
                             f"input name: {name}")
        if not (isinstance(got, list) and all(isinstance(d, int) and d >= 0 for d in got) and isinstance(data, list)):
            raise BadRequest(f"Could not parse input content. Not valid ndarray detected; input name: {name}")
        if len(got) != len(shape):
            raise BadRequest(f"Invalid number of shape dimensions - Expected: {len(shape)}; Actual: {len(got)}; "
                             f"input name: {name}")
        if shape[0] >= 0 and got[0] != shape[0]:
            raise BadRequest(f"Invalid input batch size - Expected: {shape[0]}; Actual: {got[0]}; input name: {name}")
        if any(want >= 0 and want != have for want, have in zip(shape, got, strict=True)):
            raise BadRequest(f"Invalid input shape - Expected shape: {_shape(shape)}; Actual: {_shape(got)}; "
                             f"input name: {name}")
        if len(data) != math.prod(got):
            raise BadRequest(f"Invalid number of values in tensor proto container - Expected: {math.prod(got)}; "
                             f"Actual: {len(data)}; input name: {name}")
        try:
            arrays[name] = tensors.decode(tensor)
        except AccelError:
            raise BadRequest(f"Could not parse input content. Not valid ndarray detected; input name: {name}") from None
    if len({a.shape[0] for a in arrays.values()}) > 1:
        raise BadRequest("Invalid JSON structure. Request inputs have different batch sizes")
    return arrays
