"""Plain execution, the benchmark's baseline: run notebooks with nbclient, no grading.

    python bench/plain.py NOTEBOOK... --jobs 2 --threads 1 --cell-timeout 120 --data '{"source": "digits28"}'

Started by bench/run.py in a fresh process per run. Each notebook gets what the grader gives it,
minus the grading: a fresh working directory holding a copy of the notebook and the rubric's
`data/` (grader.data.sources.install_data), a fresh kernel of this interpreter with the grader's
kernel environment (grader.execute.local.kernel_env: same torch thread count), every code cell
run in order with the same per-cell time limit (a failing or timed-out cell does not stop the
notebook). No sandbox, no probes, no scoring, no reports. Prints JSON on stdout: per notebook
the seconds of workdir and data, kernel start, cells, kernel stop and total.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from grader.data.sources import install_data  # noqa: E402
from grader.execute.local import kernel_env  # noqa: E402
from grader.rubric.model import DataSpec  # noqa: E402


async def run_notebook(path: Path, data: DataSpec, threads: int, cell_timeout_s: float,
                       slots: asyncio.Semaphore) -> dict:
    async with slots:
        started = time.monotonic()
        workdir = Path(tempfile.mkdtemp(prefix="bench-plain-"))
        try:
            shutil.copyfile(path, workdir / "submission.ipynb")
            install_data(workdir / "data", data)
            data_done = time.monotonic()
            notebook = nbformat.read(path, as_version=4)
            client = NotebookClient(notebook, timeout=cell_timeout_s, allow_errors=True,
                                    interrupt_on_timeout=True, kernel_name="python3",
                                    resources={"metadata": {"path": str(workdir)}})
            errors = 0
            async with client.async_setup_kernel(env=kernel_env(workdir, threads)):
                ready = time.monotonic()
                for index, cell in enumerate(notebook.cells):
                    await client.async_execute_cell(cell, index)
                    errors += any(o.get("output_type") == "error" for o in cell.get("outputs", []))
                cells_done = time.monotonic()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        finished = time.monotonic()
        return {"notebook": path.stem, "data_s": round(data_done - started, 3),
                "kernel_start_s": round(ready - data_done, 3),
                "cells_s": round(cells_done - ready, 3), "kernel_stop_s": round(finished - cells_done, 3),
                "total_s": round(finished - started, 3), "cells_with_errors": errors}


async def run_all(paths: list[Path], data: DataSpec, threads: int, cell_timeout_s: float, jobs: int) -> list[dict]:
    slots = asyncio.Semaphore(jobs)
    return await asyncio.gather(*(run_notebook(p, data, threads, cell_timeout_s, slots) for p in paths))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run at once")
    parser.add_argument("--threads", type=int, required=True, help="torch threads per kernel")
    parser.add_argument("--cell-timeout", type=float, required=True, help="seconds per cell")
    parser.add_argument("--data", required=True, help="the rubric's [data] as JSON (DataSpec fields)")
    args = parser.parse_args()
    fields = json.loads(args.data)
    data = DataSpec(source=fields["source"], root=Path(fields["root"]) if fields.get("root") else None,
                    hidden_count=fields.get("hidden_count", 1000))
    started = time.monotonic()
    results = asyncio.run(run_all(args.notebooks, data, args.threads, args.cell_timeout, args.jobs))
    json.dump({"seconds": round(time.monotonic() - started, 3), "jobs": args.jobs, "threads": args.threads,
               "notebooks": results}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
