"""``KeyManager``: enter API keys without them ever reaching the notebook file.

The key travels once, from the browser to the kernel, in the password field's value.
The handler that receives it clears the field in the same call (so the synced state,
and with it any saved widget state, holds ``""``), moves the key into the client's
memory and forgets it.  The field's value is tagged ``echo_update=False`` so the kernel
never sends the key back to the browser either.  Labels (source and last 4 characters)
are all that is ever shown.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import ipywidgets as w
from traitlets import Unicode

from .. import errors
from ._base import LiveBox, set_if_changed
from ._feed import Batch
from ._html import STYLE, esc
from ._model import key_rows
from .keystore import keyring_backend, save_to_config, save_to_keyring

if TYPE_CHECKING:
    from ..client import Client

__all__ = ["KeyEntry", "KeyManager"]

_KEEP = {"memory": "session", "keyring": "keyring", "config": "config"}
_COLUMNS = ("provider", "key", "source", "last 4", "lane state", "", "")


class KeyEntry(w.Password):
    """A password field whose value the kernel never echoes back to the browser."""

    value = Unicode("", help="cleared by the kernel as soon as it arrives").tag(sync=True, echo_update=False)


class KeyManager(LiveBox):
    """A masked entry per provider, the keys in use with their lane state, a verify button
    per key, and where to keep a new key: this session only (default), the OS keyring, or
    the config file (0600)."""

    def __init__(self, client: Client | None = None) -> None:
        super().__init__(client)
        providers = list(self.client.settings.providers)
        self.provider = w.Dropdown(options=providers, description="provider", layout=w.Layout(width="220px"))
        self.entry = KeyEntry(
            placeholder="paste a key, press Enter", continuous_update=False, layout=w.Layout(width="320px")
        )
        self.add = w.Button(description="Add key", icon="key", button_style="primary")
        backend = keyring_backend()
        keep = [("this session only", "memory")]
        keep += [(f"OS keyring ({backend})", "keyring")] if backend else []
        keep += [("config file (0600)", "config")]
        self.keep = w.RadioButtons(options=keep, value="memory", description="keep in")
        self.status = w.HTML()
        self.table = w.GridBox(layout=w.Layout(grid_template_columns="repeat(7, max-content)", grid_gap="2px 12px"))
        self._rows: dict[tuple[str, str], w.HTML] = {}
        self._submitted = 0.0
        note = "" if backend else "<span class='accel-muted'>(no OS keyring backend found)</span>"
        self.children = [
            w.HTML("<b>API keys</b> <span class='accel-muted'>never saved in the notebook</span>" + STYLE),
            w.HBox([self.provider, self.entry, self.add]),
            w.HBox([self.keep, w.HTML(note)]),
            self.status,
            self.table,
        ]
        self.add_class("accel-key-manager")
        self.entry.observe(self._on_entry, "value")
        self.add.on_click(self._on_add)
        self._start()

    # -- the key arrives (kernel main thread) ----------------------------------------------
    def _on_entry(self, change: dict[str, Any]) -> None:
        key = change["new"]
        if not key:
            return
        self.entry.value = ""  # first, before anything can fail: the synced value is empty again
        self._submitted = time.monotonic()
        pid, keep = self.provider.value, self.keep.value
        try:
            if keep == "keyring":
                save_to_keyring(pid, key)
            elif keep == "config":
                save_to_config(pid, key)
            label = self.client.add_key(pid, key, source=_KEEP[keep])
        except Exception as exc:  # never show the exception text: it might quote the key
            self._say(f"could not add the key for {pid} ({type(exc).__name__}); it was not kept")
            return
        finally:
            del key
        where = {"memory": "in memory for this session", "keyring": "in the OS keyring", "config": "in the config file"}
        self._say(f"added {label} for {pid}, kept {where[keep]}")
        self.feed.poke()

    def _on_add(self, _button: w.Button) -> None:
        # the browser sends the field's value (blur) before the click, so the key is in already
        if time.monotonic() - self._submitted > 2:
            self._say("type or paste a key into the field first")

    def _say(self, text: str) -> None:
        self.status.value = f"<span class='accel-key-status'>{esc(text)}</span>"

    # -- the table (render thread) ---------------------------------------------------------
    def update(self, batch: Batch) -> None:
        rows = key_rows(self.client.settings, batch.stats, batch.time)
        if [(r["provider"], r["label"]) for r in rows] != list(self._rows):
            self._rebuild(rows)
        for row in rows:
            set_if_changed(self._rows[(row["provider"], row["label"])], "value", esc(row["state"]))

    def _rebuild(self, rows: list[dict[str, str]]) -> None:
        old = self.table.children
        cells: list[w.Widget] = [w.HTML(f"<b>{esc(c)}</b>") for c in _COLUMNS]
        states = {}
        for row in rows:
            pid, label = row["provider"], row["label"]
            state = states[(pid, label)] = w.HTML(esc(row["state"]))
            verify = w.Button(description="verify", tooltip="list the provider's models with it", layout=_button())
            remove = w.Button(description="remove", tooltip="stop using this key in this session", layout=_button())
            verify.on_click(lambda _b, pid=pid, label=label: self._verify(pid, label))
            remove.on_click(lambda _b, pid=pid, label=label: self._remove(pid, label))
            cells += [w.HTML(esc(x)) for x in (pid, label, row["source"], row["last4"])] + [state, verify, remove]
        self.table.children = cells
        self._rows = states
        for widget in old:
            widget.close()

    # -- per-key actions (kernel main thread; results land on the render thread) -------------
    def _verify(self, pid: str, label: str) -> None:
        self._say(f"checking {label} with {pid}…")

        def done(result: Any) -> None:
            if isinstance(result, Exception):
                self._say(f"{label}: {type(result).__name__}: {getattr(result, 'message', result)}")
            elif result["ok"]:
                self._say(f"✓ {label} works with {pid} ({result['models']} models listed)")
            else:
                self._say(f"✗ {label} was refused by {pid}: {result['error']}")

        self.in_background(lambda: self.client.verify_key(pid, label), done)

    def _remove(self, pid: str, label: str) -> None:
        try:
            self.client.remove_key(pid, label)
        except errors.AccelError as exc:  # gone already: a second click on a row not yet redrawn
            self._say(exc.message)
            return
        self._say(f"removed {label} from this session (a copy kept in the keyring or config file stays there)")
        self.feed.poke()


def _button() -> w.Layout:
    return w.Layout(width="80px")
