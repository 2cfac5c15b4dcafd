"""Broken and hostile notebooks, run by real kernels: each gets a report saying what happened and
the points it still earned, and the rest of the batch is graded as usual. They are graded in the
session's hostile gallery (tests/hostile_gallery.py), one batch with every other hostile notebook
of the tests: a correct conv_output_size earns A1_POINTS there, a cell gets CELL_TIMEOUT_S."""

from __future__ import annotations

import json

import pytest
from hostile_gallery import A1_POINTS, CELL_TIMEOUT_S, CHECK_IDS, CORRECT, Gallery

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def edge_batch(hostile_gallery: Gallery) -> Gallery:
    """These notebooks are graded in the session's hostile gallery (tests/hostile_gallery.py)."""
    return hostile_gallery


def report_of(batch: Gallery, name: str) -> dict:
    return json.loads((batch.out_dir / f"{name}.json").read_text("utf-8"))


def test_every_submission_gets_a_report_and_a_gradebook_row(edge_batch: Gallery) -> None:
    names = {"raises_then_defines", "slow_cell", "kernel_dies", "ignores_interrupt",
             "floods_output", "student_folder", "invalid_json", "empty"}
    assert set(edge_batch.names["test_execution"]) == names
    assert names <= {r["submission"] for r in edge_batch.reports.values()}
    assert all((edge_batch.out_dir / f"{n}.json").is_file() for n in names)
    import pandas as pd

    assert names <= set(pd.read_csv(edge_batch.out_dir / "grades.csv")["submission"])


@pytest.mark.parametrize("name, reason", [("invalid_json", "not valid JSON"), ("empty", "empty")])
def test_unreadable_notebook_reports_reason_and_every_check(edge_batch, name: str, reason: str) -> None:
    report = report_of(edge_batch, name)
    assert report["status"] == "error" and reason in report["reason"]
    assert [c["id"] for c in report["checks"]] == list(CHECK_IDS)
    assert all(c["status"] == "error" and c["score"] == 0 and reason in c["message"]
               for c in report["checks"])


def test_good_notebook_earns_everything(edge_batch) -> None:
    good = report_of(edge_batch, CORRECT[0])
    assert good["score"] == good["max_score"] > A1_POINTS


def test_failing_cell_is_listed_and_later_cells_still_count(edge_batch) -> None:
    report = report_of(edge_batch, "raises_then_defines")
    assert report["score"] == A1_POINTS
    [failed] = report["execution"]["failed_cells"]
    assert (failed["index"], failed["error"], failed["source_excerpt"]) == (0, "ZeroDivisionError", "1 / 0")


def test_cell_past_its_time_limit_is_interrupted_and_the_next_cell_runs(edge_batch) -> None:
    report = report_of(edge_batch, "slow_cell")
    [slow] = report["execution"]["timed_out_cells"]
    assert slow["index"] == 0 and f"{CELL_TIMEOUT_S} s" in slow["message"]
    assert report["score"] == A1_POINTS
    assert report["execution"]["seconds"] < 30


def test_kernel_death_replays_earlier_cells_and_keeps_their_points(edge_batch) -> None:
    report = report_of(edge_batch, "kernel_dies")
    execution = report["execution"]
    assert execution["kernel_died"] and execution["kernel_died_at_cell"] == 1
    assert execution["kernel_exit_code"] == 3
    assert execution["not_run_cells"] == [2]
    assert "died at cell 2" in execution["warnings"][0]
    assert report["score"] == A1_POINTS


def test_cell_ignoring_the_interrupt_is_killed_and_earlier_cells_keep_their_points(edge_batch) -> None:
    report = report_of(edge_batch, "ignores_interrupt")
    execution = report["execution"]
    assert [c["index"] for c in execution["timed_out_cells"]] == [1]
    assert execution["not_run_cells"] == [2]
    assert "did not stop when interrupted" in execution["warnings"][0]
    assert report["score"] == A1_POINTS


def test_output_flood_is_capped_marked_and_graded(edge_batch) -> None:
    report = report_of(edge_batch, "floods_output")
    assert report["score"] == A1_POINTS and report["execution"]["output_capped_cells"] == [0]
    executed_path = edge_batch.out_dir / report["files"]["notebook"]
    assert executed_path.stat().st_size < 1_000_000
    texts = [o.get("text", "") for o in json.loads(executed_path.read_text())["cells"][0]["outputs"]]
    assert any("output capped here" in t for t in texts)


def test_per_student_folder_is_one_submission(edge_batch) -> None:
    report = report_of(edge_batch, "student_folder")
    assert report["notebook"].endswith("my work.ipynb") and report["score"] == A1_POINTS
