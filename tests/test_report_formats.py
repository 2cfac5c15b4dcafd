"""JUnit XML, Gradescope results.json and the Markdown summary, from a hand-written report."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
from gradescope_spec import validate_results

from grader.report.gradescope import render_gradescope
from grader.report.junit import render_junit
from grader.report.markdown import render_markdown
from grader.report.model import SubmissionReport

FIXTURE = Path(__file__).parent / "fixtures" / "report_model_details.json"


@pytest.fixture
def report() -> SubmissionReport:
    return SubmissionReport.from_dict(json.loads(FIXTURE.read_text("utf-8")))


def test_junit_has_a_testcase_per_check_with_matching_counts(report) -> None:
    root = ET.fromstring(render_junit(report).encode("utf-8"))
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == len(report.checks) == int(suite.get("tests")) == int(root.get("tests"))
    by_status = {s: sum(1 for c in report.checks if c.status == s) for s in ("fail", "error", "skipped")}
    assert int(suite.get("failures")) == by_status["fail"] == len(suite.findall("testcase/failure"))
    assert int(suite.get("skipped")) == by_status["skipped"] == len(suite.findall("testcase/skipped"))
    assert int(suite.get("errors")) == by_status["error"] == len(suite.findall("testcase/error"))
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["score"] == "44" and properties["max_score"] == "100"


def test_junit_failure_carries_expected_observed_and_hint(report) -> None:
    root = ET.fromstring(render_junit(report).encode("utf-8"))
    case = next(c for c in root.iter("testcase") if c.get("name").startswith("B1.architecture"))
    assert case.get("classname") == "model_details.B1"
    failure = case.find("failure")
    assert failure.get("message") == "12 of 18 points: CNN: stages, layer order, logits output"
    assert "Expected: Conv2d -> BatchNorm2d -> ReLU -> MaxPool2d" in failure.text
    assert "Hint: Conv -> BatchNorm -> ReLU -> MaxPool" in failure.text
    assert "Cell 13 raised NameError" in root.find("testsuite/system-out").text


def test_junit_stays_well_formed_with_control_characters(report) -> None:
    nasty = replace(report, submission="a&b<c>", checks=[replace(c, message="\x1b[31mred\x1b[0m \x00\x08 & <x>")
                                                         for c in report.checks])
    root = ET.fromstring(render_junit(nasty).encode("utf-8"))
    failure = next(root.iter("failure"))
    assert failure.text.startswith("red  & <x>")
    assert root.find("testsuite").get("name") == "grader.a&b<c>"


def test_gradescope_results_match_the_documented_format(report) -> None:
    results = render_gradescope(report)
    assert validate_results(results) == []
    json.dumps(results)  # JSON-able
    assert results["score"] == 44.0 and results["execution_time"] == round(report.execution.seconds)
    assert sum(t["score"] for t in results["tests"]) == pytest.approx(results["score"])
    assert len(results["tests"]) == len(report.checks)


def test_gradescope_tests_have_name_score_visibility_and_output(report) -> None:
    tests = {t["name"].split(":")[0]: t for t in render_gradescope(report)["tests"]}
    b1 = tests["B1.architecture"]
    assert (b1["score"], b1["max_score"], b1["status"], b1["visibility"]) == (12.0, 18.0, "failed", "visible")
    assert "Observed: Conv2d -> ReLU -> BatchNorm2d -> MaxPool2d" in b1["output"]
    hidden = tests["A4.explicit_stride"]
    assert hidden["visibility"] == "after_published" and hidden["status"] == "failed"
    assert tests["B2.parameter_count"]["status"] == "passed"


def test_gradescope_validator_rejects_what_the_format_does_not_allow(report) -> None:
    results = render_gradescope(report)
    results["tests"][0]["visibility"] = "public"
    results["tests"][1]["status"] = "ok"
    results["colour"] = "red"
    problems = validate_results(results)
    assert len(problems) == 3, problems


def test_gradescope_for_a_notebook_that_could_not_run(report) -> None:
    broken = replace(report, status="error", reason="the file x.ipynb does not exist", score=0.0, execution=None,
                     checks=[replace(c, status="error", score=0.0) for c in report.checks])
    results = render_gradescope(broken)
    assert validate_results(results) == [] and results["score"] == 0.0
    assert "could not be graded: the file x.ipynb does not exist" in results["output"]


def test_markdown_summary_escapes_table_breaking_text(report) -> None:
    tricky = replace(report, checks=[replace(c, message="a | b <img src=x> [link](http://x)") for c in report.checks])
    text = render_markdown(tricky, "Ex 06", public_only=True)
    assert text.startswith("### Ex 06: 44 / 100 points")
    assert "Public checks only" in text
    assert "a \\| b &lt;img src=x&gt; \\[link\\](http://x)" in text
    assert "| B1 | CNN architecture | 12 / 18 |" in text
    assert "Cell 13 raised NameError: name 'max_pool' is not defined" in text
