"""What goes into grading: seeds, the submissions of a folder or zip, and the notebook itself."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from grader.errors import NotebookUnreadableError, SubmissionsError
from grader.grade.notebook import locate_definitions, read_notebook
from grader.grade.seeds import SEED_BITS, check_rng, choose_seed
from grader.grade.submissions import Submission, discover_submissions, extract_zip
from grader.rubric.model import SeedPolicy

# ------------------------------------------------------------------------ seeds

PER_SUBMISSION = SeedPolicy("per_submission", 6)


def test_per_submission_seed_is_the_same_for_the_same_bytes():
    assert choose_seed(PER_SUBMISSION, b'{"cells": []}') == choose_seed(PER_SUBMISSION, b'{"cells": []}')


def test_per_submission_seed_differs_for_different_bytes():
    assert choose_seed(PER_SUBMISSION, b'{"cells": []}') != choose_seed(PER_SUBMISSION, b'{"cells": [] }')


def test_per_submission_seed_depends_on_the_rubric_value():
    assert choose_seed(SeedPolicy("per_submission", 6), b"nb") != choose_seed(SeedPolicy("per_submission", 7), b"nb")


def test_per_submission_seed_fits_in_seed_bits():
    seeds = [choose_seed(PER_SUBMISSION, bytes([i])) for i in range(50)]
    assert all(0 <= seed < 2**SEED_BITS for seed in seeds)


def test_fixed_seed_is_the_rubric_value_whatever_the_notebook():
    policy = SeedPolicy("fixed", 1234)
    assert choose_seed(policy, b"one") == choose_seed(policy, b"two") == 1234


def test_fresh_seed_differs_across_calls():
    policy = SeedPolicy("fresh", 6)
    seeds = {choose_seed(policy, b"nb") for _ in range(5)}
    assert len(seeds) > 1
    assert all(0 <= seed < 2**SEED_BITS for seed in seeds)


@pytest.mark.parametrize("policy", [SeedPolicy("per_submission", 6), SeedPolicy("fixed", 99), SeedPolicy("fresh", 6)])
@pytest.mark.parametrize("override", [0, 777])
def test_override_wins_over_every_policy(policy, override):
    assert choose_seed(policy, b"nb", override=override) == override


def draw(seed: int, check_id: str) -> list[int]:
    return check_rng(seed, check_id).integers(0, 2**31, size=8).tolist()


def test_check_rng_same_id_same_stream():
    assert draw(42, "A2.random_inputs") == draw(42, "A2.random_inputs")


def test_check_rng_different_ids_different_streams():
    assert draw(42, "A2.random_inputs") != draw(42, "A3.random_inputs")


def test_check_rng_different_seeds_different_streams():
    assert draw(42, "A2.random_inputs") != draw(43, "A2.random_inputs")


# ------------------------------------------------------------------------ discover_submissions


def touch(path: Path, text: str = "{}") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    return path


def pairs(found: list[Submission]) -> list[tuple[str, Path | None]]:
    return [(s.id, s.notebook) for s in found]


def test_folder_of_notebooks_gives_one_submission_each_sorted_by_id(tmp_path):
    touch(tmp_path / "carol.ipynb")
    touch(tmp_path / "alice.ipynb")
    touch(tmp_path / "bob.ipynb")
    found = discover_submissions(tmp_path)
    assert pairs(found) == [("alice", tmp_path / "alice.ipynb"), ("bob", tmp_path / "bob.ipynb"),
                            ("carol", tmp_path / "carol.ipynb")]
    assert [(s.student_id, s.source) for s in found] == [("alice", "alice.ipynb"), ("bob", "bob.ipynb"),
                                                         ("carol", "carol.ipynb")]


def test_per_student_folders_use_the_folder_name_as_id(tmp_path):
    touch(tmp_path / "alice" / "ex06.ipynb")
    touch(tmp_path / "bob" / "work" / "my notebook.ipynb")
    found = discover_submissions(tmp_path)
    assert pairs(found) == [("alice", tmp_path / "alice" / "ex06.ipynb"),
                            ("bob", tmp_path / "bob" / "work" / "my notebook.ipynb")]


def test_hidden_and_underscore_entries_and_checkpoints_are_ignored(tmp_path):
    touch(tmp_path / "alice.ipynb")
    touch(tmp_path / ".secret.ipynb")
    touch(tmp_path / "_template.ipynb")
    touch(tmp_path / "__MACOSX" / "alice.ipynb")
    touch(tmp_path / ".ipynb_checkpoints" / "alice-checkpoint.ipynb")
    touch(tmp_path / "bob" / "ex06.ipynb")
    touch(tmp_path / "bob" / ".ipynb_checkpoints" / "ex06-checkpoint.ipynb")
    touch(tmp_path / "bob" / "_old" / "draft.ipynb")
    touch(tmp_path / "README.md", "read me")
    found = discover_submissions(tmp_path)
    assert pairs(found) == [("alice", tmp_path / "alice.ipynb"), ("bob", tmp_path / "bob" / "ex06.ipynb")]


def test_folder_without_a_notebook_is_a_submission_with_a_problem(tmp_path):
    touch(tmp_path / "alice.ipynb")
    touch(tmp_path / "carol" / "notes.txt", "no notebook here")
    found = {s.id: s for s in discover_submissions(tmp_path)}
    assert found["carol"].notebook is None
    assert found["carol"].problem == "the folder carol holds no .ipynb file"  # no host path shown to students


def test_folder_with_two_notebooks_is_a_submission_with_a_problem(tmp_path):
    touch(tmp_path / "dave" / "a.ipynb")
    touch(tmp_path / "dave" / "b.ipynb")
    [dave] = discover_submissions(tmp_path)
    assert dave.id == "dave"
    assert dave.notebook is None
    assert "holds 2 notebooks (a.ipynb, b.ipynb)" in dave.problem


def test_notebook_and_folder_with_the_same_id_raise(tmp_path):
    touch(tmp_path / "alice.ipynb")
    touch(tmp_path / "alice" / "ex06.ipynb")
    with pytest.raises(SubmissionsError, match="'alice'"):
        discover_submissions(tmp_path)


def test_missing_folder_raises(tmp_path):
    with pytest.raises(SubmissionsError, match="not found"):
        discover_submissions(tmp_path / "nowhere")


def test_empty_folder_raises(tmp_path):
    with pytest.raises(SubmissionsError, match="No submissions found"):
        discover_submissions(tmp_path)


def test_folder_of_only_ignored_entries_raises(tmp_path):
    touch(tmp_path / ".ipynb_checkpoints" / "x-checkpoint.ipynb")
    touch(tmp_path / "notes.txt", "x")
    with pytest.raises(SubmissionsError, match="No submissions found"):
        discover_submissions(tmp_path)


def test_single_notebook_path_is_one_submission(tmp_path):
    notebook = touch(tmp_path / "alice.ipynb")
    assert pairs(discover_submissions(notebook)) == [("alice", notebook)]


# ------------------------------------------------------------------------ extract_zip


def make_zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


def test_plain_zip_extracts_into_the_folder(tmp_path):
    archive = make_zip(tmp_path / "batch.zip", {"alice.ipynb": "{}", "bob/ex06.ipynb": "{}"})
    into = tmp_path / "out"
    into.mkdir()
    folder = extract_zip(archive, into)
    assert folder == into
    assert [s.id for s in discover_submissions(folder)] == ["alice", "bob"]


def test_zip_with_one_top_folder_is_unwrapped(tmp_path):
    archive = make_zip(tmp_path / "batch.zip", {"batch/alice.ipynb": "{}", "batch/bob.ipynb": "{}"})
    into = tmp_path / "out"
    into.mkdir()
    folder = extract_zip(archive, into)
    assert folder == into / "batch"
    assert [s.id for s in discover_submissions(folder)] == ["alice", "bob"]


def test_zip_member_escaping_the_folder_is_refused(tmp_path):
    archive = make_zip(tmp_path / "evil.zip", {"alice.ipynb": "{}", "../escaped.ipynb": "{}"})
    into = tmp_path / "out"
    into.mkdir()
    with pytest.raises(SubmissionsError, match="outside the archive"):
        extract_zip(archive, into)
    assert not (tmp_path / "escaped.ipynb").exists()


def test_not_a_zip_raises(tmp_path):
    archive = tmp_path / "batch.zip"
    archive.write_bytes(b"this is not a zip file")
    into = tmp_path / "out"
    into.mkdir()
    with pytest.raises(SubmissionsError, match="not a readable zip"):
        extract_zip(archive, into)


# ------------------------------------------------------------------------ read_notebook

V4_NOTEBOOK = {
    "nbformat": 4, "nbformat_minor": 5, "metadata": {},
    "cells": [
        {"id": "c1", "cell_type": "markdown", "metadata": {}, "source": "# Exercise 06"},
        {"id": "c2", "cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
         "source": ["def conv_output_size(h_in, kernel_size, padding=0, stride=1):\n",
                    "    return (h_in - kernel_size + 2 * padding) // stride + 1"]},
    ],
}

V3_NOTEBOOK = {
    "nbformat": 3, "nbformat_minor": 0, "metadata": {"name": ""},
    "worksheets": [{"metadata": {}, "cells": [
        {"cell_type": "code", "language": "python", "metadata": {}, "outputs": [], "prompt_number": 1,
         "input": "feature_shapes = {'flatten': 3136}"}]}],
}


@pytest.mark.parametrize(("raw", "words"), [
    (b"", "empty"),
    (b"  \n\t ", "empty"),
    (b'{"cells": [', "not valid JSON"),
    (b'{"metadata": {}}', "no 'cells'"),
    (b"[1, 2]", "no 'cells'"),
    (b"\xff\xfe\x00n\x00b", "not UTF-8"),
])
def test_unreadable_notebooks_say_why(raw, words):
    with pytest.raises(NotebookUnreadableError, match=words):
        read_notebook(raw)


def test_valid_v4_notebook_is_read():
    notebook = read_notebook(json.dumps(V4_NOTEBOOK).encode())
    assert notebook.nbformat == 4
    assert [cell.cell_type for cell in notebook.cells] == ["markdown", "code"]
    assert notebook.cells[1].source.startswith("def conv_output_size(")
    assert notebook.cells[1].outputs == []


def test_v4_notebook_with_a_utf8_bom_is_read():
    notebook = read_notebook(b"\xef\xbb\xbf" + json.dumps(V4_NOTEBOOK).encode())
    assert len(notebook.cells) == 2


def test_v3_notebook_is_upgraded_to_v4():
    notebook = read_notebook(json.dumps(V3_NOTEBOOK).encode())
    assert notebook.nbformat == 4
    assert len(notebook.cells) == 1
    assert notebook.cells[0].cell_type == "code"
    assert notebook.cells[0].source == "feature_shapes = {'flatten': 3136}"


# ------------------------------------------------------------------------ locate_definitions


def notebook_of(*cells: tuple[str, str]) -> dict:
    return {"cells": [{"cell_type": kind, "source": source} for kind, source in cells]}


def test_def_is_a_definition():
    notebook = notebook_of(("code", "import torch"), ("code", "def conv2d_single(image, kernel):\n    pass"))
    assert locate_definitions(notebook, ["conv2d_single"]) == {"conv2d_single": 1}


def test_class_is_a_definition():
    notebook = notebook_of(("code", "class CNN(nn.Module):\n    pass"))
    assert locate_definitions(notebook, ["CNN"]) == {"CNN": 0}


def test_assignment_is_a_definition():
    notebook = notebook_of(("code", "x = 1"), ("code", "feature_shapes = {'flatten': 3136}"))
    assert locate_definitions(notebook, ["feature_shapes"]) == {"feature_shapes": 1}


def test_annotated_assignment_is_a_definition():
    notebook = notebook_of(("code", "feature_shapes: dict[str, tuple] = {}"))
    assert locate_definitions(notebook, ["feature_shapes"]) == {"feature_shapes": 0}


def test_last_definition_wins():
    notebook = notebook_of(("code", "def maxpool2d(x, k):\n    pass"), ("code", "maxpool2d(t, 2)"),
                           ("code", "def maxpool2d(x, kernel_size, stride=None):\n    pass"), ("code", "print(1)"))
    assert locate_definitions(notebook, ["maxpool2d"]) == {"maxpool2d": 2}


def test_comparison_is_not_a_definition():
    notebook = notebook_of(("code", "feature_shapes = {}"), ("code", "feature_shapes == {'flatten': 3136}"))
    assert locate_definitions(notebook, ["feature_shapes"]) == {"feature_shapes": 0}


def test_markdown_prefixed_names_and_indented_code_are_not_definitions():
    notebook = notebook_of(("markdown", "def conv2d_single(image, kernel):"),
                           ("code", "def conv2d_single_fast(image, kernel):\n    pass"),
                           ("code", "conv2d_single_v2 = None"),
                           ("code", "if True:\n    conv2d_single = None"))
    assert locate_definitions(notebook, ["conv2d_single"]) == {}
