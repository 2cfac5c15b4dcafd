"""Part A oracles: what PyTorch itself computes for a student function's inputs, and how random
inputs are drawn. Runs in the grader's process only; nothing here is sent to the kernel."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

OMIT = None  # an argument left out of the call, so the student's default is exercised


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # int | matrix | tensor3 | tensor4 | vector
    default: Any = "required"

    @property
    def optional(self) -> bool:
        return self.default != "required"


@dataclass(frozen=True)
class Oracle:
    """A function contract: its parameters, how to draw inputs, what torch says the answer is."""

    name: str
    params: tuple[Param, ...]
    range_minimums: Mapping[str, int]  # the ranges a rubric gives, with the smallest value allowed
    sample: Callable[[np.random.Generator, Mapping[str, tuple[int, int]]], dict[str, Any]]
    compute: Callable[[dict[str, Any]], Any]
    returns: str  # int | array

    @property
    def range_names(self) -> tuple[str, ...]:
        return tuple(self.range_minimums)

    def signature(self) -> str:
        parts = [p.name if not p.optional else f"{p.name}={p.default}" for p in self.params]
        return f"{self.name}({', '.join(parts)})"

    def positional_args(self, case: Mapping[str, Any]) -> list[Any]:
        """Arguments in parameter order, up to the last one the case gives (defaults between)."""
        given = [i for i, p in enumerate(self.params) if case.get(p.name, OMIT) is not OMIT]
        last = max(given) if given else -1
        values = []
        for param in self.params[: last + 1]:
            value = case.get(param.name, OMIT)
            values.append(param.default if value is OMIT else value)
        return values


def _torch():
    import torch
    import torch.nn.functional

    return torch


def _tensor(value: Any, dims: int):
    torch = _torch()
    tensor = torch.tensor(np.asarray(value, dtype=np.float64), dtype=torch.float64)
    while tensor.dim() < dims:
        tensor = tensor.unsqueeze(0)
    return tensor


def _values(rng: np.random.Generator, shape: tuple[int, ...]) -> list:
    # Halves in [-4, 4]: exact in float32, readable in feedback, and a cast to int shows.
    return (rng.integers(-8, 9, size=shape) / 2.0).tolist()


def _draw(rng: np.random.Generator, ranges: Mapping[str, tuple[int, int]], name: str) -> int:
    low, high = ranges[name]
    return int(rng.integers(low, high + 1))


def _maybe_omit(value: int, default: int) -> int | None:
    return OMIT if value == default else value


# conv_output_size(h_in, kernel_size, padding=0, stride=1)

def _sample_output_size(rng: np.random.Generator, ranges: Mapping[str, tuple[int, int]]) -> dict:
    padding = _draw(rng, ranges, "padding")
    h_in = _draw(rng, ranges, "h_in")
    kernel = min(_draw(rng, ranges, "kernel_size"), h_in + 2 * padding)
    stride = _draw(rng, ranges, "stride")
    return {"h_in": h_in, "kernel_size": kernel, "padding": _maybe_omit(padding, 0),
            "stride": _maybe_omit(stride, 1)}


def _compute_output_size(case: dict[str, Any]) -> int:
    torch = _torch()
    h_in, padding, stride = case["h_in"], case.get("padding") or 0, case.get("stride") or 1
    probe = torch.zeros(1, 1, h_in, 1)
    weight = torch.zeros(1, 1, case["kernel_size"], 1)
    out = torch.nn.functional.conv2d(probe, weight, padding=(padding, 0), stride=(stride, 1))
    return int(out.shape[2])


# conv2d_single(image, kernel, padding=0, stride=1)

def _sample_single(rng: np.random.Generator, ranges: Mapping[str, tuple[int, int]]) -> dict:
    height, width = _draw(rng, ranges, "size"), _draw(rng, ranges, "size")
    padding = _draw(rng, ranges, "padding")
    kernel = min(_draw(rng, ranges, "kernel_size"), height + 2 * padding, width + 2 * padding)
    stride = _draw(rng, ranges, "stride")
    return {"image": _values(rng, (height, width)), "kernel": _values(rng, (kernel, kernel)),
            "padding": _maybe_omit(padding, 0), "stride": _maybe_omit(stride, 1)}


def _compute_single(case: dict[str, Any]) -> np.ndarray:
    torch = _torch()
    out = torch.nn.functional.conv2d(_tensor(case["image"], 4), _tensor(case["kernel"], 4),
                                     padding=case.get("padding") or 0, stride=case.get("stride") or 1)
    return out[0, 0].numpy()


# conv2d_multi(x, weight, bias=None, padding=0, stride=1)

def _sample_multi(rng: np.random.Generator, ranges: Mapping[str, tuple[int, int]]) -> dict:
    c_in, c_out = _draw(rng, ranges, "in_channels"), _draw(rng, ranges, "out_channels")
    height, width = _draw(rng, ranges, "size"), _draw(rng, ranges, "size")
    padding = _draw(rng, ranges, "padding")
    kernel = min(_draw(rng, ranges, "kernel_size"), height + 2 * padding, width + 2 * padding)
    stride = _draw(rng, ranges, "stride")
    with_bias = _draw(rng, ranges, "bias") == 1
    return {"x": _values(rng, (c_in, height, width)), "weight": _values(rng, (c_out, c_in, kernel, kernel)),
            "bias": _values(rng, (c_out,)) if with_bias else OMIT,
            "padding": _maybe_omit(padding, 0), "stride": _maybe_omit(stride, 1)}


def _compute_multi(case: dict[str, Any]) -> np.ndarray:
    torch = _torch()
    bias = case.get("bias")
    out = torch.nn.functional.conv2d(
        _tensor(case["x"], 4), _tensor(case["weight"], 4),
        bias=None if bias is None else _tensor(bias, 1),
        padding=case.get("padding") or 0, stride=case.get("stride") or 1)
    return out[0].numpy()


# maxpool2d(x, kernel_size, stride=None)

def _sample_pool(rng: np.random.Generator, ranges: Mapping[str, tuple[int, int]]) -> dict:
    channels = _draw(rng, ranges, "channels")
    height, width = _draw(rng, ranges, "size"), _draw(rng, ranges, "size")
    kernel = min(_draw(rng, ranges, "kernel_size"), height, width)
    stride = _draw(rng, ranges, "stride")  # 0 in the range means: leave stride out
    return {"x": _values(rng, (channels, height, width)), "kernel_size": kernel,
            "stride": stride if stride > 0 else OMIT}


def _compute_pool(case: dict[str, Any]) -> np.ndarray:
    torch = _torch()
    out = torch.nn.functional.max_pool2d(_tensor(case["x"], 4), case["kernel_size"],
                                         stride=case.get("stride") or case["kernel_size"])
    return out[0].numpy()


ORACLES: dict[str, Oracle] = {
    oracle.name: oracle for oracle in (
        Oracle("conv_output_size",
               (Param("h_in", "int"), Param("kernel_size", "int"), Param("padding", "int", 0),
                Param("stride", "int", 1)),
               {"h_in": 1, "kernel_size": 1, "padding": 0, "stride": 1},
               _sample_output_size, _compute_output_size, "int"),
        Oracle("conv2d_single",
               (Param("image", "matrix"), Param("kernel", "matrix"), Param("padding", "int", 0),
                Param("stride", "int", 1)),
               {"size": 1, "kernel_size": 1, "padding": 0, "stride": 1},
               _sample_single, _compute_single, "array"),
        Oracle("conv2d_multi",
               (Param("x", "tensor3"), Param("weight", "tensor4"), Param("bias", "vector", None),
                Param("padding", "int", 0), Param("stride", "int", 1)),
               {"in_channels": 1, "out_channels": 1, "size": 1, "kernel_size": 1, "padding": 0, "stride": 1,
                "bias": 0},
               _sample_multi, _compute_multi, "array"),
        Oracle("maxpool2d",
               (Param("x", "tensor3"), Param("kernel_size", "int"), Param("stride", "int", None)),
               {"channels": 1, "size": 1, "kernel_size": 1, "stride": 0},
               _sample_pool, _compute_pool, "array"),
    )
}
