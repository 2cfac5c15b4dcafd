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
