"""torchvision's raw files of the MNIST family: unsigned-byte IDX files under `<Name>/raw/`."""

from __future__ import annotations

import numpy as np

# torchvision's names for the uncompressed IDX files; MNIST._check_exists looks for exactly these.
RAW_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
IDX_UBYTE = 0x08


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file (MNIST's format): magic 0 0 type ndim, big-endian sizes, data."""
    header = bytes([0, 0, IDX_UBYTE, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def read_idx(content: bytes) -> np.ndarray:
    """The uint8 array of an unsigned-byte IDX file."""
    if len(content) < 4 or content[:3] != bytes([0, 0, IDX_UBYTE]):
        raise ValueError("not an unsigned-byte IDX file")
    ndim = content[3]
    shape = tuple(int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(content, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"IDX file of shape {shape} holds {data.size} values")
    return data.reshape(shape).copy()


def images_from_grey(grey: np.ndarray) -> np.ndarray:
    """uint8 N x H x W grey levels as float32 N x 1 x H x W in [0, 1] (grey level / 255, like ToTensor)."""
    return np.ascontiguousarray(np.asarray(grey, dtype=np.float32)[:, None] / np.float32(255))
