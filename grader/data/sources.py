"""Data sources a rubric can name. Each puts the students' files into a working directory's
`data/` and gives the grader its arrays, including the hidden split's labels, which never
leave the grader's process."""

from __future__ import annotations

import tempfile
import threading
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from grader.data import digits28, mnist
from grader.data.arrays import DataArrays
from grader.data.student_files import StudentFiles
from grader.errors import RubricError
from grader.rubric.model import DataSpec

# CIFAR10 is not offered: torchvision checks the MD5 of every CIFAR batch file, so its test batch
# cannot be handed over without the hidden images (and labels) that the grader keeps.
TORCHVISION_SETS = ("FashionMNIST", "MNIST")
MISSING_ROOT = ("data.root: {root} holds no {name} files in torchvision's layout ({expected}). Put the "
                "data set there (the grader never downloads) or fix data.root in the rubric.")

TOO_MANY_HIDDEN = ("data.hidden_count: {count} hidden images leave none of the {total} {name} test images for "
                   "the students. Choose a smaller hidden_count in the rubric.")


class DataSource(Protocol):
    def install(self, data_dir: Path, spec: DataSpec) -> None:
        """Write what the notebook may read into `data_dir` (never the hidden labels)."""

    def arrays(self, spec: DataSpec) -> DataArrays:
        """All parts, for the grader's own use."""


class Digits28Source:
    def install(self, data_dir: Path, spec: DataSpec) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / digits28.STUDENT_FILE_NAME).write_bytes(digits28.student_file_bytes())

    def arrays(self, spec: DataSpec) -> DataArrays:
        return digits28.load_digits28()


class MnistSource:
    def install(self, data_dir: Path, spec: DataSpec) -> None:
        mnist.write_student_files(data_dir)

    def arrays(self, spec: DataSpec) -> DataArrays:
        return mnist.load_mnist()


class TorchvisionSource:
    """A torchvision data set in its own on-disk layout under `data.root`, never downloaded.
    The hidden split is the first `hidden_count` test images. Students get the raw files of the
    other parts, rewritten under data/<Name>/raw (so `datasets.<Name>(root="data",
    download=True)` finds them): the full training set and the test set without its hidden
    images. The original test files, which hold the hidden labels, never reach the kernel."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _raw_dir(self, spec: DataSpec) -> Path:
        folder = f"{self.name}/raw"
        if spec.root is None or not (spec.root / folder).is_dir():
            raise RubricError(MISSING_ROOT.format(root=spec.root, name=self.name, expected=folder))
        return spec.root / folder

    def install(self, data_dir: Path, spec: DataSpec) -> None:
        arrays = self.arrays(spec)
        target = data_dir / self.name / "raw"
        target.mkdir(parents=True, exist_ok=True)
        for part, x, y in (("train", arrays.x_train, arrays.y_train),
                           ("test", arrays.x_test[spec.hidden_count:], arrays.y_test[spec.hidden_count:])):
            images_name, labels_name = mnist.RAW_FILES[part]
            (target / images_name).write_bytes(mnist.idx_bytes(np.rint(x[:, 0] * 255)))
            (target / labels_name).write_bytes(mnist.idx_bytes(y))

    def arrays(self, spec: DataSpec) -> DataArrays:
        self._raw_dir(spec)
        arrays = _torchvision_arrays(self.name, str(spec.root), spec.hidden_count)
        if spec.hidden_count >= len(arrays.x_test):
            raise RubricError(TOO_MANY_HIDDEN.format(count=spec.hidden_count, name=self.name,
                                                     total=len(arrays.x_test)))
        return arrays


@lru_cache(maxsize=4)
def _torchvision_arrays(name: str, root: str, hidden_count: int) -> DataArrays:
    from torchvision import datasets

    def load(train: bool) -> tuple[np.ndarray, np.ndarray]:
        dataset = getattr(datasets, name)(root=root, train=train, download=False)
        images = np.asarray(dataset.data, dtype=np.float32)[:, None] / np.float32(255)
        return np.ascontiguousarray(images), np.asarray(dataset.targets, dtype=np.int64)

    x_train, y_train = load(True)
    x_test, y_test = load(False)
    return DataArrays(x_train, y_train, x_test, y_test, x_test[:hidden_count], y_test[:hidden_count])


DATA_SOURCES: dict[str, DataSource] = {
    "mnist": MnistSource(),
    "digits28": Digits28Source(),
    **{f"torchvision:{name}": TorchvisionSource(name) for name in TORCHVISION_SETS},
}


# The sources read and split their data once per process (cached); a kernel started ahead
# (grader/execute/pool.py) may ask while the batch's own thread does: one at a time, read once.
_READING = threading.RLock()


def install_data(data_dir: Path, spec: DataSpec | StudentFiles) -> None:
    """Write the students' files into `data_dir`: from the rubric's source, or from the bytes a
    batch made once (a remote worker gets those; it has no data source of its own)."""
    if isinstance(spec, StudentFiles):
        spec.install(data_dir)
        return
    with _READING:
        DATA_SOURCES[spec.source].install(data_dir, spec)


def data_arrays(spec: DataSpec) -> DataArrays:
    with _READING:
        return DATA_SOURCES[spec.source].arrays(spec)


@lru_cache(maxsize=4)
def student_files(spec: DataSpec) -> StudentFiles:
    """What `install_data` writes for this data source, as bytes (made once per batch)."""
    with tempfile.TemporaryDirectory(prefix="grader-data-") as tmp:
        root = Path(tmp)
        install_data(root, spec)
        found = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
        return StudentFiles(tuple((p.relative_to(root).as_posix(), p.read_bytes()) for p in found),
                            source=spec.source)
