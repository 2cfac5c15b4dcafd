"""The arrays of a data set as every grader package holds them: the students' parts, and the part
D3 and E1 measure accuracy on. The hidden split itself is built only by the grading sources
(grader/data/split.py and the modules using it), which the students' package does not hold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HIDDEN_SPLIT = "the hidden split"
HIDDEN_IMAGES = "hidden images"
# The students' package has no hidden split: its self-checks measure D3 and E1 on the test part.
TEST_PART = "the test part"
STAND_IN = " (the self-check's stand-in: the final grade measures the hidden split)"
TEST_IMAGES = "test images"


@dataclass(frozen=True)
class StudentArrays:
    """The train and test parts students get: images as float32 N x C x H x W in [0, 1], labels
    as int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def student_arrays(self) -> dict[str, np.ndarray]:
        return {"x_train": self.x_train, "y_train": self.y_train, "x_test": self.x_test, "y_test": self.y_test}


@dataclass(frozen=True)
class EvaluationPart:
    """What D3 and E1 measure accuracy on: `images` go into the kernel, `labels` stay in the
    process that scores. Grading uses the hidden split (`hidden`); the students' package, which
    has none, uses its test part. `name`, `described` and `images_name` say which in the feedback."""

    images: np.ndarray
    labels: np.ndarray
    hidden: bool = True

    @property
    def name(self) -> str:
        return HIDDEN_SPLIT if self.hidden else TEST_PART

    @property
    def described(self) -> str:
        return HIDDEN_SPLIT if self.hidden else TEST_PART + STAND_IN

    @property
    def images_name(self) -> str:
        return HIDDEN_IMAGES if self.hidden else TEST_IMAGES
