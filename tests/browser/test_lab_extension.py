"""The lab extension in a real JupyterLab and Chromium: status bar, sidebar, palette command."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import pytest

if TYPE_CHECKING:
    from conftest import Console, Lab

    from accel_nb.sim import SimServer

# The notebook the test runs: the kernel's default client talks to the test's simulator.
SETUP = "import accel_nb\naccel_nb.set_default_client(accel_nb.Client({{'sim_url': {url!r}}}))"
LOAD = "%load_ext accel_nb"
ASK = "%%accel openai\nExplain backpressure in two sentences."


# Polled by Playwright (a plain function: an async one would count as truthy at once).
KERNEL_IDLE = "() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel?.status === 'idle'"


def write_notebook(root: Path, sim_url: str) -> str:
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in (SETUP.format(url=sim_url), LOAD, ASK)],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    nbformat.write(notebook, root / "accel.ipynb")
    return "accel.ipynb"


def test_status_bar_sidebar_and_palette(
    lab: Lab, browser_page: tuple[Any, Console], sim: SimServer, artifacts: Path
) -> None:
    from conftest import BUILT
    from playwright.sync_api import expect

    if not (BUILT / "static" / "style.js").exists():
        pytest.fail("the lab extension is not built: `pip install -e .` builds it (needs Node.js 20+)")
    page, console = browser_page
    page.goto(lab.open(write_notebook(lab.root, sim.url)))

    # A kernel without accel_nb: the item is there, quiet, and nothing is logged.
    status = page.locator(".accel-nb-status")
    expect(status).to_have_text("accel: \u2013")  # an en dash
    page.wait_for_function(KERNEL_IDLE)
    page.screenshot(path=artifacts / "01-kernel-without-accel.png")

    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    expect(status).to_have_text(re.compile(r"^accel: 1 req · [1-9][\d.k]* tok · \$"))
    expect(status).not_to_have_class(re.compile("accel-nb-alert"))
    page.screenshot(path=artifacts / "02-status-bar.png")

    status.click()
    sidebar = page.locator("#accel-nb-sidebar")
    expect(sidebar).to_be_visible()
    request = sidebar.locator(".accel-nb-requests li")
    expect(request).to_have_count(1)
    expect(request.locator(".accel-nb-target")).to_have_text(re.compile(r"^openai:"))
    expect(request.locator(".accel-nb-req-status")).to_have_text("ok")
    expect(sidebar.locator("tr[data-provider='openai'] td").nth(1)).to_have_text("1 ok")
    page.screenshot(path=artifacts / "03-sidebar.png")

    expect(page.locator(".jp-NotebookPanel-toolbar [data-command='accel-nb:insert-cell']")).to_be_visible()
    page.keyboard.press("Control+Shift+C")
    palette = page.locator(".lm-CommandPalette-input")
    palette.fill("Insert %%accel cell")
    page.keyboard.press("Enter")
    inserted = page.locator(".jp-Notebook .jp-Cell .cm-content", has_text="%%accel claude")
    expect(inserted).to_have_count(1)  # the notebook's own cell asks openai; this one is new
    expect(inserted).to_have_text(re.compile(r"^%%accel claude"))
    page.screenshot(path=artifacts / "04-inserted-cell.png")

    ours = [e for e in console.errors if re.search(r"accel|comm", e, re.IGNORECASE)]
    assert not ours, ours
