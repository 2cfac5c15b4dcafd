"""The batch summary page, a view of all SubmissionReports: the score histogram, the pass rate
of each check, the slowest notebooks, the notebooks in trouble and a link to each feedback page."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from statistics import mean, median

from grader.report.html_page import esc, page, progress_bar, status_badge
from grader.report.model import SubmissionReport
from grader.report.svg import bar_chart
from grader.report.text import points

HISTOGRAM_BINS = 10
SLOWEST_SHOWN = 5
NO_PROBLEMS = "Every notebook ran: no failed or timed-out cells, no kernel deaths, no grading errors."

# A small enhancement only: the tables read fine without it.
SORT_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function (th, column) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var up = th.dataset.order !== 'asc';
    th.dataset.order = up ? 'asc' : 'desc';
    rows.sort(function (a, b) {
      var x = a.cells[column].dataset.sort || a.cells[column].textContent;
      var y = b.cells[column].dataset.sort || b.cells[column].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
      return up ? c : -c;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
"""


def percent(report: SubmissionReport) -> float:
    return 100 * report.score / report.max_score if report.max_score else 0.0


def seconds(report: SubmissionReport) -> float:
    return report.seconds


def problems(report: SubmissionReport) -> list[str]:
    """What went wrong running this notebook, in words; empty when it ran cleanly."""
    found = []
    if report.status != "graded":
        found.append(f"not graded: {report.reason}")
    execution = report.execution
    if execution is None:
        return found
    failed = [str(c.index + 1) for c in execution.failed_cells]
    if failed:
        found.append(f"cell(s) {', '.join(failed)} raised an error")
    timed_out = [str(c.index + 1) for c in execution.timed_out_cells]
    if timed_out:
        found.append(f"cell(s) {', '.join(timed_out)} timed out")
    if execution.kernel_died:
        at = execution.kernel_died_at_cell
        found.append(f"kernel died at cell {'?' if at is None else at + 1}")
    if execution.notebook_timed_out:
        found.append("notebook time limit reached")
    return found


def render_summary(reports: Sequence[SubmissionReport], title: str = "Batch summary",
                   link: Callable[[str, str], str] | None = None) -> str:
    """The summary page; `link(submission, audience)` gives the relative URL of a feedback page."""
    ordered = sorted(reports, key=lambda r: r.submission)
    body = [_headline(ordered, title), _histogram(ordered), _pass_rates(ordered), _slowest(ordered),
            _problems(ordered), _students(ordered, link)]
    return page(title, "".join(body), SORT_SCRIPT)


def _headline(reports: Sequence[SubmissionReport], title: str) -> str:
    scores = [percent(r) for r in reports]
    graded = sum(1 for r in reports if r.status == "graded")
    stats = (f"{len(reports)} notebook(s), {graded} graded, {len(reports) - graded} not gradable · "
             f"mean {mean(scores):.1f}% · median {median(scores):.1f}%" if reports else "No notebooks.")
    return f'<header><h1>{esc(title)}</h1><div id="batch-stats" class="muted">{esc(stats)}</div></header>'


def histogram_counts(reports: Sequence[SubmissionReport], bins: int = HISTOGRAM_BINS) -> list[int]:
    """Notebooks per score band of 100/bins percent; 100% falls into the top band."""
    counts = [0] * bins
    for report in reports:
        counts[min(bins - 1, int(percent(report) // (100 / bins)))] += 1
    return counts


def _histogram(reports: Sequence[SubmissionReport]) -> str:
    width = 100 // HISTOGRAM_BINS
    labels = [f"{i * width}–{(i + 1) * width}" for i in range(HISTOGRAM_BINS)]
    chart = bar_chart(labels, histogram_counts(reports), title="Notebooks per score band",
                      x_label="score (% of the maximum)", width=640)
    return f'<section id="histogram"><h2>Score distribution</h2>{chart}</section>'


def _pass_rates(reports: Sequence[SubmissionReport]) -> str:
    order: dict[str, tuple[str, str]] = {}
    for report in reports:
        for check in report.checks:
            order.setdefault(check.id, (check.title, check.visibility))
    rows = []
    for check_id, (title, visibility) in order.items():
        results = [c for r in reports for c in r.checks if c.id == check_id]
        passed = sum(1 for c in results if c.status == "pass")
        skipped = sum(1 for c in results if c.status == "skipped")
        rate = passed / len(results) if results else 0.0
        note = f" ({skipped} not checked)" if skipped else ""
        rows.append(f'<tr><td><code>{esc(check_id)}</code></td><td>{esc(title)}</td><td>{esc(visibility)}</td>'
                    f'<td class="num nowrap" data-sort="{rate:.4f}">{passed} / {len(results)}{esc(note)}</td>'
                    f'<td class="nowrap">{progress_bar(rate)} {100 * rate:.0f}%</td></tr>')
    return ('<section id="pass-rates"><h2>Pass rate per check</h2><table class="sortable"><thead><tr>'
            '<th>check</th><th>what</th><th>visibility</th><th class="num">passed</th><th>rate</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></section>")


def _slowest(reports: Sequence[SubmissionReport]) -> str:
    slow = sorted(reports, key=seconds, reverse=True)[:SLOWEST_SHOWN]
    rows = "".join(f'<tr><td>{esc(r.submission)}</td><td class="num">{seconds(r):.1f} s</td></tr>' for r in slow)
    return (f'<section id="slowest"><h2>The {len(slow)} slowest notebook(s)</h2><table><thead><tr>'
            f'<th>submission</th><th class="num">run time</th></tr></thead><tbody>{rows}</tbody></table></section>')


def _problems(reports: Sequence[SubmissionReport]) -> str:
    troubled = [(r, problems(r)) for r in reports if problems(r)]
    if not troubled:
        return f'<section id="problems"><h2>Notebooks with problems</h2><p>{NO_PROBLEMS}</p></section>'
    rows = "".join(f"<tr><td>{esc(r.submission)}</td><td>{esc('; '.join(found))}</td></tr>" for r, found in troubled)
    return (f'<section id="problems"><h2>Notebooks with problems ({len(troubled)})</h2><table><thead><tr>'
            f"<th>submission</th><th>what happened</th></tr></thead><tbody>{rows}</tbody></table></section>")


def _students(reports: Sequence[SubmissionReport], link: Callable[[str, str], str] | None) -> str:
    rows = []
    for r in reports:
        links = ""
        if link is not None:
            links = (f'<a href="{esc(link(r.submission, "instructor"))}">instructor copy</a> · '
                     f'<a href="{esc(link(r.submission, "student"))}">student copy</a>')
        badge = status_badge("pass" if r.status == "graded" else "error", r.status)
        rows.append(f"<tr><td>{esc(r.submission)}</td><td>{badge}</td>"
                    f'<td class="num" data-sort="{r.score}">{points(r.score)} / {points(r.max_score)}</td>'
                    f'<td class="num" data-sort="{percent(r):.2f}">{percent(r):.0f}%</td>'
                    f'<td class="num" data-sort="{seconds(r):.2f}">{seconds(r):.1f} s</td><td>{links}</td></tr>')
    return ('<section id="students"><h2>Every notebook</h2><p class="muted small">Click a column title to sort.</p>'
            '<table class="sortable"><thead><tr><th>submission</th><th>status</th><th class="num">score</th>'
            '<th class="num">percent</th><th class="num">run time</th><th>feedback</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></section>")
