"""The lab extension's comm, kernel side, through a real IPython kernel and the simulator."""

from __future__ import annotations

import itertools
import json
import os
import queue
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import accel_nb
from accel_nb.notebook import comm

jupyter_client = pytest.importorskip("jupyter_client", reason="pip install -e '.[test]'")

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk-test-DISTINCTIVE-4242"

# Until the magics land (issue 4) the kernel starts the comm by hand; then: "%load_ext accel_nb".
LOAD = "from accel_nb.notebook import comm; comm.start()"


def kernel_env(home: Path) -> dict[str, str]:
    """This checkout first on the path, a private accel_nb home, no real keys."""
    env = {k: v for k, v in os.environ.items() if "_API_KEY" not in k and not k.startswith("ACCEL_NB_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env["ACCEL_NB_HOME"] = str(home)
    return env


class Kernel:
    """A kernel, its client, and every accel_nb comm message it published."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.opens: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []  # comm_msg on accel_nb's comm, in order

    @property
    def comm_id(self) -> str:
        return self.opens[-1]["content"]["comm_id"]

    def execute(self, code: str, timeout: float = 30) -> None:
        msg_id = self.client.execute(code)
        errors: list[str] = []

        def idle(msg: dict[str, Any]) -> bool:
            if msg["parent_header"].get("msg_id") != msg_id:
                return False
            if msg["msg_type"] == "error":
                errors.append("\n".join(msg["content"]["traceback"]))
            return msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle"

        self.pump(idle, timeout)
        assert not errors, errors[0]

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], since: int = 0, timeout: float = 20
    ) -> dict[str, Any]:
        """The first comm message from index ``since`` on (received or to come) that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        index = since
        while True:
            while index < len(self.messages):
                index += 1
                if predicate(self.messages[index - 1]):
                    return self.messages[index - 1]
            self._next(deadline)

    def pump(self, done: Callable[[dict[str, Any]], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done(self._next(deadline)):
            pass

    def _next(self, deadline: float) -> dict[str, Any]:
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                msg = self.client.get_iopub_msg(timeout=remaining)
            except queue.Empty:
                continue
            self._record(msg)
            return msg
        raise AssertionError(f"timed out; the last comm messages: {self.messages[-3:]}")

    def _record(self, msg: dict[str, Any]) -> None:
        kind, content = msg["msg_type"], msg["content"]
        if kind == "comm_open" and content.get("target_name") == comm.TARGET:
            self.opens.append(msg)
            self.messages.append({**content["data"], "_date": msg["header"]["date"]})
        elif kind == "comm_msg" and self.opens and content["comm_id"] == self.comm_id:
            self.messages.append({**content["data"], "_date": msg["header"]["date"]})

    def send_hello(self) -> None:
        msg = self.client.session.msg("comm_msg", {"comm_id": self.comm_id, "data": {"v": 1, "kind": "hello"}})
        self.client.shell_channel.send(msg)


@pytest.fixture(scope="module")
def sim_url() -> Any:
    with accel_nb.sim.serve(latency="zero") as server:
        yield server.url


@pytest.fixture(scope="module")
def kernel(sim_url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(
        kernel_name="python3", cwd=str(ROOT), env=kernel_env(tmp_path_factory.mktemp("accel-home"))
    )
    kernel = Kernel(client)
    kernel.execute(
        "import accel_nb\n"
        f"accel_nb.set_default_client(accel_nb.Client({{'sim_url': {sim_url!r}}}, keys={{'openai': {KEY!r}}}))\n"
        "def ask(n=1, **options):\n"
        "    for _ in range(n):\n"
        "        try:\n"
        "            accel_nb.default_client().chat('openai', 'Explain backpressure in two sentences.', **options)\n"
        "        except accel_nb.errors.AccelError:\n"
        "            pass\n"
    )
    kernel.execute(LOAD)
    yield kernel
    client.stop_channels()
    manager.shutdown_kernel(now=True)


def settled(requests: int) -> Callable[[dict[str, Any]], bool]:
    def check(data: dict[str, Any]) -> bool:
        s = data["session"]
        return s["requests"] == requests and not s["in_flight"] and not s["queued"]

    return check


def test_start_opens_the_comm_with_a_snapshot(kernel: Kernel) -> None:
    assert len(kernel.opens) == 1
    first = kernel.messages[0]
    assert (first["v"], first["kind"]) == (comm.PROTOCOL_VERSION, "snapshot")
    # the sender thread follows with the real state: every provider, keys by label and status only
    snapshot = kernel.wait_for(lambda d: d["kind"] == "snapshot" and d["providers"])
    health = {p["id"]: p for p in snapshot["providers"]}
    assert {"openai", "claude", "groq", "gemini"} <= set(health)
    assert health["openai"]["key_status"] == "ok"
    assert [lane["label"] for lane in health["openai"]["keys"]] == ["runtime …4242"]


def test_requests_are_reported_and_no_key_is_sent(kernel: Kernel) -> None:
    kernel.execute("ask(3); ask(headers={'x-sim-fault': '400'})")
    last = kernel.wait_for(settled(4))

    rows: dict[str, dict[str, Any]] = {}
    for data in kernel.messages:
        assert data["v"] == comm.PROTOCOL_VERSION and data["kind"] in ("snapshot", "update")
        for row in data["requests"]:
            rows[row["id"]] = {**rows.get(row["id"], {}), **row}
    assert sorted(r["status"] for r in rows.values()) == ["error", "ok", "ok", "ok"]
    ok = next(r for r in rows.values() if r["status"] == "ok")
    assert ok["provider"] == "openai" and ok["output_tokens"] > 0 and ok["latency_s"] > 0
    assert ok["key"] == "runtime …4242"
    error = next(r for r in rows.values() if r["status"] == "error")
    assert error["error_class"] == "BadRequestError"

    session = last["session"]
    assert (session["succeeded"], session["failed"], session["last_status"]) == (3, 1, "error")
    assert session["input_tokens"] > 0 and session["output_tokens"] > 0

    everything = json.dumps([m["content"] for m in kernel.opens] + kernel.messages, default=str)
    assert KEY not in everything and "DISTINCTIVE" not in everything


def test_hello_gets_a_full_snapshot(kernel: Kernel) -> None:
    kernel.execute("ask()")
    kernel.wait_for(settled(5))
    before = len(kernel.messages)
    kernel.send_hello()
    snapshot = kernel.wait_for(lambda d: d["kind"] == "snapshot", since=before)
    assert len(snapshot["requests"]) == 5 and snapshot["session"]["requests"] == 5


def test_a_burst_is_coalesced_and_throttled(kernel: Kernel) -> None:
    before = len(kernel.messages)
    kernel.execute("import time\nfor _ in range(30):\n    ask()\n    time.sleep(0.03)")  # ~1 s of requests
    kernel.wait_for(settled(35), since=before)
    burst = kernel.messages[before:]
    dates = [m["_date"].timestamp() for m in burst]  # jupyter_client parses header dates
    gaps = [b - a for a, b in itertools.pairwise(dates)]
    # 30 requests make 90 events (queued, started, done); a handful of messages carry them
    assert 3 <= len(burst) <= (dates[-1] - dates[0]) / comm.MIN_INTERVAL_S + 1, gaps
    assert min(gaps) >= comm.MIN_INTERVAL_S * 0.8, gaps
    assert sum(row["status"] == "ok" for m in burst for row in m["requests"]) == 30


def test_start_again_is_idempotent(kernel: Kernel) -> None:
    before = len(kernel.messages)
    kernel.execute(LOAD)
    kernel.wait_for(lambda d: d["kind"] == "snapshot", since=before)
    assert len(kernel.opens) == 1


def test_start_outside_a_kernel_does_nothing() -> None:
    comm.start()
    assert comm._bridge is None
