"""Management calls (list, pull, delete, statistics…) described as data, for adapters that have them.

A self-hosted server's management routes are plain REST: a method, a path that may
name the model, an optional JSON body, and one field of the reply worth returning.
An adapter lists them in ``admin_ops``; the client sends them as ``"admin"`` requests
through the same queue, retries and ledger as any other call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import quote

from .. import errors
from ..types import Request, Usage
from .base import Adapter, HttpCall, Reply, protocol_error

__all__ = ["AdminCall", "AdminOp", "admin_call", "admin_reply"]


class AdminOp(NamedTuple):
    method: str
    path: str  # ``{model}`` stands for the request's model, URL-quoted
    field: str | None = None  # the reply field that is the result (``None``: the whole reply)
    empty_ok: bool = False  # the server answers with an empty body


@dataclass(frozen=True, slots=True)
class AdminCall:
    """``Request.payload`` of an ``"admin"`` request: which operation, with what JSON body."""

    op: str
    body: dict[str, Any] | None = None


def _op(adapter: Adapter, req: Request) -> AdminOp:
    ops: dict[str, AdminOp] = getattr(adapter, "admin_ops", {})
    call = req.payload
    op = ops.get(call.op) if isinstance(call, AdminCall) else None
    if op is None:
        raise errors.BadRequestError(
            f"{adapter.id} has no management call {getattr(call, 'op', call)!r} (it has: {', '.join(sorted(ops))})",
            provider=adapter.id,
        )
    return op


def admin_call(adapter: Adapter, req: Request, base_url: str, key: str | None) -> HttpCall:
    op = _op(adapter, req)
    url = base_url + op.path.format(model=quote(req.model, safe=""))
    return HttpCall(op.method, url, adapter.headers(key), req.payload.body, empty_ok=op.empty_ok)


def admin_reply(adapter: Adapter, req: Request, body: Any) -> Reply:
    op = _op(adapter, req)
    output = body
    if op.field is not None:
        if not isinstance(body, dict) or op.field not in body:
            raise protocol_error(f"{adapter.id} {req.payload.op} reply has no {op.field!r}", body)
        output = body[op.field]
    return Reply(data=output, raw=body, usage=Usage(), model=req.model or None)
