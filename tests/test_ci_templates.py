"""The shipped CI templates, run as the course would run them: the GitHub Actions workflow's
grading step on a sample submission checkout, and Gradescope's run_autograder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from gradescope_spec import validate_results
from support import DEFAULT_RUBRIC, SAMPLES

from grader.rubric.load import load_rubric
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


@pytest.mark.kernel
def test_workflow_grading_command_on_a_sample_checkout(tmp_path) -> None:
    flow = workflow()
    checkout = tmp_path / "student-repo"
    checkout.mkdir()
    shutil.copy(SAMPLES / "fails_A2_hardcoded_slide.ipynb", checkout / flow["env"]["NOTEBOOK"])
    (checkout / "README.md").write_text("starter repository\n")
    summary = tmp_path / "step_summary.md"
    env = {**os.environ, **{k: str(v) for k, v in flow["env"].items()},
           "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "GITHUB_STEP_SUMMARY": str(summary)}
    run = next(step["run"] for step in flow["jobs"]["grade"]["steps"] if step.get("name") == GRADING_STEP)
    # GitHub runs `run:` blocks with `bash -e {0}`.
    done = subprocess.run(["bash", "-e", "-c", run], cwd=checkout, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    public = load_rubric(DEFAULT_RUBRIC).public_only()
    suite = ET.parse(checkout / "grader-results" / "junit.xml").getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == (str(len(public.checks)), "1", "0")
    failed = [case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None]
    assert failed == ["A2.random_inputs: 2D convolution of random images and kernels"]
    score = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert (float(score["max_score"]), float(score["score"])) == (public.max_score, public.max_score - 3)
    assert f"Public checks: {score['score']} / {score['max_score']} points." in done.stdout
    assert f"{score['score']} / {score['max_score']} points" in summary.read_text()
    assert (checkout / "grader-results" / "feedback.html").stat().st_size > 5000

    full_marks = {**env, "MIN_SCORE": f"{public.max_score:g}", "GITHUB_STEP_SUMMARY": ""}
    done = subprocess.run(["bash", "-e", "-c", run], cwd=checkout, env=full_marks, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"below --min-score {public.max_score:g} points" in done.stderr


def run_autograder(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "GRADER": str(BIN / "grader"), "RUBRIC": str(DEFAULT_RUBRIC)}
    return subprocess.run(["bash", str(template_path("gradescope-run"))], env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.mark.kernel
def test_gradescope_run_autograder_writes_valid_results(tmp_path) -> None:
    (tmp_path / "submission").mkdir()
    shutil.copy(SAMPLES / "fails_A2_hardcoded_slide.ipynb", tmp_path / "submission" / "my_notebook.ipynb")
    done = run_autograder(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    assert validate_results(results) == []
    # Every check, hidden ones included, as the batch grades it: A2.random_inputs and the hidden
    # A2.padding_stride (3 + 2 points) are lost.
    assert results["score"] == results["extra_data"]["max_score"] - 5 == load_rubric(DEFAULT_RUBRIC).max_score - 5
    tests = {t["name"].split(":")[0]: t for t in results["tests"]}
    assert tests["A2.padding_stride"]["visibility"] == "after_published"
    assert tests["A2.random_inputs"]["status"] == "failed" and tests["A2.random_inputs"]["visibility"] == "visible"


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
