"""The magics' renderers as pure functions: formats, fences, columns, footers."""

from __future__ import annotations

import pytest

from accel_nb.notebook.display import (
    CURSOR,
    close_open_fence,
    column_markdown,
    columns,
    comparison,
    extract_code,
    final_bundle,
    footer,
)
from accel_nb.notebook.runner import Call, Outcome
from accel_nb.types import Response, Usage

ANSWER = (
    "Here you go:\n\n```python\ndef add(a, b):\n    return a + b\n```\n\n"
    "And a test:\n\n```python\nassert add(1, 2) == 3\n```\n"
)


def outcome(**response: object) -> Outcome:
    call = Call("claude", "claude:claude-sonnet-4-5", "claude", "hi")
    fields = {"text": "hello", "provider": "claude", "model": "claude-sonnet-4-5", "request_id": "r1",
              "usage": Usage(12, 34), "latency_s": 1.234, "ttft_s": 0.25, "cost_usd": 0.01229}
    o = Outcome(call)
    o.response = Response(**{**fields, **response})
    o.ended = o.started + 1
    return o


def test_code_keeps_the_fence_language_and_joins_same_language_blocks():
    assert extract_code(ANSWER) == ("python", "def add(a, b):\n    return a + b\n\nassert add(1, 2) == 3")
    assert extract_code("no fence here\n") == ("", "no fence here")
    bundle, note = final_bundle(ANSWER, "code")
    assert bundle["text/markdown"].startswith("```python\ndef add") and note is None
    assert bundle["text/plain"].startswith("def add")


def test_json_html_math_and_text_formats():
    bundle, note = final_bundle('```json\n{"a": [1, 2]}\n```', "json")
    assert bundle["application/json"] == {"a": [1, 2]} and note is None
    bundle, note = final_bundle("not json", "json")
    assert "not valid JSON" in note and bundle["text/markdown"].startswith("```json")
    assert final_bundle("<b>x</b>", "html")[0]["text/html"] == "<b>x</b>"
    assert final_bundle("```html\n<i>y</i>\n```", "html")[0]["text/html"] == "<i>y</i>"
    assert final_bundle("$$\\frac{a}{b}$$", "math")[0]["text/latex"] == "$$\n\\frac{a}{b}\n$$"
    assert final_bundle("plain", "text")[0] == {"text/plain": "plain"}
    assert final_bundle("**md**", "markdown")[0] == {"text/markdown": "**md**", "text/plain": "**md**"}


def test_an_open_fence_is_closed_while_streaming():
    assert close_open_fence("a\n```py\nx = 1") == "a\n```py\nx = 1\n```"
    assert close_open_fence("a\n~~~~\nx\n~~~~\n") == "a\n~~~~\nx\n~~~~\n"
    assert close_open_fence("````\n```\nstill open") == "````\n```\nstill open\n````"
    assert close_open_fence("inline ```code``` is not a fence") == "inline ```code``` is not a fence"


def test_columns_hold_markdown_that_commonmark_renders_inside_table_cells():
    mistune = pytest.importorskip("mistune")
    live = column_markdown("Hello **world**\n\n```python\nx = {1}", "markdown", live=True)
    md = columns([("a:x", live), ("b:y", "- item\n- two")])["text/markdown"]
    html = mistune.create_markdown(escape=False)(md)
    assert html.count("<td") == 2 and "<strong>world</strong>" in html and "<li>item</li>" in html
    assert html.index("</code></pre>") < html.index("</td>")  # the open fence stays in its column
    assert CURSOR in html


def test_footer_fields():
    text = footer(outcome())["text/plain"]
    assert text == "claude:claude-sonnet-4-5 · 1.23 s · TTFT 0.25 s · 12 in / 34 out tokens · $0.0123"
    text = footer(outcome(attempts=3, cached=True, cost_usd=None, usage=Usage(5, 6, estimated=True)),
                  simulated=True)["text/plain"]
    assert text.endswith("≈5 in / ≈6 out tokens · cost n/a · 2 retries · cached · simulator")


def test_comparison_table_has_one_row_per_target():
    ok = outcome(finish_reason="end_turn")
    failed = Outcome(Call("openai", "openai:gpt-4o-mini", "openai", "hi"))
    failed.error, failed.ended = RuntimeError("boom"), failed.started + 0.5
    table = comparison([ok, failed])["text/plain"].splitlines()
    assert table[0].split()[:3] == ["target", "status", "latency"]
    assert "end_turn" in table[1] and "$0.0123" in table[1]
    assert table[2].split()[:2] == ["openai:gpt-4o-mini", "RuntimeError"]
