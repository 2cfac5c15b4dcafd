"""`grader score` / `rescore()` re-score a graded batch from saved observations, starting no kernel."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from support import edited_rubric

from grader.cli import main
from grader.grade.api import rescore

pytestmark = pytest.mark.kernel  # it re-scores the session's real sample batch


@pytest.fixture
def no_kernels(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make any attempt to start a kernel or run a notebook fail loudly, and record it."""
    attempts: list[str] = []

    def refuse(*args, **kwargs):
        attempts.append("kernel")
        raise AssertionError("a kernel was started during a re-score")

    monkeypatch.setattr("jupyter_client.manager.KernelManager.start_kernel", refuse)
    monkeypatch.setattr("grader.execute.local.LocalKernelExecutor.run", refuse)
    monkeypatch.setattr("grader.execute.kernel.start_kernel_session", refuse)
    return attempts


@pytest.fixture
def batch_copy(sample_batch, tmp_path):
    target = tmp_path / "reports"
    shutil.copytree(sample_batch.out_dir, target)
    return target


def test_points_change_is_applied_without_a_kernel(batch_copy, tmp_path, no_kernels) -> None:
    slide = 'title = "The lecture\'s 3x3 image * 2x2 kernel example"'
    rubric = edited_rubric(tmp_path, (f"points = 2\n{slide}", f"points = 10\n{slide}"))
    before = json.loads((batch_copy / "fails_A2_hardcoded_slide.json").read_text())
    result = rescore(batch_copy, rubric)
    after = json.loads((batch_copy / "fails_A2_hardcoded_slide.json").read_text())
    assert no_kernels == []
    assert before["score"] == 95 and after["score"] == 103
    assert after["max_score"] == before["max_score"] + 8
    assert next(c for c in after["checks"] if c["id"] == "A2.slide_example")["score"] == 10
    assert after["seed"] == before["seed"] and after["rubric_sha256"] != before["rubric_sha256"]
    import pandas as pd

    row = pd.read_csv(result.gradebook).set_index("submission").loc["fails_A2_hardcoded_slide"]
    assert row["A2"] == 10 and row["total"] == 103


def test_tolerance_change_is_applied_without_a_kernel(batch_copy, tmp_path, no_kernels) -> None:
    # With an absurd tolerance, the flipped kernel's wrong values are "close enough".
    rubric = edited_rubric(tmp_path, (
        'title = "2D convolution of random images and kernels"',
        'title = "2D convolution of random images and kernels"\natol = 1000.0'))
    rescore(batch_copy, rubric)
    report = json.loads((batch_copy / "fails_A2_flipped_kernel.json").read_text())
    checks = {c["id"]: c["status"] for c in report["checks"]}
    assert no_kernels == []
    assert checks["A2.random_inputs"] == "pass" and checks["A2.slide_example"] == "fail"


def test_cli_score_command_rescores_without_a_kernel(batch_copy, no_kernels) -> None:
    result = CliRunner().invoke(main, ["score", str(batch_copy), "--rubric", "rubrics/ex06.toml"])
    assert result.exit_code == 0, result.output
    assert "Re-scored 23 report(s)" in result.output
    assert no_kernels == []


def test_check_added_after_grading_is_an_error_not_a_pass(batch_copy, tmp_path, no_kernels) -> None:
    rubric = edited_rubric(tmp_path, ('id = "A4.explicit_stride"', 'id = "A4.explicit_stride_v2"'))
    rescore(batch_copy, rubric)
    report = json.loads((batch_copy / "passes_all_loops.json").read_text())
    added = next(c for c in report["checks"] if c["id"] == "A4.explicit_stride_v2")
    assert added["status"] == "error" and "grade the notebook again" in added["message"]
