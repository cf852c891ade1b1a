"""KServe v2 tensors as numpy arrays: the datatype table, JSON encoding and decoding, the
check of an input against a model's metadata, and ``InferResult``.

Shared by the OVMS adapter and the simulator, so both sides read the wire format the same
way.  Imported only when tensors are used: numpy never loads at ``import accel_nb``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .errors import BadRequestError, ProtocolError
from .types import Response

__all__ = ["DATATYPES", "InferResult", "conform", "datatype_of", "decode", "encode", "shape_text"]

#: Every KServe v2 datatype and the numpy dtype it becomes (BYTES: an object array of ``bytes``).
DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
_BY_DTYPE = {dtype: name for name, dtype in DATATYPES.items() if name != "BYTES"}


def datatype_of(array: np.ndarray) -> str | None:
    """The v2 datatype of an array (strings and bytes are BYTES); ``None`` when v2 has none."""
    if array.dtype.kind in "OSU":
        return "BYTES"
    return _BY_DTYPE.get(array.dtype)


def shape_text(shape: Sequence[int]) -> str:
    """``[-1, 4]`` -> ``(any, 4)``: a model's shape as a person reads it."""
    dims = ["any" if d < 0 else str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def encode(name: str, array: np.ndarray) -> dict[str, Any]:
    """One v2 JSON tensor: ``{name, shape, datatype, data}`` with the data flat, row-major."""
    datatype = datatype_of(array)
    if datatype is None:
        raise BadRequestError(f"input {name!r} has dtype {array.dtype}, which KServe v2 cannot carry")
    if datatype == "BYTES":
        try:
            data: list[Any] = [_as_bytes(v).decode("utf-8") for v in array.ravel()]
        except UnicodeDecodeError:
            raise BadRequestError(
                f"input {name!r} holds bytes that are not UTF-8 text, which the JSON API cannot carry",
                hint="send text, or base64-encode binary data first",
            ) from None
    else:
        data = array.ravel().tolist()
    return {"name": name, "shape": list(array.shape), "datatype": datatype, "data": data}


def decode(tensor: Mapping[str, Any]) -> np.ndarray:
    """A v2 JSON tensor as an array of its datatype and shape; ``ProtocolError`` when it is malformed."""
    try:
        datatype, shape, data = tensor["datatype"], tensor["shape"], tensor["data"]
        dtype = DATATYPES[datatype]
        if datatype == "BYTES":
            array = np.empty(len(data), dtype=object)
            array[:] = [_as_bytes(v) for v in data]
        else:
            array = np.asarray(data, dtype=dtype)
        return array.reshape(shape)
    except (KeyError, TypeError, ValueError):
        what = tensor.get("name", "?") if isinstance(tensor, Mapping) else "?"
        raise ProtocolError(f"output tensor {what!r} is not a valid KServe v2 tensor") from None


def conform(name: str, value: Any, datatype: str, shape: Sequence[int], where: str) -> np.ndarray:
    """``value`` as the array input ``name`` of model ``where`` takes, or a ``BadRequestError``
    saying what it is and what the model expects.

    An array must already have the model's dtype (a silent cast could lose data); a list or a
    scalar is converted to it.
    """
    want = DATATYPES.get(datatype)
    if want is None:
        raise ProtocolError(f"{where} declares input {name!r} as {datatype!r}, which is not a KServe v2 datatype")
    expects = f"{datatype} ({'bytes' if datatype == 'BYTES' else want.name}) shaped {shape_text(shape)}"
    if isinstance(value, np.ndarray):
        if datatype_of(value) != datatype:
            fix = "an array of bytes or str" if datatype == "BYTES" else f"{name}.astype('{want.name}')"
            raise BadRequestError(
                f"input {name!r} of {where} is {value.dtype}, but the model expects {expects}",
                hint=f"pass {fix}",
            )
        array = value
    else:
        try:
            array = np.asarray(value, dtype=object if datatype == "BYTES" else want)
        except (TypeError, ValueError, OverflowError) as exc:
            raise BadRequestError(f"input {name!r} of {where} cannot be read as {expects}: {exc}") from None
    if datatype == "BYTES" and array.dtype.kind in "SU":
        array = array.astype(object)
    if array.ndim != len(shape) or any(
        d >= 0 and d != n for d, n in zip(shape, array.shape, strict=True)
    ):
        raise BadRequestError(
            f"input {name!r} of {where} has shape {shape_text(array.shape)}, but the model expects {expects}",
            hint="reshape the array (the first dimension is usually the batch: x[None] makes one row)",
        )
    return array


class InferResult(dict):
    """The outputs of one inference, ``{name: numpy array}``; ``.response`` keeps the provider,
    model, latency, attempts and request id of the call that made them."""

    def __init__(self, outputs: Mapping[str, np.ndarray], response: Response | None = None) -> None:
        super().__init__(outputs)
        self.response = response

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}: {v.dtype}{list(v.shape)}" for k, v in self.items())
        return f"InferResult({{{parts}}})"
