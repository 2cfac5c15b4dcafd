"""An interrupted batch (killed while a notebook runs) resumes without grading finished notebooks
again, and its gradebook then covers every submission."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from support import A1_LECTURE_CHECK, GOOD_DEF, REPO, processes_running, wait_for, write_notebook

from grader.grade.api import grade_batch

pytestmark = pytest.mark.kernel

RUBRIC = """
schema = 1
title = "resume"
[data]
source = "digits28"
[execution]
cell_timeout_s = 4
notebook_timeout_s = 60
""" + A1_LECTURE_CHECK

SLOW = "import subprocess, time\nsubprocess.Popen(['sleep', '7921'])\ntime.sleep(60)"
MARK = b"sleep\x007921\x00"


def test_interrupted_batch_resumes_without_regrading_finished_notebooks(tmp_path: Path) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    write_notebook(folder / "a_first.ipynb", GOOD_DEF)
    write_notebook(folder / "b_slow.ipynb", GOOD_DEF, SLOW)
    write_notebook(folder / "c_last.ipynb", GOOD_DEF)
    rubric = tmp_path / "rubric.toml"
    rubric.write_text(RUBRIC, "utf-8")
    batch = subprocess.Popen(
        [sys.executable, "-m", "grader", "grade", str(folder), "--rubric", str(rubric), "--out", str(out),
         "--jobs", "1", "--quiet"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Kill the batch while b_slow's cell runs (its sleep process shows it got that far).
        assert wait_for(lambda: processes_running(MARK), 120), "b_slow never started its cell"
        batch.send_signal(signal.SIGTERM)
        _, stderr = batch.communicate(timeout=60)
    finally:
        batch.kill()
    assert batch.returncode == 130 and "--resume" in stderr
    assert (out / "a_first.json").is_file()
    assert not (out / "b_slow.json").exists() and not (out / "c_last.json").exists()
    assert wait_for(lambda: not processes_running(MARK), 10), "the killed batch left a process behind"
    finished = (out / "a_first.json").read_bytes()

    started: list[str] = []
    result = grade_batch(folder, rubric, out, on_start=lambda s: started.append(s.id), resume=True)

    assert started == ["b_slow", "c_last"] and result.resumed == 1
    assert (out / "a_first.json").read_bytes() == finished
    gradebook = pd.read_csv(result.gradebook)
    assert sorted(gradebook["submission"]) == ["a_first", "b_slow", "c_last"]
    assert list(gradebook.sort_values("submission")["total"]) == [2, 2, 2]


def test_resume_grades_again_when_the_notebook_changed(tmp_path: Path) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    rubric = tmp_path / "rubric.toml"
    rubric.write_text(RUBRIC, "utf-8")
    write_notebook(folder / "student.ipynb", "conv_output_size = None")
    assert grade_batch(folder, rubric, out).reports[0].score == 0
    write_notebook(folder / "student.ipynb", GOOD_DEF)  # handed in again
    started: list[str] = []
    result = grade_batch(folder, rubric, out, on_start=lambda s: started.append(s.id), resume=True)
    assert started == ["student"] and result.resumed == 0 and result.reports[0].score == 2
