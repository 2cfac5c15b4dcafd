"""The HTML feedback and summary pages, rendered from hand-written reports (no kernel)."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest
from html_support import parse, tags, text_of, with_class

from grader.observe.execution import CellProblem
from grader.report.explain import explain
from grader.report.html_feedback import render_feedback
from grader.report.html_summary import histogram_counts, render_summary
from grader.report.model import CheckResult, SubmissionReport
from grader.report.writers import SUMMARY_PAGE_NAME, write_feedback_pages, write_summary_page

FIXTURE = Path(__file__).parent / "fixtures" / "report_model_details.json"
HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
def report() -> SubmissionReport:
    return SubmissionReport.from_dict(json.loads(FIXTURE.read_text("utf-8")))


def without_model_details(report: SubmissionReport) -> SubmissionReport:
    keep = ("student_layers", "reference_layers", "curve")
    checks = [replace(c, details={k: v for k, v in c.details.items() if k not in keep}) for c in report.checks]
    return replace(report, checks=checks)


def test_total_and_task_scores_are_shown(report) -> None:
    html = render_feedback(report, "instructor", "Ex 06")
    assert text_of(html, "total-score").startswith("44 / 100")
    tasks = text_of(html, "tasks")
    assert "B1 CNN architecture 12 / 18" in tasks and "A4 maxpool2d 0 / 5" in tasks


def test_each_lost_point_says_expected_observed_and_hint_once(report) -> None:
    html = render_feedback(report, "instructor", "Ex 06")
    cards = {e["attrs"]["data-check"]: e for e in parse(html) if "data-check" in e["attrs"]}
    b1 = " ".join("".join(cards["B1.architecture"]["text"]).split())
    assert "Expected Conv2d -> BatchNorm2d -> ReLU -> MaxPool2d" in b1
    assert "Observed Conv2d -> ReLU -> BatchNorm2d -> MaxPool2d" in b1
    assert b1.count("lecture: 'Batch normalization'") == 1  # the hint, not repeated in the finding
    assert "(−6 of 18)" in b1
    d3 = " ".join("".join(cards["D3.brief_training"]["text"]).split())
    assert "Hint Return logits from forward" in d3
    assert "B2.parameter_count" not in cards  # passed: no card


def test_hint_is_split_from_the_message_only_when_it_is_the_rubric_hint(report) -> None:
    # Schema 1 reports appended the rubric's hint to the message; loading one splits it off again.
    check = next(c for c in report.checks if c.id == "A4.default_stride")
    plain = replace(check, hint="")
    assert explain(plain).hint == "" and explain(plain).finding == check.message

    def loaded(message: str, details: dict) -> CheckResult:
        old = {**report.to_dict(), "schema": 1, "checks": [{**asdict(check), "message": message, "details": details}]}
        for key in ("hint", "expected", "observed"):
            del old["checks"][0][key]
        return SubmissionReport.from_dict(old).checks[0]

    with_hint = loaded("Wrong. Hint: use the stride.", {"hint": "use the stride."})
    assert explain(with_hint).finding == "Wrong." and explain(with_hint).hint == "use the stride."
    other = loaded("Wrong. Hint: something else.", {"hint": "use the stride.", "expected": [1, 2]})
    assert explain(other).finding == "Wrong. Hint: something else."
    assert (other.expected, other.details) == ([1, 2], {})


def test_layer_table_is_side_by_side_with_mismatches_highlighted(report) -> None:
    html = render_feedback(report, "instructor", "Ex 06")
    table = text_of(html, "layer-table")
    assert "features.1 ReLU" in table and "block1.1 BatchNorm2d" in table
    mismatched_rows = with_class(html, "mismatch-row", "tr")
    assert len(mismatched_rows) == 2  # rows 2 and 3: ReLU and BatchNorm swapped
    mismatched_cells = [" ".join("".join(e["text"]).split()) for e in with_class(html, "mismatch", "td")]
    assert "ReLU" in mismatched_cells and "BatchNorm2d" in mismatched_cells
    assert "(32, 28, 28)" not in mismatched_cells  # same shapes are not highlighted
    assert "421,834" in text_of(html, "layer-table")


def test_training_curve_is_an_inline_svg_plot_with_the_threshold(report) -> None:
    html = render_feedback(report, "instructor", "Ex 06")
    section = text_of(html, "training-curve")
    assert "Final accuracy 0.912 (threshold 0.95)" in section
    svgs = tags(html, "svg")
    assert len(svgs) == 2 and all(s["attrs"]["role"] == "img" for s in svgs)
    lines = tags(html, "polyline")
    assert len(lines) == 2 and all(len(line["attrs"]["points"].split()) == 5 for line in lines)
    assert len(with_class(html, "threshold", "line")) == 1


def test_sections_for_model_details_are_left_out_when_absent(report) -> None:
    html = render_feedback(without_model_details(report), "instructor", "Ex 06")
    assert text_of(html, "layers") is None and text_of(html, "training-curve") is None
    assert "<svg" not in html
    assert text_of(html, "total-score").startswith("44 / 100")


def test_failed_cell_shows_its_error_and_source(report) -> None:
    html = render_feedback(report, "instructor", "Ex 06")
    cells = text_of(html, "cells")
    assert "Cell 13 raised NameError" in cells and "name 'max_pool' is not defined" in cells
    assert "def maxpool2d(x, kernel_size, stride=None):" in cells


def test_student_copy_shows_public_checks_only_and_says_so(report) -> None:
    student = render_feedback(report, "student", "Ex 06")
    instructor = render_feedback(report, "instructor", "Ex 06")
    hidden = [c.id for c in report.checks if c.visibility == "hidden"]
    assert hidden and all(h in instructor for h in hidden)
    assert not any(h in student for h in hidden)
    assert "4 hidden check(s) worth 7 point(s) also count" in student
    # 44 points minus the 5 earned on hidden checks, out of the 93 public points.
    assert text_of(student, "total-score").startswith("39 / 93")


def test_student_controlled_text_is_escaped(report) -> None:
    hostile = replace(report, submission=HOSTILE, reason=HOSTILE, status="error",
                      checks=[replace(c, message=HOSTILE + c.message) for c in report.checks],
                      execution=replace(report.execution, failed_cells=(
                          replace(report.execution.failed_cells[0], source_excerpt=HOSTILE, message=HOSTILE),)))
    html = render_feedback(hostile, "instructor", "Ex 06")
    assert "<script" not in html and "&lt;script&gt;" in html
    summary = render_summary([hostile], "Batch", lambda s, a: f"{s}.html")
    assert summary.count("<script") == 1  # the page's own sorting script only
    assert 'href="&lt;script&gt;' in summary


def test_terminal_colour_codes_are_dropped(report) -> None:
    failed = replace(report.execution.failed_cells[0], message="\x1b[0;31mNameError\x1b[0m: boom\x07")
    coloured = replace(report, execution=replace(report.execution, failed_cells=(failed,)))
    html = render_feedback(coloured, "instructor", "Ex 06")
    assert "NameError: boom" in text_of(html, "cells") and "\x1b" not in html and "\x07" not in html


def test_unknown_audience_is_refused(report) -> None:
    with pytest.raises(ValueError, match="audience"):
        render_feedback(report, "parents")


def test_summary_counts_scores_checks_problems_and_links(report) -> None:
    low = replace(report, submission="low", score=5.0)
    top = replace(without_model_details(report), submission="top", score=100.0,
                  execution=replace(report.execution, failed_cells=(), seconds=99.0))
    dead = replace(report, submission="dead", score=0.0,
                   execution=replace(report.execution, kernel_died=True, kernel_died_at_cell=3))
    reports = [low, top, dead]
    assert histogram_counts(reports) == [2, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    html = render_summary(reports, "Batch", lambda s, a: f"{s}.html" if a == "instructor" else f"{s}/feedback.html")
    assert "3 notebook(s)" in text_of(html, "batch-stats")
    slowest = text_of(html, "slowest")
    assert slowest.index("top 99.0 s") < slowest.index("low 32.6 s")
    problems = text_of(html, "problems")
    assert "dead" in problems and "kernel died at cell 4" in problems and "top" not in problems
    rates = text_of(html, "pass-rates")
    assert "B2.parameter_count CNN: number of trainable parameters public 3 / 3" in rates
    links = [a["attrs"]["href"] for a in tags(html, "a")]
    assert {"low.html", "low/feedback.html", "dead.html", "top/feedback.html"} <= set(links)
    assert len(tags(html, "rect")) >= 2  # the histogram's bars


def test_pages_are_written_where_the_links_point(report, tmp_path) -> None:
    weird = replace(report, submission="anne marie#1")
    paths = write_feedback_pages(tmp_path, weird, "Ex 06")
    assert paths["instructor"] == tmp_path / "anne marie#1.html"
    assert paths["student"] == tmp_path / "anne marie#1" / "feedback.html"
    summary = write_summary_page(tmp_path, [weird], "Batch")
    assert summary.name == SUMMARY_PAGE_NAME
    hrefs = [a["attrs"]["href"] for a in tags(summary.read_text("utf-8"), "a")]
    from urllib.parse import unquote

    assert sorted((tmp_path / unquote(h)).exists() for h in hrefs) == [True, True]
    assert "%23" in hrefs[0]  # '#' would start a fragment


@pytest.mark.parametrize(("low", "high"), [(0.31, 1.62), (0.0, 1.0), (0.912, 0.95), (3.0, 3.0), (0.0, 250.0)])
def test_axis_ticks_cover_the_data(low, high) -> None:
    from grader.report.svg import nice_ticks

    ticks = nice_ticks(low, high)
    assert ticks[0] <= low and ticks[-1] >= high and 2 <= len(ticks) <= 8
    assert ticks == sorted(set(ticks))


def test_histogram_ticks_are_whole_counts() -> None:
    from grader.report.svg import nice_ticks

    assert all(float(t).is_integer() for t in nice_ticks(0, 3, integer=True))


def test_a_public_only_report_still_says_hidden_checks_may_count(report) -> None:
    html = render_feedback(report.public_view(), "student", "Ex 06")
    assert "This page shows the public checks only" in html
    assert "all passed here is not the final score" in html


def test_detail_values_read_as_people_write_them() -> None:
    from grader.report.explain import show_value

    assert show_value(421834) == "421,834"
    assert show_value([64, 7, 7]) == "(64, 7, 7)"
    assert show_value({"block2": [64, 14, 14], "flatten": 3136}) == "block2: (64, 14, 14), flatten: 3,136"
    assert show_value(None) == "" and show_value("shape (7, 5)") == "shape (7, 5)"


def everything_hostile(report: SubmissionReport) -> SubmissionReport:
    """`HOSTILE` in every field a student controls: their id, the names of their classes and
    layers, what their code returned or raised, their cells' sources and outputs, and therefore
    every message that quotes any of these."""
    def layers(rows):
        return [{**row, "name": HOSTILE, "type": HOSTILE, "output_shape": HOSTILE, "params": HOSTILE} for row in rows]

    checks = []
    for check in report.checks:
        details = dict(check.details)
        for key in ("student_layers", "reference_layers"):
            if key in details:
                details[key] = layers(details[key])
        checks.append(replace(check, message=HOSTILE + check.message, expected=HOSTILE, observed=[HOSTILE],
                              details=details, status="fail" if check.status == "pass" else check.status,
                              score=0.0))
    problem = CellProblem(12, error=HOSTILE, message=HOSTILE, source_excerpt=HOSTILE)
    execution = replace(report.execution, failed_cells=(problem,), timed_out_cells=(problem,), warnings=(HOSTILE,),
                        kernel_died=True, not_run_cells=(13,))
    return replace(report, submission=HOSTILE, notebook=HOSTILE, reason=HOSTILE, status="error",
                   checks=checks, execution=execution, seed_policy=HOSTILE, graded_at=HOSTILE)


def test_script_in_every_student_controlled_field_is_escaped_on_every_page(report, tmp_path) -> None:
    hostile = everything_hostile(report)
    pages = {audience: render_feedback(hostile, audience, "Ex 06") for audience in ("instructor", "student")}
    pages["summary"] = render_summary([hostile, report], "Batch", lambda s, a: f"{s}/{a}.html")
    for name, html in pages.items():
        scripts = tags(html, "script")
        assert len(scripts) == (1 if name == "summary" else 0), name  # the summary's own sorting script only
        assert "alert" not in "".join(script["text"][0] for script in scripts if script["text"]), name
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html, name
        assert not [e for e in parse(html) if any(a.startswith("on") for a in e["attrs"])], name
    instructor = pages["instructor"]
    for section in ("submission-id", "not-graded", "lost-points", "layer-table", "cells"):
        assert HOSTILE in text_of(instructor, section), section  # shown as text, where it belongs
    assert 'href="&lt;script&gt;' in pages["summary"]
