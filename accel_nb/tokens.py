"""A simple, deterministic tokenizer: the simulator's token counts and the engine's estimates.

Words split into pieces of at most four characters, punctuation counts one each:
close to what BPE tokenizers give for English (about four characters a token), with
no vocabulary to download.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["count_tokens", "estimate_prompt_tokens", "split_tokens"]

_TOKEN = re.compile(r"\s*(?:\w{1,4}|[^\w\s])")


def split_tokens(text: str) -> list[str]:
    """Tokens that join back to ``text`` (minus trailing whitespace): what a stream sends."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    return sum(1 for _ in _TOKEN.finditer(text))


def estimate_prompt_tokens(messages: Iterable[dict[str, Any]], system: str | None = None) -> int:
    total = count_tokens(system) if system else 0
    for message in messages:
        content = message.get("content")
        total += 4 + (count_tokens(content) if isinstance(content, str) else 0)
    return total
