"""Every notebook in notebooks/ runs top to bottom in a fresh kernel with no keys (the simulator,
and moto for S3), with no error output; each shows what it is there to show.  The committed
files carry no outputs."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest

from accel_nb.headless import SOURCE_ROOT, execute, kernel_env, strip
from accel_nb.providers import adapters

NOTEBOOKS = sorted((SOURCE_ROOT / "notebooks").glob("*.ipynb"))


def text_of(cell: Any) -> str:
    """Everything a cell showed, as text: streams and the plain-text member of each display."""
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif "data" in output:
            parts.append(output["data"].get("text/plain", ""))
    return "".join(parts)


def cell_with(nb: Any, source: str) -> Any:
    return next(cell for cell in nb.cells if cell.cell_type == "code" and source in cell.source)


def says_where_answers_come_from(nb: Any, cwd: Path | None = None) -> None:
    """What every notebook does first: start the simulator for providers without a key, and say so."""
    started = text_of(cell_with(nb, "%accel sim start"))
    assert "SIMULATOR ON" in started and "claude" in started


def check_quickstart(nb: Any, cwd: Path) -> None:
    says_where_answers_come_from(nb)
    streamed = cell_with(nb, "%%accel claude --max-tokens")
    markdown = [o["data"]["text/markdown"] for o in streamed.outputs if "text/markdown" in o.get("data", {})]
    assert len(markdown) == 1 and len(markdown[0]) > 40
    assert "claude:claude-sonnet-4-5 · " in text_of(streamed) and "simulator" in text_of(streamed)
    assert "openai:gpt-4o-mini: 40 tokens" in text_of(cell_with(nb, "print(f\"{haiku.target}"))
    assert "🧪 claude" in text_of(cell_with(nb, "%accel list"))


def check_compare(nb: Any, cwd: Path) -> None:
    from accel_nb.report import Comparison

    says_where_answers_come_from(nb)
    chat = [pid for pid, adapter in adapters().items() if "chat" in adapter.kinds]
    comparison = Comparison.from_json((cwd / "comparison.json").read_text())
    assert sorted(comparison.targets) == sorted(chat)  # every chat provider
    assert all(o.ok for o in comparison.outcomes) and len(comparison.outcomes) == len(chat) * len(comparison.prompts)
    assert all(where == "simulator" for where in comparison.served_by.values())
    report = (cwd / "report.html").read_text()
    assert all(row["target"] in report for row in comparison.rows())
    assert "Plotly.newPlot" in report and not re.search(r"<script[^>]*\bsrc=", report)  # plotly.js inlined
    charts = [o for o in cell_with(nb, "comparison.figures()").outputs if "application/vnd.plotly.v1+json" in o["data"]]
    assert len(charts) == 2


def check_embeddings(nb: Any, cwd: Path) -> None:
    says_where_answers_come_from(nb)
    table = text_of(cell_with(nb, "vectors = {p: client.embed"))
    for provider, dims in (("tei", 384), ("openai", 1536), ("gemini", 3072), ("ollama", 768)):
        assert re.search(rf"^{provider} .* {dims} ", table, re.MULTILINE)
    assert "best passage per API: {'tei': 0, 'openai': 0, 'gemini': 0, 'ollama': 0}" in text_of(cell_with(nb, "@"))
    assert text_of(cell_with(nb, "client.rerank(")).startswith("0.7")
    cache = text_of(cell_with(nb, "cache=True"))
    assert "first: cached=False" in cache and "again: cached=True" in cache and "cost $0.00000" in cache


def check_dashboard(nb: Any, cwd: Path) -> None:
    assert "every provider answers from it" in text_of(nb.cells[1])  # always the simulator, and it says so
    board = cell_with(nb, "accel_nb.dashboard()")
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in board.outputs)
    answered, failed, retries = map(int, re.search(
        r"(\d+) answered, (\d+) failed; (\d+) retries", text_of(cell_with(nb, "asyncio.gather(*tasks)"))).groups())
    assert answered + failed == 500 and answered > 400 and retries > 0  # gemini came back after its bad patch
    assert "CircuitOpenError" in text_of(cell_with(nb, "Counter("))  # …during which its breaker failed fast


def check_local_servers(nb: Any, cwd: Path) -> None:
    says_where_answers_come_from(nb)
    pull = cell_with(nb, "client.ollama.pull(")
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in pull.outputs)  # tqdm.auto
    assert "'status': 'success'" in text_of(pull)
    coalesced = text_of(cell_with(nb, "asyncio.gather("))
    calls, requests = map(int, re.search(r"(\d+) infer calls -> (\d+) HTTP requests", coalesced).groups())
    assert calls == 200 and 1 <= requests <= 10  # coalesced
    assert "vllm:meta-llama/Llama-3.2-1B-Instruct · " in text_of(cell_with(nb, "%%accel vllm"))
    llvm = text_of(cell_with(nb, "llvm:resnet50"))
    assert "resnet50:" in llvm and "2 embeddings of 768 floats" in llvm


def check_s3(nb: Any, cwd: Path) -> None:
    says_where_answers_come_from(nb)
    assert "moto's S3 server at http://127.0.0.1:" in text_of(nb.cells[1])
    listing = text_of(cell_with(nb, "client.s3.put("))
    for name in ("comparison.json", "report.html", "ledger.jsonl"):
        assert f"/{name}" in listing
    loaded = text_of(cell_with(nb, "Comparison.from_json("))
    assert "claude:claude-sonnet-4-5" in loaded and "/report.html?…" in loaded
    assert "X-Amz-Signature" not in loaded  # a presigned link is a credential: not saved in the notebook


CHECKS: dict[str, Callable[[Any, Path], None]] = {
    "01_quickstart.ipynb": check_quickstart,
    "02_compare_providers.ipynb": check_compare,
    "03_live_dashboard.ipynb": check_dashboard,
    "04_embeddings_rerank_cache.ipynb": check_embeddings,
    "05_local_servers.ipynb": check_local_servers,
    "06_s3_artifacts.ipynb": check_s3,
}


def test_the_checks_name_existing_notebooks():
    assert set(CHECKS) <= {path.name for path in NOTEBOOKS}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_with_no_keys(path: Path, tmp_path: Path):
    """``execute`` raises on any error output or stderr traceback; then the notebook's own checks."""
    nb = execute(path, tmp_path, kernel_env(tmp_path / "home"), timeout=120)
    nbformat.write(nb, tmp_path / path.name)  # kept for a look when a check fails
    CHECKS.get(path.name, says_where_answers_come_from)(nb, tmp_path)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_committed_without_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb == strip(copy.deepcopy(nb)), f"strip it: python -m accel_nb.headless strip {path.name}"
    assert json.loads(path.read_text())["metadata"]["kernelspec"]["name"] == "python3"
