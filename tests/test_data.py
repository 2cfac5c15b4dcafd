"""grader.data.digits28: the embedded data set, the students' file and the `grader data` command."""

from __future__ import annotations

import io

import numpy as np
import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.data import digits28

STUDENT_KEYS = {"x_train", "y_train", "x_test", "y_test"}


@pytest.fixture(scope="module")
def student_bytes() -> bytes:
    return digits28.student_file_bytes()


@pytest.fixture(scope="module")
def student_arrays(student_bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(student_bytes)) as archive:
        return {key: archive[key] for key in archive.files}


def test_two_calls_give_identical_bytes(student_bytes):
    assert digits28.student_file_bytes() == student_bytes


def test_student_file_holds_exactly_the_train_and_test_arrays(student_arrays):
    assert set(student_arrays) == STUDENT_KEYS


@pytest.mark.parametrize("part", ["train", "test"])
def test_student_arrays_dtypes_and_shapes(student_arrays, part):
    x, y = student_arrays[f"x_{part}"], student_arrays[f"y_{part}"]
    assert x.dtype == np.float32
    assert y.dtype == np.int64
    assert x.ndim == 4 and x.shape[1:] == (1, 28, 28)
    assert y.shape == (x.shape[0],)


@pytest.mark.parametrize("part", ["train", "test"])
def test_student_images_are_in_the_unit_interval_and_not_blank(student_arrays, part):
    x = student_arrays[f"x_{part}"]
    assert x.min() >= 0.0
    assert x.max() <= 1.0
    assert x.max() > 0.5


def test_student_labels_are_the_ten_digits(student_arrays):
    for part in ("train", "test"):
        assert set(np.unique(student_arrays[f"y_{part}"]).tolist()) == set(range(10))


def test_digits_are_centred_with_an_empty_border(student_arrays):
    x = student_arrays["x_train"]
    assert np.all(x[:, :, :4, :] == 0) and np.all(x[:, :, -4:, :] == 0)
    assert np.all(x[:, :, :, :4] == 0) and np.all(x[:, :, :, -4:] == 0)


def test_parts_add_up_to_the_1797_sklearn_digits():
    data = digits28.load_digits28()
    sizes = [len(data.x_train), len(data.x_test), len(data.x_hidden)]
    assert sum(sizes) == 1797
    assert [len(data.y_train), len(data.y_test), len(data.hidden_labels)] == sizes


def test_hidden_part_has_30_images_of_each_class():
    data = digits28.load_digits28()
    assert np.bincount(data.hidden_labels, minlength=10).tolist() == [30] * 10
    assert data.x_hidden.shape == (300, 1, 28, 28)


def test_student_test_part_has_30_images_of_each_class(student_arrays):
    assert np.bincount(student_arrays["y_test"], minlength=10).tolist() == [30] * 10


def test_student_file_matches_the_non_hidden_parts(student_arrays):
    data = digits28.load_digits28()
    assert np.array_equal(student_arrays["x_train"], data.x_train)
    assert np.array_equal(student_arrays["y_test"], data.y_test)
    assert len(student_arrays["x_train"]) + len(student_arrays["x_test"]) == 1797 - 300


def test_parts_are_not_sorted_by_label():
    data = digits28.load_digits28()
    for labels in (data.y_train, data.y_test, data.hidden_labels):
        assert np.any(np.diff(labels) < 0)


def test_cli_writes_digits28_npz(tmp_path, student_bytes):
    out = tmp_path / "student data"
    result = CliRunner().invoke(main, ["data", "digits28", "--out", str(out)], prog_name="grader")
    assert result.exit_code == 0, result.output
    assert (out / "digits28.npz").read_bytes() == student_bytes
    assert str(out / "digits28.npz") in result.stdout
