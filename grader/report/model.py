"""The report model, written once; JSON, CSV and the console are views of it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

REPORT_SCHEMA = 1


@dataclass(frozen=True)
class CheckResult:
    """status: pass | fail | error | skipped."""

    id: str
    task: str
    title: str
    status: str
    score: float
    max_score: float
    visibility: str
    message: str
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
    execution: dict[str, Any] | None
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
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    @staticmethod
    def from_dict(raw: dict[str, Any]) -> SubmissionReport:
        raw = dict(raw)
        checks = [CheckResult(**c) for c in raw.pop("checks")]
        tasks = [TaskScore(**t) for t in raw.pop("tasks")]
        return SubmissionReport(checks=checks, tasks=tasks, **raw)

    def public_view(self) -> SubmissionReport:
        """The report restricted to public checks, as the student's self-check shows it."""
        from dataclasses import replace

        checks = [c for c in self.checks if c.visibility == "public"]
        task_ids = list(dict.fromkeys(c.task for c in checks))
        titles = {t.task: t.title for t in self.tasks}
        tasks = [TaskScore(t, titles.get(t, t), sum(c.score for c in checks if c.task == t),
                           sum(c.max_score for c in checks if c.task == t)) for t in task_ids]
        return replace(self, checks=checks, tasks=tasks,
                       score=sum(c.score for c in checks), max_score=sum(c.max_score for c in checks))
