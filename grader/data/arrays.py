"""The arrays of a data set as the grader holds them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DataArrays:
    """Images as float32 N x C x H x W in [0, 1], labels as int64. Only the train and test parts
    are ever given to students; `hidden_labels` never leave the grader's process."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_hidden: np.ndarray
    hidden_labels: np.ndarray

    def student_arrays(self) -> dict[str, np.ndarray]:
        return {"x_train": self.x_train, "y_train": self.y_train, "x_test": self.x_test, "y_test": self.y_test}


def stratified_split(images: np.ndarray, labels: np.ndarray, *, seed: int, hidden_per_class: int,
                     test_per_class: int) -> DataArrays:
    """Split per class with a seeded shuffle: the first `hidden_per_class` images of each class go
    to the hidden part, the next `test_per_class` to the student test part, the rest to the
    student train part. Each part is then shuffled, so none is sorted by label."""
    rng = np.random.default_rng(seed)
    hidden, test, train = [], [], []
    for label in range(int(labels.max()) + 1):
        members = rng.permutation(np.flatnonzero(labels == label))
        hidden.append(members[:hidden_per_class])
        test.append(members[hidden_per_class : hidden_per_class + test_per_class])
        train.append(members[hidden_per_class + test_per_class :])
    train_idx, test_idx, hidden_idx = (rng.permutation(np.concatenate(p)) for p in (train, test, hidden))
    return DataArrays(
        x_train=images[train_idx],
        y_train=labels[train_idx],
        x_test=images[test_idx],
        y_test=labels[test_idx],
        x_hidden=images[hidden_idx],
        hidden_labels=labels[hidden_idx],
    )
