"""``client.opea``: the GenAIComps retriever, through the same engine as chat.

Chat (the ChatQnA megaservice, or the LLM microservice as ``opea:llm``), embeddings
and reranking use the ordinary ``client.chat`` / ``client.embed`` / ``client.rerank``;
retrieval has no generic face.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .. import errors
from ..client import _results
from .base import ServerNamespace

__all__ = ["OpeaServices"]


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise errors.BadRequestError(f"the {what} must be a non-empty string, not {value!r:.60}", provider="opea")
    return value


def _texts(values: Sequence[str]) -> list[str]:
    if isinstance(values, str) or not values or not all(isinstance(v, str) and v.strip() for v in values):
        raise errors.BadRequestError("rerank needs a non-empty list of non-empty texts", provider="opea")
    return list(values)


class OpeaServices(ServerNamespace):
    """>>> docs = client.opea.retrieve("What is OPEA?", k=4)              # doctest: +SKIP
    >>> best = client.rerank("opea", "What is OPEA?", [d["text"] for d in docs])  # doctest: +SKIP
    """

    provider = "opea"

    def retrieve(self, query: str, *, k: int = 4, params: Mapping[str, Any] | None = None,
                 **options: Any) -> list[dict[str, Any]]:
        """The ``k`` stored documents nearest to ``query`` (``{text, metadata}``): the query is
        embedded by the embedding service first, then searched by the retriever."""
        vector = self._client.embed(self.provider, _text(query, "query"), normalize=False, **options)[0]
        payload = {"input": query, "embedding": vector.tolist()}
        return self._client._call("retrieve", "opea:retrieval", payload,
                                  {**options, "params": {"k": k, **(params or {})}}, _results)

    async def aretrieve(self, query: str, *, k: int = 4, params: Mapping[str, Any] | None = None,
                        **options: Any) -> list[dict[str, Any]]:
        vector = (await self._client.aembed(self.provider, _text(query, "query"), normalize=False, **options))[0]
        payload = {"input": query, "embedding": vector.tolist()}
        return await self._client._acall("retrieve", "opea:retrieval", payload,
                                         {**options, "params": {"k": k, **(params or {})}}, _results)
