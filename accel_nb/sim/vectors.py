"""Feature-hashing embeddings: honest vectors with nothing to download.

A text becomes a bag of features (its lower-cased words and the character 3- and
4-grams of each word), each hashed to one of ``dims`` buckets with a hashed sign,
then L2-normalized.  Texts that share words or word pieces share buckets, so their
cosine similarity is high; unrelated texts land near zero.  blake2b (not ``hash()``)
keeps every vector the same across processes and platforms.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable
from functools import lru_cache

import numpy as np

__all__ = ["embed", "embed_many", "sparse"]

_WORD = re.compile(r"\w+")
_NGRAMS = (3, 4)
_WORD_WEIGHT, _NGRAM_WEIGHT = 1.0, 0.5


def embed(text: str, dims: int = 768) -> np.ndarray:
    """One unit-length float32 vector of ``dims`` values."""
    if dims < 1:
        raise ValueError(f"dims must be at least 1, not {dims}")
    features = list(_features(text))
    digests = np.fromiter((_digest(feature) for feature, _ in features), np.uint64, len(features))
    weights = np.fromiter((weight for _, weight in features), np.float64, len(features))
    signs = np.where(digests >> np.uint64(63), 1.0, -1.0)
    vector = np.bincount((digests % np.uint64(dims)).astype(np.intp), weights * signs, minlength=dims)
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:  # no word characters at all: still a valid unit vector
        vector[0] = norm = 1.0
    return (vector / norm).astype(np.float32)


def embed_many(texts: Iterable[str], dims: int = 768) -> np.ndarray:
    """A ``(len(texts), dims)`` float32 matrix, one unit row per text."""
    rows = [embed(text, dims) for text in texts]
    return np.stack(rows) if rows else np.zeros((0, dims), np.float32)


def sparse(text: str, vocab: int = 30522) -> dict[int, float]:
    """A SPLADE-like sparse vector: each word (and word piece) of ``text`` weighs
    ``log(1 + count · weight)`` at its hashed index in a ``vocab``-sized space; all values > 0."""
    weights: dict[int, float] = {}
    for feature, weight in _features(text):
        index = _digest(feature) % vocab
        weights[index] = weights.get(index, 0.0) + weight
    return {index: round(math.log1p(value), 6) for index, value in sorted(weights.items())}


def _features(text: str) -> Iterable[tuple[str, float]]:
    for word in _WORD.findall(text.lower()):
        yield "w:" + word, _WORD_WEIGHT
        padded = f"<{word}>"
        for n in _NGRAMS:
            for i in range(len(padded) - n + 1):
                yield padded[i : i + n], _NGRAM_WEIGHT


@lru_cache(maxsize=1 << 16)
def _digest(feature: str) -> int:
    return int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
