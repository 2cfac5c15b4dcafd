"""The sample batch, the reference solution and the template, graded by real kernels: each earns
exactly its asserted per-check verdicts."""

from __future__ import annotations

import pytest

from grader.report.model import SubmissionReport

pytestmark = pytest.mark.kernel

PART_A = ("A1", "A2", "A3", "A4", "A5")
B1_ALL = {"B1.output_shape", "B1.stage_shapes", "B1.layer_order", "B1.logits", "B1.batch_sizes",
          "B1.eval_deterministic"}

# The checks each notebook must fail; every other check must pass (with full points).
EXPECTED_FAILURES: dict[str, set[str]] = {
    "reference_solution": set(),
    "passes_all_loops": set(),
    "passes_all_vectorized": set(),
    "passes_all_numpy": set(),
    "passes_all_lazy": set(),
    "passes_all_functional": set(),
    "fails_A1_off_by_one": {"A1.lecture_examples", "A1.random_inputs", "A1.stride_floor"},
    "fails_A1_true_division": {"A1.random_inputs", "A1.stride_floor"},
    "fails_A2_hardcoded_slide": {"A2.random_inputs", "A2.padding_stride"},
    "fails_A2_flipped_kernel": {"A2.slide_example", "A2.random_inputs", "A2.padding_stride"},
    "fails_A2_ignores_padding": {"A2.padding_stride"},
    "fails_A3_ignores_bias": {"A3.bias"},
    "fails_A4_stride_one_default": {"A4.default_stride"},
    "fails_A5_one_pool": {"A5.feature_shapes"},
    "fails_cell_raises": {"A4.default_stride", "A4.explicit_stride"},
    "fails_B_no_padding": {"B1.stage_shapes", "B2.parameter_count"},
    "fails_B_softmax_output": {"B1.logits"},
    "fails_B_bn_after_relu": {"B1.layer_order"},
    "fails_B_class_renamed": B1_ALL | {"B2.parameter_count", "D3.brief_training", "E1.loads", "E1.accuracy"},
    # Without zero_grad() the student's own training goes wrong, so their saved model is weak too.
    "fails_D_no_zero_grad": {"D1.weights", "D1.mean_loss", "E1.accuracy"},
    "fails_D_test_train_mode": {"D2.loss_accuracy", "D2.no_side_effects"},
}
# Backwards-compatible name for the Part A view used below.
EXPECTED_PART_A_FAILURES = {name: {c for c in failures if c[:2] in PART_A}
                            for name, failures in EXPECTED_FAILURES.items()}


def part_a_checks(report: SubmissionReport):
    return [c for c in report.checks if c.task in PART_A]


def test_every_sample_is_graded(sample_reports: dict[str, SubmissionReport]) -> None:
    extra = {"student_template", "passes_all_loops_again"}
    assert set(EXPECTED_FAILURES) | extra == set(sample_reports)
    assert all(r.status == "graded" for r in sample_reports.values())


@pytest.mark.parametrize("name", sorted(EXPECTED_FAILURES))
def test_verdicts(sample_reports: dict[str, SubmissionReport], name: str) -> None:
    report = sample_reports[name]
    failing = {c.id for c in report.checks if c.status != "pass"}
    assert failing == EXPECTED_FAILURES[name], {c.id: c.message for c in report.checks if c.status != "pass"}
    for check in report.checks:
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
    assert all(c.status == "fail" for c in report.checks)


def test_hard_coded_slide_example_earns_only_the_slide_check(sample_reports) -> None:
    a2 = {c.id: c for c in sample_reports["fails_A2_hardcoded_slide"].checks if c.task == "A2"}
    assert a2["A2.slide_example"].score == a2["A2.slide_example"].max_score
    assert sum(c.score for c in a2.values()) == a2["A2.slide_example"].max_score
    assert "8 of 8 case(s) differ from PyTorch" in a2["A2.random_inputs"].message


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


def test_reference_solution_earns_full_marks(sample_reports) -> None:
    report = sample_reports["reference_solution"]
    assert report.score == report.max_score == 100


def test_renamed_class_message_lists_the_classes_defined(sample_reports) -> None:
    b1 = next(c for c in sample_reports["fails_B_class_renamed"].checks if c.id == "B1.output_shape")
    assert "class `CNN` is not defined" in b1.message and "ConvNet" in b1.message


def test_no_padding_shows_the_first_wrong_stage_and_layer_tables(sample_reports) -> None:
    checks = {c.id: c for c in sample_reports["fails_B_no_padding"].checks}
    stage = checks["B1.stage_shapes"]
    assert "expected a conv output of shape (32, 28, 28), got a conv output of shape (32, 26, 26)" in stage.message
    assert stage.details["reference_layers"][0] == {"name": "block1.0", "type": "Conv2d",
                                                    "output_shape": [32, 28, 28], "params": 320}
    assert "421,834" in checks["B2.parameter_count"].message


def test_brief_training_curve_is_kept(sample_reports) -> None:
    d3 = next(c for c in sample_reports["reference_solution"].checks if c.id == "D3.brief_training")
    curve = d3.details["curve"]
    epochs = d3.details and len(curve["epoch"])
    assert curve["epoch"] == list(range(1, epochs + 1)) and len(curve["train_loss"]) == epochs >= 2
    assert curve["accuracy"][-1] == pytest.approx(d3.details["accuracy"], abs=1e-6)
    assert d3.details["accuracy"] >= d3.details["threshold"]


def test_gradebook_has_a_row_per_notebook_and_a_column_per_task(sample_batch, default_rubric) -> None:
    import pandas as pd

    frame = pd.read_csv(sample_batch.gradebook)
    assert len(frame) == len(sample_batch.reports)
    assert {"submission", "status", "total", *default_rubric.task_ids()} <= set(frame.columns)
    row = frame.set_index("submission").loc["fails_A2_hardcoded_slide"]
    assert row["A2"] == 2 and row["total"] == 95


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


# Timing fields (the notebook's cells and probes took a little more or less time on each run).
TIMING_FIELDS = {"seconds", "graded_at", "cell_seconds", "probe_seconds"}


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
        for name in ("submission", "notebook", "files", "student_id", "source"):  # which file it was
            report.pop(name)
    assert _without_timing(first) == _without_timing(second)
