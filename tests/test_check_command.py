"""`grader check`: the student's self-check on a real notebook, public checks only."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner
from support import REPO, SAMPLES

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
