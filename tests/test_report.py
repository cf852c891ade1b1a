"""The comparison report: numbers per target, text / HTML / JSON, self-contained charts; and the
demo's main job (the comparison notebook run headlessly against the simulator)."""

from __future__ import annotations

import asyncio
import json
import re

import nbformat
import pytest

import accel_nb
from accel_nb import demo, errors
from accel_nb.headless import SOURCE_ROOT
from accel_nb.report import HEADER, Comparison, Outcome, compare
from accel_nb.types import Response, Usage


def response(latency: float, ttft: float, tokens_out: int, cost: float | None, attempts: int = 1,
             model: str = "m1") -> Response:
    return Response("answer", "claude", model, "id", Usage(10, tokens_out), latency_s=latency, ttft_s=ttft,
                    attempts=attempts, cost_usd=cost)


@pytest.fixture
def comparison() -> Comparison:
    results = {
        "claude": [response(1.0, 0.2, 80, 0.002), response(2.0, 0.4, 160, 0.004, attempts=3),
                   errors.OverloadedError("busy", provider="claude")],
        "tgi": [response(0.5, 0.1, 40, None, model="tgi"), response(1.5, 0.1, 140, None, model="tgi"),
                response(1.1, 0.1, 100, None, model="tgi")],
    }
    outcomes = [Outcome.of(target, i, result) for target, items in results.items() for i, result in enumerate(items)]
    return Comparison(["a", "b", "c"], outcomes, {"claude": "real API", "tgi": "simulator"}, 1_700_000_000.0)


def test_rows_hold_the_numbers_per_target(comparison):
    claude, tgi = comparison.rows()
    assert claude["target"] == "claude:m1" and claude["served_by"] == "real API"
    assert (claude["requests"], claude["ok"], claude["retries"]) == (3, 2, 2)
    assert claude["errors"] == {"OverloadedError": 1}
    assert (claude["latency_p50_s"], claude["latency_p95_s"], claude["ttft_p50_s"]) == (1.0, 2.0, 0.2)
    assert (claude["input_tokens"], claude["output_tokens"]) == (20, 240)
    assert claude["tokens_per_s"] == pytest.approx(100.0)  # 80 / 0.8 and 160 / 1.6
    assert claude["cost_usd"] == pytest.approx(0.006)
    assert claude["cost_per_1k_tokens"] == pytest.approx(0.006 * 1000 / 260)
    assert tgi["target"] == "tgi:tgi" and tgi["cost_usd"] is None and tgi["cost_per_1k_tokens"] is None
    assert tgi["latency_p50_s"] == 1.1 and tgi["errors"] == {}


def test_text_html_and_json(comparison):
    text = comparison.text()
    assert text.splitlines()[0].split()[:3] == ["target", "served", "by"]
    assert "OverloadedError ×1" in text and "2/3" in text and "n/a" in text
    assert comparison.text(["target", "ok"]).splitlines()[1].split() == ["claude:m1", "2/3"]
    assert "<table class='accel-nb-comparison'>" in comparison._repr_html_()
    assert repr(comparison) == "<Comparison of 3 prompts on 2 targets>"
    loaded = Comparison.from_json(comparison.to_json())
    assert loaded.rows() == comparison.rows() and loaded.table() == comparison.table()
    assert json.loads(comparison.to_json())["outcomes"][2]["error"] == "OverloadedError"
    assert len(HEADER) == len(comparison.table()[0])


def test_the_html_report_is_self_contained(comparison, tmp_path):
    path = comparison.write_html(tmp_path / "report.html", title="Weekly check")
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<title>Weekly check</title>" in page
    assert page.count("Plotly.newPlot") == 2 and page.count("* plotly.js v") == 1  # two charts, the library once
    assert not re.search(r"<script[^>]*\bsrc=", page)  # nothing fetched when it opens
    assert "Answered by the local simulator, not the real API: tgi." in page
    assert "no price known: tgi:tgi" in page and "<li>b</li>" in page


def test_compare_against_the_simulator(sim):
    sim.script("openai", ["400"])  # the first openai request fails: a result, not a crash
    with accel_nb.Client({"sim_url": sim.url}) as client:
        comparison = asyncio.run(compare(client, ["claude", "openai:gpt-4.1-mini"], ["one", "two"], max_tokens=8))
    assert comparison.targets == ["claude", "openai:gpt-4.1-mini"]
    assert [o.prompt for o in comparison.outcomes] == [0, 1, 0, 1]
    claude, openai = comparison.rows()
    assert claude["ok"] == 2 and claude["output_tokens"] == 16 and claude["ttft_p50_s"] is not None
    assert openai["target"] == "openai:gpt-4.1-mini" and openai["ok"] == 1
    assert openai["errors"] == {"BadRequestError": 1}
    assert set(comparison.served_by.values()) == {"simulator"}


@pytest.mark.timeout(180)
def test_the_demo_runs_the_comparison_notebook(tmp_path, capsys):
    out = tmp_path / "demo"
    notebook = SOURCE_ROOT / "notebooks" / "02_compare_providers.ipynb"
    assert demo.main(["--notebook", str(notebook), "--out", str(out), "--latency", "zero",
                      "--faults", "retry-after-ms=20:0.1"]) == 0
    printed = capsys.readouterr().out
    table = printed[printed.index("target "):printed.index("\nReport:")].strip().splitlines()
    assert table[0].split() == ["target", "ok", "retries", "errors", "p50", "latency", "p50", "TTFT", "tok/s",
                                "cost", "$", "/", "1k", "tokens"]
    assert len(table) == 1 + 9 and all(re.search(r" 6/6 ", row) for row in table[1:])
    assert f"Report:            {out / 'report.html'}" in printed
    executed = nbformat.read(out / "02_compare_providers.ipynb", as_version=4)
    assert any(cell.get("outputs") for cell in executed.cells)
    comparison = Comparison.from_json((out / "comparison.json").read_text())
    assert sum(row["retries"] for row in comparison.rows()) > 0  # the injected faults were retried
    assert "Plotly.newPlot" in (out / "report.html").read_text()
    assert (out / "home" / "ledger.sqlite3").exists()  # the kernel's own home, not the user's
