"""The embedded data set `digits28`: scikit-learn's bundled 8x8 digits as 1x28x28 images.

Built deterministically on every call (no file, no download): each 8x8 image is scaled
bilinearly to 20x20 and centred on a 28x28 canvas, as MNIST centres its digits, with values
in [0, 1]. A stratified split with a fixed seed gives the student train and test parts and a
hidden grading part whose labels stay in the grader's process. Grader only: the students' package
(`grader bundle --public`) does not hold this module.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np

from grader.data.split import DataArrays, stratified_split

IMAGE_SIZE = 28
DIGIT_SIZE = 20
SPLIT_SEED = 20061
# Per class: the first HIDDEN_PER_CLASS shuffled images go to the hidden part, the next
# TEST_PER_CLASS to the student test part, the rest to the student train part.
HIDDEN_PER_CLASS = 30
TEST_PER_CLASS = 30
STUDENT_FILE_NAME = "digits28.npz"


def _resize_bilinear(images: np.ndarray, size: int) -> np.ndarray:
    """Resize N x h x w images to N x size x size (half-pixel centres, like align_corners=False)."""
    _, h, w = images.shape
    ys = np.clip((np.arange(size) + 0.5) * h / size - 0.5, 0, h - 1)
    xs = np.clip((np.arange(size) + 0.5) * w / size - 0.5, 0, w - 1)
    y0 = np.floor(ys).astype(int)
    x0 = np.floor(xs).astype(int)
    y1 = np.minimum(y0 + 1, h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    wy = (ys - y0)[None, :, None]
    wx = (xs - x0)[None, None, :]
    top = images[:, y0][:, :, x0] * (1 - wx) + images[:, y0][:, :, x1] * wx
    bottom = images[:, y1][:, :, x0] * (1 - wx) + images[:, y1][:, :, x1] * wx
    return top * (1 - wy) + bottom * wy


def _to_canvas(images8: np.ndarray) -> np.ndarray:
    scaled = _resize_bilinear(images8.astype(np.float64) / 16.0, DIGIT_SIZE)
    margin = (IMAGE_SIZE - DIGIT_SIZE) // 2
    canvas = np.zeros((len(images8), 1, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float64)
    canvas[:, 0, margin : margin + DIGIT_SIZE, margin : margin + DIGIT_SIZE] = scaled
    return np.clip(canvas, 0.0, 1.0).astype(np.float32)


@lru_cache(maxsize=1)
def load_digits28() -> DataArrays:
    """Build the data set from scikit-learn's bundled digits (cached per process)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = _to_canvas(bunch.images)
    labels = bunch.target.astype(np.int64)
    return stratified_split(images, labels, seed=SPLIT_SEED, hidden_per_class=HIDDEN_PER_CLASS,
                            test_per_class=TEST_PER_CLASS)


def student_file_bytes() -> bytes:
    """The bytes of `digits28.npz` as students get it (same bytes on every call)."""
    buffer = io.BytesIO()
    # savez (not savez_compressed) with fixed array order keeps the bytes reproducible.
    np.savez(buffer, **load_digits28().student_arrays())
    return buffer.getvalue()


def write_student_file(directory: Path) -> Path:
    """Write `digits28.npz` (train and test parts only) into `directory`; return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / STUDENT_FILE_NAME
    path.write_bytes(student_file_bytes())
    return path
