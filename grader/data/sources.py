"""Data sources a rubric can name. Each puts the students' files into a working directory's
`data/` and gives the grader its arrays, including the hidden split's labels, which never
leave the grader's process."""

from __future__ import annotations

import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from grader.data import digits28
from grader.data.arrays import DataArrays
from grader.data.student_files import StudentFiles
from grader.errors import RubricError
from grader.rubric.model import DataSpec

TORCHVISION_SETS = ("FashionMNIST", "MNIST", "CIFAR10")
MISSING_ROOT = ("data.root: {root} holds no {name} files in torchvision's layout ({expected}). Put the "
                "data set there (the grader never downloads) or fix data.root in the rubric.")


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


class TorchvisionSource:
    """A torchvision data set in its own on-disk layout under `data.root`, never downloaded.
    Students get the raw files under data/<Name>/raw (so `datasets.<Name>(root="data",
    download=True)` finds them); the hidden split is the first `hidden_count` test images."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _raw_dir(self, spec: DataSpec) -> Path:
        folder = "cifar-10-batches-py" if self.name == "CIFAR10" else f"{self.name}/raw"
        if spec.root is None or not (spec.root / folder).is_dir():
            raise RubricError(MISSING_ROOT.format(root=spec.root, name=self.name, expected=folder))
        return spec.root / folder

    def install(self, data_dir: Path, spec: DataSpec) -> None:
        raw = self._raw_dir(spec)
        target = data_dir / raw.relative_to(spec.root)
        target.mkdir(parents=True, exist_ok=True)
        for path in raw.iterdir():
            if path.is_file():
                shutil.copyfile(path, target / path.name)

    def arrays(self, spec: DataSpec) -> DataArrays:
        self._raw_dir(spec)
        return _torchvision_arrays(self.name, str(spec.root), spec.hidden_count)


@lru_cache(maxsize=4)
def _torchvision_arrays(name: str, root: str, hidden_count: int) -> DataArrays:
    from torchvision import datasets

    def load(train: bool) -> tuple[np.ndarray, np.ndarray]:
        dataset = getattr(datasets, name)(root=root, train=train, download=False)
        images = np.asarray(dataset.data, dtype=np.float32) / 255.0
        images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(images), np.asarray(dataset.targets, dtype=np.int64)

    x_train, y_train = load(True)
    x_test, y_test = load(False)
    return DataArrays(x_train, y_train, x_test, y_test, x_test[:hidden_count], y_test[:hidden_count])


DATA_SOURCES: dict[str, DataSource] = {
    "digits28": Digits28Source(),
    **{f"torchvision:{name}": TorchvisionSource(name) for name in TORCHVISION_SETS},
}


def install_data(data_dir: Path, spec: DataSpec | StudentFiles) -> None:
    """Write the students' files into `data_dir`: from the rubric's source, or from the bytes a
    batch made once (a remote worker gets those; it has no data source of its own)."""
    if isinstance(spec, StudentFiles):
        spec.install(data_dir)
        return
    DATA_SOURCES[spec.source].install(data_dir, spec)


def data_arrays(spec: DataSpec) -> DataArrays:
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
