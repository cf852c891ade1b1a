"""What the calls whose answer is not text return, and how split calls are joined.

Every result keeps the ``Response`` of the call that made it (request id, latency,
attempts, usage, the server's raw reply), as ``Embeddings`` does.  A call whose inputs
are split over several requests (see ``batching``) gets one answer per part; a *join*
turns each part's reply into its piece as it arrives (``part``, on the engine thread)
and the pieces, in input order, into the result (``whole``).  A call sent as one
request uses the same join (``single``).  numpy is imported only when asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from .providers.base import Reply
from .types import Response

__all__ = [
    "EmbeddingsJoin",
    "Inference",
    "Join",
    "Ranked",
    "Ranking",
    "RankingJoin",
    "Results",
    "SparseEmbeddings",
    "SparseJoin",
]

Pieces = Sequence[tuple[int, Any]]  # (index of the part's first input, its piece), in input order


class Ranked(NamedTuple):
    """One reranked text: its position in the input, its relevance, and (when asked) itself."""

    index: int
    score: float
    text: str | None = None


class Ranking(list):
    """``Ranked`` rows, most relevant first; ``.response`` keeps usage, latency and ids."""

    def __init__(self, rows: Sequence[Ranked] = (), response: Response | None = None) -> None:
        super().__init__(rows)
        self.response = response

    @property
    def indices(self) -> list[int]:
        """Input positions, best first: ``[texts[i] for i in ranking.indices]`` reorders the texts."""
        return [row.index for row in self]


class SparseEmbeddings(list):
    """One ``{index: value}`` dict per input (only the nonzero weights); ``.response`` as above."""

    def __init__(self, rows: Sequence[dict[int, float]] = (), response: Response | None = None) -> None:
        super().__init__(rows)
        self.response = response


class Join:
    def part(self, reply: Reply) -> Any:
        """One part's piece, made from its reply as soon as it arrives."""
        return reply.data

    def whole(self, pieces: Pieces, response: Response) -> Any:
        raise NotImplementedError

    def single(self, reply: Reply, response: Response) -> Any:
        """The result of a call sent as one request (a job's ``finish``)."""
        return self.whole([(0, self.part(reply))], response)


class EmbeddingsJoin(Join):
    def __init__(self, normalize: bool) -> None:
        self.normalize = normalize

    def part(self, reply: Reply) -> Any:
        import numpy as np

        return np.asarray(reply.vectors or [], dtype=np.float32)

    def whole(self, pieces: Pieces, response: Response) -> Any:
        import numpy as np

        from .embeddings import Embeddings

        arrays = [array for _, array in pieces]
        return Embeddings(arrays[0] if len(arrays) == 1 else np.concatenate(arrays), response, self.normalize)


class RankingJoin(Join):
    def whole(self, pieces: Pieces, response: Response) -> Ranking:
        rows = [Ranked(start + index, score, text) for start, piece in pieces for index, score, text in piece]
        rows.sort(key=lambda row: row.score, reverse=True)
        return Ranking(rows, response)


class SparseJoin(Join):
    def whole(self, pieces: Pieces, response: Response) -> SparseEmbeddings:
        return SparseEmbeddings([row for _, piece in pieces for row in piece], response)


class Inference:
    """One input's output, exactly as the server sent it (a vector, class scores, text…).

    ``numpy.asarray(result)`` turns a numeric output into an array; ``.metrics`` is what
    the server said about the run (its ``metrics`` field), ``.response`` the call itself.
    """

    __slots__ = ("output", "response")

    def __init__(self, output: Any, response: Response) -> None:
        self.output = output
        self.response = response

    @property
    def metrics(self) -> dict[str, Any] | None:
        raw = self.response.raw
        return raw.get("metrics") if isinstance(raw, dict) else None

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        import numpy as np  # only when asked for an array

        return np.asarray(self.output, dtype=dtype)

    def __repr__(self) -> str:
        text = repr(self.output)
        text = text if len(text) <= 80 else text[:77] + "..."
        return f"Inference({text}, target={self.response.target!r}, latency_s={self.response.latency_s:.3f})"


class Results(list):
    """A plain list of outputs in input order, plus ``.response`` for the call that made them."""

    def __init__(self, items: Iterable[Any], response: Response | None = None) -> None:
        super().__init__(items)
        self.response = response
