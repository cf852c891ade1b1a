"""A real kernel runs a notebook of ``%%accel`` cells against the simulator; the saved
``.ipynb`` holds the streamed answers, footers, comparison table and error card — and no key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

import accel_nb
from accel_nb.config import write_config_file

KEY = "sk-proj-NOTEBOOK-DISTINCTIVE-5a4b3c2d1e0f-KQVM"
REPO = Path(accel_nb.__file__).resolve().parents[1]

CELLS = [
    "%load_ext accel_nb",
    "%%accel claude -o answer --max-tokens 40 -H x-sim-tps=400\nExplain backpressure in two sentences.",
    "print(type(answer).__name__, answer.usage.output_tokens, answer.provider)",
    "%%accel claude,openai,gemini --max-tokens 12 -o compared\nSummarise in a line: {answer.text}",
    "print(sorted(compared))",
    "%%accel openai -H x-sim-fault=401\nThis one fails.",
    "%%accel openai --dry-run\nWhat would be sent?",
    "%accel list",
    "%accel stats",
    "%accel logs -n 5",
    "%accel config",
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, str]:
    """The notebook, executed once by a fresh kernel, and the text of the saved file."""
    from accel_nb.sim import serve

    home = tmp_path_factory.mktemp("kernel-home")
    write_config_file({"providers": {"groq": {"keys": [KEY + "-config"]}}}, home / "config.toml")
    env = {
        name: value
        for name, value in os.environ.items()
        if not (name.endswith(("_API_KEY", "_API_KEYS", "_BASE_URL")) or name.startswith(("ACCEL_NB_", "GOOGLE_")))
    }
    with serve(latency="zero") as sim:
        env.update(
            ACCEL_NB_SIM_URL=sim.url,  # every provider answers from the simulator
            ACCEL_NB_HOME=str(home),
            OPENAI_API_KEY=KEY,  # sent to the simulator, never shown
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        )
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in CELLS])
        client = NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(home)}})
        client.execute(env=env, cwd=str(home))
    path = home / "executed.ipynb"
    nbformat.write(nb, path)
    return nb, path.read_text()


def outputs(nb: Any, index: int) -> list[dict[str, Any]]:
    return nb.cells[index].outputs


def data(nb: Any, index: int, mime: str) -> list[str]:
    return [o["data"][mime] for o in outputs(nb, index) if "data" in o and mime in o["data"]]


def test_the_answer_and_its_footer_are_saved(executed):
    nb, _ = executed
    markdown = data(nb, 1, "text/markdown")
    assert len(markdown) == 1 and len(markdown[0]) > 40 and "▍" not in markdown[0]  # final, not partial
    footer = data(nb, 1, "text/plain")[-1]
    assert footer.startswith("claude:claude-sonnet-4-5 · ")
    for field in ("TTFT", " in / 40 out tokens", "$", "simulator"):
        assert field in footer
    assert "accel-nb-footer" in data(nb, 1, "text/html")[0]


def test_out_variable_is_usable_in_the_next_cell(executed):
    nb, _ = executed
    assert outputs(nb, 2)[0]["text"].strip() == "Response 40 claude"
    assert outputs(nb, 4)[0]["text"].strip() == "['claude', 'gemini', 'openai']"


def test_several_targets_give_columns_and_a_comparison_table(executed):
    nb, _ = executed
    columns = data(nb, 3, "text/markdown")[0]
    table = data(nb, 3, "text/plain")[-1]
    for label in ("claude:claude-sonnet-4-5", "openai:gpt-4o-mini", "gemini:gemini-2.5-flash"):
        assert label in columns and label in table
    assert columns.count("<td") == 3
    header = table.splitlines()[0].split()
    assert header[:4] == ["target", "status", "latency", "TTFT"] and "cost" in header and "finish" in header
    assert len(table.splitlines()) == 4


def test_a_forced_fault_renders_an_error_card_not_a_traceback(executed):
    nb, _ = executed
    cell = outputs(nb, 5)
    assert all(o["output_type"] != "error" for o in cell)
    card = data(nb, 5, "text/plain")[-1]
    assert "AuthenticationError · openai · HTTP 401" in card and "%accel error" in card
    assert "accel-nb-error" in data(nb, 5, "text/html")[-1]


def test_dry_run_list_stats_logs_and_config(executed):
    nb, _ = executed
    dry = data(nb, 6, "text/markdown")[0]
    assert "/openai/v1/chat/completions" in dry and "Bearer <env:OPENAI_API_KEY …KQVM>" in dry
    listing = data(nb, 7, "text/plain")[0]
    assert "env:OPENAI_API_KEY …KQVM" in listing and "simulator" in listing
    assert "accel-stats" in data(nb, 8, "text/html")[0]
    logs = data(nb, 9, "text/plain")[0]
    assert "claude:claude-sonnet-4-5" in logs and "AuthenticationError" in logs
    assert "<…nfig>" in data(nb, 10, "text/plain")[0]  # the config file's key, masked


def test_no_key_is_saved_in_the_notebook(executed):
    _, saved = executed
    assert KEY not in saved
    assert KEY[:-4] not in saved and "NOTEBOOK-DISTINCTIVE" not in saved
