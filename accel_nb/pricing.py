"""What a request cost, from a price table the user can override."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from .errors import BadRequestError
from .types import Usage

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["PriceTable"]

_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")


class PriceTable:
    """USD per million input / output tokens, by provider and model."""

    def __init__(self, prices: Mapping[str, Mapping[str, Mapping[str, float]]]) -> None:
        self._prices = {provider: dict(models) for provider, models in prices.items()}

    @classmethod
    def load(cls, override: Path | None = None) -> PriceTable:
        """The built-in table, with ``override`` (same TOML shape) on top."""
        table = tomllib.loads(resources.files("accel_nb.data").joinpath("prices.toml").read_text())
        if override is not None:
            try:
                extra = tomllib.loads(Path(override).read_text())
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise BadRequestError(f"price file {override} could not be read: {exc}") from None
            for provider, models in extra.items():
                table.setdefault(provider, {}).update(models)
        return cls(table)

    def price(self, provider: str, model: str) -> Mapping[str, float] | None:
        models = self._prices.get(provider, {})
        return models.get(model) or models.get(_SNAPSHOT.sub("", model))

    def cost(self, provider: str, model: str, usage: Usage) -> float | None:
        price = self.price(provider, model)
        if price is None:
            return None
        return (usage.input_tokens * price.get("input", 0.0) + usage.output_tokens * price.get("output", 0.0)) / 1e6
