"""Gradescope's documented results.json format (Autograder Specifications, "Output format"),
written down as a validator: the fields, their types and their allowed values."""

from __future__ import annotations

from numbers import Real
from typing import Any

VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}
FORMATS = {"text", "simple_format", "html", "md", "ansi"}
STATUSES = {"passed", "failed"}
TOP_LEVEL = {"score": Real, "execution_time": Real, "output": str, "output_format": str,
             "test_output_format": str, "test_name_format": str, "visibility": str,
             "stdout_visibility": str, "extra_data": dict, "tests": list, "leaderboard": list}
TEST = {"score": Real, "max_score": Real, "status": str, "name": str, "name_format": str, "number": str,
        "output": str, "output_format": str, "tags": list, "visibility": str, "extra_data": dict}


def validate_results(results: dict[str, Any]) -> list[str]:
    """Every way `results` departs from the documented format; empty when it conforms."""
    problems = _fields(results, TOP_LEVEL, "results")
    tests = results.get("tests", [])
    if "score" not in results and (not tests or any("score" not in t for t in tests)):
        problems.append("score: required at the top level unless every test has one")
    for key in ("visibility", "stdout_visibility"):
        if key in results and results[key] not in VISIBILITIES:
            problems.append(f"{key}: {results[key]!r} is not one of {sorted(VISIBILITIES)}")
    for key in ("output_format", "test_output_format", "test_name_format"):
        if key in results and results[key] not in FORMATS:
            problems.append(f"{key}: {results[key]!r} is not one of {sorted(FORMATS)}")
    for index, test in enumerate(tests):
        where = f"tests[{index}]"
        problems += _fields(test, TEST, where)
        if test.get("visibility", "visible") not in VISIBILITIES:
            problems.append(f"{where}.visibility: {test['visibility']!r}")
        if test.get("status", "passed") not in STATUSES:
            problems.append(f"{where}.status: {test['status']!r}")
        for key in ("output_format", "name_format"):
            if key in test and test[key] not in FORMATS:
                problems.append(f"{where}.{key}: {test[key]!r}")
        if "score" in test and "max_score" in test and test["score"] > test["max_score"]:
            problems.append(f"{where}: score above max_score")
    return problems


def _fields(value: dict[str, Any], allowed: dict[str, type], where: str) -> list[str]:
    problems = [f"{where}.{key}: not a documented field" for key in value if key not in allowed]
    for key, kind in allowed.items():
        if key in value and (not isinstance(value[key], kind) or isinstance(value[key], bool)):
            problems.append(f"{where}.{key}: expected {kind.__name__}, got {type(value[key]).__name__}")
    return problems
