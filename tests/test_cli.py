"""The `grader` CLI, without running notebooks: the library calls are patched and the arguments
they receive are asserted (papermill's way of keeping a CLI honest)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import grader
import grader.grade.api as api
from grader.cli import SELF_CHECK_BANNER, main
from grader.grade.api import BatchResult, CheckOutputs
from grader.observe.execution import ExecutionReport
from grader.report.model import CheckResult, SubmissionReport, TaskScore
from grader.rubric.model import Rubric

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RUBRIC = ROOT / "rubrics" / "ex06.toml"


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), prog_name="grader")


def sample_report(submission: str = "alice") -> SubmissionReport:
    checks = [CheckResult("A1.lecture_examples", "A1", "Output size", "pass", 1.0, 1.0, "public", "ok"),
              CheckResult("A1.stride_floor", "A1", "Rounds down", "fail", 0.0, 1.0, "hidden", "SECRET-HIDDEN"),
              CheckResult("A2.slide_example", "A2", "Slide example", "fail", 0.0, 2.0, "public",
                          "expected [[19, 25], [37, 43]], got [[0, 0], [0, 0]].")]
    return SubmissionReport(
        submission=submission, status="graded", score=1.0, max_score=4.0, seed=5, seed_policy="fixed",
        checks=checks,
        tasks=[TaskScore("A1", "conv_output_size", 1.0, 2.0), TaskScore("A2", "conv2d_single", 0.0, 2.0)],
        execution=ExecutionReport(seconds=1.0), notebook=f"{submission}.ipynb",
        notebook_sha256="", rubric=str(DEFAULT_RUBRIC), rubric_sha256="", grader_version=grader.__version__)


class Recorder:
    """Stands in for a library call: records its arguments and returns a canned result."""

    def __init__(self, result) -> None:
        self.result = result
        self.calls: list[tuple[tuple, dict]] = []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return self.result


def never_grade(*args, **kwargs):
    raise AssertionError("a notebook would have been graded")


@pytest.fixture(autouse=True)
def no_real_grading(monkeypatch):
    """Whatever a test forgets to patch, no kernel starts."""
    monkeypatch.setattr(api, "grade_submission", never_grade)


# ------------------------------------------------------------------------ grade


def test_grade_passes_its_options_to_grade_batch(monkeypatch, tmp_path):
    submissions, out = tmp_path / "subs", tmp_path / "reports"
    submissions.mkdir()
    fake = Recorder(BatchResult(out, [sample_report()], out / "grades.csv", 1.5, 2, 4))
    monkeypatch.setattr(api, "grade_batch", fake)
    result = invoke("grade", str(submissions), "--rubric", str(DEFAULT_RUBRIC), "--out", str(out),
                    "--jobs", "2", "--seed", "7")
    assert result.exit_code == 0, result.output
    [(args, kwargs)] = fake.calls
    assert args[0] == submissions
    assert isinstance(args[1], Rubric) and args[1].path == DEFAULT_RUBRIC
    assert args[2] == out
    assert kwargs["jobs"] == 2
    assert kwargs["seed"] == 7
    # The progress hooks are given only when a progress bar is shown (stderr is a terminal).
    assert "on_start" not in kwargs and "on_done" not in kwargs
    assert "alice" in result.stdout


def test_grade_defaults(monkeypatch, tmp_path):
    submissions = tmp_path / "subs"
    submissions.mkdir()
    fake = Recorder(BatchResult(Path("reports"), [], Path("reports/grades.csv"), 0.1, 1, 1))
    monkeypatch.setattr(api, "grade_batch", fake)
    result = invoke("grade", str(submissions))
    assert result.exit_code == 0, result.output
    [(args, kwargs)] = fake.calls
    assert args[1].path.resolve() == DEFAULT_RUBRIC
    assert args[2] == Path("reports")
    assert kwargs["jobs"] == 1
    assert kwargs["seed"] is None
    assert kwargs["ids"] == "auto" and kwargs["gradebook_formats"] == ()


def test_grade_passes_the_id_rule_and_gradebook_formats(monkeypatch, tmp_path):
    submissions = tmp_path / "subs"
    submissions.mkdir()
    fake = Recorder(BatchResult(Path("reports"), [], Path("reports/grades.csv"), 0.1, 1, 1))
    monkeypatch.setattr(api, "grade_batch", fake)
    result = invoke("grade", str(submissions), "--ids", "canvas", "--gradebook-format", "canvas",
                    "--gradebook-format", "moodle")
    assert result.exit_code == 0, result.output
    [(_, kwargs)] = fake.calls
    assert kwargs["ids"] == "canvas" and kwargs["gradebook_formats"] == ("canvas", "moodle")
    assert invoke("grade", str(submissions), "--ids", "brightspace").exit_code == 2


def test_grade_table_shows_a_hostile_id_escaped_never_as_markup_or_control_codes(monkeypatch, tmp_path):
    from dataclasses import replace

    submissions = tmp_path / "subs"
    submissions.mkdir()
    hostile = replace(sample_report(), submission="x-0123abcd",
                      student_id="[bold red]\x1b[2Jgraded alice 100 of 100\r\n", student_name="=HYPERLINK()")
    fake = Recorder(BatchResult(Path("reports"), [hostile], Path("reports/grades.csv"), 0.1, 1, 1))
    monkeypatch.setattr(api, "grade_batch", fake)
    result = invoke("grade", str(submissions))
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\r" not in result.stdout
    assert "[bold red]\\x1b[2Jgraded alice" in result.stdout.replace("\n", "")


def test_grade_jobs_auto_is_passed_to_grade_batch(monkeypatch, tmp_path):
    submissions = tmp_path / "subs"
    submissions.mkdir()
    fake = Recorder(BatchResult(tmp_path, [], tmp_path / "grades.csv", 0.1, 2, 1))
    monkeypatch.setattr(api, "grade_batch", fake)
    result = invoke("grade", str(submissions), "--jobs", "auto")
    assert result.exit_code == 0, result.output
    [(_, kwargs)] = fake.calls
    assert kwargs["jobs"] == "auto"


@pytest.mark.parametrize("jobs", ["many", "1.5", "-2", ""])
def test_jobs_that_are_neither_a_number_nor_auto_are_a_usage_error(tmp_path, jobs):
    result = invoke("grade", str(tmp_path), "--jobs", jobs)
    assert result.exit_code == 2
    assert "expected a positive number or 'auto'" in result.stderr


def test_grade_json_prints_a_machine_readable_summary_on_stdout(monkeypatch, tmp_path):
    submissions, out = tmp_path / "subs", tmp_path / "reports"
    submissions.mkdir()
    fake = Recorder(BatchResult(out, [sample_report("bob"), sample_report("alice")], out / "grades.csv", 1.5, 2, 4,
                                parallelism="--jobs auto: 2 at once, 4 torch thread(s) each (8 core(s); ...)",
                                timings={"submissions": {"bob": {"score_s": 0.5}}}))
    monkeypatch.setattr(api, "grade_batch", fake)
    result = invoke("grade", str(submissions), "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["gradebook"] == str(out / "grades.csv")
    assert (summary["jobs"], summary["torch_threads"]) == (2, 4)
    assert summary["parallelism"].startswith("--jobs auto: 2 at once")
    assert summary["timings"] == {"submissions": {"bob": {"score_s": 0.5}}}
    assert [s["submission"] for s in summary["submissions"]] == ["bob", "alice"]
    assert summary["submissions"][0].items() >= {"submission": "bob", "status": "graded", "score": 1.0,
                                                 "max_score": 4.0}.items()


def test_grade_library_error_is_one_error_line(monkeypatch, tmp_path):
    from grader.errors import SubmissionsError

    submissions = tmp_path / "subs"
    submissions.mkdir()

    def failing(*args, **kwargs):
        raise SubmissionsError(f"No submissions found in {submissions}: expected .ipynb files")

    monkeypatch.setattr(api, "grade_batch", failing)
    result = invoke("grade", str(submissions))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"Error: No submissions found in {submissions}: expected .ipynb files"]
    assert "Traceback" not in result.output


# ------------------------------------------------------------------------ check


def test_check_passes_notebook_rubric_and_out_to_check_notebook(monkeypatch, tmp_path):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    fake = Recorder(sample_report())
    monkeypatch.setattr(api, "check_notebook", fake)
    rubric, out = tmp_path / "mine.toml", tmp_path / "out"
    result = invoke("check", "my notebook.ipynb", "--rubric", str(rubric), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert fake.calls == [((Path("my notebook.ipynb"), rubric, out), {"outputs": CheckOutputs()})]


def test_check_defaults_to_the_bundled_rubric_and_no_out_folder(monkeypatch):
    fake = Recorder(sample_report())
    monkeypatch.setattr(api, "check_notebook", fake)
    result = invoke("check", "nb.ipynb")
    assert result.exit_code == 0, result.output
    [(args, _)] = fake.calls
    assert args[0] == Path("nb.ipynb")
    assert Path(args[1]).resolve() == DEFAULT_RUBRIC
    assert args[2] is None


def test_check_says_it_covers_public_checks_only_and_hides_hidden_ones(monkeypatch):
    monkeypatch.setattr(api, "check_notebook", Recorder(sample_report()))
    result = invoke("check", "nb.ipynb")
    assert SELF_CHECK_BANNER in result.stdout
    assert "A1.lecture_examples" in result.stdout
    assert "A1.stride_floor" not in result.stdout
    assert "SECRET-HIDDEN" not in result.stdout
    assert "Public checks: 1 / 3 points." in result.stdout


def test_check_json_prints_the_report(monkeypatch):
    monkeypatch.setattr(api, "check_notebook", Recorder(sample_report()))
    result = invoke("check", "nb.ipynb", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["submission"] == "alice"


# ------------------------------------------------------------------------ score


def test_score_passes_folder_and_loaded_rubric_to_rescore(monkeypatch, tmp_path):
    fake = Recorder(BatchResult(tmp_path, [sample_report()], tmp_path / "grades.csv", 0.2, 0, 0))
    monkeypatch.setattr(api, "rescore", fake)
    result = invoke("score", str(tmp_path), "--rubric", str(DEFAULT_RUBRIC))
    assert result.exit_code == 0, result.output
    [(args, kwargs)] = fake.calls
    assert args[0] == tmp_path
    assert isinstance(args[1], Rubric) and args[1].path == DEFAULT_RUBRIC
    assert kwargs == {}
    assert "Re-scored 1 report(s)" in result.stdout


def test_score_quiet_prints_nothing(monkeypatch, tmp_path):
    monkeypatch.setattr(api, "rescore", Recorder(BatchResult(tmp_path, [sample_report()], tmp_path, 0.2, 0, 0)))
    result = invoke("score", str(tmp_path), "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""


# ------------------------------------------------------------------------ rubric errors


def one_error_line(result, *parts: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    for part in parts:
        assert part in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["grade", "check", "score"])
def test_missing_rubric_is_one_error_line_naming_the_file(monkeypatch, tmp_path, command):
    for name in ("grade_batch", "check_notebook", "rescore"):
        if name != "check_notebook":  # `check` loads the rubric inside check_notebook
            monkeypatch.setattr(api, name, never_grade)
    missing = tmp_path / "missing.toml"
    target = tmp_path / "x.ipynb" if command == "check" else tmp_path
    result = invoke(command, str(target), "--rubric", str(missing))
    one_error_line(result, str(missing), "not found")


@pytest.mark.parametrize("command", ["grade", "check", "score"])
def test_invalid_rubric_is_one_error_line_naming_file_and_field(monkeypatch, tmp_path, command):
    for name in ("grade_batch", "rescore"):
        monkeypatch.setattr(api, name, never_grade)
    reference = (ROOT / "reference" / "ex06_reference.py").as_posix()
    text = (DEFAULT_RUBRIC.read_text("utf-8")
            .replace('module = "../reference/ex06_reference.py"', f'module = "{reference}"', 1)
            .replace("points = 1\n", 'points = "four"\n', 1))
    rubric = tmp_path / "bad.toml"
    rubric.write_text(text, "utf-8")
    target = tmp_path / "x.ipynb" if command == "check" else tmp_path
    result = invoke(command, str(target), "--rubric", str(rubric))
    one_error_line(result, str(rubric), "checks[0] (A1.lecture_examples).points", "'four'")


# ------------------------------------------------------------------------ usage


def test_unknown_option_is_a_usage_error(tmp_path):
    result = invoke("grade", str(tmp_path), "--bogus")
    assert result.exit_code == 2
    assert "No such option" in result.stderr


def test_jobs_below_one_is_a_usage_error(tmp_path):
    result = invoke("grade", str(tmp_path), "--jobs", "0")
    assert result.exit_code == 2


def test_missing_submissions_folder_is_a_usage_error(tmp_path):
    result = invoke("grade", str(tmp_path / "nowhere"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_unknown_command_is_a_usage_error():
    assert invoke("grde").exit_code == 2


@pytest.mark.parametrize("command", [[], ["grade"], ["check"], ["score"], ["data"], ["data", "digits28"]])
def test_help_of_each_command(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Usage: {' '.join(['grader', *command])} ")


def test_short_help_option():
    result = invoke("-h")
    assert result.exit_code == 0
    assert "grade" in result.stdout and "check" in result.stdout and "score" in result.stdout


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout == f"grader, version {grader.__version__}\n"
    assert grader.__version__ == "0.1.0"


def test_help_imports_neither_torch_nor_rich():
    code = ("import sys\n"
            "from click.testing import CliRunner\n"
            "from grader.cli import main\n"
            "assert CliRunner().invoke(main, ['grade', '--help']).exit_code == 0\n"
            "print(sorted(m for m in ('torch', 'rich', 'pandas', 'nbclient') if m in sys.modules))\n")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                               timeout=60, check=True)
    assert completed.stdout.strip() == "[]"
