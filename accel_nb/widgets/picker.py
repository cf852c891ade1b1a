"""``ProviderPicker``: choose the provider and model that ``%%accel`` (without a target) and the
compare panel use, seeing at a glance which providers can serve right now."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from ._base import LiveBox, set_if_changed
from ._feed import Batch
from ._html import STYLE, dot, esc, table
from ._model import health

if TYPE_CHECKING:
    from ..client import Client
    from ..config import Settings

__all__ = ["ProviderPicker", "health_html"]


def health_html(settings: Settings, stats: Mapping[str, Any]) -> str:
    """One row per provider: health dot, keys, breaker / cooldown summary, last error."""
    rows = []
    for pid, cfg in settings.providers.items():
        entry = stats.get("providers", {}).get(pid)
        state = health(entry, bool(cfg.keys))
        sources = sorted({k.source.split(":")[0] for k in cfg.keys})
        keys = f"{len(cfg.keys)} ({', '.join(sources)})" if cfg.keys else "none"
        last_error = (entry or {}).get("last_error") or ""
        rows.append([
            f"<span class='accel-health' data-provider='{esc(pid)}'>{dot(state.colour, state.text)}</span>{esc(pid)}",
            esc(keys),
            esc(state.text),
            str((entry or {}).get("requests", 0)),
            f"<span class='accel-muted' title='{esc(last_error)}'>{esc(last_error[:80])}</span>",
        ])
    return table(["provider", "keys", "state", "requests", "last error"], rows, "accel-health-table", numeric=(3,))


class ProviderPicker(LiveBox):
    """Provider and model dropdowns plus a health table.  The choice is stored as
    ``client.settings.default_target`` (``"provider:model"``), where the magics read it."""

    def __init__(self, client: Client | None = None) -> None:
        super().__init__(client)
        settings = self.client.settings
        providers = list(settings.providers)
        first = next((p for p in providers if settings.providers[p].keys), providers[0])
        pid, model = self.client.resolve(settings.default_target or first)
        self._fetched: set[str] = set()
        self.provider = w.Dropdown(options=providers, value=pid, description="provider")
        self.model = w.Combobox(value=model, placeholder="model", description="model", ensure_option=False)
        self.status = w.HTML()
        self.health = w.HTML()
        title = w.HTML("<b>Providers</b>" + STYLE)
        self.children = [title, w.HBox([self.provider, self.model]), self.status, self.health]
        self.add_class("accel-provider-picker")
        self.provider.observe(self._on_provider, "value")
        self.model.observe(self._on_model, "value")
        self._show_models(pid, self._configured(pid))
        self._select()
        self._start()

    @property
    def target(self) -> str:
        return f"{self.provider.value}:{self.model.value}" if self.model.value else self.provider.value

    def update(self, batch: Batch) -> None:
        set_if_changed(self.health, "value", health_html(self.client.settings, batch.stats))

    # -- user actions (kernel main thread) -------------------------------------------------
    def _on_provider(self, change: dict[str, Any]) -> None:
        pid = change["new"]
        self.model.value = self.client.resolve(pid)[1]
        self._show_models(pid, self._configured(pid))
        self._select()

    def _on_model(self, change: dict[str, Any]) -> None:
        self._select()

    def _select(self) -> None:
        self.client.settings.default_target = self.target
        self.status.value = f"<span class='accel-muted'>default target: <code>{esc(self.target)}</code></span>"
        self._fetch_models(self.provider.value)

    def _configured(self, pid: str) -> list[str]:
        return [self.client.resolve(pid)[1], *self.client.settings.providers[pid].models]

    def _show_models(self, pid: str, models: list[str]) -> None:
        if pid == self.provider.value:
            self.model.options = tuple(dict.fromkeys(m for m in models if m))

    def _fetch_models(self, pid: str) -> None:
        """The provider's own model list, asked once per provider when it has a key."""
        if pid in self._fetched or not self.client.settings.providers[pid].keys:
            return
        self._fetched.add(pid)

        def done(result: Any) -> None:
            if isinstance(result, Exception):
                self._fetched.discard(pid)
                self.status.value = f"<span class='accel-muted'>{esc(pid)} model list: {esc(result)}</span>"
            else:
                self._show_models(pid, [*self._configured(pid), *result])

        self.in_background(lambda: self.client.models(pid), done)
