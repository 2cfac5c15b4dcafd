"""What every view shows, worded once: for a check, the finding, expected, observed and the hint;
for the run, one line per cell that raised or timed out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from grader.observe.execution import ExecutionReport
from grader.report.model import CheckResult
from grader.report.text import clean_text

CELL_RAISED = "Cell {cell} raised {error}"
CELL_TIMED_OUT = "Cell {cell} timed out"


@dataclass(frozen=True)
class Explanation:
    finding: str
    expected: str
    observed: str
    hint: str

    def parts(self) -> list[tuple[str, str]]:
        """The labelled parts beside the finding that the check gave, in the order views show them."""
        return [(label, value) for label, value in (("Expected", self.expected), ("Observed", self.observed),
                                                    ("Hint", self.hint)) if value]

    def lines(self) -> list[str]:
        """The finding, then `Label: value` per part: the plain-text form (JUnit, Gradescope)."""
        return [self.finding] + [f"{label}: {value}" for label, value in self.parts()]


def explain(check: CheckResult) -> Explanation:
    """The check's parts as clean text; empty strings for parts the check did not give."""
    return Explanation(clean_text(check.message), show_value(check.expected), show_value(check.observed),
                       clean_text(check.hint))


def show_value(value: Any) -> str:
    """A value as one line of text: strings as they are, the rest as compact JSON."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"  # parameter counts: 421,834
    if isinstance(value, dict):
        return ", ".join(f"{key}: {show_value(item)}" for key, item in value.items())
    if isinstance(value, (list, tuple)) and all(isinstance(item, (int, float)) for item in value):
        return "(" + ", ".join(f"{item:g}" for item in value) + ")"  # shapes, as people write them
    return clean_text(json.dumps(value, ensure_ascii=False))


def lost_points(check: CheckResult) -> float:
    return round(check.max_score - check.score, 4)


@dataclass(frozen=True)
class CellNote:
    """A cell that raised or timed out, as views show it: `heading` counts cells from 1."""

    heading: str
    error: str
    message: str
    source_excerpt: str

    def line(self) -> str:
        return f"{self.heading}: {self.message}"


def cell_notes(execution: ExecutionReport | None) -> list[CellNote]:
    """The cells that raised, then those that timed out, each in notebook order."""
    if execution is None:
        return []
    notes = [CellNote(CELL_RAISED.format(cell=c.index + 1, error=c.error), c.error or "", c.message or "",
                      c.source_excerpt) for c in execution.failed_cells]
    notes += [CellNote(CELL_TIMED_OUT.format(cell=c.index + 1), "", c.message or "", c.source_excerpt)
              for c in execution.timed_out_cells]
    return notes
