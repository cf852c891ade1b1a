"""What Hugging Face's two self-hosted servers, TGI and TEI, share on the wire.

Both are axum servers started with an optional ``--api-key`` (sent as ``Authorization:
Bearer``; by convention the same ``HF_TOKEN`` that reads gated models from the Hub).
Their own errors are ``{error, error_type}``; TGI writes the type in lower case
(``overloaded``), TEI as the Rust variant name (``Overloaded``), so the lookup ignores
case.  What the framework itself refuses has no such body: an empty 401 for a wrong
key, plain text for a body over ``--payload-limit`` (413) or JSON it cannot parse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .. import errors
from .base import classify_status, parse_json, snippet

__all__ = ["classify_hf", "frame_error", "header_int"]

#: ``error_type`` (lower-cased) -> class; anything else is decided by the status.
_ERROR_TYPES: dict[str, type[errors.AccelError]] = {
    "overloaded": errors.OverloadedError,  # TGI's and TEI's concurrency limit is full: retry later
    "validation": errors.BadRequestError,
    "tokenizer": errors.BadRequestError,
    "template_error": errors.BadRequestError,
    "tool_error": errors.BadRequestError,
    "missing_template_variable": errors.BadRequestError,
    "generation": errors.ServerError,
    "incomplete_generation": errors.ServerError,
    "backend": errors.ServerError,
    "unhealthy": errors.OverloadedError,
    "healthcheck": errors.OverloadedError,
}

#: The status the same error gets outside a stream (for an error frame inside a 200 stream).
_TYPE_STATUS = {"overloaded": 429, "validation": 422, "generation": 424, "incomplete_generation": 500}

# TGI: "`inputs` tokens + `max_new_tokens` must be <= 4096. Given: …", "`inputs` must have less
# than 4095 tokens. Given: …"; TEI: "`inputs` must have less than 512 tokens. Given: 600".
_TOO_LONG = re.compile(r"`inputs` (?:tokens \+ `max_new_tokens` must be <=|must have less than \d+ tokens)")
# TEI's Backend error when the route does not fit the served model ("model is not a re-ranker model").
_WRONG_MODEL = re.compile(r"model is not an? [\w -]+model|not a re-ranker|splade", re.IGNORECASE)


def classify_hf(status: int, headers: Mapping[str, str], body: bytes, server: str) -> errors.AccelError:
    """An error reply (or an error frame inside a 200 stream) of TGI or TEI as an ``AccelError``."""
    data = parse_json(body)
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return from_fields(status, data["error"], data.get("error_type"), server, headers)
    if status == 413:
        return errors.BadRequestError(
            f"the request body is over {server}'s payload limit: {snippet(body) or 'HTTP 413'}",
            status=status,
            hint="send fewer or shorter inputs per call, or start the server with a larger --payload-limit",
        )
    if status == 401:
        return errors.AuthenticationError(
            f"{server} refused the request: it runs with --api-key and the token sent is wrong or missing",
            status=status,
            hint="set HF_TOKEN to the server's --api-key, or run `%accel keys`",
        )
    return classify_status(status, snippet(body) or f"HTTP {status}", headers=headers)


def from_fields(
    status: int, message: str, error_type: object, server: str, headers: Mapping[str, str] | None = None
) -> errors.AccelError:
    """``{error, error_type}`` as an ``AccelError``: by type, refined by the message."""
    kind = error_type.lower() if isinstance(error_type, str) else ""
    cls = _ERROR_TYPES.get(kind)
    hint = None
    if _TOO_LONG.search(message):
        cls = errors.ContextLengthError
        hint = "shorten the input, lower max_tokens, or pass params={'truncate': ...} where the server allows it"
    elif kind == "backend" and _WRONG_MODEL.search(message):
        cls = errors.BadRequestError
        hint = f"this {server} instance serves another kind of model: point base_url at the one that does"
    error = classify_status(status, message, headers=headers, cls=cls)
    if hint:
        error.hint = hint
    return error


def frame_error(frame: dict, server: str) -> errors.AccelError:
    """An ``{error, error_type}`` frame inside a 200 stream: TGI reports a full queue or a
    prompt it refuses this way too, not only a failure after the first token."""
    error_type = frame.get("error_type")
    status = _TYPE_STATUS.get(error_type.lower() if isinstance(error_type, str) else "", 500)
    return from_fields(status, str(frame.get("error") or "error inside the stream"), error_type, server)


def header_int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
