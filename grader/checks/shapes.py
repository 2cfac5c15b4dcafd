"""Check kind `variable_shapes`: a dict the student wrote by hand (e.g. `feature_shapes`) against
the shapes measured on the reference network with forward hooks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from grader.checks import feedback
from grader.checks.base import ScoreContext, Verdict
from grader.observe.observations import ProbeRecord
from grader.observe.probe import ProbeRequest
from grader.reference_model import reference_stage_shapes
from grader.rubric.fields import Option, TableReader, as_bool, as_str, as_table
from grader.rubric.model import CheckSpec, Rubric

NOT_A_DICT = "`{name}` should be a dict like {example}, but it is a {type}."
WRONG_KEYS = "`{name}`[{key!r}]: expected {expected}, got {observed}."
MISSING_KEY = "`{name}` has no key {key!r}; expected {expected} there."
ALL_RIGHT = "All {count} shapes in `{name}` match the reference network{where}."
SOME_WRONG = "{wrong} of {count} entries of `{name}` are wrong{where}. {details}"
NEEDS_REFERENCE = "this check kind needs a [reference] table in the rubric"


class VariableShapesCheck:
    options: Mapping[str, Option] = {
        "variable": Option("the name of the student's variable", as_str),
        "stages": Option("a table of key = reference submodule name", as_table),
        "partial_credit": Option("a boolean", as_bool, True),
    }

    def validate(self, options: Mapping[str, Any], reader: TableReader) -> None:
        if not options["stages"] or not all(isinstance(v, str) for v in options["stages"].values()):
            raise reader.error("stages", "a non-empty table of key = submodule name (strings)")

    def plan(self, check: CheckSpec, rng: np.random.Generator,
             rubric: Rubric) -> tuple[ProbeRequest, None]:
        payload = {"op": "variable", "name": check.options["variable"]}
        return ProbeRequest(check.id, payload, rubric.execution.probe_timeout_s), None

    def evaluate(self, check: CheckSpec, record: ProbeRecord | None,
                 context: ScoreContext) -> Verdict:
        name = check.options["variable"]
        stages: Mapping[str, str] = check.options["stages"]
        if context.rubric.reference is None:
            return Verdict.errored(f"The rubric cannot grade `{name}`: {NEEDS_REFERENCE}.")
        measured = reference_stage_shapes(context.rubric.reference, tuple(stages.values()))
        expected = {key: _as_answer(measured[stage]) for key, stage in stages.items()}
        verdict, data = feedback.observed_data(record, f"`{name}`")
        if verdict is not None:
            return verdict
        if not data.get("defined"):
            return feedback.not_defined(name, f"{name} = {{...}}", context)
        value = data["value"]
        if "entries" not in value:
            example = "{" + ", ".join(f"{k!r}: {v}" for k, v in expected.items()) + "}"
            return Verdict.failed(NOT_A_DICT.format(name=name, example=example, type=value.get("type")))
        entries = value["entries"]
        wrong, observed_shapes = [], {}
        for key, answer in expected.items():
            if key not in entries:
                wrong.append(MISSING_KEY.format(name=name, key=key, expected=answer))
                continue
            observed = _normalise(feedback.decode_output(entries[key])[0])
            observed_shapes[key] = observed
            if observed != _normalise(answer):
                wrong.append(WRONG_KEYS.format(name=name, key=key, expected=answer, observed=observed))
        where = feedback.where(name, context)
        if not wrong:
            return Verdict.passed(ALL_RIGHT.format(count=len(expected), name=name, where=where))
        fraction = (len(expected) - len(wrong)) / len(expected) if check.options["partial_credit"] else 0.0
        message = SOME_WRONG.format(wrong=len(wrong), count=len(expected), name=name, where=where,
                                    details=" ".join(wrong))
        return Verdict.failed(message, fraction=fraction,
                              expected={k: v for k, v in expected.items()}, observed=observed_shapes)


def _as_answer(shape: tuple[int, ...]) -> Any:
    """How a person writes a shape: an int for a flat vector, else a tuple."""
    return shape[0] if len(shape) == 1 else shape


def _normalise(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        items = tuple(_normalise(v) for v in value)
        return items[0] if len(items) == 1 else items
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
