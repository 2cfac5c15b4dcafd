"""Wording shared by checks: how to show values, where to look, what a missing name means."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from grader.checks.base import ScoreContext, Verdict
from grader.observe.observations import ProbeRecord

NOT_DEFINED = ("`{name}` is not defined after your notebook ran. Define `{signature}` at the top "
               "level of a code cell (not inside another function or an `if`).")
FAILED_CELLS_NOTE = (" Note: cell(s) {cells} raised an error; a cell that fails stops before the "
                     "lines after the error, so a definition there may never have run.")
NOT_RUN_CELLS_NOTE = " Note: cell(s) {cells} did not run (time limit or kernel death)."
NOT_CALLABLE = "`{name}` is defined but is a {type}, not a function. Define it with `def {signature}:`."
# The grader holds no usable observation: nothing in the notebook was judged, so `error`.
NO_OBSERVATION = ("The grader has no observation of {what} for this check (was the check added to the rubric "
                  "after grading?); grade the notebook again (`grader grade`).")
PROBE_FAILED = ("The grader could not observe {what}: {message}. This is not a fault found in your notebook; "
                "grade the notebook again (`grader grade`), and report it if it happens again.")
# The student's code stopped the probe: what it was asked to do failed, so `fail`.
PROBE_TIMEOUT = ("Observing {what} did not finish within the probe time limit ({message}). Look for a loop that "
                 "never ends, or work that grows far beyond the input size.")
PROBE_KERNEL_DIED = "The kernel died while the grader was observing {what} ({message})."
WHERE = " (defined in cell {cell})"  # cells are counted from 1 in every message


SMALL_SIDE = 4


def is_small(array: np.ndarray) -> bool:
    return array.ndim > 0 and array.size > 0 and max(array.shape) <= SMALL_SIDE


def format_value(value: Any) -> str:
    """Small arrays in full (`[[19, 25], [37, 43]]`), larger ones by their shape."""
    array = np.asarray(value, dtype=float) if not isinstance(value, np.ndarray) else value
    if array.ndim == 0:
        return _number(float(array))
    if is_small(array):
        return _nested(array)
    return f"an array of shape {tuple(array.shape)}"


def _number(value: float) -> str:
    if np.isnan(value):
        return "nan"
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def _nested(array: np.ndarray) -> str:
    if array.ndim == 1:
        return "[" + ", ".join(_number(float(v)) for v in array) + "]"
    return "[" + ", ".join(_nested(row) for row in array) + "]"


def defining_cell(name: str, context: ScoreContext) -> int | None:
    """The cell (counted from 1) that defines `name`, when the notebook's text shows one."""
    index = context.definitions.get(name)
    return None if index is None else index + 1


def where(name: str, context: ScoreContext) -> str:
    cell = defining_cell(name, context)
    return "" if cell is None else WHERE.format(cell=cell)


def cells_note(context: ScoreContext) -> str:
    """Why a definition may be missing: the cells that failed, timed out or never finished."""
    failed = ", ".join(str(i + 1) for i in context.execution.problem_cells())
    not_run = ", ".join(str(i + 1) for i in context.execution.unfinished_cells())
    note = FAILED_CELLS_NOTE.format(cells=failed) if failed else ""
    if not_run:
        note += NOT_RUN_CELLS_NOTE.format(cells=not_run)
    return note


def observed_data(record: ProbeRecord | None, what: str) -> tuple[Verdict | None, Mapping[str, Any]]:
    """(None, the probe's data) when there is an observation of `what` to judge, else (the
    verdict, {}), shared by every check kind.

    No record (a check added to the rubric after grading) or a probe that failed on the grader's
    side: `error`, saying to grade again. A probe the student's code stopped (its time limit, a
    kernel death): `fail`. What the notebook failed to define is each kind's own `fail`."""
    if record is None:
        return Verdict.errored(NO_OBSERVATION.format(what=what)), {}
    if record.status == "timeout":
        return Verdict.failed(PROBE_TIMEOUT.format(what=what, message=record.message)), {}
    if record.status == "kernel_died":
        return Verdict.failed(PROBE_KERNEL_DIED.format(what=what, message=record.message)), {}
    if record.status != "ok" or record.data is None:
        return Verdict.errored(PROBE_FAILED.format(what=what, message=record.message or "no reply")), {}
    return None, record.data


def not_defined(name: str, signature: str, context: ScoreContext) -> Verdict:
    """`name` is missing from the notebook: say what to define, and which cells may be why."""
    return Verdict.failed(NOT_DEFINED.format(name=name, signature=signature) + cells_note(context))


def decode_output(output: Mapping[str, Any]) -> tuple[Any, str]:
    """The numeric content of an encoded student value, and its type name."""
    kind = output.get("type", "?")
    if "value" in output:
        return output["value"], kind
    if "items" in output:
        return [decode_output(item)[0] for item in output["items"]], kind
    if "shape" in output:
        return None, kind
    return output.get("repr"), kind
