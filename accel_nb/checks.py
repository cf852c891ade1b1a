"""Checking what a caller passes — prompts, messages, options, inputs — before anything is
queued, so bad input fails at once with a message that says what to do."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from . import errors
from .types import Priority

__all__ = [
    "batch_inputs", "json_input", "messages", "no_more", "number", "params", "priority", "rerank_payload",
    "stream_kind", "timeout",
]

TEXT_KINDS = ("chat", "generate")  # kinds whose input is a prompt or messages: what `stream` can stream


def stream_kind(kind: str) -> str:
    if kind not in TEXT_KINDS:
        raise errors.BadRequestError(f"stream kind must be 'chat' or 'generate', not {kind!r}")
    return kind


def rerank_payload(query: Any, return_text: bool, raw_scores: bool) -> dict[str, Any]:
    if not isinstance(query, str) or not query.strip():
        raise errors.BadRequestError(f"rerank needs a non-empty query string, not {query!r:.80}")
    return {"query": query, "return_text": bool(return_text), "raw_scores": bool(raw_scores)}


def number(
    value: Any, where: str, *, whole: bool = False, low: float = 0.0, strict: bool = False, hint: str | None = None
) -> Any:
    """``value`` if it is a (whole) number of at least ``low`` (above it when ``strict``), else a
    ``BadRequestError`` naming ``where``: a bad setting must fail when the client is made, not
    inside the engine at the first request."""
    kind = int if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not (value > low if strict else value >= low):
        bound = f"above {low:g}" if strict else f"at least {low:g}"
        what = "a whole number" if whole else "a number"
        raise errors.BadRequestError(f"{where} must be {what} {bound}, not {value!r:.80}", hint=hint)
    return value


def timeout(value: Any, where: str = "timeout") -> float | None:
    """A timeout in seconds: ``None`` or ``inf`` (no limit) or a positive number.  Checked before
    the request is queued: a timer the engine could not arm would leave it unanswered."""
    if value is None or value == math.inf:
        return None
    hint = "in seconds, counted from submission (time in the queue included); None for no limit"
    return float(number(value, where, low=0.0, strict=True, hint=hint))


def priority(value: Any) -> Priority:
    try:
        return Priority.parse(value)
    except (ValueError, TypeError):
        raise errors.BadRequestError(f"priority must be 'high', 'normal' or 'low', not {value!r:.80}") from None


def no_more(options: dict[str, Any], provider: str) -> None:
    if options:
        raise errors.BadRequestError(
            f"unknown option {sorted(options)[0]!r}",
            provider=provider,
            hint="pass provider-specific fields as params={...}",
        )


def messages(prompt: Any, messages: Any, provider: str) -> list[dict[str, Any]]:
    if messages is None:
        messages = prompt
    if isinstance(messages, str):
        if not messages.strip():
            raise errors.BadRequestError(
                "the prompt is empty", provider=provider, hint="write something for the model to answer"
            )
        return [{"role": "user", "content": messages}]
    if not messages:
        raise errors.BadRequestError("no prompt and no messages were given", provider=provider)
    if isinstance(messages, Mapping) or not isinstance(messages, Iterable):
        raise errors.BadRequestError(
            f"a prompt is a string or a list of messages, not {type(messages).__name__}", provider=provider,
            hint="e.g. client.chat(target, 'Hi') or client.chat(target, [{'role': 'user', 'content': 'Hi'}])",
        )
    result = []
    for message in messages:
        if not (isinstance(message, Mapping) and message.get("role") in ("user", "assistant") and
                isinstance(message.get("content"), str)):
            raise errors.BadRequestError(
                f"each message must be {{'role': 'user'|'assistant', 'content': str}}, not {message!r:.80}",
                provider=provider,
                hint="put a system prompt in system=...",
            )
        result.append({"role": message["role"], "content": message["content"]})
    if result[-1]["role"] != "user" or not result[-1]["content"].strip():
        raise errors.BadRequestError("the last message must be a non-empty user message", provider=provider)
    return result


def _max_tokens(value: Any, provider: str) -> None:
    if not (isinstance(value, int) and value > 0):
        raise errors.BadRequestError(f"max_tokens must be a positive integer, not {value!r}", provider=provider)


def _from_zero_to(name: str, high: float) -> Callable[[Any, str], None]:
    def check(value: Any, provider: str) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= high:
            raise errors.BadRequestError(
                f"{name} must be a number from 0 to {high:g}, not {value!r}", provider=provider
            )

    return check


def _stop(value: Any, provider: str) -> None:
    if not (isinstance(value, str) or (isinstance(value, list) and all(isinstance(s, str) for s in value))):
        raise errors.BadRequestError(f"stop must be a string or a list of strings, not {value!r}", provider=provider)


#: the common generation options, each with its check (a request's body names them in the order given)
_COMMON_CHECKS = {
    "max_tokens": _max_tokens, "temperature": _from_zero_to("temperature", 2.0), "top_p": _from_zero_to("top_p", 1.0),
    "stop": _stop,
}


def params(options: dict[str, Any], provider: str) -> dict[str, Any]:
    """The common generation options given (``None`` is not given), checked, plus ``params={...}``
    passed through.  Only the options present are looked at: this runs on every request."""
    params: dict[str, Any] = {}
    for name in tuple(options):
        check = _COMMON_CHECKS.get(name)
        if check is not None:
            value = options.pop(name)
            if value is not None:
                check(value, provider)
                params[name] = value
    extra = options.pop("params", None)
    if extra is not None:
        if not isinstance(extra, Mapping):
            raise errors.BadRequestError(f"params must be a dict, not {type(extra).__name__}", provider=provider)
        try:
            orjson.dumps(extra, option=orjson.OPT_NON_STR_KEYS)  # what the transport will send
        except (TypeError, ValueError) as exc:
            raise errors.BadRequestError(f"params must be JSON-serializable: {exc}", provider=provider) from None
        params.update(extra)
    return params


def json_input(value: Any) -> Any:
    """An inference input as JSON: numpy arrays (anything with ``tolist``) become lists."""
    value = value.tolist() if hasattr(value, "tolist") else value
    try:
        orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, ValueError) as exc:
        raise errors.BadRequestError(
            f"the input must be JSON (numbers, strings, lists, dicts) or a numpy array: {exc}"
        ) from None
    return value


def batch_inputs(inputs: Iterable[Any]) -> list[Any]:
    one_value = isinstance(inputs, (str, bytes, Mapping)) or not isinstance(inputs, Iterable)
    items = [] if one_value else list(inputs)
    if not items:
        raise errors.BadRequestError(
            f"infer_batch needs a non-empty list of inputs, not {inputs!r:.80}", hint="for one input use infer()"
        )
    return [json_input(item) for item in items]
