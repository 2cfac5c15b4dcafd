"""The scoring's closeness tests agree with numpy's `isclose` / `allclose`, which they replace for
speed, on ordinary values and on the edge cases a wrong student value brings: infinities, NaN,
zero expectations, negative numbers, nested lists."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from grader.checks.numeric import allclose, isclose

VALUES = [0.0, -0.0, 1.0, -1.0, 1.0 + 1e-9, 1.0 + 1e-3, 1e-12, 3.5, -3.5, 1e300, np.inf, -np.inf, np.nan]


@pytest.mark.parametrize(("atol", "rtol"), [(1e-6, 1e-5), (0.0, 0.0), (0.5, 0.0), (0.0, 1e-2)])
def test_isclose_agrees_with_numpy_on_every_pair(atol: float, rtol: float) -> None:
    observed = np.array([a for a, _ in itertools.product(VALUES, VALUES)])
    expected = np.array([b for _, b in itertools.product(VALUES, VALUES)])
    assert np.array_equal(isclose(observed, expected, atol, rtol),
                          np.isclose(observed, expected, atol=atol, rtol=rtol))


def test_allclose_agrees_with_numpy_on_nested_lists() -> None:
    want = [[1.0, 2.0], [3.0, 4.0]]
    for got in ([[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0], [3.0, 4.1]], [[1.0, 2.0], [3.0, float("nan")]], 2.0):
        assert allclose(got, want, 1e-6, 1e-5) == np.allclose(got, want, rtol=1e-5, atol=1e-6)
    assert allclose(5, 5.0000001, 1e-6, 1e-5)
