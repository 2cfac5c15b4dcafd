"""`grader bundle --public`: the students' project, without building the wheel (test_install.py
builds and installs it)."""

from __future__ import annotations

import tomllib

import pytest
from support import DEFAULT_RUBRIC, REPO

from grader.bundle import bundle_public
from grader.bundle.public import BundleError
from grader.bundle.toml_writer import dumps
from grader.checks.base import ProbeRecord
from grader.checks.registry import CHECK_KINDS
from grader.errors import RubricError
from grader.grade.seeds import check_rng
from grader.reference_model import load_reference_module, recorded_outcome
from grader.rubric.load import _read_document, load_rubric


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return bundle_public(DEFAULT_RUBRIC, tmp_path_factory.mktemp("bundle") / "student", build_wheel=False)


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
