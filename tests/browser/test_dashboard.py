"""The dashboard in a real JupyterLab and Chromium: live charts draw points, the queue moves,
and a key typed into the key manager ends up nowhere but the kernel's memory."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from accel_nb.providers import adapters
from accel_nb.sim import SimServer, serve

KEY = "sk-browser-typed-DISTINCTIVE-7q2w-k9x4"

SETUP = """\
import accel_nb
client = accel_nb.Client({"providers": {"openai": {"concurrency": 2}, "claude": {"concurrency": 2}}})
accel_nb.set_default_client(client)
"""
LOAD = """\
import asyncio
prompts = [f"question {i}: what is backpressure?" for i in range(40)]
results = await asyncio.gather(client.amap("openai", prompts, progress=False, max_tokens=30),
                               client.amap("claude", prompts, progress=False, max_tokens=30))
print(sum(len(r) for r in results), "answers")
"""


@pytest.fixture
def sim() -> Iterator[SimServer]:
    """A simulator with realistic latency, so queues form and charts have something to show."""
    with serve(latency="realistic", ttft_s=0.15, tokens_per_s=150) as server:
        yield server


@pytest.fixture
def lab_env(sim: SimServer) -> dict[str, str]:
    return sim.env()


# what plotly.js holds: (trace name, number of points) per trace
PLOTTED = """() => Array.from(document.querySelectorAll('.accel-live-charts .js-plotly-plot'))
    .map(plot => (plot.data || []).map(trace => [trace.name, (trace.x || []).length]))"""


def notebook(path: Path, *cells: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(nb, path)


def open_notebook(page, lab, name: str) -> None:
    page.goto(lab.open(name))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_selector(".jp-StatusBar-TextItem:text('Python 3 (ipykernel) | Idle')", timeout=60_000)


def run_cell(page, index: int) -> None:
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    cell.locator(".jp-InputArea-prompt").click()
    page.keyboard.press("Shift+Enter")
    cell.locator(".jp-InputArea-prompt:text('[*]'), .jp-InputArea-prompt:text-matches('\\[\\d+\\]')").first.wait_for(
        timeout=10_000
    )


def test_dashboard_draws_live_charts_and_the_queue_moves(lab, browser_page, artifacts, sim):
    page, console = browser_page
    # the first answer goes to the picker's model-list call; then a retried 429, 529 and 500
    sim.script("claude", ["ok", "429=0.3", "ok", "ok", "overloaded", "ok", "500", "ok"])
    page.set_viewport_size({"width": 1400, "height": 2200})  # the whole dashboard in each screenshot
    notebook(lab.root / "dashboard.ipynb", SETUP + "accel_nb.dashboard()", LOAD)
    open_notebook(page, lab, "dashboard.ipynb")
    run_cell(page, 0)
    page.wait_for_selector(".accel-dashboard .accel-live-charts .main-svg", timeout=60_000)
    board = page.locator(".accel-dashboard")
    board.evaluate("element => element.scrollIntoView()")
    page.screenshot(path=artifacts / "1-dashboard-idle.png")
    run_cell(page, 1)

    queued = page.locator(".accel-dashboard .accel-queued")
    answers = page.locator(".jp-Cell-outputArea :text('80 answers')")
    seen, deadline = [], time.monotonic() + 60
    while not answers.count() and time.monotonic() < deadline:
        seen.append(int(queued.inner_text()))
        if len(seen) == 8:
            page.screenshot(path=artifacts / "2-dashboard-busy.png")
        time.sleep(0.2)
    assert answers.count(), "the requests did not finish within 60 s"
    page.wait_for_function("() => document.querySelector('.accel-dashboard .accel-queued').innerText === '0'")
    assert max(seen) >= 10 and len(set(seen) - {0}) >= 2, f"queue numbers seen: {seen}"
    points = page.locator(".accel-live-charts .scatterlayer .trace path.point")
    deadline = time.monotonic() + 10
    while points.count() < 12 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert points.count() >= 12, page.evaluate(PLOTTED)
    assert page.locator(".accel-live-charts .scatterlayer .trace").count() >= 12  # 6 series x 2 providers
    assert page.locator(".accel-live-charts .barlayer .trace").count() >= 1  # the scripted retries
    assert re.match(r"\d\d:\d\d", page.locator(".accel-live-charts .xtick text").first.text_content())
    assert page.locator(".accel-dashboard .accel-dot").count() == len(adapters())  # one per provider
    page.locator(".accel-dashboard .lm-TabBar-tab", has_text="Keys").click()
    entry = page.locator(".accel-key-manager input:not([type='radio'])")  # the only text entry…
    assert entry.count() == 1 and entry.get_attribute("type") == "password"  # …is a password field
    board.evaluate("element => element.scrollIntoView()")
    page.screenshot(path=artifacts / "3-dashboard-done.png")
    assert not [e for e in console.errors if "accel" in e.lower()], console.errors


def test_a_typed_key_reaches_no_file_log_or_output(lab, browser_page, artifacts):
    page, _ = browser_page
    check = SETUP + 'r = client.chat("openai", "Hi")\nprint(client.key_status("openai"), r.text[:30])'
    notebook(lab.root / "keys.ipynb", "import accel_nb.widgets\naccel_nb.widgets.key_manager()", check)
    open_notebook(page, lab, "keys.ipynb")
    run_cell(page, 0)
    entry = page.locator(".accel-key-manager input[type='password']")
    entry.wait_for(timeout=60_000)
    page.locator(".accel-key-manager select").first.select_option("openai")
    entry.fill(KEY)
    page.screenshot(path=artifacts / "1-key-typed.png")
    entry.press("Enter")
    page.wait_for_selector(".accel-key-status:text('added session …k9x4 for openai')", timeout=10_000)
    assert entry.input_value() == ""
    page.wait_for_selector(".accel-key-manager :text('session …k9x4')", timeout=10_000)

    # the kernel's default client now uses the key; a second cell shows only its label
    notebook_cell_uses_default = check.replace(SETUP, "client = accel_nb.default_client()\n")
    page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(notebook_cell_uses_default)
    page.keyboard.press("Shift+Enter")
    output = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-OutputArea-output")
    output.filter(has_text="session …k9x4").wait_for(timeout=20_000)
    assert "'source': 'session'" in output.inner_text()
    page.screenshot(path=artifacts / "2-key-added.png")

    page.keyboard.press("Control+s")
    saved = lab.root / "keys.ipynb"
    deadline = time.monotonic() + 15
    while "application/vnd.jupyter.widget-state+json" not in saved.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    text = saved.read_text()
    state = json.loads(text)["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    entries = [m["state"] for m in state.values() if m["model_name"] == "PasswordModel"]
    assert entries and all(e.get("value", "") == "" for e in entries)  # widget state was saved, without the key
    assert "session …k9x4" in text  # the label is there, in outputs and widget state
    assert KEY not in text
    assert KEY not in lab.log.read_text(errors="replace")
    for path in lab.home.rglob("*"):  # ledger, cache, config
        assert path.is_dir() or KEY.encode() not in path.read_bytes(), path
    assert not re.search(re.escape(KEY[:-4]), page.content())
