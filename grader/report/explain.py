"""What a report shows for a check that lost points: the finding, expected, observed, the hint."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from grader.report.model import CheckResult
from grader.report.text import clean_text

HINT_SUFFIX = " Hint: {hint}"  # how checks append the rubric's hint to a message


@dataclass(frozen=True)
class Explanation:
    finding: str
    expected: str
    observed: str
    hint: str


def explain(check: CheckResult) -> Explanation:
    """The check's message split into its parts; empty strings for parts the check did not give."""
    details = check.details
    hint = clean_text(details.get("hint", ""))
    finding = clean_text(check.message)
    suffix = HINT_SUFFIX.format(hint=hint)
    if hint and finding.endswith(suffix):
        finding = finding[: -len(suffix)]
    return Explanation(finding, show_value(details.get("expected")), show_value(details.get("observed")), hint)


def show_value(value: Any) -> str:
    """A detail value as one line of text: strings as they are, the rest as compact JSON."""
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
