"""`grader check`: the student's self-check on a real notebook, public checks only."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner
from support import A1_LECTURE_CHECK, REPO, SAMPLES, write_notebook

from grader.cli import main


@pytest.mark.kernel
def test_self_check_shows_public_checks_only_and_says_so() -> None:
    result = CliRunner().invoke(main, ["check", str(SAMPLES / "fails_A2_hardcoded_slide.ipynb")])
    assert result.exit_code == 0, result.output
    assert "public checks only" in result.output and "not the final score" in result.output
    assert "[PASS] A2.slide_example" in result.output
    assert "[FAIL] A2.random_inputs" in result.output
    assert "case(s) differ from PyTorch" in result.output
    assert "A2.padding_stride" not in result.output  # hidden
    # The public checks are worth 90 points, of which A2.random_inputs (3) is lost.
    assert "Public checks: 87 / 90 points." in result.output


def test_committed_samples_match_their_generator() -> None:
    completed = subprocess.run([sys.executable, str(REPO / "tests" / "make_samples.py"), "--check"],
                               capture_output=True, text=True, cwd=REPO)
    assert completed.returncode == 0, completed.stdout + completed.stderr


@pytest.mark.kernel
def test_check_notebook_writes_what_grader_check_writes(tmp_path) -> None:
    # The library call does all of `grader check`: a Python caller needs no CLI to get the files.
    from grader.grade.api import CheckOutputs, check_notebook

    rubric = tmp_path / "rubric.toml"
    rubric.write_text('schema = 1\ntitle = "A1 only"\n[data]\nsource = "digits28"\n' + A1_LECTURE_CHECK, "utf-8")
    notebook = write_notebook(tmp_path / "alice.ipynb", "def conv_output_size(h_in, kernel_size, padding=0, "
                                                        "stride=1):\n    return h_in")
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    outputs = CheckOutputs(tmp_path / "fb.html", tmp_path / "junit.xml", tmp_path / "results.json", summary)
    report = check_notebook(notebook, rubric, tmp_path / "out", outputs=outputs)
    assert report.score == 0 and report.checks[0].status == "fail"
    assert "alice" in outputs.html.read_text() and "A1.lecture_examples" in outputs.junit.read_text()
    assert '"score": 0' in outputs.gradescope.read_text()
    assert summary.read_text().startswith("# earlier step\n### grader check alice.ipynb: 0 / 2 points")
    assert (tmp_path / "out" / "alice.json").is_file()
