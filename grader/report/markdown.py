"""A Markdown summary of one SubmissionReport, for GitHub's job summary ($GITHUB_STEP_SUMMARY)."""

from __future__ import annotations

from grader.report.explain import cell_notes, explain
from grader.report.model import SubmissionReport
from grader.report.text import clean_text, points

HEADING = "### {title}: {score} / {max_score} points"
PUBLIC_NOTE = "_Public checks only: hidden checks count in the final grade._"
STATUS_ICONS = {"pass": "✅", "fail": "❌", "error": "⚠️", "skipped": "⏭️"}


def md_text(text: object) -> str:
    """Text safe inside a Markdown table cell: no HTML, no pipes, one line."""
    cleaned = clean_text(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    cleaned = cleaned.replace("[", "\\[").replace("]", "\\]")  # no links or images from student text
    return cleaned.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def render_markdown(report: SubmissionReport, title: str = "Grader", public_only: bool = True) -> str:
    """Score, a table of tasks, each lost point with its hint, and failed cells."""
    lines = [HEADING.format(title=md_text(title), score=points(report.score), max_score=points(report.max_score)), ""]
    if public_only:
        lines += [PUBLIC_NOTE, ""]
    if report.status != "graded":
        lines += [f"**Not graded:** {md_text(report.reason)}", ""]
    lines += ["| task | what | points |", "| --- | --- | ---: |"]
    lines += [f"| {md_text(t.task)} | {md_text(t.title)} | {points(t.score)} / {points(t.max_score)} |"
              for t in report.tasks]
    lost = [c for c in report.checks if c.score < c.max_score]
    if lost:
        lines += ["", "| | check | points | what the grader found |", "| --- | --- | ---: | --- |"]
        for check in lost:
            parts = explain(check)
            found = parts.finding + (f" **Hint:** {parts.hint}" if parts.hint else "")
            lines.append(f"| {STATUS_ICONS.get(check.status, '')} | `{md_text(check.id)}` | "
                         f"{points(check.score)} / {points(check.max_score)} | {md_text(found)} |")
    for note in cell_notes(report.execution):
        lines += ["", md_text(note.line())]
    return "\n".join(lines) + "\n"
