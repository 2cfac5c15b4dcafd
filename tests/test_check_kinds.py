"""Every check kind of Parts B-E on hand-written observations: pass, fail, not observed, not
defined and malformed. No kernel: the verdicts are pure functions of observations and rubric.

The passing observations of Part B and C are those a real kernel recorded for a correct network
(the fixture graded before issue 9), edited by hand for the other cases. D1/D2 pass on the
reference's own outcome, D3/E1 on predictions made from the hidden labels, so no test depends
on data a kernel produced for a data set that may change."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from grader.checks.base import ScoreContext, Verdict
from grader.checks.registry import CHECK_KINDS
from grader.data.sources import data_arrays
from grader.execute.base import CellRun, ExecutionSummary
from grader.observe.execution import ExecutionReport
from grader.observe.observations import Observations, ProbeRecord
from grader.rubric.load import load_rubric
from grader.score import judge

ROOT = Path(__file__).resolve().parent.parent
OBSERVED = ROOT / "tests" / "fixtures" / "graded_before_issue9" / "fails_cell_raises" / "observations.json"
PART_B_TO_E = ("architecture", "parameter_count", "data_loader", "train_function", "test_function",
               "brief_training", "saved_model")
# One check of each kind, and the name its messages use for what it observes.
ONE_OF_EACH = {"B1.output_shape": "your network", "B2.parameter_count": "your network",
               "C1.train_loader": "`train_loader`", "D1.weights": "`train()`", "D2.loss_accuracy": "`test()`",
               "D3.brief_training": "your network", "E1.accuracy": "`cnn.pt`"}


@pytest.fixture(scope="module")
def rubric():
    return load_rubric(ROOT / "rubrics" / "ex06.toml")


@pytest.fixture(scope="module")
def recorded() -> dict[str, ProbeRecord]:
    return Observations.from_json(OBSERVED.read_text("utf-8"), OBSERVED).probes


@pytest.fixture(scope="module")
def hidden_labels(rubric) -> list[int]:
    return [int(label) for label in data_arrays(rubric.data).hidden_labels]


def context(rubric, *statuses: str, definitions: dict[str, int] | None = None) -> ScoreContext:
    cells = tuple(CellRun(index=i, status=s) for i, s in enumerate(statuses or ("ok", "ok")))
    execution = ExecutionReport.from_summary(ExecutionSummary(seconds=1.0, cells=cells))
    return ScoreContext(rubric=rubric, execution=execution, definitions=definitions or {})


def verdict(rubric, check_id: str, record: ProbeRecord | None, *statuses: str) -> Verdict:
    return judge(rubric.check(check_id), record, context(rubric, *statuses))


def edited(record: ProbeRecord, **data: Any) -> ProbeRecord:
    return dataclasses.replace(record, data={**record.data, **data})


def without(record: ProbeRecord, *keys: str) -> ProbeRecord:
    return dataclasses.replace(record, data={k: v for k, v in record.data.items() if k not in keys})


def test_every_kind_of_parts_b_to_e_is_covered(rubric) -> None:
    assert {rubric.check(check_id).kind for check_id in ONE_OF_EACH} == set(PART_B_TO_E)
    assert set(PART_B_TO_E) <= set(CHECK_KINDS)


# ------------------------------------------------------------------------ not observed: one verdict per case


@pytest.mark.parametrize("check_id", ONE_OF_EACH)
def test_no_observation_is_an_error_saying_to_grade_again(rubric, check_id) -> None:
    result = verdict(rubric, check_id, None)
    assert (result.status, result.fraction) == ("error", 0.0)
    assert "grade the notebook again (`grader grade`)" in result.message
    assert ONE_OF_EACH[check_id] in result.message


@pytest.mark.parametrize("status", ["probe_error", "not_run"])
@pytest.mark.parametrize("check_id", ONE_OF_EACH)
def test_a_probe_that_failed_on_the_graders_side_is_an_error(rubric, check_id, status) -> None:
    record = ProbeRecord(inputs=None, status=status, data=None, message="the probe returned no result (NameError)")
    result = verdict(rubric, check_id, record)
    assert (result.status, result.fraction) == ("error", 0.0)
    assert "the probe returned no result (NameError)" in result.message
    assert "grade the notebook again" in result.message


@pytest.mark.parametrize(("status", "words"), [("timeout", "did not finish within the probe time limit (30 s)"),
                                               ("kernel_died", "The kernel died")])
@pytest.mark.parametrize("check_id", ONE_OF_EACH)
def test_a_probe_stopped_by_the_students_code_fails(rubric, check_id, status, words) -> None:
    record = ProbeRecord(inputs=None, status=status, data=None, message="30 s")
    result = verdict(rubric, check_id, record)
    assert (result.status, result.fraction) == ("fail", 0.0)
    assert words in result.message and ONE_OF_EACH[check_id] in result.message


@pytest.mark.parametrize("check_id", ONE_OF_EACH)
def test_a_malformed_observation_is_that_checks_error_not_a_crash(rubric, check_id) -> None:
    # Written by hand or by another grader version: a key the check needs is missing.
    record = ProbeRecord(inputs={"op": "train_function", "settings": {}}, status="ok",
                         data={"defined": True, "callable": True, "found": True, "exists": True,
                               "is_dataloader": True, "items": [{}, {}]})
    result = verdict(rubric, check_id, record)
    assert (result.status, result.fraction) == ("error", 0.0)
    assert "could not judge its observation" in result.message and "grade the notebook again" in result.message


# ------------------------------------------------------------------------ B1 / B2: the network


ARCHITECTURE = ("B1.output_shape", "B1.stage_shapes", "B1.layer_order", "B1.logits", "B1.batch_sizes",
                "B1.eval_deterministic", "B2.parameter_count")


@pytest.mark.parametrize("check_id", ARCHITECTURE)
def test_a_correct_network_passes(rubric, recorded, check_id) -> None:
    result = verdict(rubric, check_id, recorded[check_id])
    assert (result.status, result.fraction) == ("pass", 1.0), result.message


@pytest.mark.parametrize("check_id", [*ARCHITECTURE, "D3.brief_training"])
def test_a_network_class_that_is_not_defined_fails_saying_what_to_define(rubric, recorded, check_id) -> None:
    record = ProbeRecord(inputs=None, status="ok", data={"found": False, "module_classes": ["Net"]})
    result = verdict(rubric, check_id, record)
    assert result.status == "fail"
    assert "class `CNN` is not defined" in result.message and "Net" in result.message
    assert "CNN(n_labels=10)" in result.message


def test_a_network_whose_constructor_raises_fails_with_the_error(rubric, recorded) -> None:
    record = edited(recorded["B1.output_shape"], construct_error={"error": "TypeError", "message": "bad kwarg"})
    result = verdict(rubric, "B1.output_shape", record)
    assert result.status == "fail" and "raised TypeError: bad kwarg" in result.message


@pytest.mark.parametrize(("check_id", "change", "words"), [
    ("B1.output_shape", {"output": {"type": "torch.Tensor", "shape": [2, 5]}}, "returned shape (2, 5)"),
    ("B1.logits", {"output": {"type": "torch.Tensor", "shape": [2, 10], "min": 0.0, "row_sums": [1.0, 1.0]}},
     "returns probabilities"),
    ("B1.batch_sizes", {"batch_outputs": {"1": {"shape": [1, 10]}, "3": {"error": "RuntimeError", "message": "view"}}},
     "batch size 3"),
    ("B1.eval_deterministic", {"eval_max_difference": 0.5}, "differ (by up to 0.5)"),
    ("B2.parameter_count", {"trainable_params": 1000}, "1,000 trainable parameters"),
])
def test_a_wrong_network_fails_with_what_differs(rubric, recorded, check_id, change, words) -> None:
    result = verdict(rubric, check_id, edited(recorded[check_id], **change))
    assert (result.status, result.fraction) == ("fail", 0.0)
    assert words in result.message


def test_layer_order_fails_when_batch_norm_follows_the_activation(rubric, recorded) -> None:
    trace = [dict(event) for event in recorded["B1.layer_order"].data["trace"]]
    bn = next(i for i, e in enumerate(trace) if e["type"] == "BatchNorm2d")
    trace[bn], trace[bn + 1] = trace[bn + 1], trace[bn]
    result = verdict(rubric, "B1.layer_order", edited(recorded["B1.layer_order"], trace=trace))
    assert result.status == "fail" and "batch normalization goes right before the activation" in result.message


def test_parameter_count_fail_gives_expected_and_observed_apart(rubric, recorded) -> None:
    result = verdict(rubric, "B2.parameter_count", edited(recorded["B2.parameter_count"], trainable_params=1000))
    assert (result.expected, result.observed) == (421834, 1000)
    assert "Hint" not in result.message  # the rubric's hint is the scorer's to add, apart from the message


def test_a_network_the_grader_cannot_see_into_is_not_judged(rubric, recorded) -> None:
    record = edited(recorded["B1.layer_order"], trace=[], output={"type": "builtins.str"})
    result = verdict(rubric, "B1.layer_order", record)
    assert result.status == "fail" and "cannot be judged yet" in result.message


def test_without_a_model_table_the_rubric_is_at_fault(rubric, recorded) -> None:
    no_model = dataclasses.replace(rubric, model=None)
    result = judge(rubric.check("B1.output_shape"), recorded["B1.output_shape"], context(no_model))
    assert result.status == "error" and "[model] table" in result.message


# ------------------------------------------------------------------------ C1: loaders


def test_a_correct_loader_passes(rubric, recorded) -> None:
    result = verdict(rubric, "C1.train_loader", recorded["C1.train_loader"])
    assert result.status == "pass" and "(64, 1, 28, 28)" in result.message


def test_a_loader_with_the_wrong_dtypes_fails(rubric, recorded) -> None:
    x, y = recorded["C1.train_loader"].data["items"]
    record = edited(recorded["C1.train_loader"], items=[{**x, "dtype": "torch.float64"}, {**y, "dtype": "torch.int32"}])
    result = verdict(rubric, "C1.train_loader", record)
    assert result.status == "fail"
    assert "expected torch.float32" in result.message and "expected torch.int64" in result.message


def test_a_loader_that_is_not_defined_fails_naming_the_failed_cell(rubric) -> None:
    record = ProbeRecord(inputs=None, status="ok", data={"defined": False})
    result = verdict(rubric, "C1.train_loader", record, "ok", "error")
    assert result.status == "fail"
    assert "`train_loader` is not defined" in result.message and "cell(s) 2 raised an error" in result.message


def test_a_list_is_not_a_loader(rubric) -> None:
    record = ProbeRecord(inputs=None, status="ok",
                         data={"defined": True, "is_dataloader": False, "type": "builtins.list"})
    result = verdict(rubric, "C1.train_loader", record)
    assert result.status == "fail" and "is a builtins.list, not a torch.utils.data.DataLoader" in result.message


# ------------------------------------------------------------------------ D1 / D2: train() and test()


def as_student(rubric, check_id: str, recorded: dict[str, ProbeRecord], **changes: Any) -> ProbeRecord:
    """The record of a student function that did exactly what the reference does (then `changes`)."""
    kind = CHECK_KINDS[rubric.check(check_id).kind]
    record = recorded[check_id]
    outcome = kind.reference_outcome(record, rubric)
    return dataclasses.replace(record, data={"defined": True, "callable": True, **outcome, **changes})


@pytest.mark.parametrize("check_id", ["D1.weights", "D1.mean_loss", "D2.loss_accuracy", "D2.no_side_effects"])
def test_functions_that_do_what_the_reference_does_pass(rubric, recorded, check_id) -> None:
    result = verdict(rubric, check_id, as_student(rubric, check_id, recorded))
    assert (result.status, result.fraction) == ("pass", 1.0), result.message


def test_train_returning_the_sum_of_batch_losses_fails_saying_so(rubric, recorded) -> None:
    record = as_student(rubric, "D1.mean_loss", recorded)
    loss = record.data["returned"]["value"]
    record = edited(record, returned={"type": "builtins.float", "value": loss * 4})
    result = verdict(rubric, "D1.mean_loss", record)
    assert result.status == "fail" and "That is the sum over the 4 batches" in result.message
    assert result.expected == pytest.approx(loss) and result.observed == pytest.approx(loss * 4)


def test_train_that_never_steps_fails_saying_so(rubric, recorded) -> None:
    from grader.checks.train_test import _payload
    from grader.observe.kernel_probe import build_network, fingerprint

    settings = recorded["D1.weights"].inputs["settings"]
    initial = fingerprint(build_network(_payload("train_function", settings, rubric, "train")))
    record = as_student(rubric, "D1.weights", recorded, fingerprint=initial)
    result = verdict(rubric, "D1.weights", record)
    assert result.status == "fail" and "call optimizer.step()" in result.message


def test_test_returning_a_percentage_fails_saying_so(rubric, recorded) -> None:
    record = as_student(rubric, "D2.loss_accuracy", recorded)
    loss, accuracy = (item["value"] for item in record.data["returned"]["items"])
    record = edited(record, returned={"type": "builtins.tuple", "items": [
        {"type": "builtins.float", "value": loss}, {"type": "builtins.float", "value": accuracy * 100}]})
    result = verdict(rubric, "D2.loss_accuracy", record)
    assert result.status == "fail" and "not a percentage" in result.message


def test_test_in_training_mode_fails(rubric, recorded) -> None:
    record = as_student(rubric, "D2.no_side_effects", recorded,
                        forward_calls=[{"training": True, "grad_enabled": False}])
    result = verdict(rubric, "D2.no_side_effects", record)
    assert result.status == "fail" and "call model.eval() first" in result.message


@pytest.mark.parametrize(("check_id", "signature"), [("D1.weights", "train(model, loader, loss_fn, optimizer)"),
                                                     ("D2.loss_accuracy", "test(model, loader, loss_fn)")])
def test_a_function_that_is_not_defined_fails_with_its_signature(rubric, recorded, check_id, signature) -> None:
    record = dataclasses.replace(recorded[check_id], data={"defined": False})
    result = verdict(rubric, check_id, record)
    assert result.status == "fail" and signature in result.message


def test_a_function_that_raises_fails_with_the_error(rubric, recorded) -> None:
    record = dataclasses.replace(recorded["D1.weights"], data={
        "defined": True, "callable": True, "error": {"error": "RuntimeError", "message": "shape mismatch"}})
    result = verdict(rubric, "D1.weights", record)
    assert result.status == "fail" and "raised RuntimeError: shape mismatch" in result.message


# ------------------------------------------------------------------------ D3 / E1: accuracy on the hidden split


def training_record(recorded, predictions: list[int]) -> ProbeRecord:
    epochs = [{"train_loss": 0.5, "batches": 19, "predictions": predictions}]
    return edited(recorded["D3.brief_training"], epochs=epochs)


def test_brief_training_that_reaches_the_threshold_passes_with_its_curve(rubric, recorded, hidden_labels) -> None:
    result = verdict(rubric, "D3.brief_training", training_record(recorded, hidden_labels))
    assert result.status == "pass" and "Accuracy on the hidden split: 1.0000" in result.message
    assert result.details["curve"] == {"epoch": [1], "train_loss": [0.5], "accuracy": [1.0]}


def test_brief_training_below_the_threshold_fails(rubric, recorded, hidden_labels) -> None:
    wrong = [(label + 1) % 10 for label in hidden_labels]
    result = verdict(rubric, "D3.brief_training", training_record(recorded, wrong))
    assert (result.status, result.fraction) == ("fail", 0.0) and result.details["accuracy"] == 0.0


def test_brief_training_that_raises_fails(rubric, recorded) -> None:
    record = edited(recorded["D3.brief_training"], error={"error": "RuntimeError", "message": "mat1 and mat2"})
    result = verdict(rubric, "D3.brief_training", record)
    assert result.status == "fail" and "raised RuntimeError: mat1 and mat2" in result.message


@pytest.mark.parametrize("check_id", ["E1.loads", "E1.accuracy"])
def test_a_saved_model_that_loads_and_predicts_passes(rubric, recorded, hidden_labels, check_id) -> None:
    result = verdict(rubric, check_id, edited(recorded[check_id], predictions=hidden_labels))
    assert (result.status, result.fraction) == ("pass", 1.0), result.message


def test_a_saved_model_with_poor_accuracy_fails(rubric, recorded, hidden_labels) -> None:
    wrong = [(label + 1) % 10 for label in hidden_labels]
    result = verdict(rubric, "E1.accuracy", edited(recorded["E1.accuracy"], predictions=wrong))
    assert result.status == "fail" and result.details["accuracy"] == 0.0


@pytest.mark.parametrize(("change", "words"), [
    ({"exists": False, "files": ["submission.ipynb"]}, "`cnn.pt` was not found in the notebook's folder"),
    ({"load_error": {"error": "UnpicklingError", "message": "weights only"}}, "Save the state dict"),
    ({"state_type": "__main__.CNN"}, "holds a __main__.CNN, not a state dict"),
    ({"found": False, "module_classes": []}, "class `CNN` is not defined"),
    ({"strict_error": {"error": "RuntimeError", "message": "Missing key(s)"}}, "strict=True raised RuntimeError"),
])
def test_a_saved_model_that_cannot_be_used_fails_saying_why(rubric, recorded, change, words) -> None:
    result = verdict(rubric, "E1.loads", edited(recorded["E1.loads"], **change))
    assert result.status == "fail" and words in result.message
