"""The data sources of the grader's installation: each builds the hidden split (the digits28 and
mnist splits, or a torchvision set's first `hidden_count` test images) next to the students'
parts. Grader only: the students' package (`grader bundle --public`) holds neither this module nor
the modules it imports, only the files its source writes for students (grader/data/packaged.py)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from grader.data import digits28, mnist
from grader.data.idx import RAW_FILES, idx_bytes, images_from_grey
from grader.data.sources import TORCHVISION_SETS
from grader.data.split import DataArrays
from grader.errors import RubricError
from grader.rubric.model import DataSpec

MISSING_ROOT = ("data.root: {root} holds no {name} files in torchvision's layout ({expected}). Put the "
                "data set there (the grader never downloads) or fix data.root in the rubric.")
TOO_MANY_HIDDEN = ("data.hidden_count: {count} hidden images leave none of the {total} {name} test images for "
                   "the students. Choose a smaller hidden_count in the rubric.")


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
    The hidden split is the first `hidden_count` test images; the students' test part is the
    rest. Students get the raw files of their parts, rewritten under data/<Name>/raw (so
    `datasets.<Name>(root="data", download=True)` finds them): the full training set and the test
    set without its hidden images. The original test files, which hold the hidden labels, never
    reach the kernel."""

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
        for part, x, y in (("train", arrays.x_train, arrays.y_train), ("test", arrays.x_test, arrays.y_test)):
            images_name, labels_name = RAW_FILES[part]
            (target / images_name).write_bytes(idx_bytes(np.rint(x[:, 0] * 255)))
            (target / labels_name).write_bytes(idx_bytes(y))

    def arrays(self, spec: DataSpec) -> DataArrays:
        self._raw_dir(spec)
        arrays = _torchvision_arrays(self.name, str(spec.root), spec.hidden_count)
        if len(arrays.x_test) == 0:
            raise RubricError(TOO_MANY_HIDDEN.format(count=spec.hidden_count, name=self.name,
                                                     total=len(arrays.x_hidden)))
        return arrays


@lru_cache(maxsize=4)
def _torchvision_arrays(name: str, root: str, hidden_count: int) -> DataArrays:
    from torchvision import datasets

    def load(train: bool) -> tuple[np.ndarray, np.ndarray]:
        dataset = getattr(datasets, name)(root=root, train=train, download=False)
        return images_from_grey(dataset.data), np.asarray(dataset.targets, dtype=np.int64)

    x_train, y_train = load(True)
    x_test, y_test = load(False)
    # The students' test part is what follows the hidden images: D2 and the files students get
    # hold no hidden image.
    return DataArrays(x_train, y_train, x_test[hidden_count:], y_test[hidden_count:],
                      x_test[:hidden_count], y_test[:hidden_count])


GRADING_SOURCES = {
    "mnist": MnistSource(),
    "digits28": Digits28Source(),
    **{f"torchvision:{name}": TorchvisionSource(name) for name in TORCHVISION_SETS},
}


def grading_source(name: str):
    """The grader's source of that name (the rubric loader has checked the name)."""
    return GRADING_SOURCES[name]
