"""A batch graded before the typed report model (issue 9, report schema 1) still re-scores, starting
no kernel, to the same scores and report content, and its old report still loads and renders.

The fixture is `fails_cell_raises` as the grader of commit 16fab10 graded it (report,
observations, executed notebook) with that commit's rubric, kept beside it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from grader.grade.api import rescore
from grader.report.explain import explain
from grader.report.gradescope import render_gradescope
from grader.report.html_feedback import render_feedback
from grader.report.junit import render_junit
from grader.report.markdown import render_markdown
from grader.report.model import REPORT_SCHEMA, SubmissionReport

FIXTURE = Path(__file__).parent / "fixtures" / "graded_before_issue9"
ID = "fails_cell_raises"
MOVED = ("hint", "expected", "observed")


@pytest.fixture(scope="module")
def old() -> dict:
    return json.loads((FIXTURE / f"{ID}.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def rescored(tmp_path_factory, old) -> dict:
    folder = tmp_path_factory.mktemp("old-batch")
    shutil.copy(FIXTURE / f"{ID}.json", folder)
    shutil.copytree(FIXTURE / ID, folder / ID)
    result = rescore(folder, FIXTURE / "ex06.toml")
    assert [r.submission for r in result.reports] == [ID]
    return json.loads((folder / f"{ID}.json").read_text("utf-8"))


def test_the_fixture_is_a_schema_1_report(old) -> None:
    assert old["schema"] == 1
    assert any("hint" in check["details"] for check in old["checks"])


def test_old_observations_rescore_to_the_same_scores(old, rescored) -> None:
    assert rescored["schema"] == REPORT_SCHEMA
    assert (rescored["score"], rescored["max_score"], rescored["status"]) == (old["score"], old["max_score"], "graded")
    assert rescored["tasks"] == old["tasks"]
    assert [(c["id"], c["status"], c["score"]) for c in rescored["checks"]] == [
        (c["id"], c["status"], c["score"]) for c in old["checks"]]


def test_old_observations_rescore_to_the_same_report_content(old, rescored) -> None:
    # Facts added to the execution block since (the kernel preamble's, the executor's) take their
    # defaults; everything the old report said is said again, unchanged.
    assert {k: v for k, v in rescored["execution"].items() if k in old["execution"]} == old["execution"]
    for before, after in zip(old["checks"], rescored["checks"], strict=True):
        details = dict(before["details"])
        moved = {key: details.pop(key, None) for key in MOVED}
        hint = moved["hint"] or ""
        message = before["message"].removesuffix(f" Hint: {hint}" if hint else "")
        if before["id"] == "D3.brief_training":  # issue 11 words the training as steps, not epochs
            message = message[message.index(". Accuracy"):]
            assert after["message"].startswith("The grader trained a fresh CNN (114 steps of batch 64")
            assert after["message"].endswith(message), before["id"]
        else:
            assert after["message"] == message, before["id"]
        assert after["hint"] == hint and after["details"] == details
        assert (after["expected"], after["observed"]) == (moved["expected"], moved["observed"])
    same = ("submission", "seed", "seed_policy", "notebook", "notebook_sha256", "reason", "graded_at", "files")
    assert {k: rescored[k] for k in same} == {k: old[k] for k in same}


def test_an_old_report_loads_and_every_view_renders_it(old) -> None:
    report = SubmissionReport.from_dict(old)
    failed = [c for c in report.checks if c.status == "fail"]
    assert failed and all(c.hint and "Hint:" not in c.message for c in failed)
    assert explain(failed[0]).hint == failed[0].hint
    assert report.execution.failed_cells[0].error == "NameError"
    assert report.execution.sandbox.process_limit == "watch"
    html = render_feedback(report, "instructor", "Ex 06")
    assert "Cell 13 raised NameError" in html and failed[0].hint.split("'")[0] in html
    assert "Cell 13 raised NameError" in render_junit(report)
    assert "Cell 13 raised NameError" in render_gradescope(report)["output"]
    assert "Cell 13 raised NameError" in render_markdown(report, "Ex 06")
    assert SubmissionReport.from_dict(json.loads(report.to_json())) == report
