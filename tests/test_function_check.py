"""FunctionCheck.evaluate and VariableShapesCheck.evaluate on hand-written probe records.

The replies follow grader/observe/kernel_probe.py: observe_calls returns
{"defined", "callable", "signature", "results": [{"ok", "output" | "error"/"message", "torch_calls"}]},
observe_variable returns {"defined", "value"}; values are encoded as {"type", "value" | "items" |
"entries" | "shape"}.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import pytest

from grader.checks.base import ScoreContext
from grader.checks.functions import FunctionCheck
from grader.checks.shapes import VariableShapesCheck
from grader.execute.base import CellRun, ExecutionSummary
from grader.observe.execution import ExecutionReport
from grader.observe.observations import ProbeRecord
from grader.rubric.load import load_rubric

ROOT = Path(__file__).resolve().parent.parent
SLIDE_CASE = {"image": [[0, 1, 2], [3, 4, 5], [6, 7, 8]], "kernel": [[0, 1], [2, 3]]}
SLIDE_ANSWER = [[19.0, 25.0], [37.0, 43.0]]
SIGNATURE = "conv2d_single(image, kernel, padding=0, stride=1)"

FUNCTIONS = FunctionCheck()
SHAPES = VariableShapesCheck()


@pytest.fixture(scope="module")
def rubric():
    return load_rubric(ROOT / "rubrics" / "ex06.toml")


def summary(*statuses: str) -> ExecutionReport:
    return ExecutionReport.from_summary(ExecutionSummary(seconds=1.0, cells=tuple(
        CellRun(index=i, status=s, error="NameError" if s == "error" else None) for i, s in enumerate(statuses))))


def context(rubric, *statuses: str, definitions: dict[str, int] | None = None) -> ScoreContext:
    return ScoreContext(rubric=rubric, execution=summary(*(statuses or ("ok", "ok", "ok"))),
                        definitions=definitions or {})


def tensor(value, kind: str = "torch.Tensor") -> dict:
    def shape_of(v):
        return [len(v), *shape_of(v[0])] if isinstance(v, list) else []
    return {"type": kind, "shape": shape_of(value), "dtype": "float32", "value": value}


def number(value) -> dict:
    return {"type": f"builtins.{type(value).__name__}", "value": value}


def called(inputs: list[dict], *outputs: dict, torch_calls: tuple[str, ...] = ()) -> ProbeRecord:
    results = [{"ok": True, "output": out, "seconds": 0.001, "torch_calls": list(torch_calls)} for out in outputs]
    return ProbeRecord(inputs=inputs, status="ok",
                       data={"defined": True, "callable": True, "signature": SIGNATURE, "results": results})


def slide(output: dict, torch_calls: tuple[str, ...] = ()) -> ProbeRecord:
    return called([dict(SLIDE_CASE)], output, torch_calls=torch_calls)


# ------------------------------------------------------------------------ values


def test_correct_tensor_output_passes(rubric):
    verdict = FUNCTIONS.evaluate(rubric.check("A2.slide_example"), slide(tensor(SLIDE_ANSWER)), context(rubric))
    assert verdict.status == "pass"
    assert verdict.fraction == 1.0


def test_numpy_output_passes(rubric):
    output = tensor(SLIDE_ANSWER, kind="numpy.ndarray")
    verdict = FUNCTIONS.evaluate(rubric.check("A2.slide_example"), slide(output), context(rubric))
    assert verdict.status == "pass"


def test_integer_nested_list_output_passes(rubric):
    output = {"type": "builtins.list", "items": [
        {"type": "builtins.list", "items": [number(19), number(25)]},
        {"type": "builtins.list", "items": [number(37), number(43)]}]}
    verdict = FUNCTIONS.evaluate(rubric.check("A2.slide_example"), slide(output), context(rubric))
    assert verdict.status == "pass"


def test_ragged_nested_list_output_is_not_numeric(rubric):
    output = {"type": "builtins.list", "items": [
        {"type": "builtins.list", "items": [number(19), number(25)]},
        {"type": "builtins.list", "items": [number(37)]}]}
    verdict = FUNCTIONS.evaluate(rubric.check("A2.slide_example"), slide(output), context(rubric))
    assert verdict.status == "fail"
    assert "returned builtins.list, which is not a number or an array of numbers" in verdict.message
    assert verdict.observed == "a builtins.list"


def test_nan_and_infinite_values_fail_and_are_shown(rubric):
    verdict = FUNCTIONS.evaluate(rubric.check("A2.slide_example"),
                                 slide(tensor([[19.0, float("nan")], [37.0, float("inf")]])), context(rubric))
    assert verdict.status == "fail"
    assert "expected" in verdict.message and "nan" in verdict.message and "inf" in verdict.message


def test_pass_message_names_the_defining_cell_counted_from_one(rubric):
    verdict = FUNCTIONS.evaluate(rubric.check("A2.slide_example"), slide(tensor(SLIDE_ANSWER)),
                                 context(rubric, definitions={"conv2d_single": 2}))
    assert "cell 3" in verdict.message


def test_wrong_values_in_a_small_result_show_expected_and_observed(rubric):
    wrong = [[19.0, 25.0], [37.0, 44.0]]
    verdict = FUNCTIONS.evaluate(rubric.check("A2.slide_example"), slide(tensor(wrong)), context(rubric))
    assert verdict.status == "fail"
    assert verdict.fraction == 0.0
    assert "expected [[19, 25], [37, 43]], got [[19, 25], [37, 44]]" in verdict.message
    assert "conv2d_single(image=[[0, 1, 2], [3, 4, 5], [6, 7, 8]], kernel=[[0, 1], [2, 3]])" in verdict.message


def test_wrong_values_in_a_large_result_name_the_first_differing_index(rubric):
    # 6x6 ones * 2x2 ones = 5x5 fours; two entries are wrong, [2, 3] comes first in row-major order.
    case = {"image": [[1.0] * 6 for _ in range(6)], "kernel": [[1.0, 1.0], [1.0, 1.0]]}
    observed = [[4.0] * 5 for _ in range(5)]
    observed[2][3] = 5.0
    observed[4][0] = 0.0
    verdict = FUNCTIONS.evaluate(rubric.check("A2.random_inputs"), called([case], tensor(observed)),
                                 context(rubric))
    assert verdict.status == "fail"
    assert "2 of 25 values differ; the first at index [2, 3]: expected 4, got 5" in verdict.message
    assert "image of shape (6, 6)" in verdict.message


def test_values_within_tolerance_pass(rubric):
    nearly = [[19.00001, 25.0], [37.0, 42.99999]]
    verdict = FUNCTIONS.evaluate(rubric.check("A2.slide_example"), slide(tensor(nearly)), context(rubric))
    assert verdict.status == "pass"


def test_wrong_shape_fails_naming_both_shapes(rubric):
    verdict = FUNCTIONS.evaluate(rubric.check("A2.slide_example"),
                                 slide(tensor([[19.0, 25.0, 0.0], [37.0, 43.0, 0.0], [0.0, 0.0, 0.0]])),
                                 context(rubric))
    assert verdict.status == "fail"
    assert "expected a result of shape (2, 2), got shape (3, 3)" in verdict.message


def test_none_result_is_not_numeric(rubric):
    verdict = FUNCTIONS.evaluate(rubric.check("A2.slide_example"), slide({"type": "builtins.NoneType", "value": None}),
                                 context(rubric))
    assert verdict.status == "fail"
    assert "builtins.NoneType, which is not a number" in verdict.message


def test_student_exception_fails_with_the_error_name(rubric):
    record = ProbeRecord(inputs=[dict(SLIDE_CASE)], status="ok", data={
        "defined": True, "callable": True, "signature": SIGNATURE,
        "results": [{"ok": False, "error": "IndexError", "message": "index 3 is out of bounds for dimension 0",
                     "traceback": "...", "torch_calls": []}]})
    verdict = FUNCTIONS.evaluate(rubric.check("A2.slide_example"), record, context(rubric))
    assert verdict.status == "fail"
    assert "raised IndexError: index 3 is out of bounds for dimension 0" in verdict.message


# ------------------------------------------------------------------------ the function itself


def test_function_not_defined_gives_the_signature(rubric):
    record = ProbeRecord(inputs=[dict(SLIDE_CASE)], status="ok", data={"defined": False})
    verdict = FUNCTIONS.evaluate(rubric.check("A2.slide_example"), record, context(rubric, "ok", "ok"))
    assert verdict.status == "fail"
    assert "`conv2d_single` is not defined" in verdict.message
    assert SIGNATURE in verdict.message
    assert "raised an error" not in verdict.message


def test_function_not_defined_mentions_the_failed_cell_counted_from_one(rubric):
    record = ProbeRecord(inputs=[dict(SLIDE_CASE)], status="ok", data={"defined": False})
    verdict = FUNCTIONS.evaluate(rubric.check("A2.slide_example"), record, context(rubric, "ok", "error", "ok"))
    assert "cell(s) 2 raised an error" in verdict.message


def test_function_not_defined_mentions_timed_out_and_not_run_cells(rubric):
    record = ProbeRecord(inputs=[dict(SLIDE_CASE)], status="ok", data={"defined": False})
    verdict = FUNCTIONS.evaluate(rubric.check("A2.slide_example"), record,
                                 context(rubric, "ok", "timeout", "not_run", "not_run"))
    assert "cell(s) 2 raised an error" in verdict.message
    assert "cell(s) 3, 4 did not run" in verdict.message


def test_name_that_is_not_callable_fails(rubric):
    record = ProbeRecord(inputs=[dict(SLIDE_CASE)], status="ok",
                         data={"defined": True, "callable": False, "value": number(3)})
    verdict = FUNCTIONS.evaluate(rubric.check("A2.slide_example"), record, context(rubric))
    assert verdict.status == "fail"
    assert "is a builtins.int, not a function" in verdict.message
    assert f"def {SIGNATURE}:" in verdict.message


# ------------------------------------------------------------------------ the probe itself


def test_probe_timeout_fails(rubric):
    record = ProbeRecord(inputs=[dict(SLIDE_CASE)], status="timeout", data=None, message="30 s")
    verdict = FUNCTIONS.evaluate(rubric.check("A2.slide_example"), record, context(rubric))
    assert verdict.status == "fail"
    assert "did not finish within the probe time limit (30 s)" in verdict.message


def test_kernel_died_during_the_probe_fails(rubric):
    record = ProbeRecord(inputs=[dict(SLIDE_CASE)], status="kernel_died", data=None, message="exit code -9")
    verdict = FUNCTIONS.evaluate(rubric.check("A2.slide_example"), record, context(rubric))
    assert verdict.status == "fail"
    assert "exit code -9" in verdict.message


def test_probe_error_is_an_error_not_a_failure(rubric):
    record = ProbeRecord(inputs=[dict(SLIDE_CASE)], status="probe_error", data=None, message="no reply")
    verdict = FUNCTIONS.evaluate(rubric.check("A2.slide_example"), record, context(rubric))
    assert verdict.status == "error"
    assert verdict.fraction == 0.0
    assert "no reply" in verdict.message


def test_missing_record_is_an_error(rubric):
    verdict = FUNCTIONS.evaluate(rubric.check("A2.slide_example"), None, context(rubric))
    assert verdict.status == "error"
    assert "grade the notebook again" in verdict.message


# ------------------------------------------------------------------------ forbidden calls


def test_forbidden_torch_conv2d_call_fails_even_with_right_values(rubric):
    verdict = FUNCTIONS.evaluate(rubric.check("A2.slide_example"),
                                 slide(tensor(SLIDE_ANSWER), torch_calls=("torch._VariableFunctionsClass.conv2d",
                                                                          "torch.Tensor.sum")),
                                 context(rubric))
    assert verdict.status == "fail"
    assert verdict.fraction == 0.0
    assert "calls torch.conv2d" in verdict.message
    assert verdict.details["forbidden_calls"] == ["torch.conv2d"]


def test_functional_unfold_is_forbidden(rubric):
    verdict = FUNCTIONS.evaluate(rubric.check("A2.slide_example"),
                                 slide(tensor(SLIDE_ANSWER), torch_calls=("torch.nn.functional.unfold",)),
                                 context(rubric))
    assert verdict.status == "fail"


def test_tensor_unfold_method_is_allowed(rubric):
    verdict = FUNCTIONS.evaluate(rubric.check("A2.slide_example"),
                                 slide(tensor(SLIDE_ANSWER), torch_calls=("Tensor.TensorBase.unfold",
                                                                          "Tensor.TensorBase.sum")),
                                 context(rubric))
    assert verdict.status == "pass"


def test_aten_convolution_from_the_dispatch_log_is_forbidden(rubric):
    """torch.convolution / torch.ops.aten.* / calls inside DisableTorchFunction reach the log only
    as aten operators (grader/observe/kernel_probe.py: torch_op_logger)."""
    verdict = FUNCTIONS.evaluate(rubric.check("A2.slide_example"),
                                 slide(tensor(SLIDE_ANSWER), torch_calls=("aten.convolution", "aten.select")),
                                 context(rubric))
    assert verdict.status == "fail"
    assert verdict.details["forbidden_calls"] == ["aten.convolution"]


def test_aten_ops_of_a_correct_loop_are_allowed(rubric):
    verdict = FUNCTIONS.evaluate(rubric.check("A2.slide_example"),
                                 slide(tensor(SLIDE_ANSWER), torch_calls=("aten.mul", "aten.sum", "aten.slice",
                                                                          "aten.unfold")),
                                 context(rubric))
    assert verdict.status == "pass"


def test_switching_off_the_call_logs_fails_even_with_right_values(rubric):
    record = slide(tensor(SLIDE_ANSWER))
    record = replace(record, data={**record.data, "escape_hatches": ["DisableTorchFunction"]})
    verdict = FUNCTIONS.evaluate(rubric.check("A2.slide_example"), record, context(rubric))
    assert verdict.status == "fail"
    assert "DisableTorchFunction" in verdict.message
    assert verdict.details["escape_hatches"] == ["DisableTorchFunction"]


def test_escape_hatches_matter_only_where_functions_are_forbidden(rubric):
    check = rubric.check("A2.slide_example")
    check = replace(check, options=MappingProxyType({**check.options, "forbidden": ()}))
    record = slide(tensor(SLIDE_ANSWER))
    record = replace(record, data={**record.data, "escape_hatches": ["DisableTorchFunction"]})
    assert FUNCTIONS.evaluate(check, record, context(rubric)).status == "pass"


# ------------------------------------------------------------------------ A1 and partial credit

A1_INPUTS = [{"h_in": 3, "kernel_size": 2}, {"h_in": 28, "kernel_size": 3, "padding": 1},
             {"h_in": 28, "kernel_size": 2, "padding": 0, "stride": 2}]


def test_a1_float_14_for_expected_14_passes(rubric):
    record = called(A1_INPUTS, number(2), number(28), number(14.0))
    assert FUNCTIONS.evaluate(rubric.check("A1.lecture_examples"), record, context(rubric)).status == "pass"


def test_a1_14_point_5_fails(rubric):
    record = called(A1_INPUTS, number(2), number(28), number(14.5))
    verdict = FUNCTIONS.evaluate(rubric.check("A1.lecture_examples"), record, context(rubric))
    assert verdict.status == "fail"
    assert "conv_output_size(h_in=28, kernel_size=2, padding=0, stride=2): expected 14, got 14.5" in verdict.message
    assert "1 of 3 case(s) differ" in verdict.message


def test_a1_string_result_is_not_a_number(rubric):
    # `return "14"` is not an int; np.asarray("14", dtype=float) must not turn it into one.
    record = called(A1_INPUTS, number(2), number(28), {"type": "builtins.str", "value": "14"})
    verdict = FUNCTIONS.evaluate(rubric.check("A1.lecture_examples"), record, context(rubric))
    assert verdict.status == "fail"
    assert "builtins.str" in verdict.message


def test_partial_credit_gives_the_fraction_of_passing_cases(rubric):
    base = rubric.check("A1.lecture_examples")
    generous = replace(base, options=MappingProxyType({**base.options, "partial_credit": True}))
    record = called(A1_INPUTS, number(2), number(28), number(15))
    verdict = FUNCTIONS.evaluate(generous, record, context(rubric))
    assert verdict.status == "fail"
    assert verdict.fraction == pytest.approx(2 / 3)
    assert (verdict.expected, verdict.observed) == ("14", "15")
    assert verdict.details == {"cases": 3, "failed_cases": 1,
                               "case": "conv_output_size(h_in=28, kernel_size=2, padding=0, stride=2)"}


def test_without_partial_credit_one_failing_case_gives_nothing(rubric):
    record = called(A1_INPUTS, number(2), number(28), number(15))
    verdict = FUNCTIONS.evaluate(rubric.check("A1.lecture_examples"), record, context(rubric))
    assert verdict.fraction == 0.0


# ------------------------------------------------------------------------ A5 feature_shapes


def shape(*sizes: int, kind: str = "builtins.tuple") -> dict:
    return {"type": kind, "items": [number(size) for size in sizes]}


def shapes_record(**entries: dict) -> ProbeRecord:
    return ProbeRecord(inputs=None, status="ok",
                       data={"defined": True, "value": {"type": "builtins.dict", "entries": entries}})


def test_a5_correct_dict_passes(rubric):
    record = shapes_record(block1=shape(32, 14, 14), block2=shape(64, 7, 7), flatten=number(3136))
    verdict = SHAPES.evaluate(rubric.check("A5.feature_shapes"), record, context(rubric))
    assert verdict.status == "pass"
    assert verdict.fraction == 1.0


@pytest.mark.parametrize("kind", ["builtins.tuple", "builtins.list", "torch.Size"])
def test_a5_accepts_tuples_lists_and_torch_size(rubric, kind):
    record = shapes_record(block1=shape(32, 14, 14, kind=kind), block2=shape(64, 7, 7, kind=kind),
                           flatten=number(3136))
    assert SHAPES.evaluate(rubric.check("A5.feature_shapes"), record, context(rubric)).status == "pass"


@pytest.mark.parametrize("flatten", [number(3136), shape(3136, kind="builtins.list"), shape(3136),
                                     shape(3136, kind="torch.Size"), number(3136.0)])
def test_a5_accepts_flatten_as_int_or_one_element_sequence(rubric, flatten):
    record = shapes_record(block1=shape(32, 14, 14), block2=shape(64, 7, 7), flatten=flatten)
    assert SHAPES.evaluate(rubric.check("A5.feature_shapes"), record, context(rubric)).status == "pass"


def test_a5_one_wrong_key_gives_two_thirds(rubric):
    record = shapes_record(block1=shape(32, 28, 28), block2=shape(64, 7, 7), flatten=number(3136))
    verdict = SHAPES.evaluate(rubric.check("A5.feature_shapes"), record, context(rubric))
    assert verdict.status == "fail"
    assert verdict.fraction == pytest.approx(2 / 3)
    assert "`feature_shapes`['block1']: expected (32, 14, 14), got (32, 28, 28)" in verdict.message


def test_a5_missing_key_counts_as_wrong(rubric):
    record = shapes_record(block1=shape(32, 14, 14), block2=shape(64, 7, 7))
    verdict = SHAPES.evaluate(rubric.check("A5.feature_shapes"), record, context(rubric))
    assert verdict.fraction == pytest.approx(2 / 3)
    assert "has no key 'flatten'; expected 3136" in verdict.message


def test_a5_not_a_dict_fails(rubric):
    record = ProbeRecord(inputs=None, status="ok",
                         data={"defined": True, "value": shape(32, 14, 14, kind="builtins.list")})
    verdict = SHAPES.evaluate(rubric.check("A5.feature_shapes"), record, context(rubric))
    assert verdict.status == "fail"
    assert verdict.fraction == 0.0
    assert "should be a dict like" in verdict.message
    assert "builtins.list" in verdict.message


def test_a5_not_defined_fails(rubric):
    record = ProbeRecord(inputs=None, status="ok", data={"defined": False})
    verdict = SHAPES.evaluate(rubric.check("A5.feature_shapes"), record, context(rubric))
    assert verdict.status == "fail"
    assert "`feature_shapes` is not defined" in verdict.message
