"""Arrays on their way into the kernel: compact base64 of the raw bytes, decoded by the probe."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np


def encode_array(array: np.ndarray) -> dict[str, Any]:
    array = np.ascontiguousarray(array)
    return {"__b64__": base64.b64encode(array.tobytes()).decode("ascii"),
            "dtype": str(array.dtype), "shape": list(array.shape)}
