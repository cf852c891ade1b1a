"""Results of calls whose answer is not text: a model server's output, a list of outputs.

Each keeps the ``Response`` of the call that made it (request id, latency, attempts,
the server's raw reply), as ``Embeddings`` does, so nothing about the call is lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .types import Response

__all__ = ["Inference", "Results"]


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
