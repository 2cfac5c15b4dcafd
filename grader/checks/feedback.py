"""Wording shared by checks: how to show values, where to look, what a missing name means."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from grader.checks.base import ProbeRecord, ScoreContext, Verdict

NOT_DEFINED = ("`{name}` is not defined after your notebook ran. Define `{signature}` at the top "
               "level of a code cell (not inside another function or an `if`).")
FAILED_CELLS_NOTE = (" Note: cell(s) {cells} raised an error; a cell that fails stops before the "
                     "lines after the error, so a definition there may never have run.")
NOT_RUN_CELLS_NOTE = " Note: cell(s) {cells} did not run (time limit or kernel death)."
NOT_CALLABLE = "`{name}` is defined but is a {type}, not a function. Define it with `def {signature}:`."
PROBE_TIMEOUT = ("Calling `{name}` did not finish within the probe time limit ({message}). Look for a "
                 "loop that never ends, or work that grows far beyond the input size.")
PROBE_KERNEL_DIED = "The kernel died while the grader was calling `{name}` ({message})."
PROBE_NOT_OBSERVED = "The grader could not observe `{name}`: {message}."
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


def where(name: str, context: ScoreContext) -> str:
    cell = context.definitions.get(name)
    return "" if cell is None else WHERE.format(cell=cell + 1)


def cells_note(context: ScoreContext) -> str:
    failed = [str(c.index + 1) for c in context.execution.cells if c.status in ("error", "timeout")]
    not_run = [str(c.index + 1) for c in context.execution.cells
               if c.status in ("not_run", "kernel_died")]
    note = FAILED_CELLS_NOTE.format(cells=", ".join(failed)) if failed else ""
    if not_run:
        note += NOT_RUN_CELLS_NOTE.format(cells=", ".join(not_run))
    return note


def unobservable(record: ProbeRecord | None, name: str, signature: str,
                 context: ScoreContext) -> Verdict | None:
    """The verdict when the probe could not observe `name` at all, else None."""
    if record is None:
        return Verdict.errored(PROBE_NOT_OBSERVED.format(
            name=name, message="no observation was recorded for this check; grade the notebook again "
                               "(`grader grade`) after adding a check to the rubric"))
    if record.status == "timeout":
        return Verdict.failed(PROBE_TIMEOUT.format(name=name, message=record.message))
    if record.status == "kernel_died":
        return Verdict.failed(PROBE_KERNEL_DIED.format(name=name, message=record.message))
    if record.status != "ok" or record.data is None:
        return Verdict.errored(PROBE_NOT_OBSERVED.format(name=name, message=record.message))
    if not record.data.get("defined"):
        return Verdict.failed(NOT_DEFINED.format(name=name, signature=signature) + cells_note(context))
    return None


def with_hint(message: str, hint: str) -> str:
    return f"{message} Hint: {hint}" if hint else message


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
