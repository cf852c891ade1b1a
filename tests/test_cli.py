"""The `accel-nb` command: ledger rows, provider listing, and the simulator's entry point."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import accel_nb
from accel_nb.cli import main


def test_logs_and_providers(sim, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-cli-test-key-000000wxyz")
    with accel_nb.Client({"sim_url": sim.url}) as client:
        client.chat("openai", "one")
        client.chat("gemini", "two")
    assert main(["logs", "-n", "5"]) == 0
    table = capsys.readouterr().out
    assert "gemini:gemini-2.5-flash" in table and "openai:gpt-4o-mini" in table and "sk-cli-test" not in table
    assert main(["logs", "--json", "--provider", "openai"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["provider"] for r in rows] == ["openai"] and rows[0]["key"] == "env:OPENAI_API_KEY …wxyz"
    assert main(["providers"]) == 0
    listing = capsys.readouterr().out
    assert "✅ openai" in listing and "env:OPENAI_API_KEY …wxyz" in listing and "❌ claude" in listing
    assert "sk-cli-test" not in listing


def test_logs_on_an_empty_ledger_and_bad_input(capsys):
    assert main(["logs"]) == 0
    assert "no requests recorded yet" in capsys.readouterr().out
    assert main(["logs", "--provider", "opnai"]) == 2
    assert "did you mean 'openai'" in capsys.readouterr().err
    assert main(["logs", "-n", "-1"]) == 2
    assert "-n/--limit must be a whole number at least 0, not -1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["sim", "--port", "99999"])
    assert exited.value.code == 2 and "'99999' is not a TCP port (0-65535" in capsys.readouterr().err


def test_sim_subcommand_is_wired():
    done = subprocess.run([sys.executable, "-m", "accel_nb.cli", "sim", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--faults" in done.stdout and "--require-key" in done.stdout


def test_demo_takes_its_own_options(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--latency", "zero", "--faults", "400:0"]) == 0
    printed = capsys.readouterr().out
    assert "8 prompts × 4 providers" in printed and "claude:claude-sonnet-4-5" in printed
    assert (tmp_path / "ledger.sqlite3").exists()
    with pytest.raises(SystemExit):
        main(["demo", "--notebook", str(tmp_path / "missing.ipynb")])
    assert "no notebook at" in capsys.readouterr().err
