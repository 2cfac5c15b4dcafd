"""Broken and hostile notebooks, run by real kernels: each gets a report saying what happened and
the points it still earned, and the rest of the batch is graded as usual."""

from __future__ import annotations

import json

import pytest
from support import A1_LECTURE_CHECK, write_notebook

from grader.grade.api import BatchResult, grade_batch

pytestmark = pytest.mark.kernel

GOOD_DEF = """def conv_output_size(h_in, kernel_size, padding=0, stride=1):
    return (h_in - kernel_size + 2 * padding) // stride + 1"""

EDGE_RUBRIC = """
schema = 1
title = "edge cases"
[data]
source = "digits28"
[execution]
cell_timeout_s = 3
notebook_timeout_s = 60
probe_timeout_s = 10
""" + A1_LECTURE_CHECK + """[[checks]]
id = "A1.random_inputs"
kind = "function"
function = "conv_output_size"
oracle = "conv_output_size"
points = 3
visibility = "hidden"
random_cases = 5
ranges = { h_in = [1, 64], kernel_size = [1, 7], padding = [0, 3], stride = [1, 4] }
"""


@pytest.fixture(scope="module")
def edge_batch(tmp_path_factory: pytest.TempPathFactory) -> BatchResult:
    folder = tmp_path_factory.mktemp("edge")
    write_notebook(folder / "good.ipynb", GOOD_DEF)
    write_notebook(folder / "raises_then_defines.ipynb", "1 / 0", GOOD_DEF)
    write_notebook(folder / "slow_cell.ipynb", "import time\ntime.sleep(120)", GOOD_DEF)
    write_notebook(folder / "kernel_dies.ipynb", GOOD_DEF, "import os\nos._exit(3)", "after = 1")
    write_notebook(folder / "ignores_interrupt.ipynb", GOOD_DEF,
                   "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(120)",
                   "after = 1")
    write_notebook(folder / "floods_output.ipynb", "print('x' * 20_000_000)", GOOD_DEF)
    write_notebook(folder / "student_folder" / "my work.ipynb", GOOD_DEF)
    (folder / "invalid_json.ipynb").write_text('{"cells": [', "utf-8")
    (folder / "empty.ipynb").write_bytes(b"")
    rubric = tmp_path_factory.mktemp("rubric") / "edge.toml"
    rubric.write_text(EDGE_RUBRIC, "utf-8")
    return grade_batch(folder, rubric, tmp_path_factory.mktemp("edge-reports"), jobs=2)


def report_of(batch: BatchResult, name: str) -> dict:
    return json.loads((batch.out_dir / f"{name}.json").read_text("utf-8"))


def test_every_submission_gets_a_report_and_a_gradebook_row(edge_batch: BatchResult) -> None:
    names = {"good", "raises_then_defines", "slow_cell", "kernel_dies", "ignores_interrupt",
             "floods_output", "student_folder", "invalid_json", "empty"}
    assert {r.submission for r in edge_batch.reports} == names
    assert all((edge_batch.out_dir / f"{n}.json").is_file() for n in names)
    import pandas as pd

    assert set(pd.read_csv(edge_batch.gradebook)["submission"]) == names


@pytest.mark.parametrize("name, reason", [("invalid_json", "not valid JSON"), ("empty", "empty")])
def test_unreadable_notebook_reports_reason_and_every_check(edge_batch, name: str, reason: str) -> None:
    report = report_of(edge_batch, name)
    assert report["status"] == "error" and reason in report["reason"]
    assert [c["id"] for c in report["checks"]] == ["A1.lecture_examples", "A1.random_inputs"]
    assert all(c["status"] == "error" and c["score"] == 0 and reason in c["message"]
               for c in report["checks"])


def test_good_notebook_earns_everything(edge_batch) -> None:
    assert report_of(edge_batch, "good")["score"] == 5


def test_failing_cell_is_listed_and_later_cells_still_count(edge_batch) -> None:
    report = report_of(edge_batch, "raises_then_defines")
    assert report["score"] == 5
    [failed] = report["execution"]["failed_cells"]
    assert (failed["index"], failed["error"], failed["source_excerpt"]) == (0, "ZeroDivisionError", "1 / 0")


def test_cell_past_its_time_limit_is_interrupted_and_the_next_cell_runs(edge_batch) -> None:
    report = report_of(edge_batch, "slow_cell")
    [slow] = report["execution"]["timed_out_cells"]
    assert slow["index"] == 0 and "3 s" in slow["message"]
    assert report["score"] == 5
    assert report["execution"]["seconds"] < 30


def test_kernel_death_replays_earlier_cells_and_keeps_their_points(edge_batch) -> None:
    report = report_of(edge_batch, "kernel_dies")
    execution = report["execution"]
    assert execution["kernel_died"] and execution["kernel_died_at_cell"] == 1
    assert execution["kernel_exit_code"] == 3
    assert execution["not_run_cells"] == [2]
    assert "died at cell 2" in execution["warnings"][0]
    assert report["score"] == 5


def test_cell_ignoring_the_interrupt_is_killed_and_earlier_cells_keep_their_points(edge_batch) -> None:
    report = report_of(edge_batch, "ignores_interrupt")
    execution = report["execution"]
    assert [c["index"] for c in execution["timed_out_cells"]] == [1]
    assert execution["not_run_cells"] == [2]
    assert "did not stop when interrupted" in execution["warnings"][0]
    assert report["score"] == 5


def test_output_flood_is_capped_marked_and_graded(edge_batch) -> None:
    report = report_of(edge_batch, "floods_output")
    assert report["score"] == 5 and report["execution"]["output_capped_cells"] == [0]
    executed_path = edge_batch.out_dir / report["files"]["notebook"]
    assert executed_path.stat().st_size < 1_000_000
    texts = [o.get("text", "") for o in json.loads(executed_path.read_text())["cells"][0]["outputs"]]
    assert any("output capped here" in t for t in texts)


def test_per_student_folder_is_one_submission(edge_batch) -> None:
    report = report_of(edge_batch, "student_folder")
    assert report["notebook"].endswith("my work.ipynb") and report["score"] == 5
