"""The report model, written once; JSON, CSV, HTML, JUnit, Gradescope, Markdown and the console
are views of it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from grader.jsondata import from_data, to_data
from grader.observe.execution import ExecutionReport

# 2: a check's `hint`, `expected` and `observed` are fields of their own (in 1 they were in
# `details`, and the hint was also appended to `message`). Reports of schema 1 still load.
REPORT_SCHEMA = 2
HINT_SUFFIX = " Hint: {hint}"  # how schema 1 appended the rubric's hint to a message
MOVED_DETAILS = ("hint", "expected", "observed")


@dataclass(frozen=True)
class CheckResult:
    """status: pass | fail | error | skipped. `message` says what the grader found; `expected`
    and `observed` (any JSON value, or None) and the rubric's `hint` are shown apart from it."""

    id: str
    task: str
    title: str
    status: str
    score: float
    max_score: float
    visibility: str
    message: str
    hint: str = ""
    expected: Any = None
    observed: Any = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskScore:
    task: str
    title: str
    score: float
    max_score: float


@dataclass(frozen=True)
class SubmissionReport:
    """status: graded (the notebook ran, maybe with failing cells) or error (it could not run)."""

    submission: str
    status: str
    score: float
    max_score: float
    seed: int
    seed_policy: str
    checks: list[CheckResult]
    tasks: list[TaskScore]
    execution: ExecutionReport | None
    notebook: str
    notebook_sha256: str
    rubric: str
    rubric_sha256: str
    grader_version: str
    reason: str = ""
    files: dict[str, str] = field(default_factory=dict)
    graded_at: str = ""
    # `submission` is the output name the grader chose (files are <submission>.json, ...);
    # student_id is the student's id as found (raw: grader.names escapes it for display).
    student_id: str = ""
    student_name: str = ""
    source: str = ""
    id_rule: str = ""
    other_versions: list[str] = field(default_factory=list)
    intake_notes: list[str] = field(default_factory=list)
    schema: int = REPORT_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return to_data(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    @staticmethod
    def from_dict(raw: dict[str, Any]) -> SubmissionReport:
        """A report from its JSON data, of this schema or an older one (upgraded as it loads)."""
        if raw.get("schema", 1) < 2:
            raw = {**raw, "checks": [_check_from_schema_1(check) for check in raw["checks"]]}
        return replace(from_data(SubmissionReport, raw), schema=REPORT_SCHEMA)

    @property
    def seconds(self) -> float:
        """How long the notebook ran (0 when it could not run)."""
        return self.execution.seconds if self.execution else 0.0

    def public_view(self) -> SubmissionReport:
        """The report restricted to public checks, as the student's self-check shows it."""
        checks = [c for c in self.checks if c.visibility == "public"]
        task_ids = list(dict.fromkeys(c.task for c in checks))
        titles = {t.task: t.title for t in self.tasks}
        tasks = [TaskScore(t, titles.get(t, t), sum(c.score for c in checks if c.task == t),
                           sum(c.max_score for c in checks if c.task == t)) for t in task_ids]
        return replace(self, checks=checks, tasks=tasks,
                       score=sum(c.score for c in checks), max_score=sum(c.max_score for c in checks))


def _check_from_schema_1(check: dict[str, Any]) -> dict[str, Any]:
    details = dict(check.get("details") or {})
    moved = {key: details.pop(key) for key in MOVED_DETAILS if key in details}
    message = check.get("message", "")
    suffix = HINT_SUFFIX.format(hint=moved.get("hint", ""))
    if moved.get("hint") and message.endswith(suffix):
        message = message[: -len(suffix)]
    return {**check, **moved, "message": message, "details": details}
