"""The widgets against the simulator: their state follows the engine's events, and no key
ever reaches widget state, a message to the browser, the ledger or a status line."""

from __future__ import annotations

import asyncio
import os
import re
import stat
import subprocess
import sys
import threading
import time

import ipywidgets
import pytest

import accel_nb
from accel_nb.config import load_settings
from accel_nb.widgets import ComparePanel, KeyManager, LiveCharts, ProviderPicker, QueueMonitor, dashboard, keystore
from accel_nb.widgets._model import GREEN, GREY, RED, YELLOW, ChartState, compare_row, health, lane_text

KEY_A, KEY_B = "sk-key-A-0000000000aaaa", "sk-key-B-0000000000bbbb"
TYPED = "sk-typed-DISTINCTIVE-9f3k-zzzz"


@pytest.fixture
def make_client(sim):
    clients, panels = [], []

    def make(**config):
        keys = config.pop("keys", None)
        config.setdefault("sim_url", sim.url)
        client = accel_nb.Client(config, keys=keys)
        clients.append(client)
        return client

    make.panels = panels
    yield make
    for panel in panels:
        panel.close()
    for client in clients:
        client.close()


def eventually(check, timeout: float = 5.0):
    """Poll ``check()`` until it is truthy: widgets update on their own thread, ≤ 4 times a second."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {check.__doc__ or check}")
        time.sleep(0.05)


def dot_colour(picker: ProviderPicker, pid: str) -> str:
    found = re.search(rf"data-provider='{pid}'><span class='accel-dot' style='background:([^']+)'", picker.health.value)
    return found.group(1) if found else ""


def key_state(keys: KeyManager, pid: str, label: str) -> str:
    cell = keys._rows.get((pid, label))
    return cell.value if cell is not None else ""


def background(fn):
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    return thread


# -- state follows events ----------------------------------------------------------------------
def test_queue_monitor_shows_queued_per_priority_and_in_flight(make_client):
    client = make_client(providers={"openai": {"concurrency": 1}})
    monitor = QueueMonitor(client)
    make_client.panels.append(monitor)

    async def send():
        await asyncio.gather(*[client.achat("openai", f"q{i}", priority="low", headers={"x-sim-ttft": "0.4"})
                               for i in range(3)])

    sender = background(lambda: asyncio.run(send()))
    eventually(lambda: "queued <b class='accel-queued'>2</b>" in monitor.view.value
               and "in flight <b class='accel-in-flight'>1</b>" in monitor.view.value)
    row = re.search(r"<td>openai</td>((?:<td class='num'>\d+</td>)+)", monitor.view.value).group(1)
    assert re.findall(r"\d+", row)[:4] == ["0", "0", "2", "1"]  # high, normal, low, in flight
    sender.join(10)
    eventually(lambda: "queued <b class='accel-queued'>0</b>" in monitor.view.value
               and "in flight <b class='accel-in-flight'>0</b>" in monitor.view.value)


def test_a_429_with_a_long_hint_shows_a_cooldown(make_client, sim):
    client = make_client(keys={"openai": [KEY_A, KEY_B]})
    picker, keys, monitor = ProviderPicker(client), KeyManager(client), QueueMonitor(client)
    make_client.panels.extend([picker, keys, monitor])
    sim.script("openai", ["429=30", "ok"])
    assert client.chat("openai", "Hi").attempts == 2  # the other key answered at once
    eventually(lambda: "cooling down until" in key_state(keys, "openai", "runtime …aaaa"))
    assert key_state(keys, "openai", "runtime …bbbb") == "active"
    shown = re.search(r"runtime …aaaa</td>.*?cooling down until \d\d:\d\d:\d\d \((\d+) s\)", monitor.view.value)
    assert shown and 0 < int(shown.group(1)) <= 30  # the seconds left when the panel last rendered
    assert dot_colour(picker, "openai") == YELLOW and "1 cooling down" in picker.health.value
    assert dot_colour(picker, "claude") == GREEN


def test_forced_503s_open_the_breaker_and_turn_the_dot_red(make_client, sim):
    client = make_client(retry={"max_attempts": 1}, breaker={"failures": 2, "cooldown_s": 30})
    picker = ProviderPicker(client)
    make_client.panels.append(picker)
    eventually(lambda: dot_colour(picker, "gemini") == GREEN)
    sim.script("gemini", ["503", "503"])
    for _ in range(2):
        with pytest.raises(accel_nb.errors.AccelError):
            client.chat("gemini", "Hi")
    eventually(lambda: dot_colour(picker, "gemini") == RED)
    assert "circuit breaker open" in picker.health.value and "OverloadedError" in picker.health.value  # a 503


def test_live_charts_gain_points_and_count_errors_by_class(make_client, sim):
    client = make_client(retry={"backoff_base_s": 0.01})
    charts = LiveCharts(client)
    make_client.panels.append(charts)
    sim.script("claude", ["429=0.01", "ok", "400"])
    client.chat("claude", "one")
    eventually(lambda: charts._traces.get("claude"))
    latency = charts.figure.data[charts._traces["claude"]["latency_p50"]]
    eventually(lambda: len(latency.x) == 1)
    with pytest.raises(accel_nb.errors.BadRequestError):
        client.chat("claude", "two")
    time.sleep(0.3)  # the next render interval
    client.chat("claude", "three")
    eventually(lambda: len(latency.x) >= 2)
    assert all(y > 0 for y in latency.y if y is not None)
    tokens = charts.figure.data[charts._traces["claude"]["tokens"]]
    assert list(tokens.y) == sorted(tokens.y) and tokens.y[-1] > 0
    bars = charts.figure.data[charts._traces["claude"]["classes"]]
    assert dict(zip(bars.x, bars.y, strict=True)) == {"retry: RateLimitError": 1, "failed: BadRequestError": 1}
    assert charts.figure.layout.yaxis.title.text == "seconds" and "TTFT" in charts.figure.layout.annotations[0].text
    assert (latency.yaxis, tokens.yaxis, bars.yaxis) == ("y", "y3", "y5")  # each in its own subplot


def test_compare_panel_streams_two_providers_and_fills_its_table(make_client):
    client = make_client()
    picker = ProviderPicker(client)
    picker.provider.value = "openai"
    picker.model.value = "gpt-4o-mini"
    panel = ComparePanel(client)
    make_client.panels.extend([picker, panel])
    for pid, box in panel.checks.items():
        box.value = pid in ("openai", "claude", "gemini")
    assert panel.targets() == ["claude", "openai:gpt-4o-mini", "gemini"]
    panel.prompt.value = "Explain backpressure in two sentences."
    rows = panel.start().result(15)
    assert [r["target"] for r in rows] == ["claude", "openai:gpt-4o-mini", "gemini"] and all(r["ok"] for r in rows)
    table = panel.results.value
    assert table.count("<tr>") == 4 and "gpt-4o-mini" in table and "tokens out" in table
    bodies = [column.children[1].value for column in panel.columns.children]
    assert all(len(body) > 40 for body in bodies)
    assert len(panel.chart.children) == 1 and len(panel.chart.children[0].data) == 3
    assert not panel.run_button.disabled


def test_picker_choice_becomes_the_default_target(make_client, sim):
    client = make_client()
    picker = ProviderPicker(client)
    make_client.panels.append(picker)
    picker.provider.value = "groq"
    assert client.settings.default_target == f"groq:{client.resolve('groq')[1]}"
    picker.model.value = "llama-3.1-8b-instant"
    assert client.settings.default_target == "groq:llama-3.1-8b-instant"
    eventually(lambda: len(picker.model.options) > 2)  # the provider's own model list arrived


def test_renders_are_rate_limited_however_busy_the_engine_is(make_client):
    client = make_client()
    monitor = QueueMonitor(client)
    make_client.panels.append(monitor)
    time.sleep(0.3)
    before, start = monitor.feed.renders, time.monotonic()

    async def burst():
        for _ in range(6):
            await asyncio.gather(*[client.achat("groq", f"q{i}") for i in range(100)])

    asyncio.run(burst())
    elapsed = time.monotonic() - start
    assert monitor.feed.renders - before <= elapsed * 4 + 2


def test_expensive_renders_are_spaced_to_stay_within_the_cpu_budget(make_client):
    from accel_nb.widgets._feed import Feed

    client = make_client()
    feed = Feed(client, max_hz=100, budget=0.1)

    def costly(batch):  # 20 ms of CPU per render: 10 % of a core allows 5 renders a second
        end = time.thread_time() + 0.02
        while time.thread_time() < end:
            pass

    feed.attach(costly)
    start = time.monotonic()
    while time.monotonic() - start < 1.5:
        client.chat("groq", "Hi")
        feed.poke()
    feed.detach(costly)
    assert 2 <= feed.renders <= 1.5 * 5 + 2 and feed.render_cpu_s <= 0.1 * 1.5 + 0.05


# -- secrets -----------------------------------------------------------------------------------
def test_a_typed_key_is_cleared_at_once_and_never_sent_back_or_stored(make_client, sim, monkeypatch, tmp_path):
    sent = []
    real_send = ipywidgets.Widget._send
    monkeypatch.setattr(ipywidgets.Widget, "_send", lambda self, msg, buffers=None: (sent.append(msg),
                                                                                    real_send(self, msg, buffers)))
    client = make_client()
    board = dashboard(client)
    make_client.panels.append(board)
    keys = board.key_manager
    keys.provider.value = "openai"
    keys.entry.set_state({"value": TYPED})  # what the browser sends on Enter or blur
    assert keys.entry.value == ""
    assert "added session …zzzz for openai" in keys.status.value
    assert [k.label for k in client.settings.providers["openai"].keys] == ["session …zzzz"]
    assert client.chat("openai", "Hi").text  # the key is in use
    eventually(lambda: ("openai", "session …zzzz") in keys._rows)
    client.engine.ledger.flush()
    states = repr([widget.get_state() for widget in list(ipywidgets.widgets.widget._instances.values())])
    assert TYPED not in states and TYPED not in repr(sent) and TYPED not in repr(client.logs(5))
    assert TYPED not in repr(client.stats()) and TYPED not in repr(keys)
    for path in tmp_path.rglob("*"):
        assert path.is_dir() or TYPED.encode() not in path.read_bytes()
    assert keys.entry.trait_metadata("value", "echo_update") is False


def test_keys_kept_in_the_config_file_are_owner_only_and_read_back(make_client, tmp_path):
    client = make_client()
    keys = KeyManager(client)
    make_client.panels.append(keys)
    keys.provider.value = "groq"
    keys.keep.value = "config"
    keys.entry.set_state({"value": TYPED})
    path = tmp_path / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [k.label for k in load_settings().providers["groq"].keys] == ["config …zzzz"]
    keystore.save_to_config("groq", KEY_A)  # appends, keeps what was there
    assert [k.label for k in load_settings().providers["groq"].keys] == ["config …zzzz", "config …aaaa"]
    assert "in the config file" in keys.status.value and TYPED not in keys.status.value


def test_a_second_remove_of_the_same_key_is_a_message_not_an_exception(make_client):
    client = make_client()
    keys = KeyManager(client)
    make_client.panels.append(keys)
    label = client.add_key("groq", KEY_A)
    keys._remove("groq", label)  # what the row's remove button calls
    assert f"removed {label}" in keys.status.value
    keys._remove("groq", label)  # a second click before the row is redrawn
    assert "groq has no key labelled" in keys.status.value and "its keys: none" in keys.status.value
    assert all(k.label != label for k in client.settings.providers["groq"].keys)


def test_keys_kept_in_the_os_keyring_are_read_back_with_their_source(monkeypatch):
    import keyring
    from keyring.backend import KeyringBackend

    class MemoryKeyring(KeyringBackend):
        priority = 1
        store: dict = {}

        def get_password(self, service, username):
            return self.store.get((service, username))

        def set_password(self, service, username, password):
            self.store[(service, username)] = password

        def delete_password(self, service, username):
            self.store.pop((service, username), None)

    assert keystore.keyring_backend() is None  # this machine has only the fail backend
    monkeypatch.setattr(keyring.core, "_keyring_backend", MemoryKeyring())
    assert keystore.keyring_backend() == "MemoryKeyring"
    keystore.save_to_keyring("gemini", KEY_A)
    keystore.save_to_keyring("gemini", KEY_B)
    assert [k.label for k in load_settings().providers["gemini"].keys] == ["keyring …aaaa", "keyring …bbbb"]
    assert load_settings().providers["openai"].keys == []  # only providers in the index are looked up


# -- pure rules --------------------------------------------------------------------------------
def lane(state, **extra):
    return {"key": "k", "state": state, "cooling_s": 0.0, "retired": None, **extra}


def test_health_rules():
    assert health(None, has_keys=False).colour == GREY
    assert health(None, has_keys=True) == health({"lanes": [lane("active")]}, True)
    assert health({"lanes": [lane("active")]}, True).colour == GREEN
    assert health({"lanes": [lane("active"), lane("cooling")]}, True).text == "1 cooling down"
    assert health({"lanes": [lane("half_open")]}, True).colour == YELLOW
    assert health({"lanes": [lane("open"), lane("retired")]}, True).colour == RED
    assert health({"lanes": [lane("retired")]}, True).text == "every key was rejected"


def test_lane_text():
    assert lane_text(None) == "not used yet"
    assert lane_text(lane("retired", retired="rejected (401)")) == "retired: rejected (401)"
    noon = time.mktime((2025, 1, 1, 12, 0, 0, 0, 0, -1))
    assert lane_text(lane("cooling", cooling_s=65.2), noon) == "cooling down until 12:01:05 (65 s)"


def test_chart_points_skip_cached_answers_and_take_totals_from_the_tracker():
    from accel_nb.widgets._feed import Record

    def done(latency, cached=False):
        return Record("done", "openai", latency, 0.1, 90, cached)

    state = ChartState(history=2)
    stats = {"providers": {"openai": {"input_tokens": 10, "output_tokens": 90, "cost_usd": 0.5}}}
    assert state.add([done(1.0), done(3.0), done(0.001, cached=True)], stats, 100.0) == {"openai"}
    point = state.points["openai"][-1]
    assert (point.latency_p50, point.ttft_p50, point.tokens, point.cost_usd) == (1.0, 0.1, 100, 0.5)
    assert point.tokens_per_s == pytest.approx(90 / 2.9)  # nearest-rank median of two: the lower
    for t in (101.0, 102.0):
        state.add([done(2.0)], stats, t)
    assert state.columns("openai")["time"] == [101.0, 102.0]  # bounded history
    assert state.columns("openai")["stamp"][0].endswith(":41.000")
    assert state.add([], stats, 103.0) == set()


def test_compare_row_for_an_error():
    error = accel_nb.errors.RateLimitError("slow down", provider="groq")
    assert compare_row("groq", error) == {"target": "groq", "ok": False, "error": "RateLimitError: slow down"}


def test_nothing_heavy_is_imported_until_a_panel_is_built():
    code = (
        "import sys, accel_nb, accel_nb.widgets as aw; assert 'ipywidgets' not in sys.modules;"
        "aw.QueueMonitor; assert 'ipywidgets' in sys.modules and 'plotly' not in sys.modules;"
        "assert accel_nb.dashboard is aw.dashboard"
    )
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(accel_nb.__file__))}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
