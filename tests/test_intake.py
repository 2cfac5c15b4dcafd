"""Intake without kernels: output names the grader chooses, escaping of students' ids, links never
followed, the notebook size cap, and LMS downloads laid out as Moodle, Canvas and Blackboard lay
them out (built here from their documented naming)."""

from __future__ import annotations

import csv
import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from grader.errors import NotebookUnreadableError, SubmissionsError
from grader.grade.submissions import (
    ZIP_LINK_PLACEHOLDER,
    discover_submissions,
    extract_zip,
    read_notebook_bytes,
)
from grader.names import csv_cell, output_names, printable, short_hash
from grader.report.model import SubmissionReport
from grader.report.writers import gradebook_rows, write_gradebook, write_gradebook_import

HOSTILE_IDS = ["alice.html", "grades.csv", '=HYPERLINK("http://evil.example","click")',
               "\x1b[2J\x1b[Hgraded alice 100 of 100\r\nx", "_summary", "..", "Alice", "alice", "", "日本語"]


def touch(path: Path, text: str = "{}") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    return path


# ------------------------------------------------------------------------ names


def test_printable_escapes_terminal_sequences_line_breaks_and_bidi_overrides():
    assert printable("a\x1b[31mb\r\nc\x7f\u202ed") == "a\\x1b[31mb\\x0d\\x0ac\\x7f\\u202ed"
    assert printable("Zoë Ångström 日本") == "Zoë Ångström 日本"


def test_csv_cell_never_starts_a_formula():
    assert csv_cell('=HYPERLINK("x")') == "'=HYPERLINK(\"x\")"
    assert [csv_cell(t)[0] for t in ("+1", "-1", "@a", "|a")] == ["'"] * 4
    assert csv_cell("\tx") == "\\x09x"  # a tab or CR is escaped, so it no longer starts the cell
    assert csv_cell("alice") == "alice"


def test_output_names_are_safe_unique_and_keep_safe_ids_as_they_are():
    names = output_names((raw, raw) for raw in HOSTILE_IDS + ["bob", "passes_all-2"])
    assert names["bob"] == "bob" and names["passes_all-2"] == "passes_all-2"
    values = list(names.values())
    assert len({v.casefold() for v in values}) == len(values)  # unique even where case does not count
    for raw, name in names.items():
        assert name and all(c.isascii() and (c.isalnum() or c in "_-") for c in name), name
        assert not name.startswith(("_", "-", ".")), name
        if raw not in ("bob", "passes_all-2"):
            assert name != raw and len(name.rsplit("-", 1)[1]) >= 8  # a hash of the raw id
    assert names["alice.html"].startswith("alice_html-") and names["grades.csv"].startswith("grades_csv-")
    assert names == output_names((raw, raw) for raw in HOSTILE_IDS + ["bob", "passes_all-2"])  # deterministic


def test_an_id_that_looks_like_another_ids_hashed_name_still_gets_its_own_name():
    hashed = output_names([("a b", "a b")])["a b"]
    names = output_names([("a b", "a b"), ("x", hashed)])
    assert names["a b"] != names["x"]


# ------------------------------------------------------------------------ links, pipes, size


def test_symlinked_notebook_is_refused_with_a_report_not_followed(tmp_path):
    secret = touch(tmp_path / "reference" / "solution.ipynb", '{"cells": []}')
    batch = tmp_path / "batch"
    touch(batch / "alice.ipynb")
    (batch / "mallory.ipynb").symlink_to(secret)
    (batch / "eve").mkdir()
    (batch / "eve" / "ex06.ipynb").symlink_to(secret)
    (batch / "trudy").symlink_to(tmp_path / "reference", target_is_directory=True)
    (batch / "J. Doe").symlink_to(tmp_path / "reference", target_is_directory=True)
    found = {s.id: s for s in discover_submissions(batch)}
    assert found["J_Doe-" + short_hash("J. Doe")].problem.startswith("J. Doe is a symbolic link")
    assert found["alice"].notebook == batch / "alice.ipynb"
    for student, shown in (("mallory", "mallory.ipynb"), ("eve", "eve/ex06.ipynb"), ("trudy", "trudy")):
        assert found[student].notebook is None
        assert found[student].problem.startswith(f"{shown} is a symbolic link; the grader never follows links")
        assert str(tmp_path) not in found[student].problem


def test_the_submissions_folder_itself_may_be_a_link_the_instructor_made(tmp_path):
    touch(tmp_path / "real" / "alice.ipynb")
    (tmp_path / "latest").symlink_to(tmp_path / "real", target_is_directory=True)
    [alice] = discover_submissions(tmp_path / "latest")
    assert alice.notebook == tmp_path / "real" / "alice.ipynb"


def test_a_pipe_named_like_a_notebook_is_refused_without_blocking(tmp_path):
    touch(tmp_path / "alice.ipynb")
    os.mkfifo(tmp_path / "bob.ipynb")
    found = {s.id: s for s in discover_submissions(tmp_path)}
    assert found["bob"].notebook is None and "not a regular file" in found["bob"].problem
    with pytest.raises(NotebookUnreadableError, match="not a regular file"):
        read_notebook_bytes(tmp_path / "bob.ipynb", 1)


def test_reading_never_follows_a_link_swapped_in_after_discovery(tmp_path):
    notebook = touch(tmp_path / "alice.ipynb")
    [alice] = discover_submissions(tmp_path)
    notebook.unlink()
    notebook.symlink_to(touch(tmp_path / "secret.txt", "the reference"))
    with pytest.raises(NotebookUnreadableError, match="symbolic link"):
        read_notebook_bytes(alice.notebook, 1)


def test_oversized_notebook_is_refused_from_its_size_before_reading(tmp_path):
    big = tmp_path / "big.ipynb"
    with big.open("wb") as stream:
        stream.truncate(3 * 1024 * 1024 + 1)  # sparse: its size says 3 MB, nothing to read
    with pytest.raises(NotebookUnreadableError, match=r"3\.0 MB, above the limit of 2 MB \(execution.max_notebook_mb"):
        read_notebook_bytes(big, 2)
    assert read_notebook_bytes(touch(tmp_path / "ok.ipynb", "{}"), 2) == b"{}"


# ------------------------------------------------------------------------ zips


def zip_with_link(path: Path, members: dict[str, str], links: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
        for name, target in links.items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return path


def test_zip_member_that_is_a_link_is_never_extracted_and_that_student_is_told(tmp_path):
    archive = zip_with_link(tmp_path / "batch.zip", {"alice.ipynb": "{}", "bob/ex06.ipynb": "{}"},
                            {"mallory.ipynb": "../../reference/solution.ipynb", "eve/ex06.ipynb": "/etc/passwd",
                             "bob/ex06.ipynb/x": "/etc/passwd"})
    into = tmp_path / "out"
    into.mkdir()
    found = {s.id: s for s in discover_submissions(extract_zip(archive, into))}
    assert os.readlink(into / "mallory.ipynb") == ZIP_LINK_PLACEHOLDER  # not the member's target
    assert found["alice"].notebook is not None and found["bob"].notebook is not None
    assert found["mallory"].notebook is None and "symbolic link" in found["mallory"].problem
    assert found["eve"].notebook is None and "eve/ex06.ipynb is a symbolic link" in found["eve"].problem


def test_zip_unpacks_only_notebooks_and_receipts_and_not_an_oversized_notebook(tmp_path):
    archive = tmp_path / "batch.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("alice.ipynb", "{}")
        zipped.writestr("huge.ipynb", "{" + " " * (3 * 1024 * 1024) + "}")  # 3 MB, a few kB zipped
        zipped.writestr("carol/report.pdf", "%PDF" * 1000)
        zipped.writestr("Ex_bob_attempt_2024-01-31-23-59-59.txt", "Name: Bob (bob)")
    into = tmp_path / "out"
    into.mkdir()
    found = {s.id: s for s in discover_submissions(extract_zip(archive, into, max_notebook_mb=2))}
    assert (into / "huge.ipynb").stat().st_blocks == 0  # a sparse stand-in: nothing was unpacked
    with pytest.raises(NotebookUnreadableError, match=r"3\.0 MB, above the limit of 2 MB"):
        read_notebook_bytes(found["huge"].notebook, 2)
    assert not (into / "carol" / "report.pdf").exists() and "holds no .ipynb" in found["carol"].problem
    assert (into / "Ex_bob_attempt_2024-01-31-23-59-59.txt").read_text() == "Name: Bob (bob)"


def test_zip_that_would_not_fit_on_the_disk_is_refused(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    archive = make_zip_of(tmp_path / "batch.zip", {"alice.ipynb": "{}" * 100})
    monkeypatch.setattr(shutil, "disk_usage", lambda path: namedtuple("usage", "total used free")(0, 0, 10))
    into = tmp_path / "out"
    into.mkdir()
    with pytest.raises(SubmissionsError, match="would unpack to 0.0 GB, more than the 0.0 GB free"):
        extract_zip(archive, into)
    assert list(into.iterdir()) == []


def make_zip_of(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as zipped:
        for name, text in members.items():
            zipped.writestr(name, text)
    return path


def test_zip_member_with_an_absolute_path_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as archive:
        archive.writestr("/tmp/evil.ipynb", "{}")
    into = tmp_path / "out"
    into.mkdir()
    with pytest.raises(SubmissionsError, match="outside the archive"):
        extract_zip(tmp_path / "evil.zip", into)


# ------------------------------------------------------------------------ LMS downloads


def test_moodle_download_with_folders_maps_participant_ids_and_names(tmp_path):
    # "Download all submissions" with "Download submissions in folders": one folder per student
    # and submission plugin, named "<Full name>_<participant id>_assignsubmission_<plugin>_".
    touch(tmp_path / "Ann Lee_101_assignsubmission_file_" / "ex06.ipynb")
    touch(tmp_path / "Ann Lee_101_assignsubmission_onlinetext_" / "onlinetext.html", "<p>hi</p>")
    touch(tmp_path / "Bo Chen_102_assignsubmission_file_" / "work" / "my ex06.ipynb")
    touch(tmp_path / "Cy Ray_103_assignsubmission_file_" / "report.pdf", "%PDF")
    touch(tmp_path / "Di Fox_104_assignsubmission_file_" / "a.ipynb")
    touch(tmp_path / "Di Fox_104_assignsubmission_file_" / "b.ipynb")
    touch(tmp_path / "Participant_105_assignsubmission_file_" / "ex06.ipynb")  # blind marking
    touch(tmp_path / "stray notebook.ipynb")
    found = {s.student_id: s for s in discover_submissions(tmp_path)}
    assert sorted(found) == ["101", "102", "103", "104", "105", "stray notebook"]
    assert found["105"].student_name == "" and found["105"].notebook is not None
    ann = found["101"]
    assert (ann.id, ann.student_name, ann.id_rule) == ("101", "Ann Lee", "moodle")
    assert ann.notebook == tmp_path / "Ann Lee_101_assignsubmission_file_" / "ex06.ipynb"
    assert found["102"].notebook.name == "my ex06.ipynb"
    assert "holds no .ipynb file" in found["103"].problem
    assert "holds 2 notebooks" in found["104"].problem  # Moodle gives no order: the instructor picks
    stray = found["stray notebook"]
    assert stray.id_rule == "filename" and stray.notes == (
        "not named the way Moodle names its files, so no student could be found for it; its id is its file name",)
    assert stray.id.startswith("stray_notebook-")


def test_moodle_download_without_folders_flags_a_student_with_two_files(tmp_path):
    touch(tmp_path / "Ann Lee_101_assignsubmission_file_ex06.ipynb")
    touch(tmp_path / "Bo Chen_102_assignsubmission_file_ex06.ipynb")
    touch(tmp_path / "Bo Chen_102_assignsubmission_file_ex06 (1).ipynb")
    found = {s.student_id: s for s in discover_submissions(tmp_path)}
    assert found["101"].notebook is not None and found["101"].student_name == "Ann Lee"
    assert found["102"].notebook is None
    assert found["102"].problem.startswith("2 notebooks from this student and Moodle gives no order between them")


def test_canvas_download_keeps_the_latest_upload_lists_the_others_and_notes_late(tmp_path):
    # "Download Submissions": <lastnamefirstname>_[late_]<user id>_<attachment id>_<file name>
    touch(tmp_path / "leeann_2001_90001_ex06.ipynb")
    touch(tmp_path / "chenbo_late_2002_90007_ex06-1.ipynb")
    touch(tmp_path / "chenbo_2002_90003_ex06.ipynb")
    touch(tmp_path / "chenbo_2002_90005_screenshot.png", "png")
    found = {s.student_id: s for s in discover_submissions(tmp_path)}
    assert sorted(found) == ["2001", "2002"]
    bo = found["2002"]
    assert bo.notebook == tmp_path / "chenbo_late_2002_90007_ex06-1.ipynb"
    assert bo.other_versions == ("chenbo_2002_90003_ex06.ipynb",) and bo.student_name == "chenbo"
    assert "Canvas marked this submission late" in bo.notes
    assert any("graded the latest of 2 versions" in note for note in bo.notes)


def test_blackboard_download_keeps_the_latest_attempt_with_names_from_the_receipts(tmp_path):
    # "Download Assignment": <assignment>_<username>_attempt_<time>_<file>, plus a .txt per attempt.
    def attempt(user: str, name: str, time: str, file: str) -> None:
        stem = f"Exercise 06_{user}_attempt_{time}"
        touch(tmp_path / f"{stem}.txt", f"Name: {name} ({user})\nAssignment: Exercise 06\n"
                                        f"Files:\n\tOriginal filename: {file}\n\tFilename: {stem}_{file}\n")
        touch(tmp_path / f"{stem}_{file}")

    attempt("alee", "Ann Lee", "2024-01-30-10-00-00", "ex06.ipynb")
    attempt("alee", "Ann Lee", "2024-01-31-23-59-59", "ex06.ipynb")
    attempt("b_chen", "Bo Chen", "2024-01-29-09-15-00", "ex06.ipynb")
    found = {s.student_id: s for s in discover_submissions(tmp_path)}
    assert sorted(found) == ["alee", "b_chen"]  # an underscore in a username, read from the receipt
    ann = found["alee"]
    assert ann.notebook.name == "Exercise 06_alee_attempt_2024-01-31-23-59-59_ex06.ipynb"
    assert ann.other_versions == ("Exercise 06_alee_attempt_2024-01-30-10-00-00_ex06.ipynb",)
    assert (ann.student_name, ann.id_rule) == ("Ann Lee", "blackboard")
    assert found["b_chen"].student_name == "Bo Chen"


def test_auto_needs_most_entries_named_the_lms_way(tmp_path):
    touch(tmp_path / "alice.ipynb")
    touch(tmp_path / "bob.ipynb")
    touch(tmp_path / "carol_1_2_final.ipynb")  # looks like Canvas's naming, by chance
    found = {s.id: s for s in discover_submissions(tmp_path)}
    assert sorted(found) == ["alice", "bob", "carol_1_2_final"]
    assert all(s.id_rule == "filename" and not s.notes for s in found.values())


def test_ids_filename_keeps_todays_rules_on_an_lms_download(tmp_path):
    touch(tmp_path / "leeann_2001_90001_ex06.ipynb")
    [only] = discover_submissions(tmp_path, ids="filename")
    assert only.student_id == "leeann_2001_90001_ex06" and only.id == "leeann_2001_90001_ex06"
    with pytest.raises(SubmissionsError, match="Unknown --ids rule"):
        discover_submissions(tmp_path, ids="brightspace")


def test_moodle_zip_with_a_hostile_name_and_a_link_is_graded_safely(tmp_path):
    archive = zip_with_link(tmp_path / "moodle.zip", {
        "Ann Lee_101_assignsubmission_file_/ex06.ipynb": "{}",
        "=cmd|' -C calc'!A0_102_assignsubmission_file_/ex06.ipynb": "{}"},
        {"Eve Bad_103_assignsubmission_file_/ex06.ipynb": "../../../reference/solution.ipynb"})
    into = tmp_path / "out"
    into.mkdir()
    found = {s.student_id: s for s in discover_submissions(extract_zip(archive, into))}
    assert found["102"].student_name == "=cmd|' -C calc'!A0" and found["102"].id == "102"
    assert found["103"].notebook is None and "symbolic link" in found["103"].problem


# ------------------------------------------------------------------------ gradebooks


def report(submission: str, student_id: str, name: str = "", id_rule: str = "filename", score: float = 7.0,
           status: str = "graded") -> SubmissionReport:
    return SubmissionReport(submission=submission, status=status, score=score, max_score=10.0, seed=1,
                            seed_policy="fixed", checks=[], tasks=[], execution=None, notebook="",
                            notebook_sha256="", rubric="r.toml", rubric_sha256="", grader_version="0",
                            reason="" if status == "graded" else "=the notebook is empty",
                            student_id=student_id, student_name=name, id_rule=id_rule)


def test_gradebook_escapes_ids_and_names_for_spreadsheets(tmp_path):
    reports = [report("x-1", '=HYPERLINK("http://evil","x")', "+Mal\x1b[31mlory"),
               report("alice", "alice", status="error", score=0)]
    rows = {r["submission"]: r for r in gradebook_rows(reports)}
    assert rows["x-1"]["student_id"] == "'=HYPERLINK(\"http://evil\",\"x\")"
    assert rows["x-1"]["student_name"] == "'+Mal\\x1b[31mlory"
    assert rows["alice"]["reason"] == "'=the notebook is empty"
    text = write_gradebook(tmp_path, reports).read_text("utf-8")
    assert "\x1b" not in text and '\n=' not in text and ',=' not in text


def test_moodle_and_canvas_gradebook_imports(tmp_path):
    reports = [report("101", "101", "Ann Lee", "moodle", 9.5), report("102", "102", "=Bo", "moodle", 0, "error"),
               report("stray", "stray")]
    path, left_out = write_gradebook_import(tmp_path, reports, "moodle", "Exercise 06")
    rows = list(csv.reader(io.StringIO(path.read_text("utf-8"))))
    assert path.name == "grades.moodle.csv" and left_out == ["stray"]
    assert rows[0] == ["Identifier", "Full name", "Grade", "Maximum Grade", "Feedback comments"]
    assert rows[1][:4] == ["Participant 101", "Ann Lee", "9.5", "10"]
    assert rows[2][:3] == ["Participant 102", "'=Bo", ""]  # not graded: no grade to overwrite with

    canvas = [report("2001", "2001", "leeann", "canvas", 8)]
    path, left_out = write_gradebook_import(tmp_path, canvas, "canvas", "Exercise 06")
    rows = list(csv.reader(io.StringIO(path.read_text("utf-8"))))
    assert rows == [["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Exercise 06"],
                    ["Points Possible", "", "", "", "", "10"], ["leeann", "2001", "", "", "", "8"]]
    assert left_out == []


# ------------------------------------------------------------------------ the batch log


def test_batch_log_writes_every_message_escaped_on_one_line(tmp_path):
    import logging

    from grader.grade.batch_log import batch_log

    with batch_log(tmp_path / "_grader.log") as path:
        logging.getLogger("grader.grade.api").warning("grading %s", "x\r\n2026 INFO graded alice 100 of 100\x1b[2J")
    text = path.read_text("utf-8")
    assert text.count("\n") == 1 and "\x1b" not in text and "\r" not in text
    assert text.rstrip("\n").endswith("grading x\\x0d\\x0a2026 INFO graded alice 100 of 100\\x1b[2J")
