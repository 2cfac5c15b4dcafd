"""grader.score.score_observations, the report model's views and round trips, and Observations JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from grader.errors import ObservationsError
from grader.execute.base import CellRun, ExecutionSummary
from grader.observe.observations import Observations, ProbeRecord
from grader.report.model import SubmissionReport
from grader.rubric.load import load_rubric
from grader.score import score_observations

ROOT = Path(__file__).resolve().parent.parent
POOL_X = [[[1, 9, 2, 0], [4, 3, 8, 7], [6, 5, 0, 1], [2, 15, 3, 4]]]
SLIDE_CASE = {"image": [[0, 1, 2], [3, 4, 5], [6, 7, 8]], "kernel": [[0, 1], [2, 3]]}


@pytest.fixture(scope="module")
def rubric():
    return load_rubric(ROOT / "rubrics" / "ex06.toml")


def base_fields(**changes) -> dict:
    fields = dict(submission="alice", notebook="subs/alice.ipynb", notebook_sha256="ab" * 32,
                  rubric_sha256="cd" * 32, seed=1234, seed_policy="per_submission", grader_version="0.1.0",
                  graded_at="2026-01-01T00:00:00+00:00")
    fields.update(changes)
    return fields


def number(value) -> dict:
    return {"type": f"builtins.{type(value).__name__}", "value": value}


def array(value) -> dict:
    return {"type": "torch.Tensor", "value": value}


def calls(inputs: list[dict], *outputs: dict) -> ProbeRecord:
    return ProbeRecord(inputs=inputs, status="ok", data={
        "defined": True, "callable": True, "signature": "f(...)",
        "results": [{"ok": True, "output": out, "torch_calls": []} for out in outputs]})


def executed_observations() -> Observations:
    """Hand-written observations; expected points per check are in EXPECTED_SCORES."""
    shapes = {"type": "builtins.dict", "entries": {
        "block1": {"type": "builtins.tuple", "items": [number(32), number(28), number(28)]},  # wrong
        "block2": {"type": "builtins.tuple", "items": [number(64), number(7), number(7)]},
        "flatten": number(3136)}}
    probes = {
        "A1.lecture_examples": calls(
            [{"h_in": 3, "kernel_size": 2}, {"h_in": 28, "kernel_size": 3, "padding": 1},
             {"h_in": 28, "kernel_size": 2, "padding": 0, "stride": 2}], number(2), number(28), number(14)),
        "A1.random_inputs": calls([{"h_in": 6, "kernel_size": 3, "padding": None, "stride": 2}], number(2)),
        "A1.stride_floor": calls([{"h_in": 10, "kernel_size": 4, "padding": 2, "stride": 4}], number(3)),
        "A2.slide_example": calls([dict(SLIDE_CASE)], array([[19, 25], [37, 43]])),
        "A2.random_inputs": calls([dict(SLIDE_CASE)], array([[0, 0], [0, 0]])),
        # A2.padding_stride and all of A3: no observation recorded
        "A4.default_stride": calls([{"x": POOL_X, "kernel_size": 2, "stride": None}], array([[[9, 8], [15, 4]]])),
        "A4.explicit_stride": calls([{"x": POOL_X, "kernel_size": 2, "stride": 1}],
                                    array([[[9, 9, 8], [6, 8, 8], [15, 15, 4]]])),
        "A5.feature_shapes": ProbeRecord(inputs=None, status="ok", data={"defined": True, "value": shapes}),
    }
    execution = ExecutionSummary(seconds=3.5, cells=(
        CellRun(0, "ok", 0.5), CellRun(1, "error", 0.1, "ValueError", "bad", "raise ValueError('bad')"),
        CellRun(2, "ok", 2.9)), warnings=("UserWarning: something",))
    return Observations(status="executed", execution=execution, definitions={"conv_output_size": 0},
                        probes=probes, **base_fields())


# Part A, by hand. Every check of Parts B-E has no observation here and must score 0.
EXPECTED_SCORES = {
    "A1.lecture_examples": 1, "A1.random_inputs": 3, "A1.stride_floor": 1,  # hidden, passes
    "A2.slide_example": 2, "A2.random_inputs": 0, "A2.padding_stride": 0,
    "A3.random_inputs": 0, "A3.bias": 0, "A3.padding_stride": 0,
    "A4.default_stride": 3, "A4.explicit_stride": 2,  # hidden, passes
    "A5.feature_shapes": 4,  # 6 points x 2/3
}
PART_A_HIDDEN = {"A1.stride_floor", "A2.padding_stride", "A3.padding_stride", "A4.explicit_stride"}


@pytest.fixture(scope="module")
def graded(rubric) -> SubmissionReport:
    return score_observations(executed_observations(), rubric)


# ------------------------------------------------------------------------ not run


def test_not_run_observations_give_every_check_an_error_with_the_reason(rubric):
    reason = "the file is empty (0 bytes). Save the notebook in Jupyter and submit it again."
    report = score_observations(Observations(status="not_run", reason=reason, **base_fields()), rubric)
    assert report.status == "error"
    assert [result.id for result in report.checks] == [check.id for check in rubric.checks]
    assert {result.status for result in report.checks} == {"error"}
    assert all(result.score == 0 for result in report.checks)
    assert all(reason in result.message for result in report.checks)
    assert report.score == 0
    assert report.max_score == 100
    assert report.reason == reason
    assert report.execution is None


def test_not_run_report_still_lists_every_task_at_zero(rubric):
    report = score_observations(Observations(status="not_run", reason="x", **base_fields()), rubric)
    assert [(t.task, t.score, t.max_score) for t in report.tasks] == [
        (task, 0, rubric.task_max(task)) for task in rubric.task_ids()]


# ------------------------------------------------------------------------ executed


def test_executed_report_scores_each_check_as_hand_computed(graded):
    part_a = {result.id: result.score for result in graded.checks if result.task.startswith("A")}
    assert part_a == pytest.approx(EXPECTED_SCORES)
    assert graded.status == "graded"


def test_checks_without_observations_score_nothing(graded):
    others = [result for result in graded.checks if not result.task.startswith("A")]
    assert others, "the default rubric has checks beyond Part A"
    assert all(result.score == 0 and result.status != "pass" for result in others)


def test_executed_report_check_statuses(graded):
    statuses = {result.id: result.status for result in graded.checks}
    assert statuses["A1.lecture_examples"] == "pass"
    assert statuses["A2.random_inputs"] == "fail"
    assert statuses["A2.padding_stride"] == "error"  # nothing observed
    assert statuses["A5.feature_shapes"] == "fail"


def test_task_scores_sum_their_check_scores(graded):
    tasks = {t.task: (t.score, t.max_score) for t in graded.tasks}
    assert tasks["A1"] == (5, 5)
    assert tasks["A2"] == (2, 7)
    assert tasks["A3"] == (0, 7)
    assert tasks["A4"] == (5, 5)
    assert tasks["A5"] == (4, 6)
    for task in ("A1", "A2", "A3", "A4", "A5"):
        assert tasks[task][0] == pytest.approx(sum(r.score for r in graded.checks if r.task == task))


def test_total_is_the_sum_and_max_score_is_the_rubrics(graded, rubric):
    assert graded.score == pytest.approx(16)
    assert graded.max_score == rubric.max_score == 100
    assert [t.task for t in graded.tasks] == rubric.task_ids()


def test_checks_without_an_observation_are_errors_never_passes(graded):
    # The hand-written observations hold probes for Part A only: every later check must come out
    # as an error with 0 points, never as passed.
    later = [result for result in graded.checks if result.task[0] in "BCDE"]
    assert later and all(result.score == 0 and result.status in ("error", "fail") for result in later)


def test_execution_block_lists_failed_cells(graded):
    assert graded.execution.cells_total == 3
    assert graded.execution.cells_ok == 2
    assert [cell.index for cell in graded.execution.failed_cells] == [1]
    assert graded.execution.failed_cells[0].error == "ValueError"
    block = graded.to_dict()["execution"]  # the JSON keeps its layout
    assert block["failed_cells"][0] == {"index": 1, "error": "ValueError", "message": "bad",
                                        "source_excerpt": "raise ValueError('bad')", "seconds": 0.1}
    assert (block["cells_total"], block["not_run_cells"], block["warnings"]) == (3, [], ["UserWarning: something"])


# ------------------------------------------------------------------------ public view


def test_public_view_drops_hidden_checks(graded, rubric):
    public = graded.public_view()
    ids = [result.id for result in public.checks]
    assert ids == [check.id for check in rubric.checks if check.visibility == "public"]
    assert not PART_A_HIDDEN & set(ids)
    assert all(result.visibility == "public" for result in public.checks)


def test_public_view_recomputes_totals(graded, rubric):
    public = graded.public_view()
    # 16 points in all; the hidden A1.stride_floor (1) and A4.explicit_stride (2) passed.
    assert public.score == pytest.approx(13)
    assert public.max_score == pytest.approx(rubric.public_only().max_score)
    assert public.max_score < graded.max_score
    tasks = {t.task: (t.score, t.max_score) for t in public.tasks}
    assert tasks["A1"] == (4, 4)
    assert tasks["A4"] == (3, 3)
    assert tasks["A3"] == (0, 5)
    assert {t.task: t.title for t in public.tasks}["A4"] == "maxpool2d"


def test_public_view_leaves_the_full_report_alone(graded, rubric):
    graded.public_view()
    assert graded.score == pytest.approx(16)
    assert len(graded.checks) == len(rubric.checks)


# ------------------------------------------------------------------------ round trips


def test_report_json_round_trips_through_from_dict(graded):
    text = graded.to_json()
    again = SubmissionReport.from_dict(json.loads(text))
    assert again.to_json() == text
    assert again.score == graded.score
    assert [(c.id, c.status, c.score, c.message) for c in again.checks] == [
        (c.id, c.status, c.score, c.message) for c in graded.checks]


def test_not_run_report_round_trips_to_an_equal_object(rubric):
    report = score_observations(Observations(status="not_run", reason="x", **base_fields()), rubric)
    assert SubmissionReport.from_dict(json.loads(report.to_json())) == report


def test_observations_round_trip_through_json():
    observations = executed_observations()
    assert Observations.from_json(observations.to_json()) == observations


def test_not_run_observations_round_trip_through_json():
    observations = Observations(status="not_run", reason="the file is empty", **base_fields())
    assert Observations.from_json(observations.to_json()) == observations


def test_observations_keep_nan_values():
    record = ProbeRecord(inputs=[], status="ok", data={"results": [{"output": number(float("nan"))}]})
    observations = Observations(status="executed", execution=ExecutionSummary(1.0, ()),
                                probes={"A1.x": record}, **base_fields())
    again = Observations.from_json(observations.to_json())
    assert math.isnan(again.probes["A1.x"].data["results"][0]["output"]["value"])


@pytest.mark.parametrize("corrupt", [
    "cut",            # the first half of a real file
    "",               # empty
    "[]",             # JSON, not an object
    "schema",         # another schema version
    "unknown_field",  # a field this grader does not know
])
def test_corrupt_observations_file_raises_with_advice_to_grade_again(tmp_path, corrupt):
    text = executed_observations().to_json()
    if corrupt == "cut":
        text = text[: len(text) // 2]
    elif corrupt == "schema":
        text = json.dumps({**json.loads(text), "schema": 99})
    elif corrupt == "unknown_field":
        text = json.dumps({**json.loads(text), "surprise": 1})
    else:
        text = corrupt
    path = tmp_path / "alice" / "observations.json"
    with pytest.raises(ObservationsError) as caught:
        Observations.from_json(text, path)
    assert str(path) in str(caught.value)
    assert "grade the submission again" in str(caught.value)
