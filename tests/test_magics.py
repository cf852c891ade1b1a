"""``%%accel`` and ``%accel`` in a real IPython shell, against the simulator over loopback."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from accel_nb import Client, set_default_client
from accel_nb.config import config_path, read_config_file, write_config_file
from accel_nb.notebook.display import CURSOR
from accel_nb.notebook.magics import parse_cell_options, parse_value

KEY = "sk-proj-DISTINCTIVE-9f8e7d6c5b4a39281706-ZQXW"  # must never appear in any output


@dataclass
class Cell:
    """What one cell produced: each display's last bundle (in order), every publish, stdout, stderr."""

    bundles: list[dict[str, Any]]
    publishes: list[dict[str, Any]]
    stdout: str
    stderr: str
    result: Any

    @property
    def text(self) -> str:
        """Everything a person could read, as plain text."""
        return "\n".join([*(b.get("text/plain", "") for b in self.bundles), self.stdout, self.stderr])

    @property
    def everything(self) -> str:
        """Every byte published, including intermediate updates and every MIME type."""
        return json.dumps(self.publishes, ensure_ascii=False, default=str) + self.stdout + self.stderr

    def find(self, mime: str, needle: str = "") -> str:
        for bundle in self.bundles:
            if mime in bundle and needle in str(bundle[mime]):
                return bundle[mime]
        raise AssertionError(f"no {mime} output containing {needle!r} in {self.bundles}")


def run(shell: InteractiveShell, source: str) -> Cell:
    with capture_output() as captured:
        result = shell.run_cell(source)
    order: list[Any] = []
    last: dict[Any, dict[str, Any]] = {}
    publishes = []
    for output in captured.outputs:
        key = output.transient.get("display_id") or id(output)
        if key not in last:
            order.append(key)
        last[key] = output.data
        publishes.append(output.data)
    return Cell([last[k] for k in order], publishes, captured.stdout, captured.stderr, result)


@pytest.fixture
def shell() -> Any:
    sh = InteractiveShell.instance()
    sh.run_line_magic("reload_ext", "accel_nb")  # a fresh session: no conversations, no last error
    yield sh
    sh.run_line_magic("unload_ext", "accel_nb")
    for name in ("a", "b", "r", "part", "x", "context", "rows"):
        sh.user_ns.pop(name, None)


@pytest.fixture
def client(sim, shell) -> Any:
    c = Client({"sim_url": sim.url})
    set_default_client(c)
    yield c
    set_default_client(None)


def last_prompt(client: Client) -> dict[str, Any]:
    return json.loads(client.logs(limit=1)[0]["prompt"])


def dry_run_body(cell: Cell) -> dict[str, Any]:
    md = cell.find("text/markdown", "Dry run")
    return json.loads(re.search(r"````json\n(.*?)\n````", md, re.DOTALL).group(1))


# -- loading -------------------------------------------------------------------------------------------------


def test_load_ext_registers_both_magics(shell):
    magics = shell.magics_manager.magics
    assert "accel" in magics["line"] and "accel" in magics["cell"]
    shell.run_line_magic("unload_ext", "accel_nb")
    assert "accel" not in magics["line"] and "accel" not in magics["cell"]
    shell.run_line_magic("load_ext", "accel_nb")
    assert "accel" in magics["cell"]


# -- one target ----------------------------------------------------------------------------------------------


def test_the_answer_streams_into_a_display_then_a_footer(shell, client):
    # the simulator paces this reply: 20 ms to the first token, then 300 tokens/s
    cell = run(shell, "%%accel claude -o r --max-tokens 60 -H x-sim-ttft=0.02 -H x-sim-tps=300\nExplain backpressure.")
    r = shell.user_ns["r"]
    body, foot = cell.bundles
    assert body == {"text/markdown": r.text, "text/plain": r.text}
    partial = [p["text/markdown"] for p in cell.publishes if CURSOR in p.get("text/markdown", "")]
    assert partial, "no partial answer was shown while streaming"
    assert len(cell.publishes) < 40, "redraws must be rate-bounded"
    footer = foot["text/plain"]
    assert footer.startswith("claude:claude-sonnet-4-5 · ")
    assert "TTFT" in footer and f"{r.usage.input_tokens} in / 60 out tokens" in footer
    assert "$" in footer and "simulator" in footer
    assert "retr" not in footer and "cached" not in footer
    assert "accel-nb-footer" in foot["text/html"]
    assert cell.result.success


def test_out_variable_and_priority_high_by_default(shell, client):
    cell = run(shell, "%%accel openai:gpt-4o -o a\nHello")
    assert cell.result.success
    a = shell.user_ns["a"]
    assert a.provider == "openai" and a.model == "gpt-4o" and a.text
    row = client.logs(limit=1)[0]
    assert row["priority"] == "high"
    run(shell, "%%accel openai --priority low --no-stream -o b\nHello")
    assert client.logs(limit=1)[0]["priority"] == "low"
    assert shell.user_ns["b"].text


def test_no_stream_cache_and_retries_in_the_footer(shell, client, sim):
    first = run(shell, "%%accel groq --cache --no-stream --temperature 0\nSame question")
    again = run(shell, "%%accel groq --cache --no-stream --temperature 0\nSame question")
    assert "cached" not in first.bundles[-1]["text/plain"]
    assert "cached" in again.bundles[-1]["text/plain"]
    sim.script("gemini", ["429=0.01"])
    retried = run(shell, "%%accel gemini\nHello")
    assert "1 retry" in retried.bundles[-1]["text/plain"]


def test_the_status_line_says_when_the_engine_retries(shell, client, sim):
    sim.script("claude", ["429=0.4"])  # one 429 asking for 0.4 s, then the answer
    cell = run(shell, "%%accel claude\nHello")
    notes = [p["text/plain"] for p in cell.publishes if "retry 1 after RateLimitError" in p.get("text/plain", "")]
    assert notes and "waiting 0.4 s" in notes[0]
    assert "1 retry" in cell.bundles[-1]["text/plain"]


def test_formats(shell, client):
    cell = run(shell, "%%accel claude -f text\nHi")
    assert set(cell.bundles[0]) == {"text/plain"}
    cell = run(shell, "%%accel claude -f html\nHi")
    assert "text/html" in cell.bundles[0]
    cell = run(shell, "%%accel claude -f math\nHi")
    assert cell.bundles[0]["text/latex"].startswith("$$")
    cell = run(shell, "%%accel claude -f json\nHi")  # the simulator answers prose: shown as text, said so
    assert cell.bundles[0]["text/markdown"].startswith("```json")
    assert "not valid JSON" in cell.bundles[-1]["text/plain"]
    shell.rl_next_input = None
    cell = run(shell, "%%accel claude --insert -o r\nWrite code")
    assert cell.bundles[0]["text/markdown"].startswith("```")
    assert shell.rl_next_input == shell.user_ns["r"].text.strip("\n")


# -- several targets -----------------------------------------------------------------------------------------


def test_several_targets_side_by_side_then_a_comparison(shell, client):
    cell = run(shell, "%%accel claude, openai,gemini -o b --max-tokens 12\nSummarise backpressure.")
    columns, table = cell.bundles
    md = columns["text/markdown"]
    assert md.count("<td") == 3 and "table-layout:fixed" in md
    for label in ("claude:claude-sonnet-4-5", "openai:gpt-4o-mini", "gemini:gemini-2.5-flash"):
        assert label in md and label in table["text/plain"]
    b = shell.user_ns["b"]
    assert list(b) == ["claude", "openai", "gemini"]
    for response in b.values():
        assert response.text in md
    assert "latency" in table["text/plain"] and "finish" in table["text/plain"]
    assert "max_tokens" in table["text/plain"] and "length" in table["text/plain"]  # finish reasons
    assert "accel-nb-compare" in table["text/html"]


def test_one_failing_target_does_not_spoil_the_others(shell, client, sim):
    sim.script("openai", ["400"])
    cell = run(shell, "%%accel claude,openai -o b\nHi")
    b = shell.user_ns["b"]
    assert b["claude"].text
    assert type(b["openai"]).__name__ == "BadRequestError"
    assert "BadRequestError" in cell.bundles[0]["text/markdown"]
    assert "BadRequestError" in cell.bundles[1]["text/plain"]  # the table
    assert any("accel-nb-error" in bundle.get("text/html", "") for bundle in cell.bundles)


# -- interpolation -------------------------------------------------------------------------------------------

CODE_CELL = r'''%%accel claude
Review this for {context}:

def summarise(rows):
    counts = {}
    for row in rows:
        counts[row["kind"]] = counts.get(row["kind"], 0) + 1
    seen = {r["id"] for r in rows}
    return f"{len(seen)} ids, kinds: {counts!r}", {"total": len(rows)}

Expected JSON: {"ids": 3, "kinds": {"a": 2}}
Complexity is $O(n)$; precision is \frac{tp}{tp + fp}, recall$_{k}$ and x^{2}.
Inline `{row}` stays; {{context}} is literal; the first row is {rows[0]}.
'''


def test_a_cell_full_of_code_json_and_latex_is_sent_as_written(shell, client):
    shell.user_ns.update(context="a code review", rows=["alpha", "beta"])
    cell = run(shell, CODE_CELL)
    assert cell.result.success, cell.stderr
    sent = last_prompt(client)["messages"][-1]["content"]
    expected = CODE_CELL.split("\n", 1)[1].strip()
    expected = expected.replace("for {context}:", "for a code review:").replace("{{context}}", "{context}")
    expected = expected.replace("is {rows[0]}.", "is alpha.")
    assert sent == expected


def test_unknown_name_is_an_error_naming_it_and_nothing_is_sent(shell, client, sim):
    shell.user_ns["context"] = "x"
    cell = run(shell, "%%accel claude\nUse {contxt} please")
    assert not cell.result.success
    assert "UsageError" in cell.stderr and "no variable named 'contxt'" in cell.stderr
    assert "did you mean {context}" in cell.stderr
    assert "{{contxt}}" in cell.stderr  # how to send it literally
    assert "Traceback" not in cell.stderr
    assert sim.stats()["requests"] == {}


def test_system_prompt_is_interpolated_and_the_line_is_not_expanded_by_ipython(shell, client):
    shell.user_ns["x"] = "pirate"
    cell = run(shell, '%%accel claude --system "Talk like a {x}; costs are in $USD" --dry-run\nHello')
    body = dry_run_body(cell)
    assert body["system"] == "Talk like a pirate; costs are in $USD"


# -- options -------------------------------------------------------------------------------------------------


def test_param_values_are_typed():
    assert parse_value("3") == 3 and parse_value("-2") == -2
    assert parse_value("0.5") == 0.5 and parse_value("1e-3") == 0.001
    assert parse_value("true") is True and parse_value("False") is False
    assert parse_value("null") is None
    assert parse_value('{"a": [1, 2]}') == {"a": [1, 2]} and parse_value("[1]") == [1]
    assert parse_value('"42"') == "42"
    assert parse_value("hello world") == "hello world"


def test_cell_line_parsing():
    opts = parse_cell_options(
        'claude,openai:gpt-4o, fast -f code -o ans --system "Be brief" --max-tokens 50 --temperature 0.3 '
        "-p top_k=5 -p seed=1.5 -p logprobs=true -p 'response_format={\"type\": \"json_object\"}' "
        "-H x-team=ml --priority normal --no-stream --no-cache --timeout 30 -c"
    )
    assert opts.targets == ["claude", "openai:gpt-4o", "fast"]
    assert (opts.format, opts.out, opts.system) == ("code", "ans", "Be brief")
    assert (opts.max_tokens, opts.temperature) == (50, 0.3)
    assert opts.params == {"top_k": 5, "seed": 1.5, "logprobs": True, "response_format": {"type": "json_object"}}
    assert opts.headers == {"x-team": "ml"}
    assert (opts.priority, opts.stream, opts.cache, opts.timeout, opts.chat) == ("normal", False, False, 30.0, True)
    commented = parse_cell_options('claude,openai  # compare -o x, "quoted # stays"')
    assert commented.targets == ["claude", "openai"] and commented.out is None
    params = parse_cell_options("claude -p color=#fff -p empty= --system 'a # b'").params
    assert params == {"color": "#fff", "empty": ""}
    assert parse_cell_options("claude --system 'a # b'").system == "a # b"
    defaults = parse_cell_options("claude")
    assert (defaults.priority, defaults.stream, defaults.cache, defaults.format) == ("high", True, None, "markdown")
    assert parse_cell_options("claude --insert").format == "code"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "needs a target"),
        ("claude --temperature 3", "must be <= 2"),
        ("claude --max-tokens many", "expected an integer"),
        ("claude --max-tokens 0", "must be > 0"),
        ("claude -f yaml", "invalid choice"),
        ("claude --insert -f json", "needs -f code"),
        ("claude -o 1st", "Python variable name"),
        ("claude -o class", "Python variable name"),
        ("claude -p nonsense", "NAME=VALUE"),
        ("claude -p x={broken", "not valid"),
        ("claude --cache --no-cache", "not allowed with"),
        ("claude --frobnicate", "unrecognized arguments"),
        ("claude --system 'unclosed", "quotation"),
        ("claud", "did you mean 'claude'"),
    ],
)
def test_mistakes_in_the_line_are_one_line_usage_errors(shell, client, line, message):
    cell = run(shell, f"%%accel {line}\nHello")
    assert not cell.result.success
    assert "UsageError" in cell.stderr and message in cell.stderr, cell.stderr
    assert "Traceback" not in cell.stderr


def test_empty_cell_and_help(shell, client):
    cell = run(shell, "%%accel claude\n\n   \n")
    assert "the cell is empty" in cell.stderr
    cell = run(shell, "%%accel --help\nanything")
    assert "--max-tokens" in cell.text and "--dry-run" in cell.text
    assert "%%accel TARGET" in run(shell, "%accel --help").text


def test_typed_params_and_headers_reach_the_request(shell, client):
    cell = run(shell, "%%accel openai --dry-run -p top_logprobs=3 -p seed=1.5 -p logprobs=true "
                      "-p 'metadata={\"k\": [1]}' -p user=alice --stop END --top-p 0.9\nHi")
    body = dry_run_body(cell)
    assert body["top_logprobs"] == 3 and body["seed"] == 1.5 and body["logprobs"] is True
    assert body["metadata"] == {"k": [1]} and body["user"] == "alice"
    assert body["stop"] == "END" and body["top_p"] == 0.9 and body["stream"] is True


# -- errors and keys -----------------------------------------------------------------------------------------


def test_a_missing_key_says_which_variable_and_never_env(shell):
    set_default_client(Client())  # isolated environment: no keys anywhere
    try:
        cell = run(shell, "%%accel claude\nHello")
        detail = run(shell, "%accel error")
    finally:
        set_default_client(None)
    assert cell.result.success  # an error card, not a traceback
    card = cell.bundles[-1]
    assert "AuthenticationError" in card["text/plain"] and "accel-nb-error" in card["text/html"]
    assert "ANTHROPIC_API_KEY" in card["text/plain"] and "%accel keys" in card["text/plain"]
    assert "key: none" in card["text/plain"]
    assert "%accel error" in card["text/plain"]
    for text in (cell.everything, detail.everything):
        assert "%env" not in text
    assert "Traceback" not in cell.everything
    assert "ANTHROPIC_API_KEY" in detail.text and "Traceback" in detail.text  # full detail, on request


def test_a_401_card_names_the_key_by_source_only(shell, sim):
    set_default_client(Client({"sim_url": sim.url}, keys={"openai": KEY}))
    try:
        cell = run(shell, "%%accel openai -H x-sim-fault=401\nHello")
        detail = run(shell, "%accel error")
    finally:
        set_default_client(None)
    card = cell.bundles[-1]["text/plain"]
    assert "AuthenticationError" in card and "HTTP 401" in card and "key: runtime …ZQXW" in card
    assert "r" not in shell.user_ns
    run(shell, "%%accel openai -o r -H x-sim-fault=401\nHello")
    assert type(shell.user_ns["r"]).__name__ == "AuthenticationError"  # not a stale answer
    assert "request id" in detail.text and "HTTP status: 401" in detail.text
    assert KEY not in cell.everything and KEY not in detail.everything


def test_dry_run_shows_the_exact_request_with_keys_masked(shell, sim):
    set_default_client(Client({"sim_url": sim.url}, keys={"openai": KEY, "claude": KEY + "-2"}))
    try:
        cell = run(shell, f"%%accel openai,claude --dry-run -H 'Authorization=Bearer {KEY}' --max-tokens 9\nHi")
    finally:
        set_default_client(None)
    assert sim.stats()["requests"] == {}  # nothing was sent
    openai_md = cell.find("text/markdown", "/openai/v1/chat/completions")
    assert "POST " + sim.url + "/openai/v1/chat/completions" in openai_md
    assert "Authorization: <hidden …ZQXW>" in openai_md  # the header the user added, masked
    assert "authorization: Bearer <runtime …ZQXW>" in openai_md  # the adapter's own header: the key's label
    claude_md = cell.find("text/markdown", "/anthropic/v1/messages")
    assert "x-api-key: <runtime …XW-2>" in claude_md
    assert dry_run_body(cell)["max_completion_tokens"] == 9  # OpenAI's current name for it
    assert KEY not in cell.everything


def test_no_key_appears_in_any_output(shell, sim, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    write_config_file({"providers": {"groq": {"keys": [KEY + "-groq"]}}, "retry": {"max_attempts": 2}})
    set_default_client(Client({"sim_url": sim.url}))
    try:
        cells = [
            "%%accel openai -o a\nHello",
            "%%accel openai,groq --max-tokens 5\nHello",
            "%%accel openai --dry-run\nHello",
            "%%accel openai -H x-sim-fault=401\nHello",
            "%accel error",
            "%accel list",
            "%accel keys",
            "%accel config",
            "%accel config providers.groq.keys",
            "%accel stats",
            "%accel logs -n 5",
            "%accel logs --json",
            "%accel help",
            "%accel sim status",
        ]
        outputs = [run(shell, source) for source in cells]
    finally:
        set_default_client(None)
    for source, cell in zip(cells, outputs, strict=True):
        assert cell.everything.strip(), f"{source} showed nothing"
        assert KEY not in cell.everything, f"{source} leaked the key"
        assert KEY[-12:] not in cell.everything, f"{source} leaked most of the key"
    assert "env:OPENAI_API_KEY …ZQXW" in outputs[5].text  # the source and last four only


# -- conversations -------------------------------------------------------------------------------------------


def test_chat_keeps_per_target_history_until_reset(shell, client):
    run(shell, "%%accel claude -c -o a\nFirst question")
    run(shell, "%%accel claude -c\nSecond question")
    messages = last_prompt(client)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"] == "First question" and messages[1]["content"] == shell.user_ns["a"].text
    run(shell, "%%accel openai -c\nOther target")
    assert len(last_prompt(client)["messages"]) == 1  # its own history
    run(shell, "%%accel claude\nNot a chat cell")
    assert len(last_prompt(client)["messages"]) == 1  # without -c: no history
    cell = run(shell, "%accel reset claude")
    assert "claude:claude-sonnet-4-5 (2 turns)" in cell.text
    run(shell, "%%accel claude -c\nFresh start")
    assert len(last_prompt(client)["messages"]) == 1
    assert "openai:gpt-4o-mini (1 turn)" in run(shell, "%accel reset").text
    assert "no conversations" in run(shell, "%accel reset").text


# -- interrupts ----------------------------------------------------------------------------------------------


def test_interrupt_keeps_the_partial_answer_and_cancels_the_request(shell, client, sim):
    slow = "-H x-sim-ttft=0.05 -H x-sim-tps=25"  # 500 tokens would take 20 s
    try:
        timer = threading.Timer(0.7, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        started = time.monotonic()
        cell = run(shell, f"%%accel claude -o part --max-tokens 500 {slow}\nTell me a long story")
        elapsed = time.monotonic() - started
        timer.join()
        assert elapsed < 3, "the stream did not stop at once"
        assert isinstance(cell.result.error_in_exec, KeyboardInterrupt)  # "Run all" stops here
        assert "Traceback" not in cell.everything
        assert "the text received so far is kept" in cell.stdout + cell.stderr
        part = shell.user_ns["part"]
        assert part.finish_reason == "interrupted" and part.text
        body, foot = cell.bundles
        assert body["text/plain"] == part.text and CURSOR not in body["text/markdown"]
        assert "interrupted after" in foot["text/plain"] and "request cancelled" in foot["text/plain"]
        deadline = time.monotonic() + 3
        while sim.stats()["disconnects"] < 1:
            assert time.monotonic() < deadline, "the simulator never saw the stream closed"
            time.sleep(0.02)
        after = run(shell, "%%accel claude --max-tokens 5 -o a\nStill there?")  # the engine is healthy
        assert after.result.success and shell.user_ns["a"].usage.output_tokens == 5
    finally:
        timer.cancel()


# -- subcommands ---------------------------------------------------------------------------------------------


def test_list_shows_key_status_and_sources(shell, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    set_default_client(Client())
    try:
        cell = run(shell, "%accel list")
    finally:
        set_default_client(None)
    table = cell.bundles[0]["text/plain"]
    assert re.search(r"✅ openai .*env:OPENAI_API_KEY …ZQXW", table)
    assert re.search(r"❌ claude .*none — set ANTHROPIC_API_KEY", table)
    assert "gpt-4o-mini" in table and "https://api.openai.com/v1" in table
    assert KEY not in cell.everything


def test_alias_is_saved_and_usable(shell, client):
    write_config_file({"retry": {"max_attempts": 3}})
    cell = run(shell, "%accel alias fast openai:gpt-4.1-nano")
    assert "fast → openai:gpt-4.1-nano" in cell.text
    path = config_path()
    assert str(path).startswith(os.environ["ACCEL_NB_HOME"])
    assert read_config_file() == {"retry": {"max_attempts": 3}, "aliases": {"fast": "openai:gpt-4.1-nano"}}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cell = run(shell, "%%accel fast -o a\nHi")
    assert shell.user_ns["a"].target == "openai:gpt-4.1-nano"
    assert "fast" in run(shell, "%accel alias").text
    assert Client().settings.aliases == {"fast": "openai:gpt-4.1-nano"}  # a new kernel would see it
    run(shell, "%accel alias --delete fast")
    assert read_config_file() == {"retry": {"max_attempts": 3}, "aliases": {}}
    assert "fast" not in client.settings.aliases
    for bad, message in (("claude openai", "already a provider"), ("x nope:model", "unknown provider"),
                         ("a:b claude", "not a usable name"), ("--delete ghost", "no alias 'ghost'")):
        cell = run(shell, f"%accel alias {bad}")
        assert message in cell.stderr, cell.stderr


def test_config_get_set_unset_and_refuse_keys(shell, client):
    assert "no config file yet" in run(shell, "%accel config").text
    cell = run(shell, "%accel config retry.max_attempts 8")
    assert "saved retry.max_attempts = 8" in cell.text
    assert read_config_file()["retry"]["max_attempts"] == 8
    assert run(shell, "%accel config retry.max_attempts").text.startswith("retry.max_attempts = 8")
    assert "valid settings" in run(shell, "%accel config retry.max_attempt 8").stderr
    assert "holds a key" in run(shell, "%accel config providers.openai.keys sk-x").stderr
    assert "not set" in run(shell, "%accel config --unset cache.enabled").stderr
    run(shell, "%accel config --unset retry.max_attempts")
    assert read_config_file() == {"retry": {}}
    run(shell, "%accel config queue.overflow reject")
    assert "reloaded" in run(shell, "%accel config --reload").text
    from accel_nb.client import default_client

    assert default_client().settings.queue.overflow == "reject"


def test_sim_start_points_only_keyless_providers_at_the_simulator(shell, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    set_default_client(Client())
    try:
        cell = run(shell, "%accel sim start --latency zero")
        text = cell.text
        assert "SIMULATOR ON at http://127.0.0.1:" in text and "accel-nb-warning" in cell.bundles[0]["text/html"]
        simulated = re.search(r"— (.*) now answer from the local simulator", text).group(1).split(", ")
        assert {"claude", "groq", "gemini"} <= set(simulated) and "openai" not in simulated
        assert "Still real (a key, or a server you configured): openai" in text
        listed = run(shell, "%accel list").text
        assert re.search(r"🧪 claude .*simulator", listed) and "https://api.openai.com/v1" in listed
        answer = run(shell, "%%accel claude -o a\nHello")
        assert answer.result.success and "simulator" in answer.bundles[-1]["text/plain"]
        assert "requests so far: claude: 1" in run(shell, "%accel sim status").text
        assert "stopped" in run(shell, "%accel sim stop").text
        missing = run(shell, "%%accel claude\nHello")
        assert "AuthenticationError" in missing.text  # back to the real (keyless) setup
        assert "not running" in run(shell, "%accel sim stop").text
        assert KEY not in cell.everything + listed
    finally:
        run(shell, "%accel sim stop")
        set_default_client(None)


def test_sim_start_under_accel_nb_sim_url_uses_that_simulator(shell, sim, monkeypatch):
    monkeypatch.setenv("ACCEL_NB_SIM_URL", sim.url)  # e.g. a notebook run by `make demo`
    set_default_client(Client())
    try:
        started = run(shell, "%accel sim start").text
        assert f"{sim.url} answers for " in started and "ACCEL_NB_SIM_URL points here" in started
        assert "SIMULATOR ON" not in started  # no second simulator that nobody would use
        run(shell, "%%accel claude --max-tokens 3\nHello")
        assert "requests so far: claude: 1" in run(shell, "%accel sim status").text
        sim.stop()
        assert "does not answer" in run(shell, "%accel sim status").text
    finally:
        set_default_client(None)
    monkeypatch.delenv("ACCEL_NB_SIM_URL")
    assert "no provider is simulated" in run(shell, "%accel sim status").text


def test_stats_logs_help_and_widget_placeholders(shell, client):
    run(shell, "%%accel claude\nHello")
    stats = run(shell, "%accel stats")
    assert "claude" in stats.bundles[0]["text/plain"] and "accel-stats" in stats.bundles[0]["text/html"]
    logs = run(shell, "%accel logs -n 5 --provider claude")
    assert "claude:claude-sonnet-4-5" in logs.text and "ok" in logs.text
    rows = [json.loads(line) for line in run(shell, "%accel logs --json").bundles[0]["text/plain"].splitlines()]
    assert rows[0]["provider"] == "claude" and rows[0]["priority"] == "high"
    assert "no requests" in run(shell, "%accel logs --errors").text
    assert "%%accel TARGET" in run(shell, "%accel help").text
    assert "%%accel TARGET" in run(shell, "%accel").text
    for name, widget in (("keys", "KeyManager"), ("panel", "VBox"), ("dashboard", "Dashboard")):
        cell = run(shell, f"%accel {name}")
        assert cell.result.success and widget in cell.text  # the widget, displayed
    again = run(shell, "%accel dashboard")  # a panel's module once shadowed the factory after first use
    assert again.result.success and "Dashboard" in again.text
    assert "did you mean `%accel list`" in run(shell, "%accel lsit").stderr
    assert "use the cell magic: `%%accel claude`" in run(shell, "%accel claude").stderr


def test_error_subcommand_without_an_error(shell, client):
    assert "no error so far" in run(shell, "%accel error").text


# -- terminal IPython: plain text, streamed to stdout --------------------------------------------------------


def test_terminal_output_is_text_streamed_to_stdout(shell, client):
    assert type(shell.display_pub).__name__ == "DisplayPublisher"  # what a terminal IPython has
    with capture_output(display=False) as captured:
        shell.run_cell("%%accel claude -o a --max-tokens 20\nHello")
        shell.run_cell("%%accel claude,openai --max-tokens 5\nHello")
    out = captured.stdout
    a = shell.user_ns["a"]
    assert out.startswith(a.text + "\n")
    assert "claude:claude-sonnet-4-5 · " in out and "20 out tokens" in out
    assert "── openai:gpt-4o-mini ──" in out and "tokens in" in out  # answers, then the comparison
    assert "<" not in out  # no HTML in a terminal


def test_a_closed_client_is_an_error_card_not_a_hang(shell, sim):
    closed = Client({"sim_url": sim.url})
    assert closed.engine is not None  # started, then closed
    closed.close()
    set_default_client(closed)
    try:
        cell = run(shell, "%%accel claude,openai\nHello")
    finally:
        set_default_client(None)
    assert "this client is closed" in cell.text


def test_a_broken_worker_fails_every_target_instead_of_hanging():
    from accel_nb.notebook.runner import Call, Run

    class Broken:
        @property
        def engine(self):
            raise RuntimeError("no engine")

    run_ = Run(Broken(), [Call("a", "a:x", "a", "hi"), Call("b", "b:y", "b", "hi")]).start()
    deadline = time.monotonic() + 5
    while not run_.done:
        assert time.monotonic() < deadline
        run_.poll(0.05)
    assert [str(o.error) for o in run_.outcomes] == ["no engine", "no engine"]


def test_a_timeout_card_speaks_in_the_magic_options(shell, client):
    cell = run(shell, "%%accel claude --timeout 0.2 -H x-sim-ttft=5\nHello")
    card = cell.bundles[-1]["text/plain"]
    assert "TimeoutError" in card and "0.2 s timeout" in card and "raise --timeout" in card


def test_a_broken_config_file_is_a_card(shell):
    config_path().write_text("this is [not toml")
    set_default_client(None)
    for source in ("%%accel claude\nHello", "%accel alias", "%accel list"):
        cell = run(shell, source)
        assert "not valid TOML" in cell.text and "fix or remove the file" in cell.text, source
        assert "Traceback" not in cell.everything


def test_a_cell_without_target_uses_the_pickers_choice(shell, client):
    missing = run(shell, "%%accel\nHello")
    assert "needs a target" in missing.stderr and "%accel panel" in missing.stderr
    client.settings.default_target = "groq:llama-3.1-8b-instant"
    answered = run(shell, "%%accel -o a\nHello")
    assert answered.result.success and shell.user_ns["a"].target == "groq:llama-3.1-8b-instant"
