"""`grader bundle --public`: the students' project, without building the wheel (test_install.py
builds and installs it)."""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest
from support import DEFAULT_RUBRIC, REPO, fake_fashion_root, fashion_rubric, find_patterns, hidden_split_patterns

from grader.bundle import bundle_public
from grader.bundle.public import GRADER_ONLY, NOT_REQUIRED, BundleError
from grader.bundle.toml_writer import dumps
from grader.checks.base import ProbeRecord
from grader.checks.registry import CHECK_KINDS
from grader.data.sources import data_arrays, student_files
from grader.errors import RubricError
from grader.grade.seeds import check_rng
from grader.reference_model import load_reference_module, recorded_outcome
from grader.rubric.load import _read_document, load_rubric

# What builds the hidden split: none of it may be in the students' project's code.
SPLIT_CODE = ("x_hidden", "hidden_labels", "stratified_split", "SPLIT_SEED", "HIDDEN_PER_CLASS", "_split_indices",
              "[:hidden_count]", "[hidden_count:]", "[:spec.hidden_count]", "DataArrays", "mnist_data", "load_digits")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return bundle_public(DEFAULT_RUBRIC, tmp_path_factory.mktemp("bundle") / "student", build_wheel=False)


def project_files(project) -> dict[str, bytes]:
    return {p.relative_to(project).as_posix(): p.read_bytes() for p in sorted(project.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("rubric", sorted((REPO / "rubrics").glob("*.toml")), ids=lambda p: p.name)
def test_toml_writer_round_trips_every_shipped_rubric(rubric) -> None:
    document, _ = _read_document(rubric, rubric.read_bytes(), ())
    assert tomllib.loads(dumps(document, "a header\nof two lines")) == document


def test_students_rubric_holds_the_public_checks_only(bundle) -> None:
    full = load_rubric(DEFAULT_RUBRIC)
    students = load_rubric(bundle.rubric)
    assert [c.id for c in students.checks] == [c.id for c in full.checks if c.public] == list(bundle.public_checks)
    assert list(bundle.dropped_checks) == [c.id for c in full.checks if not c.public]
    # Everything else of a public check is as in the full rubric: options, points, hints.
    by_id = {c.id: c for c in full.checks}
    assert all(c == by_id[c.id] for c in students.checks)
    assert students.model == full.model and students.data == full.data and students.execution == full.execution
    text = bundle.rubric.read_text("utf-8")
    assert all(check_id not in text for check_id in bundle.dropped_checks)
    assert tomllib.loads(text)["data"] == {"source": "mnist"}  # no root, no hidden_count


def test_students_project_holds_the_students_files_and_no_code_that_builds_the_hidden_split(bundle) -> None:
    full = load_rubric(DEFAULT_RUBRIC)
    manifest = json.loads(bundle.data.read_text("utf-8"))
    expected = dict(student_files(full.data).files)  # what a grading kernel gets in data/
    assert manifest["source"] == "mnist" and sorted(manifest["files"]) == sorted(expected)
    assert sorted(expected) == ["MNIST/raw/t10k-images-idx3-ubyte", "MNIST/raw/t10k-labels-idx1-ubyte",
                                "MNIST/raw/train-images-idx3-ubyte", "MNIST/raw/train-labels-idx1-ubyte", "mnist.npz"]
    assert all((bundle.data.parent / name).read_bytes() == content for name, content in expected.items())
    files = project_files(bundle.project)
    assert not [name for name in GRADER_ONLY if name in files]
    assert {"grader/data/sources.py", "grader/data/packaged.py", "grader/data/arrays.py"} <= set(files)
    code = {name: content.decode("utf-8") for name, content in files.items() if name.endswith(".py")}
    assert not [(name, token) for name, text in code.items() for token in SPLIT_CODE if token in text]
    requirements = tomllib.loads(files["pyproject.toml"].decode())["project"]["dependencies"]
    assert not [r for r in requirements if r.startswith(NOT_REQUIRED)]
    assert any(r.startswith("torch") for r in requirements)
    # Strongest: no file of the project holds a hidden image or the hidden labels, in any form the
    # grader stores images (the finder is shown to work on a file that does hold them).
    patterns = hidden_split_patterns(data_arrays(full.data))
    planted = {"planted": b"x" + patterns["hidden image 7 (uint8)"] + patterns["hidden image 9 (float32)"] + b"y"}
    assert sorted(find_patterns(planted, patterns)) == [("planted", "hidden image 7 (uint8)"),
                                                        ("planted", "hidden image 9 (float32)")]
    assert find_patterns(files, patterns) == []


def test_a_torchvision_rubric_is_bundled_without_its_root_and_without_its_hidden_images(tmp_path,
                                                                                         monkeypatch) -> None:
    root = fake_fashion_root(tmp_path / "instructor data")
    rubric_path = fashion_rubric(tmp_path, root)
    full = load_rubric(rubric_path)
    # D1/D2's recorded outcomes are tested above; running the reference train() again costs seconds
    monkeypatch.setattr("grader.bundle.public._recorded_outcomes", lambda full: {})
    result = bundle_public(rubric_path, tmp_path / "student", build_wheel=False)  # runs the project by itself
    files = project_files(result.project)
    assert tomllib.loads(files["rubrics/ex06.toml"].decode())["data"] == {"source": "torchvision:FashionMNIST"}
    assert not [name for name, content in files.items() if str(root).encode() in content]  # no instructor path
    # its data: the training set and the test set without the first hidden_count images
    expected = dict(student_files(full.data).files)
    assert sorted(expected) == [f"FashionMNIST/raw/{name}" for name in sorted(
        ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"])]
    assert all(files[f"grader/data/student/{name}"] == content for name, content in expected.items())
    assert find_patterns(files, hidden_split_patterns(data_arrays(full.data))) == []
    test_labels = np.frombuffer(expected["FashionMNIST/raw/t10k-labels-idx1-ubyte"][8:], dtype=np.uint8)
    assert len(test_labels) == 300 and np.array_equal(test_labels, data_arrays(full.data).y_test)


def test_students_reference_is_the_network_and_recorded_outcomes(bundle) -> None:
    text = bundle.reference.read_text("utf-8")
    assert "class CNN(nn.Module)" in text and "def train(" not in text and "def test(" not in text
    module = load_reference_module(bundle.reference)
    full = load_rubric(DEFAULT_RUBRIC)
    students = load_rubric(bundle.rubric)
    recorded_checks = [c for c in students.checks if c.kind in ("train_function", "test_function")]
    assert recorded_checks and module.RECORDED_OUTCOMES  # checks with the same request share one
    for check in recorded_checks:
        kind = CHECK_KINDS[check.kind]
        _, inputs = kind.plan(check, check_rng(0, check.id), students)
        record = ProbeRecord(inputs=inputs, status="ok", data=None)
        # what scoring compares with: the recorded outcome in the students' package, the reference
        # train()/test() run in the instructor's
        assert kind.reference_outcome(record, students) == kind.reference_outcome(record, full)


def test_a_request_that_was_not_recorded_is_a_clear_error(bundle) -> None:
    students = load_rubric(bundle.rubric)
    with pytest.raises(RubricError, match="holds no recorded outcome of the reference train"):
        recorded_outcome(students.reference, "train", {"op": "train_function", "samples": 1})
    assert recorded_outcome(load_rubric(DEFAULT_RUBRIC).reference, "train", {}) is None


def test_bundle_never_wipes_a_folder_it_did_not_write(tmp_path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(BundleError, match="not written by `grader bundle`"):
        bundle_public(DEFAULT_RUBRIC, tmp_path, build_wheel=False)
    assert (tmp_path / "precious.txt").read_text() == "keep me"
