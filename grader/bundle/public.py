"""The students' package: the project with a rubric of public checks only and a reference module
holding the published network alone, built into a wheel they (or their CI) `pip install`.

What it never holds: hidden checks (ids, options, thresholds), the reference solution notebook,
the reference train() / test() (their outcomes on the rubric's fixed requests are recorded
instead, so D1/D2 still compare with them), and no data file.
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
    document, _ = _read_document(rubric_path, rubric_path.read_bytes(), ())
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
    _check_written(rubric, public_ids)
    wheel = _build_wheel(out) if build_wheel else None
    return BundleResult(out, rubric, reference, public_ids, dropped, wheel)


def _copy_project(checkout: Path, out: Path) -> None:
    """The project's package and build files; rubrics/ and reference/ are written fresh."""
    out.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        if (checkout / name).is_file():
            shutil.copy2(checkout / name, out / name)
    shutil.copytree(checkout / "grader", out / "grader",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "bundled"))
    init = out / "grader" / "__init__.py"
    text = init.read_text("utf-8")
    marked = text.replace(f'__version__ = "{__version__}"',
                          f'__version__ = "{PUBLIC_VERSION.format(version=__version__)}"')
    init.write_text(marked, "utf-8")


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


def _check_written(rubric: Path, public_ids: tuple[str, ...]) -> None:
    """The written rubric loads and holds exactly the public checks."""
    from grader.rubric.load import load_rubric

    written = load_rubric(rubric)
    if tuple(c.id for c in written.checks) != public_ids:
        raise BundleError(f"{rubric}: the written rubric holds {[c.id for c in written.checks]}, "
                          f"expected {list(public_ids)}")


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
