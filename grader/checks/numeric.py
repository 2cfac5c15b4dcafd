"""Closeness of the student's numbers to the expected ones, as numpy's `isclose` / `allclose` judge
it, without their overhead: scoring compares thousands of small arrays per batch."""

from __future__ import annotations

from typing import Any

import numpy as np


def isclose(observed: np.ndarray, expected: np.ndarray, atol: float, rtol: float) -> np.ndarray:
    """`np.isclose(observed, expected, atol=atol, rtol=rtol)` for float arrays of one shape, with
    less overhead (scoring calls it for every case of every submission): |a - b| <= atol + rtol |b|,
    infinities close only to themselves, NaN close to nothing."""
    with np.errstate(invalid="ignore", over="ignore"):
        close = np.less_equal(np.abs(observed - expected), atol + rtol * np.abs(expected))
    infinite = np.isinf(observed) | np.isinf(expected)
    if infinite.any():
        close = np.where(infinite, observed == expected, close)
    return np.asarray(close)


def allclose(observed: Any, expected: Any, atol: float, rtol: float) -> bool:
    """`np.allclose(observed, expected, rtol=rtol, atol=atol)` for numbers or nested lists of them."""
    return bool(isclose(np.asarray(observed, dtype=float), np.asarray(expected, dtype=float), atol, rtol).all())
