"""How a self-check shows in a notebook: an HTML table where the front end renders HTML (Jupyter,
Colab, VS Code), the same as text elsewhere. Student-controlled text is escaped."""

from __future__ import annotations

import html
from dataclasses import dataclass

from grader.report.explain import explain
from grader.report.model import SubmissionReport
from grader.report.text import points

NOT_THE_GRADE = ("Self-check of the public checks only, in your running kernel: this is not your grade. "
                 "Hidden checks also count, and the final grading runs your whole notebook in a fresh kernel.")
SOME_TASKS = "Tasks checked: {tasks}. Call selfcheck() with no task for every public check."
MARKS = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "skipped": "SKIP"}
COLOURS = {"pass": "#1a7f37", "fail": "#cf222e", "error": "#9a6700", "skipped": "#57606a"}


@dataclass(frozen=True)
class SelfCheckResult:
    report: SubmissionReport
    tasks: tuple[str, ...]
    all_tasks: bool
    seconds: float

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """(check id, title, status, points, what to fix) per check, in rubric order."""
        rows = []
        for check in self.report.checks:
            advice = ""
            if check.status != "pass":  # worded as every other view words it (report/explain.py)
                advice = " ".join(explain(check).lines())
            rows.append((check.id, check.title, check.status,
                         f"{points(check.score)} / {points(check.max_score)}", advice))
        return rows

    def summary(self) -> str:
        scope = "" if self.all_tasks else f" (tasks {', '.join(self.tasks)})"
        return (f"Public checks{scope}: {points(self.report.score)} / {points(self.report.max_score)} points "
                f"in {self.seconds:g} s.")

    def text(self) -> str:
        lines = [NOT_THE_GRADE]
        if not self.all_tasks:
            lines.append(SOME_TASKS.format(tasks=", ".join(self.tasks)))
        for check_id, title, status, score, advice in self.rows():
            lines.append(f"  [{MARKS[status]}] {check_id} ({score}) {title}")
            if advice:
                lines.append(f"         {advice}")
        lines.append(self.summary())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        cells = []
        for check_id, title, status, score, advice in self.rows():
            mark = f'<b style="color:{COLOURS[status]}">{MARKS[status]}</b>'
            cells.append(f"<tr><td>{mark}</td><td><code>{html.escape(check_id)}</code></td>"
                         f"<td>{html.escape(title)}</td><td style='text-align:right'>{html.escape(score)}</td>"
                         f"<td style='text-align:left'>{html.escape(advice)}</td></tr>")
        some = "" if self.all_tasks else f"<p>{html.escape(SOME_TASKS.format(tasks=', '.join(self.tasks)))}</p>"
        return (f"<div class='grader-selfcheck'><p><b>{html.escape(NOT_THE_GRADE)}</b></p>{some}"
                "<table><thead><tr><th></th><th>check</th><th>what</th><th>points</th><th>what to fix</th></tr>"
                f"</thead><tbody>{''.join(cells)}</tbody></table><p>{html.escape(self.summary())}</p></div>")
