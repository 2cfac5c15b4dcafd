"""Time `grader.rescore(REPORTS_DIR, RUBRIC)` inside one process, imports excluded (the grader's
and the libraries' scoring loads: torch, and torch._dynamo that torch loads for an optimizer).

    python bench/rescore_timed.py REPORTS_DIR RUBRIC [--profile FILE]

Started by bench/run.py --rescore in a fresh process per run. Prints JSON on stdout: the import
time, the seconds of the call itself (the rubric is loaded inside the call, as the library
caller passes a path) and the modules first imported during the call. With --profile, writes
cProfile statistics of the call to FILE.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports_dir", type=Path)
    parser.add_argument("rubric", type=Path)
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile stats of the call here")
    args = parser.parse_args()
    imported = time.perf_counter()
    # The libraries scoring imports on first use: torch (Part A's oracles, the reference network)
    # and torch._dynamo, which torch itself imports when the reference train() makes its first
    # optimizer (about 1.5 s on a quiet 2-core machine: an import, not re-scoring work).
    import torch  # noqa: F401
    import torch._dynamo  # noqa: F401

    # The library and everything it imports at module level, then the modules it imports on first
    # use rather than at module level (to keep `grader check` and the students' package light):
    # the data readers and the report views.
    import grader.data.grading_sources  # noqa: F401
    import grader.data.sources  # noqa: F401
    import grader.grade.api as api
    import grader.observe.kernel_probe  # noqa: F401
    import grader.report.html_feedback  # noqa: F401
    import grader.report.html_summary  # noqa: F401

    imports_s = time.perf_counter() - imported
    modules_before = set(sys.modules)
    profiler = None
    if args.profile is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    result = api.rescore(args.reports_dir, args.rubric)
    seconds = time.perf_counter() - started
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(str(args.profile))
    # Shown so that an import left in the timed call is seen (the rubric's reference module is
    # loaded there by design: it is the rubric's code, not a library).
    imported_in_call = sorted(set(sys.modules) - modules_before)
    json.dump({"imports_s": round(imports_s, 3), "rescore_s": round(seconds, 3),
               "reports": len(result.reports), "imported_in_call": imported_in_call}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
