"""Real-browser fixtures: JupyterLab on a free port with a token in a temp root, Debian's Chromium via Playwright.

JupyterLab loads the lab extension built in this checkout (``accel_nb/labextension``), and its
kernels import this checkout's ``accel_nb``.  Everything Jupyter writes (config, settings,
workspaces, runtime files) stays in the test's temp dir.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILT = ROOT / "accel_nb" / "labextension"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path

    def open(self, path: str) -> str:
        return f"{self.url}/lab/tree/{path}?token={self.token}"


@dataclass
class Console:
    """What the page logged: errors fail a test that says so."""

    errors: list[str] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _isolated_jupyter(base: Path) -> dict[str, str]:
    """Environment for a JupyterLab that sees nothing of the user's Jupyter or accel_nb setup."""
    dirs = {name: base / name for name in ("config", "data", "runtime", "settings", "workspaces", "ipython", "home")}
    for path in dirs.values():
        path.mkdir(parents=True)
    # No news or update toasts over the page.
    (dirs["config"] / "jupyter_lab_config.json").write_text(
        json.dumps({"LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"}})
    )
    notification = dirs["settings"] / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = {k: v for k, v in os.environ.items() if "_API_KEY" not in k and not k.startswith(("ACCEL_NB_", "JUPYTER"))}
    env.update(
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        JUPYTER_DATA_DIR=str(dirs["data"]),
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
        JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
        IPYTHONDIR=str(dirs["ipython"]),
        ACCEL_NB_HOME=str(dirs["home"]),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    return env


def _wait_ready(lab: Lab, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    request = urllib.request.Request(f"{lab.url}/api/status", headers={"Authorization": f"token {lab.token}"})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"JupyterLab exited with {process.returncode}:\n{lab.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"JupyterLab did not answer in {timeout:.0f} s:\n{lab.log.read_text()[-3000:]}")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """A JupyterLab server serving ``tmp_path / "root"``, stopped (with its kernels) after the test."""
    if not (BUILT / "static" / "style.js").exists():
        pytest.fail("the lab extension is not built: `pip install -e .` builds it (needs Node.js 20+)")
    extensions = tmp_path / "labextensions"
    extensions.mkdir()
    (extensions / "accel-nb-labextension").symlink_to(BUILT)
    root = tmp_path / "root"
    root.mkdir()
    port, token = _free_port(), secrets.token_hex(16)
    lab = Lab(f"http://127.0.0.1:{port}", token, root, tmp_path / "jupyterlab.log")
    command = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--allow-root",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        f"--LabApp.extra_labextensions_path={extensions}", "--LabApp.expose_app_in_browser=True",
    ]  # fmt: skip
    with lab.log.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=root, env=_isolated_jupyter(tmp_path / "jupyter"), stdout=log, stderr=log
        )
    try:
        _wait_ready(lab, process)
        yield lab
    finally:
        process.terminate()  # SIGTERM: the server shuts its kernels down
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def browser_page(tmp_path: Path, artifacts: Path) -> Iterator[tuple[Any, Console]]:
    """A page in Debian's Chromium (never a downloaded browser) and what its console reported;
    the page's last state is saved as ``last.png``, so a failure can be seen."""
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium (CI installs it)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=30_000)  # a cold JupyterLab can take longer than the 5 s default to load
    console = Console()
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=False,  # --headless=new below: Playwright's own flag would pick the old mode
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        page = context.pages[0] if context.pages else context.new_page()
        page.on("console", lambda msg: msg.type == "error" and console.errors.append(msg.text))
        page.on("pageerror", lambda exc: console.errors.append(str(exc)))
        try:
            yield page, console
        finally:
            page.screenshot(path=artifacts / "last.png")
            context.close()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """``test-artifacts/<test name>/`` for screenshots (git-ignored; CI uploads it)."""
    path = ARTIFACTS / request.node.name
    path.mkdir(parents=True, exist_ok=True)
    return path
