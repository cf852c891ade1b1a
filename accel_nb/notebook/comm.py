"""The kernel end of the JupyterLab extension: one comm, typed messages, throttled.

``start()`` opens a comm (target ``accel_nb``) to the front end.  The engine's
tracker calls ``_Bridge._on_event`` on the engine thread for every event; that
only records which request changed and wakes a sender thread, which coalesces
the changes into at most ``1 / MIN_INTERVAL_S`` messages a second.  The sender
calls ``comm.send`` from its own thread: ipykernel routes sends from any thread
through its IOPub thread (as ipywidgets' updates from threads are), so messages
flow while a cell blocks on ``client.chat``.  Nothing is sent from the engine
thread, and the engine never waits for the front end.

The protocol (the TypeScript twin is ``labextension/src/messages.ts``)::

    kernel -> front end  {"v": 1, "kind": "snapshot", "session", "providers", "requests"}  the whole state
                         {"v": 1, "kind": "update",   "session", "providers", "requests"}  changed requests only
    front end -> kernel  {"v": 1, "kind": "hello"}                                         send me a snapshot

Keys never leave: a message names a key by its label (``env:OPENAI_API_KEY …abcd``).
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import TYPE_CHECKING, Any, Literal, TypedDict

if TYPE_CHECKING:
    from ..client import Client
    from ..engine.tracker import Event

__all__ = ["MIN_INTERVAL_S", "PROTOCOL_VERSION", "TARGET", "start", "stop"]

log = logging.getLogger("accel_nb")

TARGET = "accel_nb"
PROTOCOL_VERSION = 1
MIN_INTERVAL_S = 0.25  # at most 4 messages a second
TICK_S = 1.0  # while anything is in flight or cooling down: refresh countdowns and breaker states
RECENT = 200  # requests a snapshot carries; the front end keeps as many as its setting says


# -- messages --------------------------------------------------------------------------------
RequestStatus = Literal["queued", "running", "retrying", "ok", "error"]


class RequestRow(TypedDict, total=False):
    """A ledger row without prompt and reply; live rows carry only what is known so far."""

    id: str
    time: float
    provider: str
    model: str
    status: RequestStatus
    error_class: str | None
    error_message: str | None
    latency_s: float | None
    ttft_s: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    cached: bool | None
    attempts: int | None
    key: str | None


class KeyLane(TypedDict):
    label: str
    state: str
    breaker: str
    cooling_s: float
    in_flight: int


class ProviderHealth(TypedDict):
    id: str
    key_status: Literal["ok", "missing", "not_needed"]
    keys: list[KeyLane]
    breaker: Literal["closed", "half_open", "open"]
    cooling_s: float
    requests: int
    failed: int
    queued: int
    in_flight: int
    last_error: str | None


class SessionTotals(TypedDict):
    requests: int
    succeeded: int
    failed: int
    queued: int
    in_flight: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    last_status: Literal["ok", "error"] | None


class StateMessage(TypedDict):
    v: int
    kind: Literal["snapshot", "update"]
    session: SessionTotals
    providers: list[ProviderHealth]
    requests: list[RequestRow]


class HelloMessage(TypedDict):
    v: int
    kind: Literal["hello"]


_ROW_FIELDS = (
    "id", "provider", "model", "error_class", "error_message", "latency_s", "ttft_s",
    "input_tokens", "output_tokens", "cost_usd", "cached", "attempts", "key",
)  # fmt: skip
_LIVE = {"queued": "queued", "started": "running", "retry": "retrying"}
_BREAKER_RANK = {"closed": 0, "half_open": 1, "open": 2}


def finished_row(row: dict[str, Any]) -> RequestRow:
    """The part of a ledger row the front end shows (never prompt, reply or key)."""
    out: RequestRow = {name: row.get(name) for name in _ROW_FIELDS}  # type: ignore[assignment]
    out["time"] = row.get("created_at") or 0.0
    out["status"] = "ok" if row.get("status") == "ok" else "error"
    return out


def event_row(event: Event) -> RequestRow | None:
    """What an event says about its request; ``None`` for events that change nothing shown."""
    if event.kind in ("done", "failed"):
        return finished_row(event.data)
    status = _LIVE.get(event.kind)
    if status is None:
        return None
    row: RequestRow = {"id": event.request_id, "provider": event.provider, "model": event.model, "status": status}
    if event.kind == "queued":
        row["time"] = event.time
    elif event.kind == "started":
        row["key"] = event.data.get("key")
    else:
        row["attempts"] = event.data.get("attempt")
        row["error_class"] = event.data.get("error")
    return row


def providers_health(client: Client, stats: dict[str, Any]) -> list[ProviderHealth]:
    """Every configured provider: key status from the settings, lanes and counters from the engine."""
    from ..providers import get_adapter

    health: list[ProviderHealth] = []
    for pid, settings in client.settings.providers.items():
        entry = stats.get("providers", {}).get(pid, {})
        lanes: list[KeyLane] = [
            {
                "label": lane["key"],
                "state": lane["state"],
                "breaker": lane["breaker"],
                "cooling_s": round(lane["cooling_s"], 1),
                "in_flight": lane["in_flight"],
            }
            for lane in entry.get("lanes", [])
        ] or [
            {"label": secret.label, "state": "idle", "breaker": "closed", "cooling_s": 0.0, "in_flight": 0}
            for secret in settings.keys
        ]
        if settings.keys:
            key_status = "ok"
        else:
            key_status = "missing" if get_adapter(pid).needs_key else "not_needed"
        health.append({
            "id": pid,
            "key_status": key_status,
            "keys": lanes,
            "breaker": max((lane["breaker"] for lane in lanes), key=_BREAKER_RANK.get, default="closed"),
            "cooling_s": max((lane["cooling_s"] for lane in lanes), default=0.0),
            "requests": entry.get("requests", 0),
            "failed": entry.get("failed", 0),
            "queued": entry.get("queued", 0),
            "in_flight": entry.get("in_flight", 0),
            "last_error": entry.get("last_error"),
        })  # fmt: skip
    return health


def session_totals(stats: dict[str, Any], last_status: Literal["ok", "error"] | None) -> SessionTotals:
    providers = stats.get("providers", {}).values()

    def total(name: str) -> Any:
        return sum(entry.get(name) or 0 for entry in providers)

    return {
        "requests": total("requests"),
        "succeeded": total("succeeded"),
        "failed": total("failed"),
        "queued": stats.get("queued", 0) + stats.get("waiting", 0),
        "in_flight": stats.get("in_flight", 0),
        "input_tokens": total("input_tokens"),
        "output_tokens": total("output_tokens"),
        "cost_usd": round(total("cost_usd"), 10),  # drop float noise, keep sub-cent costs
        "last_status": last_status,
    }


def _busy(message: StateMessage) -> bool:
    """Something will change without an event: a countdown, a breaker, a running request."""
    session = message["session"]
    return bool(session["in_flight"] or session["queued"]) or any(
        p["cooling_s"] > 0 or p["breaker"] != "closed" for p in message["providers"]
    )


# -- the bridge ------------------------------------------------------------------------------
class _Bridge:
    """One comm, fed from one client's tracker (the kernel's default client unless given one)."""

    def __init__(self, client: Client | None) -> None:
        self._pinned = client
        self._client: Client | None = None
        self._unsubscribe: Any = None
        self._lock = threading.Lock()  # guards the four fields below (engine thread vs sender)
        self._rows: collections.OrderedDict[str, RequestRow] = collections.OrderedDict()
        self._changed: dict[str, RequestRow] = {}
        self._last_status: Literal["ok", "error"] | None = None
        self._want_snapshot = True
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._comm: Any = None
        self._forget_observer: Any = lambda: None
        self._thread = threading.Thread(target=self._run, name="accel-nb-comm", daemon=True)

    @property
    def alive(self) -> bool:
        return not self._stopped.is_set()

    def open(self) -> None:
        """Open the comm with an empty snapshot; the real one follows when a client's engine runs."""
        import comm

        empty: StateMessage = {
            "v": PROTOCOL_VERSION, "kind": "snapshot", "session": session_totals({}, None),
            "providers": [], "requests": [],
        }  # fmt: skip
        from ..registry import on_engine_start

        self._comm = comm.create_comm(target_name=TARGET, data=empty)
        self._comm.on_msg(self._on_msg)
        self._comm.on_close(lambda _msg: self.stop(close_comm=False))
        self._forget_observer = on_engine_start(self._engine_started)
        self._wake.set()  # the real snapshot follows as soon as the client is there
        self._thread.start()

    def use(self, client: Client | None) -> None:
        if client is not None:
            self._pinned = client
        self.request_snapshot()

    def request_snapshot(self) -> None:
        with self._lock:
            self._want_snapshot = True
        self._wake.set()

    def stop(self, close_comm: bool = True) -> None:
        self._stopped.set()
        self._wake.set()
        self._forget_observer()
        if self._unsubscribe is not None:
            self._unsubscribe()
        if threading.current_thread() is not self._thread and self._thread.is_alive():
            self._thread.join(timeout=2)
        if close_comm and self._comm is not None:
            self._comm.close()

    # -- shell thread ------------------------------------------------------------------------
    def _on_msg(self, msg: dict[str, Any]) -> None:
        data = msg.get("content", {}).get("data") or {}
        if data.get("v") == PROTOCOL_VERSION and data.get("kind") == "hello":
            self.request_snapshot()

    # -- engine thread: record and wake, nothing more ----------------------------------------
    def _on_event(self, event: Event) -> None:
        row = event_row(event)
        if row is None:
            return
        with self._lock:
            known = self._rows.get(row["id"])
            if known is not None:
                row = {**known, **row}  # type: ignore[typeddict-item]
            self._rows[row["id"]] = row
            if len(self._rows) > RECENT:
                self._rows.popitem(last=False)
            self._changed[row["id"]] = row
            if event.kind in ("done", "failed"):
                self._last_status = row["status"]  # type: ignore[assignment]
        self._wake.set()

    def _attach(self) -> Any:
        """On the engine thread, so no event slips between seeding and subscribing."""
        tracker = self._client.engine.tracker  # type: ignore[union-attr]
        rows = [finished_row(row) for row in list(tracker.recent)[-RECENT:]]
        with self._lock:
            self._rows = collections.OrderedDict((row["id"], row) for row in rows)
            self._changed.clear()
            self._last_status = rows[-1]["status"] if rows else None  # type: ignore[assignment]
            self._want_snapshot = True
        return tracker.subscribe(self._on_event)

    # -- sender thread -----------------------------------------------------------------------
    def _run(self) -> None:
        busy = False
        while not self._stopped.is_set():
            self._wake.wait(TICK_S)
            self._wake.clear()
            if self._stopped.is_set():
                return
            try:
                self._follow()
                sent = self._flush(busy)
            except Exception:  # a closed client, a kernel shutting down: resend everything later
                log.debug("accel_nb comm update failed", exc_info=True)
                with self._lock:
                    self._want_snapshot = True
                self._stopped.wait(TICK_S)
                continue
            if sent is not None:
                busy = _busy(sent)
                self._stopped.wait(MIN_INTERVAL_S)

    def _follow(self) -> None:
        """Subscribe to the pinned client, or to whatever is the kernel's default client now —
        once its engine runs: watching never starts an engine (``_engine_started`` catches
        the moment one starts, before its first request)."""
        from ..registry import peek_default_client

        client = self._pinned if self._pinned is not None else peek_default_client()
        if client is self._client and (client is None or self._unsubscribe is not None or not client.started):
            return
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._client = client
        if client is not None and client.started:
            self._unsubscribe = client.engine.call(self._attach)

    def _engine_started(self, client: Client) -> None:
        """Called in the thread that starts ``client``'s engine, before any request is queued."""
        from ..registry import peek_default_client

        if client is (self._pinned if self._pinned is not None else peek_default_client()):
            with self._lock:
                if self._unsubscribe is not None:
                    self._unsubscribe()
                self._client = client
                self._unsubscribe = client.engine.tracker.subscribe(self._on_event)
                self._want_snapshot = True
            self._wake.set()

    def _flush(self, busy: bool) -> StateMessage | None:
        with self._lock:
            snapshot, self._want_snapshot = self._want_snapshot, False
            rows = list(self._rows.values()) if snapshot else list(self._changed.values())
            self._changed.clear()
            last_status = self._last_status
        if not (snapshot or rows or busy):
            return None
        client = self._client
        if client is None:  # nothing made yet: the front end shows accel_nb loaded, idle
            message: StateMessage = {
                "v": PROTOCOL_VERSION, "kind": "snapshot", "session": session_totals({}, None),
                "providers": [], "requests": [],
            }  # fmt: skip
            self._comm.send(data=message)
            return message
        stats = client.stats()
        message = {
            "v": PROTOCOL_VERSION,
            "kind": "snapshot" if snapshot else "update",
            "session": session_totals(stats, last_status),
            "providers": providers_health(client, stats),
            "requests": rows,
        }
        self._comm.send(data=message)
        return message


_bridge: _Bridge | None = None
_bridge_lock = threading.Lock()


def start(client: Client | None = None) -> None:
    """Open (or refresh) the comm to the JupyterLab extension; a no-op outside a kernel.

    Idempotent: ``%load_ext accel_nb`` calls it, and calling it again only sends a
    fresh snapshot (and, with ``client``, follows that client instead of the kernel's
    default one).  Cheap: it never creates a client or starts an engine; it follows the one that starts.
    """
    global _bridge
    with _bridge_lock:
        if _bridge is not None and _bridge.alive:
            _bridge.use(client)
            return
        if not _in_kernel():
            return
        _bridge = _Bridge(client)
        _bridge.open()


def stop() -> None:
    """Close the comm; the front end shows the kernel as one without accel_nb again."""
    global _bridge
    with _bridge_lock:
        if _bridge is not None:
            _bridge.stop()
            _bridge = None


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None
