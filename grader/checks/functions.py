"""Check kind `function`: call a student function on fixed or freshly drawn inputs and compare
each result with the PyTorch oracle, computed here in the grader's process."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.checks import feedback
from grader.checks.base import ScoreContext, Verdict
from grader.checks.numeric import isclose
from grader.checks.oracles import OMIT, ORACLES, Oracle
from grader.observe.observations import ProbeRecord
from grader.observe.probe import ProbeRequest
from grader.rubric.fields import (
    Option,
    TableReader,
    anything,
    as_bool,
    as_int,
    as_number,
    as_str,
    as_table,
    int_range,
    list_of,
    non_negative,
    one_of,
    positive,
)
from grader.rubric.model import CheckSpec, Rubric

TENSOR_KINDS = {"matrix": 2, "tensor3": 3, "tensor4": 4, "vector": 1}

NO_CASES = "give exactly one of `cases` (a list of input tables) or `random_cases` (a count)"
MISSING_RANGES = "`random_cases` needs a `ranges` table with {names}"
BAD_CASE = "each case is a table of {params}; required: {required}"

CASE_FAILED = "{call}: expected {expected}, got {observed}."
CASE_VALUES = ("{call}: {wrong} of {total} values differ; the first at index {index}: expected "
               "{expected}, got {observed}.")
CASE_RAISED = "{call} raised {error}: {message}"
CASE_SHAPE = "{call}: expected a result of shape {expected}, got shape {observed}."
CASE_NOT_NUMERIC = "{call}: returned {type}, which is not a number or an array of numbers."
FORBIDDEN_USED = ("`{name}` calls {calls}, which the exercise asks you not to use: compute it "
                  "yourself by sliding the window over the input.")
ESCAPE_USED = ("`{name}` switches off the grader's view of library calls ({hatches}), so the grader cannot "
               "tell which torch functions it uses; compute the result with ordinary tensor operations.")
SUMMARY_PASS = "All {total} case(s) match PyTorch{where}."
SUMMARY_FAIL = "{failed} of {total} case(s) differ from PyTorch{where}. First failing case: {first}"


class FunctionCheck:
    options: Mapping[str, Option] = {
        "function": Option("the name of the student's function", as_str),
        "oracle": Option(f"one of {', '.join(ORACLES)}", one_of(ORACLES)),
        "cases": Option("a list of input tables", list_of(as_table, 1), None),
        "random_cases": Option("a positive integer", positive(as_int), None),
        "ranges": Option("a table of name = [low, high]", as_table, {}),
        "atol": Option("a number >= 0", non_negative(as_number), 1e-4),
        "rtol": Option("a number >= 0", non_negative(as_number), 1e-4),
        "forbidden": Option("a list of torch function names", list_of(as_str), ()),
        "partial_credit": Option("a boolean", as_bool, False),
        "trace": Option("a boolean", as_bool, True),
        "expected": Option("an example answer (documentation only)", anything, None),
    }

    def validate(self, options: Mapping[str, Any], reader: TableReader) -> None:
        oracle = ORACLES[options["oracle"]]
        if (options["cases"] is None) == (options["random_cases"] is None):
            raise reader.error("cases", NO_CASES)
        if options["random_cases"] is not None:
            _validate_ranges(oracle, options["ranges"], reader)
        for index, case in enumerate(options["cases"] or ()):
            _validate_case(oracle, index, case, reader)

    def plan(self, check: CheckSpec, rng: np.random.Generator,
             rubric: Rubric) -> tuple[ProbeRequest, list[dict[str, Any]]]:
        options = check.options
        oracle = ORACLES[options["oracle"]]
        if options["cases"] is not None:
            cases = [dict(case) for case in options["cases"]]
        else:
            ranges = {name: int_range(value) for name, value in options["ranges"].items()}
            cases = [oracle.sample(rng, ranges) for _ in range(options["random_cases"])]
        payload = {"op": "call", "function": options["function"], "trace": options["trace"],
                   "cases": [{"args": _encode_args(oracle, case)} for case in cases]}
        return ProbeRequest(check.id, payload, rubric.execution.probe_timeout_s), cases

    def evaluate(self, check: CheckSpec, record: ProbeRecord | None,
                 context: ScoreContext) -> Verdict:
        options = check.options
        name = options["function"]
        oracle = ORACLES[options["oracle"]]
        signature = oracle.signature().replace(oracle.name, name, 1)
        verdict, data = feedback.observed_data(record, f"`{name}`")
        if verdict is not None:
            return verdict
        assert record is not None
        if not data.get("defined"):
            return feedback.not_defined(name, signature, context)
        if not data.get("callable"):
            return Verdict.failed(feedback.NOT_CALLABLE.format(
                name=name, type=data.get("value", {}).get("type", "?"), signature=signature))
        where = feedback.where(name, context)
        hatches = list(data.get("escape_hatches") or ()) if options["forbidden"] else []
        if hatches:
            return Verdict.failed(ESCAPE_USED.format(name=name, hatches=", ".join(hatches)) + where,
                                  escape_hatches=hatches)
        forbidden = _forbidden_calls(data["results"], options["forbidden"])
        if forbidden:
            return Verdict.failed(FORBIDDEN_USED.format(name=name, calls=", ".join(forbidden)) + where,
                                  forbidden_calls=forbidden)
        problems = [_judge_case(oracle, name, case, result, options)
                    for case, result in zip(record.inputs, data["results"], strict=True)]
        failures = [p for p in problems if p is not None]
        total = len(problems)
        if not failures:
            return Verdict.passed(SUMMARY_PASS.format(total=total, where=where), cases=total)
        first = failures[0]
        message = SUMMARY_FAIL.format(failed=len(failures), total=total, where=where, first=first.text)
        fraction = (total - len(failures)) / total if options["partial_credit"] else 0.0
        return Verdict.failed(message, fraction=fraction,
                              cases=total, failed_cases=len(failures), case=first.call,
                              expected=first.expected, observed=first.observed)


def _validate_ranges(oracle: Oracle, ranges: Mapping[str, Any], reader: TableReader) -> None:
    names = set(oracle.range_names)
    if set(ranges) != names:
        raise reader.error("ranges", MISSING_RANGES.format(names=", ".join(sorted(names))))
    for name, value in ranges.items():
        minimum = oracle.range_minimums[name]
        allowed = f"[low, high] with {minimum} <= low <= high"
        if name == "bias":
            allowed = "[0, 0] (no bias), [1, 1] (always a bias) or [0, 1] (either)"
        try:
            low, high = int_range(value)
        except (ValueError, TypeError):
            raise reader.error_value(f"ranges.{name}", value, allowed) from None
        if low < minimum or (name == "bias" and high > 1):
            raise reader.error_value(f"ranges.{name}", value, allowed)


def _validate_case(oracle: Oracle, index: int, case: Mapping[str, Any], reader: TableReader) -> None:
    params = {p.name: p for p in oracle.params}
    required = {p.name for p in oracle.params if not p.optional}
    if not required <= set(case) <= set(params):
        raise reader.error_value(f"cases[{index}]", case, BAD_CASE.format(
            params=", ".join(params), required=", ".join(sorted(required))))
    for name, value in case.items():
        kind = params[name].kind
        if kind == "int":
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            allowed = "a non-negative integer"
        else:
            ok = _is_numeric_array(value, TENSOR_KINDS[kind])
            allowed = f"a {TENSOR_KINDS[kind]}-dimensional nested list of numbers"
        if not ok:
            raise reader.error_value(f"cases[{index}].{name}", value, allowed)


def _is_numeric_array(value: Any, dims: int) -> bool:
    try:
        array = np.asarray(value)
    except ValueError:  # ragged
        return False
    return array.ndim == dims and array.size > 0 and array.dtype.kind in "iuf"


def _encode_args(oracle: Oracle, case: Mapping[str, Any]) -> list[Any]:
    kinds = {p.name: p.kind for p in oracle.params}
    names = [p.name for p in oracle.params]
    encoded = []
    for name, value in zip(names, oracle.positional_args(case), strict=False):
        if kinds[name] in TENSOR_KINDS and value is not None:
            value = {"__tensor__": value, "dtype": "float32"}
        encoded.append(value)
    return encoded


def _describe_call(oracle: Oracle, name: str, case: Mapping[str, Any]) -> str:
    parts = []
    for param in oracle.params:
        value = case.get(param.name, OMIT)
        if value is OMIT:
            continue
        if param.kind in TENSOR_KINDS:
            array = np.asarray(value, dtype=float)
            text = feedback.format_value(array)
            parts.append(f"{param.name}={text}" if text.startswith("[")
                         else f"{param.name} of shape {tuple(array.shape)}")
        else:
            parts.append(f"{param.name}={value}")
    return f"{name}({', '.join(parts)})"


@dataclass(frozen=True)
class CaseProblem:
    """How one case differs: the sentence for the message, and its parts apart for reports."""

    text: str
    call: str
    expected: str
    observed: str


def _judge_case(oracle: Oracle, name: str, case: Mapping[str, Any], result: Mapping[str, Any],
                options: Mapping[str, Any]) -> CaseProblem | None:
    """None when the student's result matches the oracle, else how it differs."""
    expected = np.asarray(oracle.compute(dict(case)), dtype=float)
    word = _case_fault(oracle, expected, result, options)
    if word is None:
        return None
    # Worded only for a failing case: most cases pass, and wording costs more than judging.
    return word(_describe_call(oracle, name, case), feedback.format_value(expected))


def _case_fault(oracle: Oracle, expected: np.ndarray, result: Mapping[str, Any],
                options: Mapping[str, Any]) -> Callable[[str, str], CaseProblem] | None:
    """None when the result matches `expected`, else what words the fault given the call and the
    expected value as shown."""
    if not result["ok"]:
        error, message = result["error"], result["message"]
        return lambda call, shown: CaseProblem(CASE_RAISED.format(call=call, error=error, message=message),
                                               call, shown, f"raised {error}: {message}")
    value, kind = feedback.decode_output(result["output"])
    try:
        raw = np.asarray(value)
    except ValueError:  # a ragged nested list
        raw = None
    if value is None or raw is None or raw.dtype.kind not in "biuf":
        return lambda call, shown: CaseProblem(CASE_NOT_NUMERIC.format(call=call, type=kind), call, shown,
                                               f"a {kind}")
    observed = raw.astype(float)
    if oracle.returns == "int":
        observed = observed.reshape(-1)[:1].reshape(()) if observed.size == 1 else observed
    if observed.shape != expected.shape:
        want, got = tuple(expected.shape), tuple(observed.shape)
        return lambda call, shown: CaseProblem(CASE_SHAPE.format(call=call, expected=want, observed=got),
                                               call, f"shape {want}", f"shape {got}")
    close = isclose(observed, expected, options["atol"], options["rtol"])
    if close.all():
        return None
    if expected.ndim == 0 or feedback.is_small(expected):
        def word(call: str, shown: str) -> CaseProblem:
            observed_text = feedback.format_value(observed)
            return CaseProblem(CASE_FAILED.format(call=call, expected=shown, observed=observed_text),
                               call, shown, observed_text)
        return word

    def word_values(call: str, shown: str) -> CaseProblem:
        first = tuple(int(i) for i in np.argwhere(~close)[0])
        expected_text = feedback.format_value(expected[first])
        observed_text = feedback.format_value(observed[first])
        text = CASE_VALUES.format(call=call, wrong=int((~close).sum()), total=close.size, index=list(first),
                                  expected=expected_text, observed=observed_text)
        return CaseProblem(text, call, f"{expected_text} at index {list(first)}",
                           f"{observed_text} at index {list(first)}")
    return word_values


def _forbidden_calls(results: list[Mapping[str, Any]], forbidden: tuple[str, ...]) -> list[str]:
    called = {name for result in results for name in result.get("torch_calls", ())}
    hits = set()
    for name in called:
        short = name.rsplit(".", 1)[-1]
        for pattern in forbidden:
            if short == pattern or name == pattern or name.endswith("." + pattern):
                hits.add(name.replace("_VariableFunctionsClass.", "").replace("Tensor.TensorBase.", "Tensor."))
    return sorted(hits)
