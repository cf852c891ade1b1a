"""``Embeddings``: a numpy array of row vectors that remembers the request behind it."""

from __future__ import annotations

from typing import Any

import numpy as np

from .types import Response, Usage

__all__ = ["Embeddings"]


class Embeddings(np.ndarray):
    """Shape ``(len(texts), dim)``, float32, rows L2-normalized unless asked not to.

    It is a plain ``numpy.ndarray`` for every numeric purpose; ``.response`` keeps the
    provider, model, usage, cost and request id of the call that made it.
    """

    response: Response | None

    def __new__(cls, vectors: Any, response: Response | None = None, normalize: bool = True) -> Embeddings:
        array = np.asarray(vectors, dtype=np.float32)
        if array.ndim == 1:
            array = array.reshape(1, -1) if array.size else array.reshape(0, 0)
        if normalize and array.size:
            norms = np.linalg.norm(array, axis=1, keepdims=True)
            array = array / np.where(norms == 0, 1, norms)
        result = array.view(cls)
        result.response = response
        return result

    def __array_finalize__(self, obj: Any) -> None:
        self.response = getattr(obj, "response", None)

    @property
    def usage(self) -> Usage | None:
        return self.response.usage if self.response else None
