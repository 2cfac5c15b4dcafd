"""Per-student HTML feedback, a view of one SubmissionReport: scores, what each lost point
expected and observed with a hint, the layer table, the training curve and the failed cells.

Two copies: the instructor's shows every check; the student's shows the public checks only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markupsafe import Markup

from grader.observe.execution import ExecutionReport
from grader.report.explain import cell_notes, explain, lost_points
from grader.report.html_page import render_page
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
LAYER_FIELDS = ("type", "output_shape", "params")  # compared with the reference row


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
    lost = [c for c in shown.checks if lost_points(c) > 0 and c.status != "skipped"]
    pending = [c for c in shown.checks if c.status == "skipped"]
    return render_page(
        "feedback.html", page_title=f"{title}: {report.submission}", title=title, report=shown, full=report,
        percent=100 * shown.score / shown.max_score if shown.max_score else 0.0, note=note,
        not_graded=NOT_GRADED.format(reason=report.reason) if report.status != "graded" else "",
        lost=[_finding(c) for c in lost], lost_total=sum(lost_points(c) for c in lost), nothing_lost=NOTHING_LOST,
        pending=pending, pending_total=sum(c.max_score for c in pending), skipped_note=SKIPPED_NOTE,
        layers=_layers(shown.checks), curve=_curve(shown.checks), cells=_cells(report.execution),
        show_visibility=audience == "instructor")


def _finding(check: CheckResult) -> dict[str, Any]:
    parts = explain(check)
    return {"check": check, "lost": lost_points(check),
            "rows": [("What the grader found", parts.finding), *parts.parts()]}


def _layers(checks: Sequence[CheckResult]) -> dict[str, Any] | None:
    source = next((c for c in checks if all(isinstance(c.details.get(k), list) for k in LAYER_KEYS)), None)
    if source is None:
        return None
    student, reference = source.details["student_layers"], source.details["reference_layers"]
    rows = []
    for index in range(max(len(student), len(reference))):
        mine = student[index] if index < len(student) else None
        theirs = reference[index] if index < len(reference) else None
        differs = {f: mine is None or theirs is None or mine.get(f) != theirs.get(f) for f in LAYER_FIELDS}
        rows.append({"differs": any(differs.values()), "mine": _layer_cells(mine, differs),
                     "theirs": _layer_cells(theirs, differs)})
    totals = (_params(student), _params(reference))
    return {"source": source.id, "rows": rows, "totals": totals, "totals_differ": totals[0] != totals[1]}


def _layer_cells(layer: dict[str, Any] | None, differs: dict[str, bool]) -> list[dict[str, str]] | None:
    """The four cells of one side of a layer row: name, type, output shape, parameters."""
    if layer is None:
        return None
    shape = layer.get("output_shape")
    shape_text = "(" + ", ".join(str(v) for v in shape) + ")" if isinstance(shape, list) else str(shape or "")
    params = layer.get("params")
    cells = [("name", layer.get("name", ""), ""), ("type", layer.get("type", ""), ""),
             ("output_shape", shape_text, ""),
             ("params", f"{params:,}" if isinstance(params, int) else params or "", "num")]
    return [{"text": text, "classes": " ".join(c for c in (extra, "mismatch" if differs.get(field) else "") if c)}
            for field, text, extra in cells]


def _params(layers: list[dict[str, Any]]) -> int:
    return sum(layer.get("params", 0) for layer in layers if isinstance(layer.get("params"), int))


def _curve(checks: Sequence[CheckResult]) -> dict[str, Any] | None:
    source = next((c for c in checks if isinstance(c.details.get("curve"), dict)), None)
    if source is None:
        return None
    curve = source.details["curve"]
    epochs = [float(e) for e in curve.get("epoch", [])]
    loss = [float(v) for v in curve.get("train_loss", [])]
    accuracy = [float(v) for v in curve.get("accuracy", [])]
    if not epochs or not (loss or accuracy):
        return None
    threshold = source.details.get("threshold")
    threshold = float(threshold) if isinstance(threshold, (int, float)) else None
    charts = []
    if loss:
        charts.append(line_chart(epochs, [Series("training loss", loss, "#3867d6")],
                                 title="Training loss per epoch", x_label="epoch"))
    if accuracy:
        label = f"threshold {threshold:.2f}" if threshold is not None else ""
        # "on": set when the accuracy is not on the hidden split (the students' package: the test part)
        on = curve.get("on") if isinstance(curve.get("on"), str) else "the hidden split"
        charts.append(line_chart(epochs, [Series(f"accuracy on {on}", accuracy, "#1b7f3b")],
                                 title="Accuracy per epoch", x_label="epoch", threshold=threshold,
                                 threshold_label=label, y_range=(0.0, 1.0)))
    summary = ""
    if accuracy:
        summary = f"Final accuracy {accuracy[-1]:.3f}"
        if threshold is not None:
            summary += f" (threshold {threshold:.2f})"
    # The charts are SVG drawn by svg.py, which escapes every label it writes.
    return {"source": source.id, "summary": summary, "charts": [Markup(chart) for chart in charts]}


def _cells(execution: ExecutionReport | None) -> dict[str, Any] | None:
    if not execution:
        return None
    at = execution.kernel_died_at_cell
    kernel_died = KERNEL_DIED.format(cell="?" if at is None else at + 1) if execution.kernel_died else ""
    not_run = ", ".join(str(i + 1) for i in execution.not_run_cells)
    if not_run:
        not_run = (NOTEBOOK_TIMED_OUT if execution.notebook_timed_out else NOT_RUN).format(cells=not_run)
    notes = cell_notes(execution)
    if not (notes or kernel_died or not_run):
        return None
    return {"notes": notes, "kernel_died": kernel_died, "not_run": not_run}
