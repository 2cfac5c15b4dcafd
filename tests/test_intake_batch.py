"""Whole batches through intake, in real kernels: a hostile batch (names that collide with other
files, a formula, terminal escapes and CR/LF in an id, a linked notebook, an oversized one) next to
correct notebooks; and LMS downloads graded end to end into grades.csv and the LMS gradebooks (each
a batch of its own: LMS names are recognised only when most of a batch has them)."""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
import zipfile
from pathlib import Path

import pytest
from hostile_gallery import CORRECT, ESCAPES_ID, FORMULA_ID, MAX_NOTEBOOK_MB, Gallery
from support import A1_LECTURE_CHECK, GOOD_DEF, write_notebook

from grader.grade.api import grade_batch, rescore
from grader.report.writers import GRADEBOOK_NAME, LOG_NAME

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def hostile_batch(hostile_gallery: Gallery) -> dict:
    """The batch, graded once through the CLI (the console table is part of what is tested) in the
    session's hostile gallery (tests/hostile_gallery.py), with every other hostile notebook of the
    tests. Whether the whole batch completes, with every file, is test_hostile_gallery.py's."""
    return {"run": hostile_gallery.run, "out": hostile_gallery.out_dir, "folder": hostile_gallery.folder,
            "rubric": hostile_gallery.rubric, "reports": hostile_gallery.reports,
            "names": hostile_gallery.names["test_intake_batch"]}


def test_correct_notebooks_get_full_marks_and_keep_their_own_names(hostile_batch) -> None:
    reports, out = hostile_batch["reports"], hostile_batch["out"]
    for student in CORRECT:
        assert reports[student]["submission"] == student
        assert reports[student]["score"] == reports[student]["max_score"], reports[student]["reason"]
    # alice.html's files are named by the grader, so alice's page is alice's.
    assert reports["alice.html"]["submission"].startswith("alice_html-")
    assert reports["alice.html"]["status"] == "graded"
    assert 'id="submission-id">alice<' in (out / "alice.html").read_text("utf-8")
    assert (out / reports["alice.html"]["submission"] / "executed.ipynb").is_file()


def test_hostile_ids_are_escaped_in_the_gradebook_the_log_and_the_console(hostile_batch) -> None:
    run, out, reports = hostile_batch["run"], hostile_batch["out"], hostile_batch["reports"]
    gradebook = (out / GRADEBOOK_NAME).read_text("utf-8")
    rows = list(csv.DictReader(io.StringIO(gradebook)))
    by_name = {row["submission"]: row for row in rows}
    assert by_name[reports[FORMULA_ID]["submission"]]["student_id"] == "'" + FORMULA_ID
    assert by_name[reports[ESCAPES_ID]["submission"]]["student_id"].startswith("\\x1b[2J\\x1b[Hgraded alice")
    log = (out / LOG_NAME).read_text("utf-8")
    for text in (gradebook, log, run.stdout, run.stderr):
        assert "\x1b" not in text and "\r" not in text
    # No line of the log or the table starts with the forged "graded alice 100 of 100".
    assert not any(line.lstrip("│ ").startswith("graded alice 100") for line in (log + run.stdout).splitlines())
    assert reports[ESCAPES_ID]["student_id"] == ESCAPES_ID  # the report keeps the raw id


def test_linked_notebook_is_refused_and_the_reference_never_reaches_its_folder(hostile_batch) -> None:
    mallory, out = hostile_batch["reports"]["mallory"], hostile_batch["out"]
    assert mallory["status"] == "error" and mallory["score"] == 0
    assert mallory["reason"].startswith("mallory.ipynb is a symbolic link; the grader never follows links")
    assert mallory["notebook_sha256"] == hashlib.sha256(b"").hexdigest()  # nothing was read
    assert {p.name for p in (out / "mallory").iterdir()} == {"observations.json", "feedback.html"}


def test_oversized_notebook_gets_an_error_report_naming_the_limit(hostile_batch) -> None:
    huge = hostile_batch["reports"]["huge"]
    assert huge["status"] == "error"
    limit = f"the notebook is 2.0 MB, above the limit of {MAX_NOTEBOOK_MB} MB (execution.max_notebook_mb"
    assert limit in huge["reason"]


def test_resume_and_rescore_follow_the_output_names(hostile_batch, tmp_path: Path) -> None:
    # This module's part of the gallery, copied with its reports (the gallery's stay as graded).
    reports = {s: r for s, r in hostile_batch["reports"].items() if s in hostile_batch["names"]}
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    out.mkdir()
    for report in reports.values():
        shutil.copy2(hostile_batch["folder"] / report["source"], folder / report["source"], follow_symlinks=False)
        name = report["submission"]
        for file in (f"{name}.json", f"{name}.html"):
            shutil.copy2(hostile_batch["out"] / file, out / file)
        shutil.copytree(hostile_batch["out"] / name, out / name)
    rubric = hostile_batch["rubric"]
    started: list[str] = []
    result = grade_batch(folder, rubric, out, on_start=lambda s: started.append(s.student_id), resume=True)
    # Graded reports are kept (under their chosen names); only the cheap error reports are redone.
    assert result.resumed == 3 and not {"alice", "bob", "alice.html"} & set(started)
    assert len(started) == len(reports) - 3
    rescored = {r.student_id: r for r in rescore(out, rubric).reports}
    assert set(rescored) == set(reports)
    assert {s: r.submission for s, r in rescored.items()} == {s: r["submission"] for s, r in reports.items()}
    assert rescored["alice"].score == rescored["alice"].max_score


# ------------------------------------------------------------------------ LMS downloads

RUBRIC = """
schema = 1
title = "Exercise 06"
[data]
source = "digits28"
[execution]
cell_timeout_s = 20
notebook_timeout_s = 60
""" + A1_LECTURE_CHECK
WRONG_DEF = "def conv_output_size(h_in, kernel_size, padding=0, stride=1):\n    return h_in"


def read_csv(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text("utf-8"))))


def notebook_text(tmp: Path, *cells: str) -> str:
    return write_notebook(tmp / "scratch.ipynb", *cells).read_text("utf-8")


def test_canvas_download_grades_the_latest_upload_into_both_gradebooks(tmp_path: Path) -> None:
    rubric = tmp_path / "rubric.toml"
    rubric.write_text(RUBRIC, "utf-8")
    right, wrong = notebook_text(tmp_path, GOOD_DEF), notebook_text(tmp_path, WRONG_DEF)
    archive = tmp_path / "submissions.zip"
    with zipfile.ZipFile(archive, "w") as zipped:  # as Canvas's "Download Submissions" names them
        zipped.writestr("leeann_2001_90001_ex06.ipynb", right)
        zipped.writestr("chenbo_2002_90003_ex06.ipynb", wrong)
        zipped.writestr("chenbo_late_2002_90007_ex06-1.ipynb", right)
    result = grade_batch(archive, rubric, tmp_path / "out", gradebook_formats=("canvas", "moodle"))
    reports = {r.student_id: r for r in result.reports}
    assert sorted(reports) == ["2001", "2002"]
    bo = reports["2002"]
    assert bo.score == 2 and bo.source == "chenbo_late_2002_90007_ex06-1.ipynb"
    assert bo.other_versions == ["chenbo_2002_90003_ex06.ipynb"] and bo.id_rule == "canvas"
    assert "Canvas marked this submission late" in bo.intake_notes
    canvas = read_csv(tmp_path / "out" / "grades.canvas.csv")
    assert canvas[2:] == [["leeann", "2001", "", "", "", "2"], ["chenbo", "2002", "", "", "", "2"]]
    moodle = read_csv(tmp_path / "out" / "grades.moodle.csv")
    assert moodle == [["Identifier", "Full name", "Grade", "Maximum Grade", "Feedback comments"]]  # no Moodle ids
    log = (tmp_path / "out" / LOG_NAME).read_text("utf-8")
    assert "2 submission(s) not in grades.moodle.csv" in log
    # Re-scoring with more points per check rewrites the Canvas gradebook too, and keeps the ids.
    rubric.write_text(RUBRIC.replace("points = 2", "points = 5"), "utf-8")
    rescored = {r.student_id: r for r in rescore(tmp_path / "out", rubric).reports}
    assert rescored["2002"].score == 5 and rescored["2002"].other_versions == ["chenbo_2002_90003_ex06.ipynb"]
    canvas = read_csv(tmp_path / "out" / "grades.canvas.csv")
    assert canvas[1:] == [["Points Possible", "", "", "", "", "5"], ["leeann", "2001", "", "", "", "5"],
                          ["chenbo", "2002", "", "", "", "5"]]


def test_moodle_folder_maps_students_and_flags_what_it_cannot_map(tmp_path: Path) -> None:
    rubric = tmp_path / "rubric.toml"
    rubric.write_text(RUBRIC, "utf-8")
    folder = tmp_path / "moodle"
    write_notebook(folder / "Ann Lee_101_assignsubmission_file_" / "ex06.ipynb", GOOD_DEF)
    (folder / "Ann Lee_101_assignsubmission_onlinetext_").mkdir()
    (folder / "Ann Lee_101_assignsubmission_onlinetext_" / "onlinetext.html").write_text("<p>done</p>")
    write_notebook(folder / "Bo Chen_102_assignsubmission_file_" / "a.ipynb", GOOD_DEF)
    write_notebook(folder / "Bo Chen_102_assignsubmission_file_" / "b.ipynb", WRONG_DEF)
    write_notebook(folder / "renamed by hand.ipynb", GOOD_DEF)
    result = grade_batch(folder, rubric, tmp_path / "out", gradebook_formats=("moodle",))
    reports = {r.student_id: r for r in result.reports}
    assert sorted(reports) == ["101", "102", "renamed by hand"]
    assert (reports["101"].score, reports["101"].student_name, reports["101"].submission) == (2, "Ann Lee", "101")
    assert reports["102"].status == "error" and "holds 2 notebooks" in reports["102"].reason
    assert reports["renamed by hand"].intake_notes[0].startswith("not named the way Moodle names its files")
    with (tmp_path / "out" / GRADEBOOK_NAME).open(encoding="utf-8") as stream:
        rows = {row["student_id"]: row for row in csv.DictReader(stream)}
    assert rows["101"]["student_name"] == "Ann Lee" and rows["renamed by hand"]["notes"].startswith("not named")
    moodle = read_csv(tmp_path / "out" / "grades.moodle.csv")
    assert [row[:3] for row in moodle[1:]] == [["Participant 101", "Ann Lee", "2"], ["Participant 102", "Bo Chen", ""]]
