"""Real-browser fixtures: JupyterLab on a free port with a token in a temp root, Debian's Chromium
driven by Playwright (never a downloaded browser).

Kernels import this checkout's ``accel_nb``; everything Jupyter writes (config, settings,
workspaces, runtime files, accel_nb's ledger) stays in the test's temp dir.  A test module
passes extra environment to the server and its kernels by overriding ``lab_env``.
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
# Lab settings for every test: no news or update toasts over the page; every cell in the DOM
# (no windowing: a test finds what is scrolled away); widget state saved into the notebook
# (so a test can prove what that state does not contain).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyter-widgets/jupyterlab-manager/plugin": {"saveState": True},
}


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path
    home: Path  # ACCEL_NB_HOME of its kernels: config, ledger, cache

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


def _isolated_jupyter(base: Path, extra: dict[str, str]) -> dict[str, str]:
    """Environment for a JupyterLab that sees nothing of the user's Jupyter or accel_nb setup."""
    dirs = {name: base / name for name in ("config", "data", "runtime", "settings", "workspaces", "ipython", "home")}
    for path in dirs.values():
        path.mkdir(parents=True)
    (dirs["config"] / "jupyter_lab_config.json").write_text(
        json.dumps({"LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"}})
    )
    for plugin, values in LAB_SETTINGS.items():
        path = dirs["settings"] / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
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
        **extra,
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
def lab_env() -> dict[str, str]:
    """Extra environment for the server and its kernels (override in a test module)."""
    return {}


@pytest.fixture
def lab(tmp_path: Path, lab_env: dict[str, str]) -> Iterator[Lab]:
    """A JupyterLab server serving ``tmp_path / "root"``, stopped (with its kernels) after the test.
    The server's output goes to ``lab.log``."""
    root = tmp_path / "root"
    root.mkdir()
    port, token = _free_port(), secrets.token_hex(16)
    env = _isolated_jupyter(tmp_path / "jupyter", lab_env)
    lab = Lab(f"http://127.0.0.1:{port}", token, root, tmp_path / "jupyterlab.log", Path(env["ACCEL_NB_HOME"]))
    command = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--allow-root",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
    ]  # fmt: skip
    if (BUILT / "static").is_dir():  # this checkout's lab extension, when it is built
        extensions = tmp_path / "labextensions"
        extensions.mkdir()
        (extensions / "accel-nb-labextension").symlink_to(BUILT)
        command.append(f"--LabApp.extra_labextensions_path={extensions}")
    with lab.log.open("wb") as log:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=log)
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
    """A page in Debian's Chromium (fresh profile) and what its console reported; the page as
    it was at the end of the test is saved as ``last.png`` among the test's artifacts."""
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
            viewport={"width": 1400, "height": 1000},
        )
        page = context.pages[0] if context.pages else context.new_page()
        page.on("console", lambda msg: msg.type == "error" and console.errors.append(msg.text))
        page.on("pageerror", lambda exc: console.errors.append(str(exc)))
        try:
            yield page, console
        finally:
            page.screenshot(path=artifacts / "last.png", full_page=True)
            context.close()


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """``test-artifacts/<test name>/`` for screenshots (git-ignored; a reviewer looks at them)."""
    path = ARTIFACTS / request.node.name
    path.mkdir(parents=True, exist_ok=True)
    return path
