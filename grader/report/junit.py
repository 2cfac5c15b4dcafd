"""JUnit XML, a view of one SubmissionReport: a test case per check, as CI systems read it.

Conventions followed (those of pytest's junitxml and the Jenkins/GitLab/GitHub readers): one
<testsuite> per notebook inside <testsuites>; a failed check is a <failure>, a check that could
not be judged an <error>, a check this grader version does not evaluate <skipped>."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from grader.report.explain import cell_notes, explain
from grader.report.model import CheckResult, SubmissionReport
from grader.report.text import clean_text, points

SUITE_NAME = "grader.{submission}"
FAILURE_MESSAGE = "{score} of {max_score} points: {title}"
SUMMARY = "Score: {score} / {max_score} points ({status})"


def render_junit(report: SubmissionReport) -> str:
    """The report as a JUnit XML document (UTF-8, with declaration)."""
    seconds = report.execution.seconds if report.execution else 0.0
    counts = {status: sum(1 for c in report.checks if c.status == status) for status in ("fail", "error", "skipped")}
    root = ET.Element("testsuites", name="grader", tests=str(len(report.checks)), failures=str(counts["fail"]),
                      errors=str(counts["error"]), skipped=str(counts["skipped"]), time=f"{seconds:.3f}")
    suite = ET.SubElement(root, "testsuite", name=clean_text(SUITE_NAME.format(submission=report.submission)),
                          tests=str(len(report.checks)), failures=str(counts["fail"]), errors=str(counts["error"]),
                          skipped=str(counts["skipped"]), time=f"{seconds:.3f}",
                          timestamp=report.graded_at)
    properties = ET.SubElement(suite, "properties")
    for name, value in (("score", points(report.score)), ("max_score", points(report.max_score)),
                        ("status", report.status), ("seed", str(report.seed)),
                        ("notebook_sha256", report.notebook_sha256), ("grader_version", report.grader_version)):
        ET.SubElement(properties, "property", name=name, value=clean_text(value))
    for check in report.checks:
        _testcase(suite, report.submission, check)
    ET.SubElement(suite, "system-out").text = clean_text(_summary(report))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _testcase(suite: ET.Element, submission: str, check: CheckResult) -> None:
    case = ET.SubElement(suite, "testcase", classname=clean_text(f"{submission}.{check.task}"),
                         name=clean_text(f"{check.id}: {check.title}"), time="0")
    if check.status == "pass":
        return
    if check.status == "skipped":
        ET.SubElement(case, "skipped", message=clean_text(check.message))
        return
    tag = "failure" if check.status == "fail" else "error"
    element = ET.SubElement(case, tag, type=check.status, message=clean_text(FAILURE_MESSAGE.format(
        score=points(check.score), max_score=points(check.max_score), title=check.title)))
    element.text = "\n".join(explain(check).lines())


def _summary(report: SubmissionReport) -> str:
    lines = [SUMMARY.format(score=points(report.score), max_score=points(report.max_score), status=report.status)]
    if report.reason:
        lines.append(report.reason)
    lines += [note.line() for note in cell_notes(report.execution)]
    return "\n".join(lines)
