"""Notebooks without a front end: run one in a fresh kernel (nbclient), find what went wrong, strip outputs.

The demo's main job and the notebook tests run notebooks this way.  The kernel's
environment is the caller's, plus this checkout's accel_nb on ``PYTHONPATH``, an isolated
``ACCEL_NB_HOME`` and, when given, ``ACCEL_NB_SIM_URL`` (every provider answers from that
simulator).  A run fails on any error output, and on a traceback written to stderr (a
background thread's failure, which is not an error output).

    python -m accel_nb.headless strip notebooks/*.ipynb    # what is committed: no outputs
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["NotebookError", "execute", "kernel_env", "problems", "strip"]

#: where this accel_nb lives: a kernel must import this copy, not another one installed
SOURCE_ROOT = Path(__file__).resolve().parents[1]


class NotebookError(RuntimeError):
    """A notebook ran with errors; ``notebook`` holds it as executed, outputs and all."""

    def __init__(self, path: Path, found: list[str], notebook: Any) -> None:
        super().__init__(f"{path.name} ran with errors:\n\n" + "\n\n".join(found))
        self.notebook = notebook


def kernel_env(home: Path, *, sim_url: str | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a notebook's kernel (``base``: ``os.environ``)."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SOURCE_ROOT), env.get("PYTHONPATH")]))
    env["ACCEL_NB_HOME"] = str(home)
    if sim_url is not None:
        env["ACCEL_NB_SIM_URL"] = sim_url
    return env


def execute(path: Path, cwd: Path, env: Mapping[str, str], *, timeout: float = 120) -> Any:
    """Run the notebook at ``path`` top to bottom with ``cwd`` as its working directory and
    return it executed; ``NotebookError`` if any cell failed (every cell still runs)."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(cwd)}},
                            extra_arguments=["--IPKernelApp.log_level=ERROR"])  # not its loopback-TCP warning
    client.execute(env=dict(env), cwd=str(cwd))
    found = problems(nb)
    if found:
        raise NotebookError(path, found, nb)
    return nb


_FAILED = re.compile(r"^(Traceback|UsageError)", re.MULTILINE)


def problems(nb: Any) -> list[str]:
    """Every error output, and every stderr stream that carries a traceback or an IPython
    ``UsageError`` (a mistyped magic prints only one line), as text."""
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output["output_type"] == "error":
                found.append(f"cell {index}: {output['ename']}: {output['evalue']}\n" + "\n".join(output["traceback"]))
            elif output["output_type"] == "stream" and output["name"] == "stderr" and _FAILED.search(output["text"]):
                found.append(f"cell {index} (stderr):\n{output['text']}")
    return found


def strip(nb: Any) -> Any:
    """``nb`` as it is committed: no outputs, no execution counts, no per-run metadata."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    return nb


def main(argv: list[str] | None = None) -> int:
    import nbformat

    parser = argparse.ArgumentParser(prog="python -m accel_nb.headless", description="Strip notebooks' outputs.")
    parser.add_argument("command", choices=["strip"])
    parser.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args(argv)
    for path in args.paths:
        nbformat.write(strip(nbformat.read(path, as_version=4)), path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
