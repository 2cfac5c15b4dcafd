"""Part C: a DataLoader the notebook defines, observed by drawing one batch in the kernel."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from grader.checks.base import ScoreContext, Verdict
from grader.checks.feedback import cells_note, observed_data, where
from grader.observe.observations import ProbeRecord
from grader.observe.probe import ProbeRequest
from grader.rubric.fields import Option, TableReader, as_str
from grader.rubric.model import CheckSpec, Rubric

NOT_DEFINED = "`{name}` is not defined after your notebook ran. Create it with torch.utils.data.DataLoader."
NOT_A_LOADER = "`{name}` is a {type}, not a torch.utils.data.DataLoader."
RAISED = "Drawing a batch from `{name}` raised {error}: {message}"
NOT_A_PAIR = "A batch from `{name}` is a {type}; expected a pair (images, labels)."


class DataLoaderCheck:
    options: Mapping[str, Option] = {
        "variable": Option("the name of the student's DataLoader", as_str),
        "x_dtype": Option("a torch dtype name", as_str, "float32"),
        "y_dtype": Option("a torch dtype name", as_str, "int64"),
    }

    def validate(self, options: Mapping[str, Any], reader: TableReader) -> None:
        return None

    def plan(self, check: CheckSpec, rng: np.random.Generator, rubric: Rubric) -> tuple[ProbeRequest, None]:
        payload = {"op": "loader", "name": check.options["variable"]}
        return ProbeRequest(check.id, payload, rubric.execution.probe_timeout_s), None

    def evaluate(self, check: CheckSpec, record: ProbeRecord | None, context: ScoreContext) -> Verdict:
        name = check.options["variable"]
        verdict, data = observed_data(record, f"a batch from `{name}`")
        if verdict is not None:
            return verdict
        if not data["defined"]:
            return Verdict.failed(NOT_DEFINED.format(name=name) + cells_note(context))
        if not data["is_dataloader"]:
            return Verdict.failed(NOT_A_LOADER.format(name=name, type=data["type"]))
        if "error" in data:
            return Verdict.failed(RAISED.format(name=name, **{k: data["error"][k] for k in ("error", "message")}))
        items = data.get("items")
        if not items or len(items) != 2:
            return Verdict.failed(NOT_A_PAIR.format(name=name, type=data.get("batch_type")))
        problems = self._problems(check, items, context)
        place = where(name, context)
        if problems:
            return Verdict.failed(f"A batch from `{name}`{place}: " + "; ".join(problems) + ".", batch=items)
        x, y = items
        return Verdict.passed(f"`{name}` yields images {tuple(x['shape'])} ({x['dtype']}) and labels "
                              f"{tuple(y['shape'])} ({y['dtype']}).", batch=items)

    def _problems(self, check: CheckSpec, items: list[Mapping[str, Any]], context: ScoreContext) -> list[str]:
        x, y = items
        problems = []
        model = context.rubric.model
        want_x = f"torch.{check.options['x_dtype']}"
        want_y = f"torch.{check.options['y_dtype']}"
        if x["dtype"] != want_x:
            problems.append(f"images have dtype {x['dtype'] or x['type']}, expected {want_x}")
        if y["dtype"] != want_y:
            problems.append(f"labels have dtype {y['dtype'] or y['type']}, expected {want_y} "
                            f"(class indices, as nn.CrossEntropyLoss needs)")
        shape = x.get("shape") or []
        if model is not None and (len(shape) != 1 + len(model.input_shape) or
                                  tuple(shape[1:]) != tuple(model.input_shape)):
            sizes = ", ".join(map(str, model.input_shape))
            problems.append(f"images have shape {tuple(shape)}, expected (batch, {sizes})")
        if y.get("shape") is None or len(y["shape"]) != 1 or (shape and y["shape"][0] != shape[0]):
            problems.append(f"labels have shape {y.get('shape')}, expected ({shape[0] if shape else 'batch'},)")
        return problems
