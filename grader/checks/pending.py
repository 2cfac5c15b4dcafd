"""Check kinds the rubric may already declare but this grader version does not yet evaluate.

They are reported as `skipped` with 0 points, never as passed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from grader.checks.base import ProbeRecord, ScoreContext, Verdict
from grader.rubric.fields import Option, TableReader
from grader.rubric.model import CheckSpec, Rubric

NOT_YET = ("Not checked: this grader version does not evaluate '{kind}' checks yet, so its "
           "{points:g} point(s) are not awarded. Your instructor grades it separately.")


class PendingCheck:
    options: Mapping[str, Option] = {}

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def validate(self, options: Mapping[str, Any], reader: TableReader) -> None:
        return None

    def plan(self, check: CheckSpec, rng: np.random.Generator, rubric: Rubric) -> tuple[None, None]:
        return None, None

    def evaluate(self, check: CheckSpec, record: ProbeRecord | None,
                 context: ScoreContext) -> Verdict:
        return Verdict("skipped", 0.0, NOT_YET.format(kind=self.kind, points=check.points))
