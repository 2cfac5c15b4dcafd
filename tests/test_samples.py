"""The sample batch, the reference solution and the template, graded by real kernels: each earns
exactly its asserted per-check verdicts."""

from __future__ import annotations

import pytest

from grader.report.model import SubmissionReport

pytestmark = pytest.mark.kernel

PART_A = ("A1", "A2", "A3", "A4", "A5")

# The Part A checks each notebook must fail; every other Part A check must pass.
EXPECTED_PART_A_FAILURES: dict[str, set[str]] = {
    "reference_solution": set(),
    "passes_all_loops": set(),
    "passes_all_vectorized": set(),
    "passes_all_numpy": set(),
    "fails_A1_off_by_one": {"A1.lecture_examples", "A1.random_inputs", "A1.stride_floor"},
    "fails_A1_true_division": {"A1.random_inputs", "A1.stride_floor"},
    "fails_A2_hardcoded_slide": {"A2.random_inputs", "A2.padding_stride"},
    "fails_A2_flipped_kernel": {"A2.slide_example", "A2.random_inputs", "A2.padding_stride"},
    "fails_A2_ignores_padding": {"A2.padding_stride"},
    "fails_A3_ignores_bias": {"A3.bias"},
    "fails_A4_stride_one_default": {"A4.default_stride"},
    "fails_A5_one_pool": {"A5.feature_shapes"},
    "fails_cell_raises": {"A4.default_stride", "A4.explicit_stride"},
}


def part_a_checks(report: SubmissionReport):
    return [c for c in report.checks if c.task in PART_A]


def test_every_sample_is_graded(sample_reports: dict[str, SubmissionReport]) -> None:
    extra = {"student_template", "passes_all_loops_again"}
    assert set(EXPECTED_PART_A_FAILURES) | extra == set(sample_reports)
    assert all(r.status == "graded" for r in sample_reports.values())


@pytest.mark.parametrize("name", sorted(EXPECTED_PART_A_FAILURES))
def test_part_a_verdicts(sample_reports: dict[str, SubmissionReport], name: str) -> None:
    report = sample_reports[name]
    failing = {c.id for c in part_a_checks(report) if c.status != "pass"}
    assert failing == EXPECTED_PART_A_FAILURES[name], {
        c.id: c.message for c in part_a_checks(report) if c.status != "pass"}
    for check in part_a_checks(report):
        if check.status == "pass":
            assert check.score == check.max_score
        else:
            assert check.status == "fail" and check.message


def test_reference_solution_earns_every_part_a_point(sample_reports: dict[str, SubmissionReport],
                                                     default_rubric) -> None:
    report = sample_reports["reference_solution"]
    part_a_max = sum(default_rubric.task_max(t) for t in PART_A)
    assert sum(c.score for c in part_a_checks(report)) == part_a_max == 30


def test_template_runs_cleanly_and_earns_nothing(sample_reports: dict[str, SubmissionReport]) -> None:
    report = sample_reports["student_template"]
    assert report.execution["failed_cells"] == [] and report.execution["timed_out_cells"] == []
    assert report.score == 0
    assert all(c.status in ("fail", "skipped") for c in report.checks)


def test_hard_coded_slide_example_earns_only_the_slide_check(sample_reports) -> None:
    a2 = {c.id: c for c in sample_reports["fails_A2_hardcoded_slide"].checks if c.task == "A2"}
    assert a2["A2.slide_example"].score == a2["A2.slide_example"].max_score
    assert sum(c.score for c in a2.values()) == a2["A2.slide_example"].max_score
    assert "expected a result of shape" in a2["A2.random_inputs"].message


def test_off_by_one_output_size_loses_all_of_a1(sample_reports) -> None:
    a1 = [c for c in sample_reports["fails_A1_off_by_one"].checks if c.task == "A1"]
    assert sum(c.score for c in a1) == 0
    assert "expected 2, got 1" in a1[0].message  # the lecture's 3x3 image, 2x2 kernel


def test_numpy_results_pass(sample_reports) -> None:
    report = sample_reports["passes_all_numpy"]
    results = [c for c in part_a_checks(report)]
    assert all(c.status == "pass" for c in results)


def test_partial_credit_for_feature_shapes(sample_reports) -> None:
    a5 = next(c for c in sample_reports["fails_A5_one_pool"].checks if c.id == "A5.feature_shapes")
    assert a5.score == pytest.approx(a5.max_score / 3)
    assert "expected (64, 7, 7), got (64, 14, 14)" in a5.message


def test_failing_cell_is_reported_and_later_cells_still_run(sample_reports) -> None:
    report = sample_reports["fails_cell_raises"]
    failed = report.execution["failed_cells"]
    assert [c["error"] for c in failed] == ["NameError"]
    assert "max_pool" in failed[0]["message"] and "def maxpool2d" in failed[0]["source_excerpt"]
    # Cells after the failing one ran: the network, training and saving cells all count as ok.
    assert report.execution["cells_ok"] == report.execution["cells_total"] - 1
    missing = next(c for c in report.checks if c.id == "A4.default_stride")
    assert f"cell(s) {failed[0]['index'] + 1} raised an error" in missing.message


def test_pending_parts_are_skipped_not_passed(sample_reports) -> None:
    report = sample_reports["reference_solution"]
    later = [c for c in report.checks if c.task not in PART_A]
    assert later and all(c.status == "skipped" and c.score == 0 for c in later)


def test_gradebook_has_a_row_per_notebook_and_a_column_per_task(sample_batch, default_rubric) -> None:
    import pandas as pd

    frame = pd.read_csv(sample_batch.gradebook)
    assert len(frame) == len(sample_batch.reports)
    assert {"submission", "status", "total", *default_rubric.task_ids()} <= set(frame.columns)
    row = frame.set_index("submission").loc["fails_A2_hardcoded_slide"]
    assert row["A2"] == 2 and row["total"] == 25


def test_executed_notebook_and_observations_saved_next_to_report(sample_batch) -> None:
    import json

    out = sample_batch.out_dir
    report = json.loads((out / "passes_all_loops.json").read_text())
    assert report["files"] == {"observations": "passes_all_loops/observations.json",
                               "notebook": "passes_all_loops/executed.ipynb"}
    executed = json.loads((out / report["files"]["notebook"]).read_text())
    assert any(o for c in executed["cells"] if c["cell_type"] == "code" for o in c["outputs"])
    observations = json.loads((out / report["files"]["observations"]).read_text())
    assert observations["seed"] == report["seed"] and "A2.random_inputs" in observations["probes"]


TIMING_FIELDS = {"seconds", "graded_at"}


def _without_timing(value):
    if isinstance(value, dict):
        return {k: _without_timing(v) for k, v in value.items() if k not in TIMING_FIELDS}
    if isinstance(value, list):
        return [_without_timing(v) for v in value]
    return value


def test_same_notebook_same_report_apart_from_timing(sample_reports) -> None:
    first = sample_reports["passes_all_loops"].to_dict()
    second = sample_reports["passes_all_loops_again"].to_dict()
    for report in (first, second):
        report.pop("submission"), report.pop("notebook"), report.pop("files")
    assert _without_timing(first) == _without_timing(second)
