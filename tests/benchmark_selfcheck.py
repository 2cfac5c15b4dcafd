"""Benchmark: how long a student waits for the self-check.

    .venv/bin/python tests/benchmark_selfcheck.py [--runs 3] [NOTEBOOK]

1. In a running kernel: runs the notebook's cells (default: the reference solution) in a real
   kernel once, then times `selfcheck(task)` for each Part A-C task there, several times (the
   first call includes importing the grader and loading the rubric).
2. On the command line: `grader check NOTEBOOK --task A2` against `grader check NOTEBOOK`.
Not a test: numbers depend on the machine; report them, do not assert them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from jupyter_client.manager import start_new_kernel

REPO = Path(__file__).resolve().parents[1]
TASKS = ("A1", "A2", "A3", "A4", "A5", "B1", "B2", "C1", "D1", "D2")


def run_cell(client, code: str, timeout: float = 600) -> None:
    reply = client.execute_interactive(code, timeout=timeout, output_hook=lambda msg: None)
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"{code[:60]!r} failed: {reply['content'].get('evalue')}")


def in_kernel(notebook: Path, runs: int) -> dict[str, list[float]]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    manager, client = start_new_kernel(kernel_name="python3", env=env, cwd=str(notebook.parent))
    try:
        for cell in nbformat.read(notebook, as_version=4).cells:
            if cell.cell_type == "code":
                run_cell(client, cell.source)
        run_cell(client, "from grader import selfcheck")
        times: dict[str, list[float]] = {}
        for task in TASKS:
            for _ in range(runs):
                started = time.perf_counter()
                run_cell(client, f"selfcheck({task!r})")
                times.setdefault(task, []).append(time.perf_counter() - started)
        return times
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def cli(notebook: Path, *extra: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "grader", "check", str(notebook), "--quiet", *extra], check=True,
                   capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", nargs="?", type=Path, default=REPO / "reference" / "solution.ipynb")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"machine load (1 min): {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    sys.path.insert(0, str(REPO))
    from grader.data.digits28 import write_student_file

    with tempfile.TemporaryDirectory(prefix="selfcheck-bench-") as folder:
        notebook = Path(folder) / args.notebook.name
        shutil.copy(args.notebook, notebook)
        write_student_file(Path(folder) / "data")  # the notebook reads data/digits28.npz
        times = in_kernel(notebook, args.runs)
    for task, seconds in times.items():
        print(f"selfcheck({task!r}) in the kernel: first {seconds[0]:.2f} s, median of the rest "
              f"{statistics.median(seconds[1:] or seconds):.2f} s")
    print(f"grader check --task A2: {cli(args.notebook, '--task', 'A2'):.1f} s")
    print(f"grader check (all public checks): {cli(args.notebook):.1f} s")


if __name__ == "__main__":
    main()
