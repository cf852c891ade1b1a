"""Settings: defaults, the TOML config file, the environment, ``.env``, and run-time overrides.

One function, ``load_settings``, resolves everything in a fixed order so there is
exactly one answer to "which key / which URL is in use, and why":

* values: built-in defaults < config file < ``Client(config=...)``;
* base URLs: config (file or ``Client``) > the SDK's env var > the public default;
  ``ACCEL_NB_SIM_URL`` (or ``sim_url``) points every provider at the simulator;
* keys, first source that has any: ``Client(keys=...)`` > environment > ``.env`` >
  config file > OS keyring (what the key manager saved there).  ``NAME``, ``NAMES=k1,k2``
  and ``NAME_1 … NAME_N`` all count.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import sys
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import checks
from .engine.keys import STRATEGIES
from .errors import BadRequestError
from .providers import Adapter, adapters, resolve_provider
from .secret import Secret

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = [
    "BatchSettings",
    "BreakerSettings",
    "ProviderSettings",
    "QueueSettings",
    "RetrySettings",
    "Settings",
    "config_path",
    "data_dir",
    "load_settings",
    "read_config_file",
    "simulated",
    "with_simulator",
    "write_config_file",
]

SIM_KEY = "accel-nb-simulator"  # what a keyless provider sends to the simulator
KEYRING_SERVICE = "accel_nb"  # keyring entries: (service, provider id) -> keys, one per line
KEYRING_INDEX = "keyring-providers"  # beside config.toml: provider ids with keyring entries


@dataclass
class RetrySettings:
    max_attempts: int = 6
    max_time_s: float = 120.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0


@dataclass
class BreakerSettings:
    failures: int = 5
    cooldown_s: float = 30.0
    successes: int = 1


@dataclass
class QueueSettings:
    max_size: int = 100_000
    overflow: str = "wait"  # or "reject"


@dataclass
class BatchSettings:
    """Coalescing: small requests to one model wait at most ``delay_ms`` for others, up to
    ``max_size`` rows, and go out as one call (``delay_ms = 0`` turns it off)."""

    max_size: int = 64
    delay_ms: float = 5.0

    @property
    def enabled(self) -> bool:
        return self.delay_ms > 0 and self.max_size > 1


@dataclass
class ProviderSettings:
    base_url: str
    keys: list[Secret]
    concurrency: int
    rpm: float | None = None
    tpm: float | None = None
    key_strategy: str = "round_robin"
    default_model: str | None = None
    models: list[str] = field(default_factory=list)
    services: dict[str, str] = field(default_factory=dict)  # an API's further servers (OPEA's microservices)
    batch: BatchSettings | None = None  # only for APIs whose requests can be coalesced
    options: dict[str, Any] = field(default_factory=dict)  # the API's own settings (Adapter.options)

    def __repr__(self) -> str:  # keys print as sources only
        keys = ", ".join(k.label for k in self.keys) or "none"
        return f"ProviderSettings(base_url={self.base_url!r}, keys=[{keys}], concurrency={self.concurrency})"


@dataclass
class Settings:
    providers: dict[str, ProviderSettings]
    retry: RetrySettings = field(default_factory=RetrySettings)
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    queue: QueueSettings = field(default_factory=QueueSettings)
    ledger_path: Path | None = None
    store_content: bool = True
    cache: bool = False
    cache_path: Path | None = None
    prices_path: Path | None = None
    aliases: dict[str, str] = field(default_factory=dict)
    default_target: str | None = None  # chosen in the provider picker; `%%accel` with no target uses it
    sim_url: str | None = None
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 300.0
    timeout_s: float | None = None


_PROVIDER_FIELDS = {f.name for f in dataclasses.fields(ProviderSettings)} - {"batch", "options"}
_TOP_FIELDS = {
    "providers",
    "retry",
    "breaker",
    "queue",
    "ledger",
    "cache",
    "aliases",
    "sim_url",
    "timeouts",
    "prices",
}
_SECTION_TYPES = {"retry": RetrySettings, "breaker": BreakerSettings, "queue": QueueSettings}


def home() -> Path | None:
    value = os.environ.get("ACCEL_NB_HOME")
    return Path(value).expanduser() if value else None


def config_path() -> Path:
    """``ACCEL_NB_CONFIG``, else ``$ACCEL_NB_HOME/config.toml``, else the platform config dir."""
    if value := os.environ.get("ACCEL_NB_CONFIG"):
        return Path(value).expanduser()
    if root := home():
        return root / "config.toml"
    import platformdirs

    return Path(platformdirs.user_config_dir("accel_nb", appauthor=False)) / "config.toml"


def data_dir() -> Path:
    """Where the ledger and cache live: ``$ACCEL_NB_HOME`` or the platform data dir."""
    if root := home():
        return root
    import platformdirs

    return Path(platformdirs.user_data_dir("accel_nb", appauthor=False))


def read_config_file(path: Path | None = None) -> dict[str, Any]:
    path = path or config_path()
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise BadRequestError(f"config file {path} is not valid TOML: {exc}", hint="fix or remove the file") from None


def write_config_file(data: Mapping[str, Any], path: Path | None = None) -> Path:
    """Replace the config file with ``data`` (TOML), readable by its owner only: it may hold keys.

    Written to a temporary file next to it and renamed over it, so a crash never leaves half
    a file.  Comments in the old file are not kept (``tomllib`` does not read them).
    """
    import tempfile

    import tomli_w

    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = tomli_w.dumps(dict(data))
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def with_simulator(settings: Settings, url: str) -> Settings:
    """A copy of ``settings`` in which every provider that cannot reach a real service talks
    to the simulator at ``url`` (``%accel sim start``): one that needs a key and has none, or
    a self-hosted server left at its default address.  A provider with a key, or a server
    the user pointed somewhere, keeps its real base URL."""
    providers = {}
    for pid, adapter in adapters().items():
        current = settings.providers[pid]
        if adapter.needs_key:
            real = bool(current.keys)
        else:
            real = current.base_url != (adapter.default_base_url or "").rstrip("/")
        if real or adapter.sim_path is None:  # (S3 has no simulator: moto serves its tests)
            providers[pid] = current
        else:
            providers[pid] = dataclasses.replace(
                current, base_url=url.rstrip("/") + adapter.sim_path, keys=[Secret(SIM_KEY, "simulator")]
            )
    return dataclasses.replace(settings, providers=providers)


def simulated(settings: Settings) -> set[str]:
    """The providers whose requests go to a simulator (``ACCEL_NB_SIM_URL`` or ``%accel sim start``),
    so every face can say an answer did not come from the real service."""
    sim_url = (settings.sim_url or "").rstrip("/")
    return {
        pid
        for pid, ps in settings.providers.items()
        if (ps.keys and all(k.source == "simulator" for k in ps.keys))
        or (sim_url and ps.base_url.startswith(sim_url))
    }


def load_settings(
    config: Mapping[str, Any] | None = None,
    keys: Mapping[str, str | list[str]] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    dotenv: Mapping[str, str] | None = None,
    file_config: Mapping[str, Any] | None = None,
) -> Settings:
    """Resolve every setting.  The keyword-only sources exist for tests; by default they are
    ``os.environ``, the nearest ``.env`` file and the config file."""
    environ = os.environ if environ is None else environ
    dotenv = _read_dotenv() if dotenv is None else dotenv
    file_config = read_config_file() if file_config is None else file_config
    merged = _deep_merge(copy.deepcopy(dict(file_config)), dict(config or {}))
    _check_keys(merged, _TOP_FIELDS, "config")

    sim_url = merged.get("sim_url") or environ.get("ACCEL_NB_SIM_URL") or None
    runtime_keys = {resolve_provider(p): v for p, v in (keys or {}).items()}
    provider_config = {resolve_provider(p): v for p, v in merged.get("providers", {}).items()}

    providers = {}
    for pid, adapter in adapters().items():
        section = dict(provider_config.get(pid, {}))
        own = {"batch"} if adapter.batch else set()
        _check_keys(section, _PROVIDER_FIELDS | own | set(adapter.options), f"providers.{pid}")
        found = _discover_keys(adapter, runtime_keys.get(pid), environ, dotenv, section.pop("keys", None))
        base_url = (
            section.pop("base_url", None) or _first_env(environ, adapter.base_url_env) or adapter.default_base_url
        )
        base_url = _checked_url(adapter.normalize_url(base_url), adapter)
        services = _service_urls(adapter, section.pop("services", None) or {}, environ, base_url)
        if sim_url and adapter.sim_path is not None:
            base_url = sim_url.rstrip("/") + adapter.sim_path
            services = {name: f"{base_url}/{name}" for name in services}
            found = found or [Secret(SIM_KEY, "simulator")]
        options = {name: section.pop(name, default) for name, default in adapter.options.items()}
        providers[pid] = ProviderSettings(
            base_url=base_url.rstrip("/"),
            services=services,
            keys=found,
            concurrency=checks.number(section.pop("concurrency", adapter.default_concurrency),
                                f"providers.{pid}.concurrency", whole=True, low=1),
            models=list(section.pop("models", adapter.models)),
            batch=_batch(adapter.batch, section.pop("batch", {}), pid),
            options=options,
            **section,
        )
        _check_pacing(providers[pid], pid)

    settings = Settings(providers=providers, sim_url=sim_url)
    for name, cls in _SECTION_TYPES.items():
        section = dict(merged.get(name, {}))
        _check_keys(section, {f.name for f in dataclasses.fields(cls)}, name)
        table = cls(**section)
        for setting, (whole, low) in _SECTION_BOUNDS[name].items():
            checks.number(getattr(table, setting), f"{name}.{setting}", whole=whole, low=low)
        setattr(settings, name, table)
    if settings.queue.overflow not in ("wait", "reject"):
        raise BadRequestError(f"queue.overflow must be 'wait' or 'reject', not {settings.queue.overflow!r}")

    ledger = dict(merged.get("ledger", {}))
    _check_keys(ledger, {"enabled", "path", "store_content"}, "ledger")
    if ledger.get("enabled", True):
        settings.ledger_path = Path(ledger.get("path") or data_dir() / "ledger.sqlite3").expanduser()
    settings.store_content = bool(ledger.get("store_content", True))

    cache = merged.get("cache", {})
    cache = {"enabled": cache} if isinstance(cache, bool) else dict(cache)
    _check_keys(cache, {"enabled", "path"}, "cache")
    settings.cache = bool(cache.get("enabled", False))
    settings.cache_path = Path(cache.get("path") or data_dir() / "cache.sqlite3").expanduser()

    timeouts = dict(merged.get("timeouts", {}))
    _check_keys(timeouts, {"connect", "read", "total"}, "timeouts")
    for name in ("connect", "read"):
        if name in timeouts:
            checks.number(timeouts[name], f"timeouts.{name}", low=0.0, strict=True)
    settings.connect_timeout_s = float(timeouts.get("connect", settings.connect_timeout_s))
    settings.read_timeout_s = float(timeouts.get("read", settings.read_timeout_s))
    settings.timeout_s = checks.timeout(timeouts.get("total"), "timeouts.total")

    prices = merged.get("prices")
    settings.prices_path = Path(prices).expanduser() if prices else None
    settings.aliases = dict(merged.get("aliases", {}))
    return settings


#: the numeric settings of the [retry], [breaker] and [queue] tables: (a whole number?, at least)
_SECTION_BOUNDS: dict[str, dict[str, tuple[bool, float]]] = {
    "retry": {"max_attempts": (True, 1), "max_time_s": (False, 0), "backoff_base_s": (False, 0),
              "backoff_max_s": (False, 0)},
    "breaker": {"failures": (True, 1), "cooldown_s": (False, 0), "successes": (True, 1)},
    "queue": {"max_size": (True, 1)},
}


def _check_pacing(provider: ProviderSettings, pid: str) -> None:
    for name in ("rpm", "tpm"):
        if (value := getattr(provider, name)) is not None:
            checks.number(value, f"providers.{pid}.{name}", low=0.0, strict=True)
    if provider.key_strategy not in STRATEGIES:
        raise BadRequestError(
            f"providers.{pid}.key_strategy must be one of {', '.join(STRATEGIES)}, not {provider.key_strategy!r:.80}"
        )


def _checked_url(url: Any, adapter: Adapter) -> str:
    """An absolute http(s) URL (or empty where the adapter has a default of its own: S3)."""
    if url == "" and not adapter.default_base_url:
        return url
    parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        sources = " or ".join([f"providers.{adapter.id}.base_url", *adapter.base_url_env])
        raise BadRequestError(
            f"the base URL of {adapter.id} must be an http:// or https:// URL, not {url!r:.80}",
            hint=f"set {sources}, e.g. {adapter.default_base_url or 'https://host:port'}",
        )
    return url


def _batch(default: tuple[int, float] | None, given: Any, pid: str) -> BatchSettings | None:
    if default is None:
        return None
    if not isinstance(given, Mapping):
        raise BadRequestError(f"providers.{pid}.batch must be a table such as {{max_size = 64, delay_ms = 5}}")
    _check_keys(given, {"max_size", "delay_ms"}, f"providers.{pid}.batch")
    size, delay = given.get("max_size", default[0]), given.get("delay_ms", default[1])
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise BadRequestError(f"providers.{pid}.batch.max_size must be a whole number >= 1, not {size!r}")
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not delay >= 0:
        raise BadRequestError(f"providers.{pid}.batch.delay_ms must be a number >= 0 (0: no batching), not {delay!r}")
    return BatchSettings(size, float(delay))


def _discover_keys(
    adapter: Adapter,
    runtime: str | list[str] | None,
    environ: Mapping[str, str],
    dotenv: Mapping[str, str],
    configured: str | list[str] | None,
) -> list[Secret]:
    if runtime:
        values = _key_strings(runtime, f"keys[{adapter.id!r}]")
        return _dedupe(Secret(v, "runtime") for v in values if v and v.strip())
    for source, mapping in (("env", environ), (".env", dotenv)):
        for name in adapter.key_env:
            found = _keys_named(name, mapping, source)
            if found:
                return found
    values = _key_strings(configured or [], f"providers.{adapter.id}.keys")
    if found := _dedupe(Secret(v, "config") for v in values if v and v.strip()):
        return found
    return _dedupe(Secret(v, "keyring") for v in _keyring_keys(adapter.id))


def _key_strings(value: Any, where: str) -> list[str]:
    """One key or a list of keys, as strings (the error names the type only, never a value)."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) for v in values):
        raise BadRequestError(f"{where} must be a key string or a list of key strings, not {type(value).__name__}")
    return list(values)


def _keyring_keys(provider: str) -> list[str]:
    """Keys the key manager saved to the OS keyring.  Only providers listed in the (secret-free)
    index next to the config file are looked up, so a client start never imports ``keyring``
    or wakes a keyring daemon for nothing."""
    index = config_path().with_name(KEYRING_INDEX)
    try:
        if provider not in index.read_text().split():
            return []
        import keyring

        stored = keyring.get_password(KEYRING_SERVICE, provider) or ""
    except Exception:  # no index, no backend, a locked keyring: this source has nothing
        return []
    return [line for line in stored.splitlines() if line.strip()]


def _keys_named(name: str, mapping: Mapping[str, str], source: str) -> list[Secret]:
    """``NAME``, then ``NAMES=k1,k2``, then ``NAME_1 … NAME_N`` (stopping at the first gap)."""
    found = []
    if value := mapping.get(name, "").strip():
        found.append(Secret(value, f"{source}:{name}"))
    plural = name + "S"
    for part in mapping.get(plural, "").split(","):
        if part.strip():
            found.append(Secret(part, f"{source}:{plural}"))
    index = 1
    while value := mapping.get(f"{name}_{index}", "").strip():
        found.append(Secret(value, f"{source}:{name}_{index}"))
        index += 1
    return _dedupe(found)


def _dedupe(secrets) -> list[Secret]:
    seen: dict[Secret, None] = {}
    for secret in secrets:
        seen.setdefault(secret, None)
    return list(seen)


def _service_urls(
    adapter: Adapter, configured: Mapping[str, str], environ: Mapping[str, str], base_url: str
) -> dict[str, str]:
    """Each of the adapter's further servers: config > its env var > the base URL's host on its port."""
    unknown = sorted(set(configured) - set(adapter.services))
    if unknown:
        raise BadRequestError(
            f"unknown service providers.{adapter.id}.services.{unknown[0]}; "
            f"{adapter.id} has: {', '.join(adapter.services) or 'none'}"
        )
    parts = urllib.parse.urlsplit(base_url)
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    urls = {}
    for name, (env, port) in adapter.services.items():
        url = configured.get(name) or environ.get(env, "").strip()
        urls[name] = (url or f"{parts.scheme}://{host}:{port}").rstrip("/")
    return urls


def _first_env(environ: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        if value := environ.get(name, "").strip():
            return value
    return None


def _read_dotenv() -> dict[str, str]:
    from dotenv import dotenv_values, find_dotenv

    path = find_dotenv(usecwd=True)
    return {k: v for k, v in dotenv_values(path).items() if v is not None} if path else {}


def _deep_merge(base: dict, override: Mapping) -> dict:
    for name, value in override.items():
        if isinstance(value, Mapping) and isinstance(base.get(name), dict):
            base[name] = _deep_merge(base[name], value)
        else:
            base[name] = copy.deepcopy(value) if isinstance(value, (dict, list)) else value
    return base


def _check_keys(section: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise BadRequestError(
            f"unknown setting {where}.{unknown[0]}; valid settings in [{where}] are: {', '.join(sorted(allowed))}"
        )
