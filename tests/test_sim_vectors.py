"""Feature-hashing embeddings: similarity that means something, unit norm, determinism, dimensions."""

from __future__ import annotations

import numpy as np
import pytest

from accel_nb.sim.vectors import embed, embed_many


def cosine(a: str, b: str, dims: int = 768) -> float:
    return float(embed(a, dims) @ embed(b, dims))


@pytest.mark.parametrize(
    ("text", "similar", "unrelated"),
    [
        ("The cat sat on the mat", "A cat was sitting on the mat", "Quarterly revenue grew by ten percent"),
        ("How do I reset my password?", "I forgot my password, how can I reset it?", "Best pizza in Naples"),
        ("retry with exponential backoff", "exponential backoff for retries", "the opera opens in May"),
    ],
)
def test_similar_texts_are_closer_than_unrelated_ones(text: str, similar: str, unrelated: str) -> None:
    assert cosine(text, similar) > 0.4
    assert cosine(text, similar) > cosine(text, unrelated) + 0.3
    assert cosine(text, text) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("dims", [1, 8, 256, 768, 1536, 3072])
def test_vectors_have_unit_norm_and_the_asked_dimensions(dims: int) -> None:
    for text in ("hello world", "", "!!!", "a much longer text " * 50):
        vector = embed(text, dims)
        assert vector.shape == (dims,)
        assert vector.dtype == np.float32
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_vectors_are_deterministic_across_calls_and_processes() -> None:
    assert np.array_equal(embed("same text", 64), embed("same text", 64))
    # blake2b, not hash(): pinned values hold in any process, on any platform
    assert embed("hello", 4).tolist() == pytest.approx([1 / 3, -2 / 3, 0.0, 2 / 3], abs=1e-6)


def test_embed_many_stacks_rows_and_rejects_bad_dimensions() -> None:
    rows = embed_many(["a", "b", "c"], 32)
    assert rows.shape == (3, 32)
    assert np.array_equal(rows[1], embed("b", 32))
    assert embed_many([], 16).shape == (0, 16)
    with pytest.raises(ValueError, match="dims"):
        embed("x", 0)
