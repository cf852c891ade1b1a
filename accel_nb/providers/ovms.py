"""OpenVINO Model Server: KServe v2 tensors, the OpenAI-compatible ``/v3``, legacy ``:predict``.

* ``infer``: ``POST /v2/models/{m}[/versions/{v}]/infer`` with tensors as flat JSON data.  The
  model's metadata (``GET /v2/models/{m}``) is read once per model, so a wrong input name,
  dtype or shape is refused before anything is sent, and so requests whose tensors share a
  layout can be coalesced into one call along the batch dimension (``merge`` / ``split``).
* When the v2 API does not know the model (404) but the TF-Serving API does
  (``GET /v1/models/{m}``), the model is remembered as legacy and served through
  ``POST /v1/models/{m}:predict {instances}`` -> ``{predictions}`` (row format).
* ``chat`` / ``embed``: the OpenAI shape under ``/v3`` (``OpenAICompatible``).
* Errors are ``{"error": "message"}`` on every route; no authentication.

The base URL is the server root.  OVMS's docs run the REST API on port 8000, but vLLM owns
8000 in this project's defaults, so the default here is ``http://localhost:8001``: set
``OVMS_BASE_URL`` (or ``providers.ovms.base_url``) to your server.

numpy is imported only inside tensor methods, never when this module loads.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .. import errors
from ..types import Request, Usage
from .base import HttpCall, Reply, protocol_error
from .openai import OpenAICompatible

__all__ = ["OVMS", "InferPayload", "ModelInfo", "TensorSpec"]


@dataclass(frozen=True, slots=True)
class TensorSpec:
    datatype: str
    shape: tuple[int, ...]  # -1: any size


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What a model takes and gives, from its v2 metadata (nothing is known of a legacy model)."""

    name: str
    versions: tuple[str, ...] = ()
    inputs: Mapping[str, TensorSpec] = field(default_factory=dict)
    outputs: Mapping[str, TensorSpec] = field(default_factory=dict)
    legacy: bool = False  # only the TF-Serving REST API serves it
    raw: Any = None

    @property
    def batched(self) -> bool:
        """Whether the first dimension of every tensor is a free batch dimension."""
        specs = [*self.inputs.values(), *self.outputs.values()]
        return bool(self.inputs) and all(spec.shape and spec.shape[0] < 0 for spec in specs)

    @classmethod
    def from_v2(cls, body: Any) -> ModelInfo:
        def specs(items: Any) -> dict[str, TensorSpec]:
            return {t["name"]: TensorSpec(t["datatype"], tuple(int(d) for d in t["shape"])) for t in items}

        try:
            versions = tuple(map(str, body.get("versions") or ()))
            return cls(body["name"], versions, specs(body["inputs"]), specs(body["outputs"]), raw=body)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise protocol_error("OVMS model metadata lacks inputs/outputs with name, datatype, shape", body) from None


@dataclass(slots=True, eq=False)
class InferPayload:
    """An ``infer`` request's tensors; ``prepare`` turns the inputs into arrays of the model's dtypes."""

    inputs: dict[str, Any]
    outputs: tuple[str, ...] | None = None
    version: str | None = None
    model: ModelInfo | None = None


class OVMS(OpenAICompatible):
    id = "ovms"
    title = "OpenVINO Model Server"
    base_url_env = ("OVMS_BASE_URL",)
    default_base_url = "http://localhost:8001"
    sim_path = "/ovms"
    default_model = "OpenVINO/Qwen3-8B-int4-ov"
    default_embed_model = "OpenVINO/bge-base-en-v1.5-fp16-ov"
    models = ("OpenVINO/Qwen3-8B-int4-ov",)
    needs_key = False
    kinds = frozenset({"chat", "embed", "infer"})
    tensors = True
    described_kinds = frozenset({"infer"})
    batch = (64, 5.0)
    chat_path = "/v3/chat/completions"
    embed_path = "/v3/embeddings"
    models_path = "/v1/config"

    # -- model metadata --------------------------------------------------------------------
    def describe(self, req: Request, base_url: str, key: str | None) -> list[HttpCall]:
        path = _model_path(req.model, req.payload.version)
        return [HttpCall("GET", f"{base_url}/v2{path}", self.headers(key)),
                HttpCall("GET", f"{base_url}/v1{path}", self.headers(key))]

    def learn_model(self, index: int, body: Any) -> ModelInfo:
        if index == 0:
            return ModelInfo.from_v2(body)
        return ModelInfo(name="", legacy=True, raw=body)

    def prepare(self, req: Request, description: ModelInfo) -> None:
        import numpy as np

        from .. import tensors

        payload, where = req.payload, f"ovms:{req.model}"
        payload.model = description
        if description.legacy:
            payload.inputs = {n: np.asarray(v) for n, v in payload.inputs.items()}
            return
        expected = "; ".join(f"{n}: {s.datatype} shaped {tensors.shape_text(s.shape)}"
                             for n, s in description.inputs.items())
        for name in payload.inputs:
            if name not in description.inputs:
                raise errors.BadRequestError(f"{where} has no input {name!r}; it takes {expected}", provider=self.id)
        for name in description.inputs:
            if name not in payload.inputs:
                raise errors.BadRequestError(f"{where} needs input {name!r} too; it takes {expected}", provider=self.id)
        for name in payload.outputs or ():
            if name not in description.outputs:
                known = ", ".join(description.outputs)
                raise errors.BadRequestError(f"{where} has no output {name!r}; its outputs: {known}", provider=self.id)
        payload.inputs = {n: tensors.conform(n, payload.inputs[n], spec.datatype, spec.shape, where)
                          for n, spec in description.inputs.items()}

    def models_call(self, base_url: str, key: str | None) -> HttpCall | None:
        return HttpCall("GET", base_url + self.models_path, self.headers(key))

    def parse_models(self, body: Any) -> list[str]:
        return list(body) if isinstance(body, dict) else []

    def health_call(self, base_url: str, key: str | None) -> HttpCall:
        return HttpCall("GET", f"{base_url}/v2/health/ready", self.headers(key))

    def ready_call(self, base_url: str, key: str | None, model: str, version: str | None) -> HttpCall:
        return HttpCall("GET", f"{base_url}/v2{_model_path(model, version)}/ready", self.headers(key))

    # -- inference -------------------------------------------------------------------------
    def build(self, req: Request, base_url: str, key: str | None, info: Any = None) -> HttpCall:
        if req.kind != "infer":
            return super().build(req, base_url, key, info)
        from .. import tensors

        payload = req.payload
        path = _model_path(req.model, payload.version)
        if payload.model is not None and payload.model.legacy:
            body = {"instances": _instances(payload)}
            return HttpCall("POST", f"{base_url}/v1{path}:predict", self.headers(key), body)
        body: dict[str, Any] = {"inputs": [tensors.encode(n, a) for n, a in payload.inputs.items()]}
        if payload.outputs:
            body["outputs"] = [{"name": n} for n in payload.outputs]
        if req.params:
            body["parameters"] = dict(req.params)
        return HttpCall("POST", f"{base_url}/v2{path}/infer", self.headers(key), body)

    def parse(self, req: Request, body: Any) -> Reply:
        if req.kind != "infer":
            return super().parse(req, body)
        from .. import tensors

        if req.payload.model is not None and req.payload.model.legacy:
            return self._predictions(req, body)
        try:
            outputs = {t["name"]: tensors.decode(t) for t in body["outputs"]}
            described = [{k: t.get(k) for k in ("name", "shape", "datatype")} for t in body["outputs"]]
        except (KeyError, TypeError, AttributeError):
            raise protocol_error("OVMS infer reply has no outputs: [{name, shape, datatype, data}]", body) from None
        raw = {**{k: v for k, v in body.items() if k != "outputs"}, "outputs": described}
        return Reply(data=outputs, raw=raw, model=body.get("model_name"), usage=Usage(0, 0))

    def _predictions(self, req: Request, body: Any) -> Reply:
        import numpy as np

        rows = body.get("predictions") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise protocol_error("OVMS :predict reply has no predictions list", body)
        if rows and all(isinstance(r, dict) for r in rows):
            outputs = {name: np.asarray([r[name] for r in rows]) for name in rows[0]}
        else:
            wanted = req.payload.outputs
            outputs = {wanted[0] if wanted and len(wanted) == 1 else "predictions": np.asarray(rows)}
        return Reply(data=outputs, raw={k: v for k, v in body.items() if k != "predictions"}, usage=Usage(0, 0))

    # -- coalescing along the batch dimension ----------------------------------------------
    def merge_key(self, req: Request) -> Hashable | None:
        payload = req.payload
        if req.kind != "infer" or payload.model is None or payload.model.legacy or not payload.model.batched:
            return None
        if len({a.shape[0] for a in payload.inputs.values()}) != 1:
            return None
        layout = tuple((n, a.dtype.str, a.shape[1:]) for n, a in payload.inputs.items())
        params = json.dumps(req.params, sort_keys=True) if req.params else ""
        headers = tuple(sorted(req.headers.items())) if req.headers else ()
        return req.model, payload.version, layout, payload.outputs, params, headers

    def rows(self, req: Request) -> int:
        return next(iter(req.payload.inputs.values())).shape[0]

    def merge(self, reqs: list[Request]) -> Request:
        import numpy as np

        first = reqs[0].payload
        inputs = {n: np.concatenate([r.payload.inputs[n] for r in reqs]) for n in first.inputs}
        payload = InferPayload(inputs, first.outputs, first.version, first.model)
        return Request("infer", reqs[0].provider, reqs[0].model, params=reqs[0].params, headers=reqs[0].headers,
                       payload=payload)

    def split(self, req: Request, reply: Reply, parts: list[Request]) -> list[Reply]:
        sizes = [self.rows(part) for part in parts]
        total = sum(sizes)
        for name, array in reply.data.items():
            if array.ndim == 0 or array.shape[0] != total:
                raise errors.ProtocolError(
                    f"ovms:{req.model} answered a batch of {total} rows with output {name!r} shaped {list(array.shape)}"
                )
        replies, start = [], 0
        for size in sizes:
            value = {name: array[start:start + size] for name, array in reply.data.items()}
            replies.append(Reply(data=value, raw=reply.raw, model=reply.model, usage=Usage(0, 0)))
            start += size
        return replies

    def summary(self, req: Request) -> Any:
        if req.kind != "infer":
            return super().summary(req)
        payload = req.payload
        shapes = {n: list(getattr(v, "shape", ())) for n, v in payload.inputs.items()}
        return {"inputs": shapes, "outputs": payload.outputs, "version": payload.version}


def _model_path(model: str, version: str | None) -> str:
    path = "/models/" + quote(model, safe="")
    return path + f"/versions/{quote(str(version), safe='')}" if version else path


def _instances(payload: InferPayload) -> list[Any]:
    """TF-Serving's row format: one entry per row, a bare row for a single input."""
    arrays = payload.inputs
    if len(arrays) == 1:
        return next(iter(arrays.values())).tolist()
    rows = len(next(iter(arrays.values())))
    return [{n: a[i].tolist() for n, a in arrays.items()} for i in range(rows)]
