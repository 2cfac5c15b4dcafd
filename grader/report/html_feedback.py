"""Per-student HTML feedback, a view of one SubmissionReport: scores, what each lost point
expected and observed with a hint, the layer table, the training curve and the failed cells.

Two copies: the instructor's shows every check; the student's shows the public checks only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grader.observe.execution import ExecutionReport
from grader.report.explain import CellNote, cell_notes, explain, lost_points
from grader.report.html_page import esc, page, progress_bar, status_badge
from grader.report.model import CheckResult, SubmissionReport
from grader.report.svg import Series, line_chart
from grader.report.text import points

AUDIENCES = ("instructor", "student")
STUDENT_NOTE = ("This copy shows the public checks only. {hidden} hidden check(s) worth {points} point(s) "
                "also count in your final grade.")
PUBLIC_ONLY_NOTE = ("This page shows the public checks only. Hidden checks, where your instructor set any, "
                    "also count in your final grade, so all passed here is not the final score.")
INSTRUCTOR_NOTE = "Instructor copy: every check, hidden ones marked. Students get the copy with public checks only."
NOT_GRADED = "This notebook could not be graded: {reason}"
NOTHING_LOST = "No points lost on the checks shown here."
SKIPPED_NOTE = ("This grader version does not evaluate these checks yet, so their points are not awarded; "
                "your instructor grades them separately.")
KERNEL_DIED = "The kernel died while running cell {cell}; the cells after it did not run."
NOTEBOOK_TIMED_OUT = "The notebook reached its total time limit; cells {cells} did not run."
NOT_RUN = "Cells {cells} did not run."
LAYER_KEYS = ("student_layers", "reference_layers")


def render_feedback(report: SubmissionReport, audience: str = "instructor", title: str = "Feedback") -> str:
    """The feedback page for `audience` (instructor: all checks; student: public checks only)."""
    if audience not in AUDIENCES:
        raise ValueError(f"audience must be one of {AUDIENCES}, not {audience!r}")
    shown = report if audience == "instructor" else report.public_view()
    hidden = [c for c in report.checks if c.visibility != "public"]
    if audience == "instructor":
        note = INSTRUCTOR_NOTE
    elif hidden:
        note = STUDENT_NOTE.format(hidden=len(hidden), points=points(sum(c.max_score for c in hidden)))
    else:  # e.g. a self-check, graded on the public checks only: it cannot know what is hidden
        note = PUBLIC_ONLY_NOTE
    body = [
        _header(shown, title, note),
        _tasks(shown),
        _lost(shown.checks),
        _layers(shown.checks),
        _curve(shown.checks),
        _cells(report.execution),
        _all_checks(shown.checks, show_visibility=audience == "instructor"),
        _footer(report),
    ]
    return page(f"{title}: {report.submission}", "".join(body))


def _header(report: SubmissionReport, title: str, note: str) -> str:
    percent = 100 * report.score / report.max_score if report.max_score else 0.0
    parts = [f"<header><h1>{esc(title)}</h1>",
             f'<div class="muted">Submission <strong id="submission-id">{esc(report.submission)}</strong>'
             f" · graded {esc(report.graded_at or 'at an unknown time')}</div>",
             f'<div id="total-score" class="score">{points(report.score)} / {points(report.max_score)} '
             f'<span class="muted small">({percent:.0f}%)</span></div>']
    if report.status != "graded":
        parts.append(f'<div class="banner" id="not-graded">{esc(NOT_GRADED.format(reason=report.reason))}</div>')
    if note:
        parts.append(f'<div class="banner">{esc(note)}</div>')
    parts.append("</header>")
    return "".join(parts)


def _tasks(report: SubmissionReport) -> str:
    rows = "".join(
        f"<tr><td>{esc(t.task)}</td><td>{esc(t.title)}</td>"
        f'<td class="num">{points(t.score)} / {points(t.max_score)}</td>'
        f"<td>{progress_bar(t.score / t.max_score if t.max_score else 0.0)}</td></tr>"
        for t in report.tasks)
    return ('<section id="tasks"><h2>Score per task</h2><table><thead><tr><th>task</th><th>what</th>'
            f'<th class="num">points</th><th></th></tr></thead><tbody>{rows}</tbody></table></section>')


def _lost(checks: Sequence[CheckResult]) -> str:
    lost = [c for c in checks if lost_points(c) > 0 and c.status != "skipped"]
    pending = [c for c in checks if c.status == "skipped"]
    if not lost:
        html = f'<section id="lost-points"><h2>Where points were lost</h2><p>{NOTHING_LOST}</p></section>'
    else:
        total = points(sum(lost_points(c) for c in lost))
        html = (f'<section id="lost-points"><h2>Where points were lost ({total} points)</h2>'
                + "".join(_finding(c) for c in lost) + "</section>")
    if pending:
        items = "".join(f"<li><code>{esc(c.id)}</code> {esc(c.title)} "
                        f'<span class="muted small">({points(c.max_score)} points)</span></li>' for c in pending)
        total = points(sum(c.max_score for c in pending))
        html += (f'<section id="not-checked"><h2>Not checked yet ({total} points)</h2>'
                 f'<p class="muted">{SKIPPED_NOTE}</p><ul>{items}</ul></section>')
    return html


def _finding(check: CheckResult) -> str:
    parts = explain(check)
    rows = [("What the grader found", parts.finding), *parts.parts()]
    items = "".join(f"<dt>{esc(label)}</dt><dd>{esc(value)}</dd>" for label, value in rows)
    return (f'<article class="finding" data-check="{esc(check.id)}">'
            f"<h3>{status_badge(check.status)} <code>{esc(check.id)}</code> {esc(check.title)} "
            f'<span class="muted small">(−{points(lost_points(check))} of {points(check.max_score)})</span></h3>'
            f'<dl class="parts">{items}</dl></article>')


def _layers(checks: Sequence[CheckResult]) -> str:
    source = next((c for c in checks if all(isinstance(c.details.get(k), list) for k in LAYER_KEYS)), None)
    if source is None:
        return ""
    student, reference = source.details["student_layers"], source.details["reference_layers"]
    rows = []
    for index in range(max(len(student), len(reference))):
        mine = student[index] if index < len(student) else None
        theirs = reference[index] if index < len(reference) else None
        rows.append(_layer_row(index, mine, theirs))
    totals = (_params(student), _params(reference))
    total_class = ' class="num mismatch"' if totals[0] != totals[1] else ' class="num"'
    header = "<th>name</th><th>type</th><th>output shape</th><th class=\"num\">parameters</th>"
    return ('<section id="layers"><h2>Your network beside the reference</h2>'
            f'<p class="muted small">As traced by <code>{esc(source.id)}</code> on one batch. Rows are matched by '
            "position; highlighted cells differ from the reference.</p>"
            '<table id="layer-table"><thead><tr><th></th><th colspan="4">your network</th>'
            '<th colspan="4">reference</th></tr><tr><th>#</th>' + header + header + "</tr></thead><tbody>"
            + "".join(rows) + f'</tbody><tfoot><tr><th colspan="4">total</th><th{total_class}>{totals[0]:,}</th>'
            f'<th colspan="3"></th><th{total_class}>{totals[1]:,}</th></tr></tfoot></table></section>')


def _layer_row(index: int, mine: dict[str, Any] | None, theirs: dict[str, Any] | None) -> str:
    fields = ("type", "output_shape", "params")
    differs = {f: mine is None or theirs is None or mine.get(f) != theirs.get(f) for f in fields}
    row_class = ' class="mismatch-row"' if any(differs.values()) else ""
    cells = _layer_cells(mine, differs) + _layer_cells(theirs, differs)
    return f"<tr{row_class}><td>{index + 1}</td>{cells}</tr>"


def _layer_cells(layer: dict[str, Any] | None, differs: dict[str, bool]) -> str:
    if layer is None:
        return '<td class="mismatch" colspan="4">(no layer)</td>'
    shape = layer.get("output_shape")
    shape_text = "(" + ", ".join(str(v) for v in shape) + ")" if isinstance(shape, list) else str(shape or "")
    params = layer.get("params")
    cells = [("name", esc(layer.get("name", "")), ""),
             ("type", esc(layer.get("type", "")), ""),
             ("output_shape", esc(shape_text), ""),
             ("params", f"{params:,}" if isinstance(params, int) else esc(params or ""), "num")]
    html = []
    for field, text, extra in cells:
        classes = " ".join(c for c in (extra, "mismatch" if differs.get(field) else "") if c)
        html.append(f'<td class="{classes}">{text}</td>' if classes else f"<td>{text}</td>")
    return "".join(html)


def _params(layers: list[dict[str, Any]]) -> int:
    return sum(layer.get("params", 0) for layer in layers if isinstance(layer.get("params"), int))


def _curve(checks: Sequence[CheckResult]) -> str:
    source = next((c for c in checks if isinstance(c.details.get("curve"), dict)), None)
    if source is None:
        return ""
    curve = source.details["curve"]
    epochs = [float(e) for e in curve.get("epoch", [])]
    loss = [float(v) for v in curve.get("train_loss", [])]
    accuracy = [float(v) for v in curve.get("accuracy", [])]
    if not epochs or not (loss or accuracy):
        return ""
    threshold = source.details.get("threshold")
    threshold = float(threshold) if isinstance(threshold, (int, float)) else None
    charts = []
    if loss:
        charts.append(line_chart(epochs, [Series("training loss", loss, "#3867d6")],
                                 title="Training loss per epoch", x_label="epoch"))
    if accuracy:
        label = f"threshold {threshold:.2f}" if threshold is not None else ""
        charts.append(line_chart(epochs, [Series("accuracy on the hidden split", accuracy, "#1b7f3b")],
                                 title="Accuracy per epoch", x_label="epoch", threshold=threshold,
                                 threshold_label=label, y_range=(0.0, 1.0)))
    summary = ""
    if accuracy:
        summary = f"Final accuracy {accuracy[-1]:.3f}"
        if threshold is not None:
            summary += f" (threshold {threshold:.2f})"
    return ('<section id="training-curve"><h2>The grader\'s brief training of your CNN</h2>'
            f'<p class="muted small">Your class, trained by the grader\'s own loop ({esc(source.id)}). '
            f'{esc(summary)}</p><div class="charts">{"".join(charts)}</div></section>')


def _cells(execution: ExecutionReport | None) -> str:
    if not execution:
        return ""
    items = [_cell_item(note) for note in cell_notes(execution)]
    if execution.kernel_died:
        at = execution.kernel_died_at_cell
        items.append(f"<article class=\"finding\"><h3>{esc(KERNEL_DIED.format(cell='?' if at is None else at + 1))}"
                     "</h3></article>")
    not_run = ", ".join(str(i + 1) for i in execution.not_run_cells)
    if not_run:
        template = NOTEBOOK_TIMED_OUT if execution.notebook_timed_out else NOT_RUN
        items.append(f'<article class="finding skipped"><h3>{esc(template.format(cells=not_run))}</h3></article>')
    if not items:
        return ""
    return ('<section id="cells"><h2>Cells that failed or timed out</h2>'
            '<p class="muted small">Cells are counted from 1 from the top of the notebook, text cells included.</p>'
            + "".join(items) + "</section>")


def _cell_item(note: CellNote) -> str:
    return (f'<article class="finding"><h3>{esc(note.heading)}</h3><pre class="error">{esc(note.message)}</pre>'
            f'<div class="muted small">Source (excerpt):</div><pre class="source">{esc(note.source_excerpt)}'
            "</pre></article>")


def _all_checks(checks: Sequence[CheckResult], show_visibility: bool) -> str:
    head = "<th>check</th><th>what</th><th>status</th><th class=\"num\">points</th>"
    head += "<th>visibility</th>" if show_visibility else ""
    rows = []
    for c in checks:
        label = "not checked" if c.status == "skipped" else c.status
        row = (f"<tr><td><code>{esc(c.id)}</code></td><td>{esc(c.title)}</td><td>{status_badge(c.status, label)}</td>"
               f'<td class="num">{points(c.score)} / {points(c.max_score)}</td>')
        row += f"<td>{esc(c.visibility)}</td>" if show_visibility else ""
        rows.append(row + "</tr>")
    return (f'<section id="checks"><h2>Every check</h2><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></section>")


def _footer(report: SubmissionReport) -> str:
    return (f'<p class="muted small">Seed {report.seed} ({esc(report.seed_policy)}) · notebook sha256 '
            f"{esc(report.notebook_sha256[:12])} · grader {esc(report.grader_version)}</p>")
