"""grader.checks.oracles.ORACLES: PyTorch's answers on hand-computed examples, argument
positions, and the input samplers."""

from __future__ import annotations

import numpy as np
import pytest

from grader.checks.oracles import ORACLES

SLIDE_IMAGE = [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
SLIDE_KERNEL = [[0, 1], [2, 3]]

# A 4x4 single-channel map whose window maxima are not all in the same corner.
POOL_X = [[[1, 9, 2, 0],
           [4, 3, 8, 7],
           [6, 5, 0, 1],
           [2, 15, 3, 4]]]


def compute(oracle: str, **case) -> np.ndarray:
    return np.asarray(ORACLES[oracle].compute(case), dtype=float)


# ------------------------------------------------------------------------ conv_output_size


@pytest.mark.parametrize(("case", "expected"), [
    ({"h_in": 3, "kernel_size": 2}, 2),
    ({"h_in": 28, "kernel_size": 3, "padding": 1, "stride": 1}, 28),
    ({"h_in": 28, "kernel_size": 3, "padding": 1}, 28),
    ({"h_in": 28, "kernel_size": 2, "padding": 0, "stride": 2}, 14),
    ({"h_in": 6, "kernel_size": 3, "padding": 0, "stride": 2}, 2),   # floor(3 / 2) + 1
    ({"h_in": 28, "kernel_size": 5, "padding": 1, "stride": 3}, 9),  # floor(25 / 3) + 1
    ({"h_in": 10, "kernel_size": 4, "padding": 2, "stride": 4}, 3),  # floor(10 / 4) + 1
    ({"h_in": 1, "kernel_size": 1}, 1),
])
def test_conv_output_size_matches_hand_computed_values(case, expected):
    result = ORACLES["conv_output_size"].compute(dict(case))
    assert result == expected
    assert isinstance(result, int)


def test_conv_output_size_treats_omitted_padding_and_stride_as_defaults():
    oracle = ORACLES["conv_output_size"]
    assert oracle.compute({"h_in": 7, "kernel_size": 3, "padding": None, "stride": None}) == 5


# ------------------------------------------------------------------------ conv2d_single


def test_conv2d_single_on_the_lecture_slide_example():
    result = compute("conv2d_single", image=SLIDE_IMAGE, kernel=SLIDE_KERNEL)
    assert result.tolist() == [[19, 25], [37, 43]]


def test_conv2d_single_with_stride_two_keeps_the_top_left_window():
    assert compute("conv2d_single", image=SLIDE_IMAGE, kernel=SLIDE_KERNEL, stride=2).tolist() == [[19]]


def test_conv2d_single_with_zero_padding():
    result = compute("conv2d_single", image=[[1, 2], [3, 4]], kernel=[[1]], padding=1)
    assert result.tolist() == [[0, 0, 0, 0], [0, 1, 2, 0], [0, 3, 4, 0], [0, 0, 0, 0]]


def test_conv2d_single_does_not_flip_the_kernel():
    # Cross-correlation: a kernel picking the top-left pixel returns the image's top-left part.
    result = compute("conv2d_single", image=SLIDE_IMAGE, kernel=[[1, 0], [0, 0]])
    assert result.tolist() == [[0, 1], [3, 4]]


# ------------------------------------------------------------------------ conv2d_multi

X_TWO_CHANNELS = [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]


def test_conv2d_multi_sums_channels_and_adds_the_bias_1x1_kernel():
    # out = 2 * x[0] - 1 * x[1] + 0.5
    result = compute("conv2d_multi", x=X_TWO_CHANNELS, weight=[[[[2]], [[-1]]]], bias=[0.5])
    assert result.tolist() == [[[-2.5, -1.5], [-0.5, 0.5]]]


def test_conv2d_multi_two_output_channels_each_get_their_own_bias():
    weight = [
        [[[1, 0], [0, 0]], [[0, 0], [0, 1]]],  # x[0][0][0] + x[1][1][1] = 1 + 8
        [[[1, 1], [1, 1]], [[1, 1], [1, 1]]],  # everything: 36
    ]
    result = compute("conv2d_multi", x=X_TWO_CHANNELS, weight=weight, bias=[10, -1])
    assert result.shape == (2, 1, 1)
    assert result.tolist() == [[[19]], [[35]]]


def test_conv2d_multi_without_bias():
    result = compute("conv2d_multi", x=X_TWO_CHANNELS, weight=[[[[2]], [[-1]]]], bias=None)
    assert result.tolist() == [[[-3, -2], [-1, 0]]]


# ------------------------------------------------------------------------ maxpool2d


def test_maxpool2d_default_stride_equals_the_kernel_size():
    assert compute("maxpool2d", x=POOL_X, kernel_size=2).tolist() == [[[9, 8], [15, 4]]]


def test_maxpool2d_omitted_stride_is_the_default():
    assert compute("maxpool2d", x=POOL_X, kernel_size=2, stride=None).tolist() == [[[9, 8], [15, 4]]]


def test_maxpool2d_explicit_stride_one_overlaps_windows():
    assert compute("maxpool2d", x=POOL_X, kernel_size=2, stride=1).tolist() == [
        [[9, 9, 8], [6, 8, 8], [15, 15, 4]]]


def test_maxpool2d_drops_the_partial_window():
    # kernel 3, stride 3 on 4x4: one window, rows/cols 0..2
    assert compute("maxpool2d", x=POOL_X, kernel_size=3).tolist() == [[[9]]]


# ------------------------------------------------------------------------ signatures and positional args


def test_signatures_show_the_defaults():
    assert ORACLES["conv_output_size"].signature() == "conv_output_size(h_in, kernel_size, padding=0, stride=1)"
    assert ORACLES["conv2d_single"].signature() == "conv2d_single(image, kernel, padding=0, stride=1)"
    assert ORACLES["conv2d_multi"].signature() == "conv2d_multi(x, weight, bias=None, padding=0, stride=1)"
    assert ORACLES["maxpool2d"].signature() == "maxpool2d(x, kernel_size, stride=None)"


def test_positional_args_fill_defaults_between_given_args():
    oracle = ORACLES["conv_output_size"]
    assert oracle.positional_args({"h_in": 28, "kernel_size": 3, "stride": 2}) == [28, 3, 0, 2]


def test_positional_args_drop_trailing_omitted_args():
    oracle = ORACLES["conv_output_size"]
    assert oracle.positional_args({"h_in": 28, "kernel_size": 3, "padding": None, "stride": None}) == [28, 3]
    assert oracle.positional_args({"h_in": 28, "kernel_size": 3, "padding": 1}) == [28, 3, 1]


def test_positional_args_fill_a_none_bias_before_padding():
    oracle = ORACLES["conv2d_multi"]
    args = oracle.positional_args({"x": "X", "weight": "W", "bias": None, "padding": 1, "stride": None})
    assert args == ["X", "W", None, 1]


def test_positional_args_leave_an_omitted_pool_stride_out():
    oracle = ORACLES["maxpool2d"]
    assert oracle.positional_args({"x": "X", "kernel_size": 2, "stride": None}) == ["X", 2]
    assert oracle.positional_args({"x": "X", "kernel_size": 2, "stride": 3}) == ["X", 2, 3]


# ------------------------------------------------------------------------ samplers

DRAWS = 200


def samples(oracle: str, ranges: dict, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [ORACLES[oracle].sample(rng, ranges) for _ in range(DRAWS)]


def halves_in_range(values) -> bool:
    array = np.asarray(values, dtype=float)
    return bool(np.all(array >= -4) and np.all(array <= 4) and np.all(array * 2 == np.round(array * 2)))


def test_output_size_sampler_respects_the_ranges():
    drawn = samples("conv_output_size", {"h_in": (10, 20), "kernel_size": (2, 5), "padding": (0, 2),
                                         "stride": (1, 3)})
    assert all(10 <= case["h_in"] <= 20 for case in drawn)
    assert all(2 <= case["kernel_size"] <= 5 for case in drawn)
    # The defaults (padding 0, stride 1) are left out of the call so the student's defaults run.
    assert {case["padding"] for case in drawn} == {None, 1, 2}
    assert {case["stride"] for case in drawn} == {None, 2, 3}


def test_output_size_sampler_never_draws_a_kernel_larger_than_the_padded_input():
    drawn = samples("conv_output_size", {"h_in": (1, 3), "kernel_size": (1, 7), "padding": (0, 1),
                                         "stride": (1, 2)})
    assert all(case["kernel_size"] <= case["h_in"] + 2 * (case["padding"] or 0) for case in drawn)


def test_single_sampler_respects_the_ranges():
    drawn = samples("conv2d_single", {"size": (3, 6), "kernel_size": (1, 3), "padding": (0, 0), "stride": (1, 1)})
    for case in drawn:
        image, kernel = np.asarray(case["image"]), np.asarray(case["kernel"])
        assert image.ndim == 2 and 3 <= image.shape[0] <= 6 and 3 <= image.shape[1] <= 6
        assert kernel.ndim == 2 and kernel.shape[0] == kernel.shape[1] and 1 <= kernel.shape[0] <= 3
        assert case["padding"] is None and case["stride"] is None
        assert halves_in_range(image) and halves_in_range(kernel)


def test_multi_sampler_respects_channels_and_the_bias_switch():
    ranges = {"in_channels": (1, 3), "out_channels": (2, 4), "size": (3, 8), "kernel_size": (1, 3),
              "padding": (0, 0), "stride": (1, 1)}
    without = samples("conv2d_multi", {**ranges, "bias": (0, 0)})
    with_bias = samples("conv2d_multi", {**ranges, "bias": (1, 1)})
    assert all(case["bias"] is None for case in without)
    for case in with_bias:
        x, weight = np.asarray(case["x"]), np.asarray(case["weight"])
        assert 1 <= x.shape[0] <= 3 and 2 <= weight.shape[0] <= 4
        assert weight.shape[1] == x.shape[0]
        assert len(case["bias"]) == weight.shape[0]


def test_pool_sampler_with_stride_range_zero_always_omits_the_stride():
    drawn = samples("maxpool2d", {"channels": (1, 3), "size": (2, 9), "kernel_size": (2, 3), "stride": (0, 0)})
    assert all(case["stride"] is None for case in drawn)
    assert ORACLES["maxpool2d"].positional_args(drawn[0]) == [drawn[0]["x"], drawn[0]["kernel_size"]]


def test_pool_sampler_respects_an_explicit_stride_range():
    drawn = samples("maxpool2d", {"channels": (1, 3), "size": (3, 9), "kernel_size": (2, 3), "stride": (1, 3)})
    assert {case["stride"] for case in drawn} == {1, 2, 3}
    for case in drawn:
        x = np.asarray(case["x"])
        assert 1 <= x.shape[0] <= 3 and 3 <= x.shape[1] <= 9 and 3 <= x.shape[2] <= 9
        assert 2 <= case["kernel_size"] <= 3
        assert halves_in_range(x)


@pytest.mark.parametrize(("oracle", "ranges"), [
    ("conv_output_size", {"h_in": (1, 64), "kernel_size": (1, 7), "padding": (0, 3), "stride": (1, 4)}),
    ("conv2d_single", {"size": (3, 9), "kernel_size": (1, 4), "padding": (1, 2), "stride": (1, 3)}),
    ("maxpool2d", {"channels": (1, 3), "size": (3, 9), "kernel_size": (2, 3), "stride": (1, 3)}),
])
def test_same_seed_gives_the_same_sample_and_another_seed_another(oracle, ranges):
    assert samples(oracle, ranges, seed=42) == samples(oracle, ranges, seed=42)
    assert samples(oracle, ranges, seed=42) != samples(oracle, ranges, seed=43)
