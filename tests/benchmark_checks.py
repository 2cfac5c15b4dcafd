"""Benchmark: how long the grader's own checks add to one notebook's grading.

    .venv/bin/python tests/benchmark_checks.py [--rubric rubrics/ex06.toml] [--runs 3] [NOTEBOOK]

Grades the notebook (default: the reference solution) with one job, then splits the time into
the kernel's start and the student's own cells (which any runner would spend) and what the
grader adds: planning probes, running them in the kernel, and scoring (timed by re-scoring the
saved observations). Not a test: numbers depend on the machine; report them, do not assert them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from grader.grade.api import grade_batch, rescore  # noqa: E402
from grader.grade.pipeline import plan_probes  # noqa: E402
from grader.rubric.load import load_rubric  # noqa: E402


def measure(notebook: Path, rubric_path: Path) -> dict[str, float]:
    rubric = load_rubric(rubric_path)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp, "in")
        folder.mkdir()
        shutil.copy(notebook, folder / "bench.ipynb")
        started = time.perf_counter()
        result = grade_batch(folder, rubric, Path(tmp, "out"), jobs=1)
        wall = time.perf_counter() - started
        report = result.reports[0]
        observations = json.loads(Path(tmp, "out", "bench", "observations.json").read_text())
        planned = time.perf_counter()
        requests, _, _ = plan_probes(rubric, report.seed)
        plan_s = time.perf_counter() - planned
        scored = time.perf_counter()
        rescore(Path(tmp, "out"), rubric)
        score_s = time.perf_counter() - scored
    cells_s = sum(c["seconds"] for c in observations["execution"]["cells"])
    # Checks that share a probe share its reply: count each probe's time once.
    probes_s = sum({r["probe"]: r["seconds"] for r in observations["probes"].values()}.values())
    return {"wall_s": wall, "student_cells_s": cells_s, "probes_s": probes_s, "probe_count": len(requests),
            "plan_s": plan_s, "score_s": score_s, "grader_checks_s": probes_s + plan_s + score_s,
            "score": report.score}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", nargs="?", type=Path, default=REPO / "reference" / "solution.ipynb")
    parser.add_argument("--rubric", type=Path, default=REPO / "rubrics" / "ex06.toml")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [measure(args.notebook, args.rubric) for _ in range(args.runs)]
    print(f"{args.notebook.name} with {args.rubric.name}, {args.runs} run(s), median (min - max):")
    for key in runs[0]:
        values = [r[key] for r in runs]
        print(f"  {key:16s} {statistics.median(values):8.2f}   ({min(values):.2f} - {max(values):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
