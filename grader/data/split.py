"""The hidden split: built here, on the grader's side only. The students' package
(`grader bundle --public`) leaves this module out, with every module that uses it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader.data.arrays import EvaluationPart, StudentArrays


@dataclass(frozen=True)
class DataArrays(StudentArrays):
    """All parts: the students' train and test parts, and the hidden split, whose labels
    (`hidden_labels`) never leave the grader's process."""

    x_hidden: np.ndarray
    hidden_labels: np.ndarray

    def evaluation_part(self) -> EvaluationPart:
        return EvaluationPart(self.x_hidden, self.hidden_labels)


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
