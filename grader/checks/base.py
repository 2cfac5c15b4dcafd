"""What every check kind provides, and the data a check is judged on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from grader.execute.base import ExecutionSummary
from grader.observe.probe import ProbeRequest
from grader.rubric.fields import Option, TableReader
from grader.rubric.model import CheckSpec, Rubric

STATUSES = ("pass", "fail", "error", "skipped")


@dataclass(frozen=True)
class Verdict:
    """A check's outcome before points: `fraction` of its points is earned."""

    status: str
    fraction: float
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)

    @staticmethod
    def passed(message: str, **details: Any) -> Verdict:
        return Verdict("pass", 1.0, message, details)

    @staticmethod
    def failed(message: str, fraction: float = 0.0, **details: Any) -> Verdict:
        return Verdict("fail", fraction, message, details)

    @staticmethod
    def errored(message: str, **details: Any) -> Verdict:
        return Verdict("error", 0.0, message, details)


@dataclass(frozen=True)
class ProbeRecord:
    """One observation as saved: the grader-side inputs, and the probe's reply."""

    inputs: Any
    status: str
    data: Mapping[str, Any] | None
    message: str = ""
    seconds: float = 0.0
    probe: str = ""  # the key of the probe that observed it (checks may share one)


@dataclass(frozen=True)
class ScoreContext:
    """What checks may consult besides their own observation."""

    rubric: Rubric
    execution: ExecutionSummary
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
