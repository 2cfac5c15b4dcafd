"""What every check kind provides, and the data a check is judged on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from grader.observe.execution import ExecutionReport
from grader.observe.observations import ProbeRecord
from grader.observe.probe import ProbeRequest
from grader.rubric.fields import Option, TableReader
from grader.rubric.model import CheckSpec, Rubric


@dataclass(frozen=True)
class Verdict:
    """A check's outcome before points: `fraction` of its points is earned. `expected` and
    `observed` are the values a failure compares, shown apart from the message; the rubric's hint
    is added by the scorer, never written into the message."""

    status: str
    fraction: float
    message: str
    expected: Any = None
    observed: Any = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @staticmethod
    def passed(message: str, **details: Any) -> Verdict:
        return Verdict("pass", 1.0, message, details=details)

    @staticmethod
    def failed(message: str, fraction: float = 0.0, expected: Any = None, observed: Any = None,
               **details: Any) -> Verdict:
        return Verdict("fail", fraction, message, expected, observed, details)

    @staticmethod
    def errored(message: str, **details: Any) -> Verdict:
        return Verdict("error", 0.0, message, details=details)


@dataclass(frozen=True)
class ScoreContext:
    """What checks may consult besides their own observation."""

    rubric: Rubric
    execution: ExecutionReport
    definitions: Mapping[str, int]  # name -> index of the cell that defines it


class CheckKind(Protocol):
    options: Mapping[str, Option]

    def validate(self, options: Mapping[str, Any], reader: TableReader) -> None:
        """Cross-field validation of the options (single fields are validated by `options`)."""

    def plan(self, check: CheckSpec, rng: np.random.Generator,
             rubric: Rubric) -> tuple[ProbeRequest | None, Any]:
        """The probe to run in the kernel (or None) and the grader-side inputs to keep."""

    def evaluate(self, check: CheckSpec, record: ProbeRecord | None,
                 context: ScoreContext) -> Verdict:
        """Judge the observation against the rubric; never runs student code."""
