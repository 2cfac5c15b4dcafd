"""The CLI's report flags and console output, with the library call patched (no kernel)."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from gradescope_spec import validate_results

from grader.cli import main
from grader.grade.api import BatchResult, write_check_outputs
from grader.report.model import SubmissionReport

FIXTURE = Path(__file__).parent / "fixtures" / "report_model_details.json"


@pytest.fixture
def report() -> SubmissionReport:
    return SubmissionReport.from_dict(json.loads(FIXTURE.read_text("utf-8")))


@pytest.fixture
def check_calls(monkeypatch, report) -> list[dict]:
    calls: list[dict] = []

    def fake_check(notebook, rubric=None, out_dir=None, seed=None, include_hidden=False, outputs=None):
        # Grading is faked; the files are written by the library's own writer, as check_notebook does.
        calls.append({"notebook": notebook, "include_hidden": include_hidden})
        checked = report if include_hidden else report.public_view()
        write_check_outputs(checked, outputs, f"grader check {notebook.name}", include_hidden)
        return checked

    monkeypatch.setattr("grader.grade.api.check_notebook", fake_check)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return calls


def invoke(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), env=env)


def test_min_score_below_exits_3_and_says_why(check_calls) -> None:
    result = invoke("check", "nb.ipynb", "--min-score", "50%")
    assert result.exit_code == 3, result.output
    assert "Score 41.9% is below --min-score 50%." in result.stderr  # 39 of 93 public points


def test_min_score_reached_exits_0(check_calls) -> None:
    assert invoke("check", "nb.ipynb", "--min-score", "39").exit_code == 0
    assert invoke("check", "nb.ipynb", "--min-score", "39.5").exit_code == 3


def test_min_score_that_is_not_a_number_is_a_usage_error_before_grading(check_calls) -> None:
    result = invoke("check", "nb.ipynb", "--min-score", "lots")
    assert result.exit_code == 2 and "--min-score" in result.output
    assert check_calls == []


def test_report_files_are_written_and_public_only_by_default(check_calls, tmp_path) -> None:
    junit, results, html = tmp_path / "out" / "junit.xml", tmp_path / "results.json", tmp_path / "fb.html"
    outcome = invoke("check", "nb.ipynb", "--junit", str(junit), "--gradescope", str(results), "--html", str(html))
    assert outcome.exit_code == 0, outcome.output
    assert check_calls == [{"notebook": Path("nb.ipynb"), "include_hidden": False}]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert int(suite.get("tests")) == 15  # public checks only
    assert validate_results(json.loads(results.read_text())) == []
    assert "A4.explicit_stride" not in html.read_text()
    assert f"Wrote {junit}" in outcome.stdout


def test_all_checks_grades_hidden_ones_for_autograders(check_calls, tmp_path) -> None:
    results = tmp_path / "results.json"
    outcome = invoke("check", "nb.ipynb", "--all-checks", "--quiet", "--gradescope", str(results))
    assert outcome.exit_code == 0 and check_calls[0]["include_hidden"] is True
    tests = json.loads(results.read_text())["tests"]
    assert {t["visibility"] for t in tests} == {"visible", "after_published"}
    assert "[PASS]" not in outcome.stdout  # --quiet


def test_github_step_summary_is_appended_to(check_calls, tmp_path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    outcome = invoke("check", "nb.ipynb", env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert outcome.exit_code == 0
    text = summary.read_text()
    assert text.startswith("# earlier step\n### grader check nb.ipynb: 39 / 93 points")
    assert "Public checks only" in text


def test_grade_json_is_a_machine_readable_summary(monkeypatch, report, tmp_path) -> None:
    seen = {}

    def fake_batch(submissions, rubric, out_dir, jobs=1, seed=None, resume=False, ids="auto",
                   gradebook_formats=(), executor="local", scheduler=None, **hooks):
        seen.update(hooks)
        return BatchResult(Path(out_dir), [report], Path(out_dir) / "grades.csv", 1.5, jobs, 1,
                           summary_page=Path(out_dir) / "_summary.html", log_file=Path(out_dir) / "_grader.log")

    monkeypatch.setattr("grader.grade.api.grade_batch", fake_batch)
    (tmp_path / "subs").mkdir()
    result = invoke("grade", str(tmp_path / "subs"), "--out", str(tmp_path / "out"), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["summary_page"].endswith("_summary.html") and data["log_file"].endswith("_grader.log")
    entry = data["submissions"][0]
    assert entry["score"] == 44.0 and entry["failed_cells"] == 1
    assert entry["feedback"]["student"].endswith("model_details/feedback.html")
    assert seen == {}  # no progress hooks: stderr is not a terminal and --json was given


def test_progress_shows_done_total_current_notebooks_and_eta(report) -> None:
    from rich.console import Console

    from grader.console import BatchProgress
    from grader.grade.submissions import Submission

    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=160, color_system=None)
    with BatchProgress(console) as progress:
        progress.found([Submission(n, None) for n in ("model_details", "bob", "carol")])
        progress.started(Submission("model_details", None))
        progress.started(Submission("bob", None))
        progress.finished(report)
        progress.progress.refresh()
        screen = stream.getvalue()
    assert "model_details: 44 / 100 (graded, 32.6 s)" in screen
    assert "1/3 done" in screen and "now: bob" in screen
    assert re.search(r"ETA \d+:\d\d", screen)  # from the first finished notebook on


def test_template_command_prints_the_workflow() -> None:
    import yaml

    result = invoke("template", "github-classroom")
    assert result.exit_code == 0
    steps = yaml.safe_load(result.stdout)["jobs"]["grade"]["steps"]
    assert any("grader check" in step.get("run", "") for step in steps)


def test_progress_replaces_the_stderr_log_handlers_while_it_runs() -> None:
    import logging

    from rich.console import Console

    from grader.console import BatchProgress

    root = logging.getLogger()
    before = list(root.handlers)
    with BatchProgress(Console(file=io.StringIO(), force_terminal=True)) as progress:
        assert root.handlers == [progress.handler]
    assert root.handlers == before
