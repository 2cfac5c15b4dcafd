"""The shipped CI templates: the GitHub Actions workflow's shape and GitHub's workflow schema, and
Gradescope's run_autograder without a notebook. Their grading runs on real notebooks, with the
grader installed from its wheel / zip as a course installs it, are in test_install.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from gradescope_spec import validate_results
from support import DEFAULT_RUBRIC

from grader.templates import template_path

BIN = Path(sys.executable).parent
GRADING_STEP = "Grade the notebook"


def workflow() -> dict:
    return yaml.safe_load(template_path("github-classroom").read_text("utf-8"))


def test_workflow_checks_out_installs_grades_and_keeps_the_feedback() -> None:
    flow = workflow()
    steps = flow["jobs"]["grade"]["steps"]
    uses = [step.get("uses", "").split("@")[0] for step in steps]
    assert uses[:2] == ["actions/checkout", "actions/setup-python"] and "actions/upload-artifact" in uses
    assert any("$GRADER_PACKAGE" in step.get("run", "") for step in steps)
    grading = next(step for step in steps if step.get("name") == GRADING_STEP)
    keep = next(step for step in steps if step.get("uses", "").startswith("actions/upload-artifact"))
    assert keep["if"] == "always()" and keep["with"]["path"].rstrip("/") in grading["run"]
    assert set(flow["env"]) == {"NOTEBOOK", "MIN_SCORE", "GRADER_PACKAGE"}


def run_autograder(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "GRADER": str(BIN / "grader"), "RUBRIC": str(DEFAULT_RUBRIC)}
    return subprocess.run(["bash", str(template_path("gradescope-run"))], env=env, capture_output=True, text=True,
                          timeout=900)


def test_gradescope_run_autograder_without_a_notebook_still_writes_results(tmp_path) -> None:
    (tmp_path / "submission").mkdir()
    done = run_autograder(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    assert validate_results(results) == [] and results["score"] == 0
    assert "could not be graded" in results["output"] and "does not exist" in results["output"]


def check_workflow_schema(path: Path) -> subprocess.CompletedProcess:
    """GitHub's workflow schema, as vendored by check-jsonschema (works offline)."""
    return subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)],
                          capture_output=True, text=True, timeout=120)


def test_workflow_template_is_valid_against_githubs_workflow_schema(tmp_path) -> None:
    done = check_workflow_schema(template_path("github-classroom"))
    assert done.returncode == 0, done.stdout + done.stderr
    # The validator bites: the same workflow with a step that both runs and uses is rejected.
    step = "      - name: Install the grader\n"
    text = template_path("github-classroom").read_text("utf-8")
    broken = text.replace(step, step + "        uses: actions/cache@v4\n")
    (tmp_path / "broken.yml").write_text(broken)
    assert check_workflow_schema(tmp_path / "broken.yml").returncode != 0


def test_workflow_installs_cpu_only_torch_and_bubblewrap_before_grading() -> None:
    steps = workflow()["jobs"]["grade"]["steps"]
    names = [step.get("name") for step in steps]
    torch_step = next(step for step in steps if "torch" in step.get("run", ""))
    assert "--index-url https://download.pytorch.org/whl/cpu" in torch_step["run"]
    sandbox = next(step for step in steps if "bubblewrap" in step.get("run", ""))
    assert "kernel.apparmor_restrict_unprivileged_userns=0" in sandbox["run"]
    assert sandbox["continue-on-error"] is True  # grading still runs, saying NOT ISOLATED
    assert names.index(torch_step["name"]) < names.index("Install the grader") < names.index(GRADING_STEP)
    assert names.index(sandbox["name"]) < names.index(GRADING_STEP)
