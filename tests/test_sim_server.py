"""The simulator's handle, its index of base URLs, and the command line."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading

import httpx
import pytest
from sim_helpers import http, wait_for

from accel_nb.providers import adapters
from accel_nb.sim import cli, serve


def test_index_maps_each_provider_to_its_sdk_base_url(sim) -> None:
    assert http.get(sim.url + "/").json() == sim.base_urls
    assert sim.base_urls == {
        "claude": sim.url + "/anthropic",
        "openai": sim.url + "/openai/v1",
        "groq": sim.url + "/groq",
        "gemini": sim.url + "/gemini",
        "tgi": sim.url + "/tgi",
        "tei": sim.url + "/tei",
        "ollama": sim.url + "/ollama",
        "llvm": sim.url + "/llvm",
        "vllm": sim.url + "/vllm/v1",
        "opea": sim.url + "/opea",
        "ovms": sim.url + "/ovms",
    }
    served = {p: sim.url + a.sim_path for p, a in adapters().items() if a.sim_path is not None}
    assert served == sim.base_urls  # where our client goes
    assert sim.env() == {"ACCEL_NB_SIM_URL": sim.url}


def test_stop_frees_the_port_and_bad_settings_fail_fast() -> None:
    with serve(latency="zero") as server:
        url = server.url
        assert http.get(url + "/").status_code == 200
    with pytest.raises(httpx.ConnectError):
        http.get(url + "/", timeout=1)
    with pytest.raises(ValueError, match="latency"):
        serve(latency="fast")
    with pytest.raises(ValueError, match="unknown fault"):
        serve(faults="teapot:0.1")


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_cli_prints_the_urls_and_serves_until_stopped(capsys) -> None:
    stop, result = threading.Event(), []
    thread = threading.Thread(target=lambda: result.append(cli.run(_args("--port", "0", "--latency", "zero"), stop)))
    thread.start()
    printed: list[str] = []
    wait_for(lambda: printed.append(capsys.readouterr().out) or "export ACCEL_NB_SIM_URL=" in "".join(printed))
    stop.set()
    thread.join()
    lines = "".join(printed).splitlines()
    url = lines[-1].removeprefix("export ACCEL_NB_SIM_URL=")
    assert f"  openai  {url}/openai/v1" in lines and f"  claude  {url}/anthropic" in lines
    assert result == [0]


def test_cli_reports_a_port_in_use(sim, capsys) -> None:
    assert cli.run(_args("--port", str(sim.port))) == 2
    assert "cannot start" in capsys.readouterr().err


def test_python_m_accel_nb_sim_stops_cleanly_on_ctrl_c() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "accel_nb.sim", "--port", "0", "--latency", "zero", "--faults", "500:1"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as process:
        assert process.stdout is not None
        line = ""
        while not line.startswith("export "):
            line = process.stdout.readline()
            assert line, "the simulator exited before printing its URL"
        url = line.strip().removeprefix("export ACCEL_NB_SIM_URL=")
        reply = http.get(url + "/openai/v1/models", headers={"Authorization": "Bearer k"})
        assert reply.status_code == 500  # the --faults spec is in force
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
