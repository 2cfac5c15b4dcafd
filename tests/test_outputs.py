"""OutputCollector (cell outputs under a byte cap), write_atomic and the gradebook writer."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from grader.execute.outputs import OutputCollector
from grader.observe.execution import CellProblem, ExecutionReport
from grader.report.model import CheckResult, SubmissionReport, TaskScore
from grader.report.writers import GRADEBOOK_NAME, write_atomic, write_gradebook


def stream(text: str, name: str = "stdout") -> dict:
    return {"msg_type": "stream", "content": {"name": name, "text": text}}


def error(ename: str = "ValueError", evalue: str = "bad") -> dict:
    return {"msg_type": "error", "content": {"ename": ename, "evalue": evalue, "traceback": ["tb line"]}}


def display(text: str) -> dict:
    return {"msg_type": "display_data", "content": {"data": {"text/plain": text}, "metadata": {}}}


CLEAR = {"msg_type": "clear_output", "content": {"wait": False}}

# ------------------------------------------------------------------------ OutputCollector


def test_consecutive_stream_messages_of_one_name_coalesce():
    collector = OutputCollector(max_bytes=1000)
    for text in ("epoch 1\n", "epoch 2\n", "epoch 3\n"):
        collector.add(stream(text))
    assert collector.finished_outputs() == [{"output_type": "stream", "name": "stdout",
                                             "text": "epoch 1\nepoch 2\nepoch 3\n"}]


def test_streams_of_different_names_stay_apart():
    collector = OutputCollector(max_bytes=1000)
    collector.add(stream("a"))
    collector.add(stream("warn", name="stderr"))
    collector.add(stream("b"))
    assert [(o["name"], o["text"]) for o in collector.finished_outputs()] == [
        ("stdout", "a"), ("stderr", "warn"), ("stdout", "b")]


def test_text_beyond_max_bytes_is_dropped_and_counted():
    collector = OutputCollector(max_bytes=10)
    collector.add(stream("0123456789ABCDE"))
    collector.add(stream("more"))
    assert collector.outputs == [{"output_type": "stream", "name": "stdout", "text": "0123456789"}]
    assert collector.kept_bytes == 10
    assert collector.dropped_bytes == 9


def test_finished_outputs_end_with_a_visible_truncation_mark():
    collector = OutputCollector(max_bytes=10)
    collector.add(stream("0123456789ABCDE"))
    outputs = collector.finished_outputs()
    assert outputs[0]["text"] == "0123456789"
    assert outputs[-1]["output_type"] == "stream"
    assert outputs[-1]["name"] == "stderr"
    assert "output capped here; 5 more bytes were not kept" in outputs[-1]["text"]


def test_no_truncation_mark_when_nothing_was_dropped():
    collector = OutputCollector(max_bytes=10)
    collector.add(stream("0123456789"))
    assert collector.finished_outputs() == [{"output_type": "stream", "name": "stdout", "text": "0123456789"}]


def test_display_data_beyond_the_cap_is_dropped_whole():
    collector = OutputCollector(max_bytes=20)
    collector.add(display("x" * 100))
    assert collector.outputs == []
    assert collector.dropped_bytes > 100


def test_error_outputs_are_always_kept_even_past_the_cap():
    collector = OutputCollector(max_bytes=5)
    collector.add(stream("0123456789"))
    collector.add(error("RuntimeError", "shape mismatch"))
    outputs = collector.finished_outputs()
    errors = [o for o in outputs if o["output_type"] == "error"]
    assert errors == [{"output_type": "error", "ename": "RuntimeError", "evalue": "shape mismatch",
                       "traceback": ["tb line"]}]


def test_clear_output_keeps_errors_only():
    collector = OutputCollector(max_bytes=10_000)
    collector.add(stream("progress 10%\n"))
    collector.add(error())
    collector.add(display("a plot"))
    collector.add(CLEAR)
    assert [o["output_type"] for o in collector.outputs] == ["error"]
    collector.add(stream("progress 100%\n"))
    assert [o["output_type"] for o in collector.outputs] == ["error", "stream"]


def test_output_after_clear_output_gets_the_room_that_was_cleared():
    # A cell that redraws its progress with clear_output() never shows more than the last line,
    # so the cap must apply to what is kept, not to everything ever printed.
    collector = OutputCollector(max_bytes=10)
    collector.add(stream("12345678"))
    collector.add(CLEAR)
    collector.add(stream("abcdefgh"))
    assert collector.finished_outputs() == [{"output_type": "stream", "name": "stdout", "text": "abcdefgh"}]
    assert collector.dropped_bytes == 0


# ------------------------------------------------------------------------ write_atomic


def test_write_atomic_creates_the_file_and_its_folder_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "reports" / "alice.json"
    write_atomic(target, '{"score": 1}\n')
    assert target.read_text("utf-8") == '{"score": 1}\n'
    assert os.listdir(target.parent) == ["alice.json"]


def test_write_atomic_replaces_the_target(tmp_path):
    target = tmp_path / "grades.csv"
    target.write_text("old content that is longer than the new one\n", "utf-8")
    write_atomic(target, "new\n")
    assert target.read_text("utf-8") == "new\n"
    assert os.listdir(tmp_path) == ["grades.csv"]


def test_write_atomic_failure_keeps_the_old_file_and_removes_the_temp_file(tmp_path):
    target = tmp_path / "grades.csv"
    target.write_text("old\n", "utf-8")
    with pytest.raises(TypeError):
        write_atomic(target, b"bytes are not text")  # type: ignore[arg-type]
    assert target.read_text("utf-8") == "old\n"
    assert os.listdir(tmp_path) == ["grades.csv"]


# ------------------------------------------------------------------------ write_gradebook


def report(submission: str, status: str, task_scores: dict[str, float], reason: str = "") -> SubmissionReport:
    maxima = {"A1": 5.0, "A2": 7.0}
    return SubmissionReport(
        submission=submission, status=status, score=sum(task_scores.values()), max_score=12.0, seed=11,
        seed_policy="fixed",
        checks=[CheckResult(f"{task}.c", task, "", "pass", score, maxima[task], "public", "")
                for task, score in task_scores.items()],
        tasks=[TaskScore(task, task, score, maxima[task]) for task, score in task_scores.items()],
        execution=None if status == "error" else ExecutionReport(seconds=2.5, failed_cells=(CellProblem(3),)),
        notebook=f"{submission}.ipynb", notebook_sha256="", rubric="r.toml", rubric_sha256="",
        grader_version="0.1.0", reason=reason)


def read_gradebook(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def test_gradebook_has_one_row_per_report_sorted_by_submission(tmp_path):
    reports = [report("carol", "graded", {"A1": 5, "A2": 7}), report("alice", "graded", {"A1": 1, "A2": 2.5}),
               report("bob", "error", {"A1": 0, "A2": 0}, reason="the file is empty")]
    path = write_gradebook(tmp_path, reports)
    assert path == tmp_path / GRADEBOOK_NAME
    _, rows = read_gradebook(path)
    assert [row["submission"] for row in rows] == ["alice", "bob", "carol"]


def test_gradebook_columns_are_submission_student_status_tasks_then_total(tmp_path):
    path = write_gradebook(tmp_path, [report("alice", "graded", {"A1": 1, "A2": 2.5})])
    columns, _ = read_gradebook(path)
    assert columns[:7] == ["submission", "student_id", "student_name", "status", "A1", "A2", "total"]
    assert "reason" in columns and "notes" in columns


def test_gradebook_values(tmp_path):
    reports = [report("alice", "graded", {"A1": 1, "A2": 2.5}),
               report("bob", "error", {"A1": 0, "A2": 0}, reason="the file is empty")]
    _, rows = read_gradebook(write_gradebook(tmp_path, reports))
    alice, bob = rows
    assert (alice["status"], float(alice["A1"]), float(alice["A2"]), float(alice["total"])) == ("graded", 1, 2.5, 3.5)
    assert float(alice["max_score"]) == 12
    assert int(alice["failed_cells"]) == 1
    assert (bob["status"], float(bob["total"]), bob["reason"]) == ("error", 0, "the file is empty")


def test_gradebook_leaves_no_temp_file(tmp_path):
    write_gradebook(tmp_path, [report("alice", "graded", {"A1": 1, "A2": 2})])
    assert os.listdir(tmp_path) == [GRADEBOOK_NAME]


def test_write_atomic_leaves_a_file_others_can_read(tmp_path):
    # Reports and feedback pages are shared with students and served; mkstemp alone gives 0600.
    import stat

    path = tmp_path / "page.html"
    write_atomic(path, "<p>hi</p>")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
