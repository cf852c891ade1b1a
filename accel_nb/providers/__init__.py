"""Provider adapters and the registry that maps ids, aliases and targets to them.

Adding an API is one module with an ``Adapter`` subclass and one line in
``_ADAPTERS``; nothing else in the engine knows provider names.
"""

from __future__ import annotations

import difflib

from ..errors import BadRequestError
from .anthropic import Anthropic
from .base import Adapter
from .gemini import Gemini
from .groq import Groq
from .hf_tei import TEI
from .hf_tgi import TGI
from .llvm import Llvm
from .ollama import Ollama
from .opea import OPEA
from .openai import OpenAI
from .ovms import OVMS
from .s3 import S3
from .vllm import VLLM

__all__ = ["Adapter", "adapters", "get_adapter", "parse_target", "resolve_provider"]

_ADAPTERS: dict[str, Adapter] = {
    a.id: a
    for a in (Anthropic(), OpenAI(), Groq(), Gemini(), TGI(), TEI(), Ollama(), Llvm(), VLLM(), OPEA(), OVMS(), S3())
}
_ALIASES: dict[str, str] = {alias: a.id for a in _ADAPTERS.values() for alias in a.aliases}


def adapters() -> dict[str, Adapter]:
    """Every registered adapter by provider id, in display order."""
    return dict(_ADAPTERS)


def resolve_provider(name: str) -> str:
    """A provider id from an id or alias; a helpful error for anything else."""
    if name in _ADAPTERS:  # the common case, on every request
        return name
    key = name.strip().lower()
    if key in _ADAPTERS:
        return key
    if key in _ALIASES:
        return _ALIASES[key]
    known = sorted(_ADAPTERS) + sorted(_ALIASES)
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
    suggestion = f"did you mean {close[0]!r}? " if close else ""
    raise BadRequestError(
        f"unknown provider {name!r}: {suggestion}known providers are {', '.join(sorted(_ADAPTERS))}",
        hint="write a target as provider or provider:model, e.g. openai:gpt-4o-mini",
    )


def get_adapter(provider: str) -> Adapter:
    adapter = _ADAPTERS.get(provider)
    return adapter if adapter is not None else _ADAPTERS[resolve_provider(provider)]


def parse_target(target: str) -> tuple[str, str | None]:
    """``"claude"`` -> ``("claude", None)``; ``"openai:gpt-4o-mini"`` -> ``("openai", "gpt-4o-mini")``.

    Only the first colon splits, so model names with colons (``llama3:8b``) survive.
    """
    if not isinstance(target, str) or not target.strip():
        raise BadRequestError(
            f"a target must be a non-empty string such as 'claude' or 'openai:gpt-4o-mini', not {target!r}"
        )
    provider, _, model = target.strip().partition(":")
    return resolve_provider(provider), (model.strip() or None)
