"""Benchmark: what grading costs on top of running the notebooks plainly.

    .venv/bin/python bench/run.py submissions/passes_all_functional.ipynb --rubric rubrics/ex06.toml --runs 3
    .venv/bin/python bench/run.py submissions --jobs 2 --runs 2 --json bench-batch.json
    .venv/bin/python bench/run.py submissions --rescore --runs 3

Each run grades the notebooks (`python -m grader grade --json`, a fresh process) and then runs the
same notebooks plainly with nbclient (bench/plain.py, a fresh process: same data folder, torch
threads and cell time limit, no sandbox and no grading), so grader and plain alternate; every
figure is timed cold from process start and nothing is kept between invocations. Printed: per
notebook, kernel start, student cells, each probe, scoring, report writing and total, with the
ratio grader / plain; medians over --runs (min - max beside them). One notebook: --jobs 1 by
default; several (a folder): --jobs 2, and the batch's wall times are compared.

The phases come from what the grader writes: observations.json (cell and probe seconds, execution
seconds) and the `timings` of `grade --json` (kernel start, scoring, report writing); a grader
without `timings` shows "-" there. --rescore times `grader score` on --rescore-count reports
(copies of a few graded samples) instead: inside the process (imports excluded) and the CLI's wall.

Numbers depend on the machine and its load (printed with them); report them, never assert them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_RUBRIC = REPO / "rubrics" / "ex06.toml"
DEFAULT_BATCH = REPO / "submissions"


def default_python() -> str:
    """This interpreter, its virtual environment's folder resolved: the sandbox binds the real
    path, so a venv reached through a symlink (a worktree's .venv) would not start in it."""
    if sys.prefix != sys.base_prefix:
        return str(Path(sys.prefix).resolve() / "bin" / Path(sys.executable).name)
    return sys.executable


def child_env() -> dict[str, str]:
    """The children import the grader of this checkout, whatever is installed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return env


# ---------------------------------------------------------------- the machine

def machine_info(python: str) -> dict:
    def meminfo(key: str) -> int | None:
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith(key + ":"):
                    return int(line.split()[1]) // 1024
        except OSError:
            pass
        return None

    def cpu_model() -> str:
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return platform.processor() or "?"

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "-"

    commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu_model(), "cpu_count": os.cpu_count(),
            "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "mem_total_mb": meminfo("MemTotal"), "mem_available_mb": meminfo("MemAvailable"),
            "python": python, "python_version": platform.python_version(),
            "torch": version("torch"), "nbclient": version("nbclient"),
            "bwrap": shutil.which("bwrap") or "-", "commit": commit or "-",
            "load_at_start": [round(x, 2) for x in os.getloadavg()]}


def print_machine(info: dict) -> None:
    print(f"Machine: {info['cpu']}; {info['cores_usable']} usable core(s) of {info['cpu_count']}; "
          f"memory {info['mem_available_mb']} MB available of {info['mem_total_mb']} MB")
    print(f"Python {info['python_version']} ({info['python']}), torch {info['torch']}, "
          f"nbclient {info['nbclient']}, bwrap {info['bwrap']}, grader at {info['commit']}")
    print(f"Load average at start: {' '.join(map(str, info['load_at_start']))}")


# ---------------------------------------------------------------- one side of one run

def notebooks_in(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        found += sorted(path.glob("*.ipynb")) if path.is_dir() else [path]
    if not found:
        raise SystemExit(f"No notebooks in {', '.join(map(str, paths))}")
    if len({p.stem for p in found}) != len(found):
        raise SystemExit("Two notebooks share a file name; the grader's ids would collide.")
    return found


def run_grader(python: str, notebooks: list[Path], rubric: Path, jobs: str, scratch: Path,
               out: Path | None = None) -> dict:
    """Grade the notebooks in a fresh process; the wall time and the phases per notebook."""
    source, out = scratch / "in", out or scratch / "out"
    source.mkdir()
    for notebook in notebooks:
        shutil.copyfile(notebook, source / notebook.name)
    command = [python, "-m", "grader", "grade", str(source), "--rubric", str(rubric), "--out", str(out),
               "--jobs", jobs, "--json"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=child_env(), cwd=scratch)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"grader failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-3000:]}")
    summary = json.loads(done.stdout)
    timings = summary.get("timings", {})
    batch = timings.get("batch", {})
    per_submission = timings.get("submissions", timings)  # an older grader kept them at the top
    result = {"wall_s": round(wall, 3), "batch_s": summary["seconds"], "jobs": summary["jobs"],
              "torch_threads": summary["torch_threads"], "warnings": summary.get("warnings", []),
              "startup_s": round(wall - summary["seconds"], 3), "setup_s": batch.get("setup_s"),
              "batch_files_s": batch.get("batch_files_s"), "notebooks": {}}
    for entry in summary["submissions"]:
        result["notebooks"][entry["submission"]] = notebook_phases(
            out, entry, per_submission.get(entry["submission"], {}))
    return result


def notebook_phases(out: Path, entry: dict, timings: dict) -> dict:
    """One notebook's phases, from its observations.json and the batch's timings."""
    observations = json.loads((out / entry["submission"] / "observations.json").read_text("utf-8"))
    execution = observations.get("execution") or {}
    cells = sum(cell["seconds"] for cell in execution.get("cells", []))
    probes: dict[str, float] = {}
    for check_id, record in observations.get("probes", {}).items():
        probes[record.get("probe") or check_id] = record["seconds"]  # checks sharing a probe count it once
    # A kernel started ahead (grader/execute/pool.py) costs the notebook only the wait for it.
    waits = [timings[k] for k in ("kernel_start_s", "kernel_wait_s") if k in timings]
    kernel_start = round(sum(waits), 3) if waits else None
    execute = execution.get("seconds", 0.0)
    write = [timings[k] for k in ("write_s", "pages_s") if k in timings]
    return {"score": entry["score"], "status": entry["status"], "kernel_start_s": kernel_start,
            "sandbox_other_s": round(execute - (kernel_start or 0.0) - cells - sum(probes.values()), 3),
            "cells_s": round(cells, 3), "probes": probes, "probes_s": round(sum(probes.values()), 3),
            "execute_s": execute, "score_s": timings.get("score_s"),
            "write_s": round(sum(write), 3) if write else None, "total_s": timings.get("total_s")}


def run_plain(python: str, notebooks: list[Path], jobs: int, threads: int, cell_timeout_s: float,
              data: dict) -> dict:
    command = [python, str(REPO / "bench" / "plain.py"), *map(str, notebooks), "--jobs", str(jobs),
               "--threads", str(threads), "--cell-timeout", str(cell_timeout_s), "--data", json.dumps(data)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=child_env())
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"plain execution failed ({done.returncode}):\n{done.stderr[-3000:]}")
    reply = json.loads(done.stdout)
    return {"wall_s": round(wall, 3), "inner_s": reply["seconds"], "jobs": jobs, "threads": threads,
            "notebooks": {n["notebook"]: n for n in reply["notebooks"]}}


def rubric_facts(rubric: Path) -> tuple[float, dict]:
    """The per-cell time limit and the [data] of the rubric, for the plain side."""
    from grader.rubric.load import load_rubric

    loaded = load_rubric(rubric)
    data = loaded.data
    return loaded.execution.cell_timeout_s, {"source": data.source, "hidden_count": data.hidden_count,
                                             "root": str(data.root) if data.root else None}


# ---------------------------------------------------------------- medians and printing

def median_of(values: list) -> tuple[float, float, float] | None:
    numbers = [v for v in values if isinstance(v, int | float)]
    if not numbers:
        return None
    return statistics.median(numbers), min(numbers), max(numbers)


def cell(values: list, width: int = 23) -> str:
    stats = median_of(values)
    if stats is None:
        return "-".rjust(width)
    middle, low, high = stats
    text = f"{middle:.2f}" if len(values) == 1 else f"{middle:.2f} ({low:.1f}-{high:.1f})"
    return text.rjust(width)


def print_one_notebook(runs: list[dict], name: str) -> None:
    grader = [r["grader"] for r in runs]
    plain = [r["plain"] for r in runs]
    g = [r["notebooks"][name] for r in grader]
    p = [r["notebooks"][name] for r in plain]
    rows = [
        ("grader start (interpreter, imports, rubric, data, exit)", [r["startup_s"] for r in grader], None),
        ("batch setup (sandbox check, discovery)", [r["setup_s"] for r in grader], None),
        ("workdir and data (plain; grader: next rows)", None, [x.get("data_s") for x in p]),
        ("kernel start (grader: or the wait for one started ahead)", [x["kernel_start_s"] for x in g],
         [x["kernel_start_s"] for x in p]),
        ("sandbox, workdir, data, kernel stop (plain: stop)", [x["sandbox_other_s"] for x in g],
         [x["kernel_stop_s"] for x in p]),
        ("student cells", [x["cells_s"] for x in g], [x["cells_s"] for x in p]),
    ]
    rows += [(f"  probe {key}", [x["probes"].get(key) for x in g], None) for key in g[0]["probes"]]
    rows += [
        ("probes, all", [x["probes_s"] for x in g], None),
        ("scoring", [x["score_s"] for x in g], None),
        ("report writing (json, notebook, pages)", [x["write_s"] for x in g], None),
        ("batch files (grades.csv, summary)", [r["batch_files_s"] for r in grader], None),
        ("notebook total (in the worker)", [x["total_s"] for x in g], [x["total_s"] for x in p]),
        ("process wall, cold", [r["wall_s"] for r in grader], [r["wall_s"] for r in plain]),
    ]
    print(f"\n{name}: medians of {len(runs)} run(s) in seconds, (min-max)")
    print(f"{'phase':52s}{'grader':>23s}{'plain':>23s}")
    for label, gv, pv in rows:
        print(f"{label:52s}{cell(gv) if gv is not None else ' ' * 23}{cell(pv) if pv is not None else ''}")
    ratios = [r["grader"]["wall_s"] / r["plain"]["wall_s"] for r in runs]
    print(f"{'ratio grader / plain (process wall)':52s}{cell(ratios)}")
    print(f"score: {g[0]['score']} ({g[0]['status']})")


def print_batch(runs: list[dict]) -> None:
    grader = [r["grader"] for r in runs]
    plain = [r["plain"] for r in runs]
    names = sorted(grader[0]["notebooks"])
    print(f"\nPer notebook: medians of {len(runs)} run(s) in seconds "
          f"(grader: {grader[0]['jobs']} at once, plain: {plain[0]['jobs']} at once)")
    header = ("notebook", "kernel", "cells", "probes", "score", "write", "grader", "p.kernel", "p.cells",
              "plain", "ratio")
    print(f"{header[0]:34s}" + "".join(f"{h:>9s}" for h in header[1:]))
    for name in names:
        g = [r["notebooks"][name] for r in grader]
        p = [r["notebooks"][name] for r in plain]
        values = [[x["kernel_start_s"] for x in g], [x["cells_s"] for x in g], [x["probes_s"] for x in g],
                  [x["score_s"] for x in g], [x["write_s"] for x in g], [x["total_s"] for x in g],
                  [x["kernel_start_s"] for x in p], [x["cells_s"] for x in p], [x["total_s"] for x in p]]
        ratio = [a["total_s"] / b["total_s"] for a, b in zip(g, p, strict=True) if a["total_s"]]
        print(f"{name[:34]:34s}" + "".join(_short(v) for v in [*values, ratio]))
    print("\nProbes, summed over the batch (median of runs):")
    keys = list(dict.fromkeys(k for r in grader for n in r["notebooks"].values() for k in n["probes"]))
    for key in keys:
        totals = [sum(n["probes"].get(key, 0.0) for n in r["notebooks"].values()) for r in grader]
        print(f"  {key:32s}{cell(totals)}")
    print("\nBatch, seconds: median (min-max)")
    sums = {label: [sum((n[key] or 0.0) for n in r["notebooks"].values()) for r in grader]
            for label, key in (("student cells, summed", "cells_s"), ("probes, summed", "probes_s"),
                               ("kernel start, summed", "kernel_start_s"), ("scoring, summed", "score_s"),
                               ("report writing, summed", "write_s"))}
    for label, values in sums.items():
        print(f"  {label:50s}{cell(values)}")
    plain_cells = [sum(n["cells_s"] for n in r["notebooks"].values()) for r in plain]
    print(f"  {'plain student cells, summed':50s}{cell(plain_cells)}")
    print(f"  {'grader start (interpreter, imports, rubric, data, exit)':50s}{cell([r['startup_s'] for r in grader])}")
    print(f"  {'grader process wall, cold':50s}{cell([r['wall_s'] for r in grader])}")
    print(f"  {'plain process wall, cold':50s}{cell([r['wall_s'] for r in plain])}")
    ratios = [r["grader"]["wall_s"] / r["plain"]["wall_s"] for r in runs]
    print(f"  {'ratio grader / plain (process wall)':50s}{cell(ratios)}")


def _short(values: list) -> str:
    stats = median_of(values)
    return f"{stats[0]:9.2f}" if stats else f"{'-':>9s}"


# ---------------------------------------------------------------- grading vs plain

def compare(args: argparse.Namespace, python: str, info: dict) -> dict:
    notebooks = notebooks_in(args.paths)
    jobs = args.jobs or ("1" if len(notebooks) == 1 else "2")
    cell_timeout_s, data = rubric_facts(args.rubric)
    print(f"\n{len(notebooks)} notebook(s), rubric {args.rubric}, grader --jobs {jobs}, {args.runs} run(s), "
          f"cell time limit {cell_timeout_s:g} s, data {data['source']}")
    runs = []
    for number in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="bench-grader-") as scratch:
            grader = run_grader(python, notebooks, args.rubric, jobs, Path(scratch))
        grader["load_after"] = [round(x, 2) for x in os.getloadavg()]
        plain = run_plain(python, notebooks, grader["jobs"], grader["torch_threads"], cell_timeout_s, data)
        plain["load_after"] = [round(x, 2) for x in os.getloadavg()]
        runs.append({"grader": grader, "plain": plain})
        print(f"run {number}: grader {grader['wall_s']:.1f} s ({grader['jobs']} job(s), "
              f"{grader['torch_threads']} thread(s)), plain {plain['wall_s']:.1f} s; "
              f"load {' '.join(map(str, plain['load_after']))}", flush=True)
        save_json(args, info, {"mode": "compare", "partial": True, "jobs": jobs, "runs": runs})
    for warning in sorted({w for r in runs for w in r["grader"]["warnings"]}):
        print(f"grader warning: {warning}")
    if len(notebooks) == 1:
        print_one_notebook(runs, notebooks[0].stem)
    else:
        print_batch(runs)
    return {"mode": "compare", "notebooks": [str(p) for p in notebooks], "jobs": jobs, "runs": runs}


# ---------------------------------------------------------------- re-scoring

def rescore(args: argparse.Namespace, python: str, info: dict) -> dict:
    notebooks = notebooks_in(args.paths)[: args.rescore_sources]
    with tempfile.TemporaryDirectory(prefix="bench-rescore-") as scratch:
        graded = args.graded or Path(scratch, "out")
        if not any(graded.glob("*/observations.json")):
            print(f"\nGrading {len(notebooks)} notebook(s) once into {graded}")
            graded.parent.mkdir(parents=True, exist_ok=True)
            run_grader(python, notebooks, args.rubric, args.jobs or "2", Path(scratch), out=graded)
        ids = sorted(p.parent.name for p in graded.glob("*/observations.json"))
        print(f"Copying {len(ids)} graded report(s) to {args.rescore_count} with distinct ids")
        reports = Path(scratch, "reports")
        copy_reports(graded, ids, reports, args.rescore_count)
        runs = []
        for number in range(1, args.runs + 1):
            runs.append(rescore_once(python, reports, args.rubric))
            save_json(args, info, {"mode": "rescore", "partial": True, "runs": runs})
            print(f"run {number}: in-process {runs[-1]['rescore_s']:.2f} s (imports {runs[-1]['imports_s']:.2f} s), "
                  f"CLI wall {runs[-1]['cli_wall_s']:.2f} s", flush=True)
            libraries = [m for m in runs[-1].get("imported_in_call", ()) if not m.startswith("grader_reference_")]
            if libraries:
                print(f"  imported during the timed call: {', '.join(libraries)}")
        if args.profile:
            subprocess.run([python, str(REPO / "bench" / "rescore_timed.py"), str(reports), str(args.rubric),
                            "--profile", str(args.profile)], check=True, capture_output=True, env=child_env())
            print_profile(args.profile)
    print(f"\nRe-scoring {args.rescore_count} reports: median (min-max) of {len(runs)} run(s), seconds")
    print(f"  {'grader.rescore(...) in-process (imports excluded)':52s}{cell([r['rescore_s'] for r in runs])}")
    print(f"  {'  its imports':52s}{cell([r['imports_s'] for r in runs])}")
    print(f"  {'`grader score` CLI, process wall':52s}{cell([r['cli_wall_s'] for r in runs])}")
    return {"mode": "rescore", "graded": ids, "count": args.rescore_count, "runs": runs}


def copy_reports(graded: Path, ids: list[str], target: Path, count: int) -> None:
    """`count` report folders with distinct ids, copied round-robin from the graded ones."""
    target.mkdir()
    for number in range(count):
        source = ids[number % len(ids)]
        new_id = f"{source}-{number:02d}"
        shutil.copytree(graded / source, target / new_id)
        path = target / new_id / "observations.json"
        observations = json.loads(path.read_text("utf-8"))
        observations["submission"] = new_id
        path.write_text(json.dumps(observations, indent=1), "utf-8")
        shutil.copyfile(graded / f"{source}.json", target / f"{new_id}.json")


def rescore_once(python: str, reports: Path, rubric: Path) -> dict:
    done = subprocess.run([python, str(REPO / "bench" / "rescore_timed.py"), str(reports), str(rubric)],
                          capture_output=True, text=True, env=child_env())
    if done.returncode != 0:
        raise SystemExit(f"rescore failed:\n{done.stderr[-3000:]}")
    inner = json.loads(done.stdout)
    started = time.perf_counter()
    cli = subprocess.run([python, "-m", "grader", "score", str(reports), "--rubric", str(rubric), "--quiet"],
                         capture_output=True, text=True, env=child_env())
    wall = time.perf_counter() - started
    if cli.returncode != 0:
        raise SystemExit(f"grader score failed:\n{cli.stderr[-3000:]}")
    return {**inner, "cli_wall_s": round(wall, 3)}


def print_profile(path: Path) -> None:
    import pstats

    print(f"\nProfile of one in-process rescore ({path}), top 25 by cumulative time:")
    pstats.Stats(str(path)).sort_stats("cumulative").print_stats(25)


# ---------------------------------------------------------------- main

def show(saved: dict) -> int:
    print_machine(saved["machine"])
    runs = saved["runs"]
    if saved["mode"] == "rescore":
        for label, key in (("grader.rescore(...) in-process", "rescore_s"), ("its imports", "imports_s"),
                           ("`grader score` CLI wall", "cli_wall_s")):
            print(f"  {label:50s}{cell([r[key] for r in runs])}")
    elif len(runs[0]["grader"]["notebooks"]) == 1:
        print_one_notebook(runs, next(iter(runs[0]["grader"]["notebooks"])))
    else:
        print_batch(runs)
    return 0


def save_json(args: argparse.Namespace, info: dict, figures: dict) -> None:
    """The raw figures so far (after every run, so a long benchmark stopped early keeps them)."""
    if args.json_path is not None:
        args.json_path.write_text(json.dumps({"machine": info, "rubric": str(args.rubric), **figures}, indent=1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("paths", nargs="*", type=Path, default=[DEFAULT_BATCH],
                        help="notebooks and/or folders of notebooks (default: submissions/)")
    parser.add_argument("--rubric", type=Path, default=DEFAULT_RUBRIC, help="rubric TOML (default: rubrics/ex06.toml)")
    parser.add_argument("--runs", type=int, default=3, help="repeats; medians are printed (default: 3)")
    parser.add_argument("--jobs", default=None,
                        help="the grader's --jobs (default: 1 for one notebook, 2 for several); plain "
                             "execution runs as many at once, with the grader's torch threads")
    parser.add_argument("--json", dest="json_path", type=Path, default=None, help="write the raw figures here")
    parser.add_argument("--python", default=default_python(), help="interpreter for the timed processes")
    parser.add_argument("--rescore", action="store_true", help="time `grader score` instead (see above)")
    parser.add_argument("--show", type=Path, default=None, help="print the figures of a --json FILE; run nothing")
    parser.add_argument("--rescore-count", type=int, default=30, help="reports to re-score (default: 30)")
    parser.add_argument("--rescore-sources", type=int, default=3, help="notebooks graded to make them (default: 3)")
    parser.add_argument("--graded", type=Path, default=None,
                        help="with --rescore: keep the graded samples in this folder (reused when it holds them)")
    parser.add_argument("--profile", type=Path, default=None, help="with --rescore: cProfile one rescore into FILE")
    args = parser.parse_args()
    if args.show is not None:
        return show(json.loads(args.show.read_text()))
    args.rubric = args.rubric.resolve()
    args.paths = [p.resolve() for p in args.paths]
    args.graded = args.graded.resolve() if args.graded else None
    info = machine_info(args.python)
    print_machine(info)
    figures = (rescore if args.rescore else compare)(args, args.python, info)
    info["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(f"\nLoad average at end: {' '.join(map(str, info['load_at_end']))}")
    if args.json_path is not None:
        save_json(args, info, figures)
        print(f"Raw figures: {args.json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
