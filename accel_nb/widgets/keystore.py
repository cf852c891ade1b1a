"""Keeping a key typed into the key manager beyond this session, when the user asks for it:
in the OS keyring (when a real backend exists) or in the config file, readable by the
owner only (0600).  The default is neither: memory only.

``config.load_settings`` reads both back (``config`` and ``keyring`` sources).  The keyring
holds one entry per provider (service ``accel_nb``, keys one per line); a secret-free index
file beside ``config.toml`` lists those providers so a client start only touches the
keyring for providers that have an entry.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from ..config import KEYRING_INDEX, KEYRING_SERVICE, config_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["keyring_backend", "save_to_config", "save_to_keyring"]


def keyring_backend() -> str | None:
    """The usable keyring backend's name, or ``None`` (package missing, or only the fail /
    null backends, which would lose or refuse the key)."""
    try:
        import keyring
        from keyring.backends import fail, null
    except ImportError:
        return None
    backend = keyring.get_keyring()
    backends = getattr(backend, "backends", [backend])  # a ChainerBackend wraps several
    if not backends or all(isinstance(b, (fail.Keyring, null.Keyring)) for b in backends):
        return None
    return type(backend).__name__


def save_to_keyring(provider: str, key: str) -> None:
    """Add ``key`` to the provider's keyring entry and list the provider in the index."""
    import keyring

    stored = (keyring.get_password(KEYRING_SERVICE, provider) or "").splitlines()
    if key not in stored:
        keyring.set_password(KEYRING_SERVICE, provider, "\n".join([*stored, key]))
    index = config_path().with_name(KEYRING_INDEX)
    listed = index.read_text().split() if index.is_file() else []
    if provider not in listed:
        _write_private(index, "\n".join([*listed, provider]) + "\n")


def save_to_config(provider: str, key: str, path: Path | None = None) -> Path:
    """Append ``key`` to ``[providers.<provider>] keys`` in the config file, which is then
    rewritten with mode 0600 (comments in a hand-edited file are not kept)."""
    path = path or config_path()
    data: dict[str, Any] = {}
    if path.is_file():
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    section = data.setdefault("providers", {}).setdefault(provider, {})
    keys = section.get("keys", [])
    keys = [keys] if isinstance(keys, str) else list(keys)
    if key not in keys:
        section["keys"] = [*keys, key]
    _write_private(path, "\n".join(_toml(data)).lstrip("\n") + "\n")
    return path


def _write_private(path: Path, text: str) -> None:
    """Write through a new 0600 file and rename it over ``path``: the key is never readable
    by others, not even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)  # in case the file already existed with wider bits
    os.replace(tmp, path)


def _toml(table: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[str]:
    """The config file's shape as TOML: scalars and lists, then sub-tables."""
    lines = [f"{_key(k)} = {_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    for name, sub in table.items():
        if isinstance(sub, dict):
            path = (*prefix, name)
            lines += ["", f"[{'.'.join(map(_key, path))}]", *_toml(sub, path)]
    return lines


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(_value, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} to the config file")
