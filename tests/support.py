"""Helpers for tests: notebooks and rubric variants written on the fly."""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RUBRIC = REPO / "rubrics" / "ex06.toml"
SAMPLES = REPO / "submissions"

# A rubric check on conv_output_size alone: notebooks that need no torch grade in a second or two.
A1_LECTURE_CHECK = """[[checks]]
id = "A1.lecture_examples"
kind = "function"
function = "conv_output_size"
oracle = "conv_output_size"
points = 2
cases = [{ h_in = 3, kernel_size = 2 }, { h_in = 28, kernel_size = 3, padding = 1 }]
"""

GOOD_DEF = """def conv_output_size(h_in, kernel_size, padding=0, stride=1):
    return (h_in - kernel_size + 2 * padding) // stride + 1"""


def write_notebook(path: Path, *cells: str) -> Path:
    """A notebook of code cells with these sources."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def edited_rubric(tmp_path: Path, *replacements: tuple[str, str], name: str = "rubric.toml") -> Path:
    """A copy of the default rubric with exact text replacements (each must match once)."""
    text = DEFAULT_RUBRIC.read_text("utf-8")
    for old, new in replacements:
        assert text.count(old) == 1, f"replacement target not unique: {old!r}"
        text = text.replace(old, new)
    text = text.replace('module = "../reference/ex06_reference.py"',
                        f'module = "{REPO / "reference" / "ex06_reference.py"}"')
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


def write_idx_dataset(raw_dir: Path, x_train, y_train, x_test, y_test) -> Path:
    """Write images (N x 1 x 28 x 28 floats in [0, 1]) and labels as IDX files in torchvision's
    MNIST-family layout, e.g. raw_dir = root / "FashionMNIST" / "raw"."""
    import numpy as np

    raw_dir.mkdir(parents=True, exist_ok=True)

    def images(path: Path, x) -> None:
        pixels = np.round(np.asarray(x)[:, 0] * 255).astype(np.uint8)
        header = np.array([0x803, len(pixels), 28, 28], dtype=">i4").tobytes()
        path.write_bytes(header + pixels.tobytes())

    def labels(path: Path, y) -> None:
        header = np.array([0x801, len(y)], dtype=">i4").tobytes()
        path.write_bytes(header + np.asarray(y, dtype=np.uint8).tobytes())

    images(raw_dir / "train-images-idx3-ubyte", x_train)
    labels(raw_dir / "train-labels-idx1-ubyte", y_train)
    images(raw_dir / "t10k-images-idx3-ubyte", x_test)
    labels(raw_dir / "t10k-labels-idx1-ubyte", y_test)
    return raw_dir


def fashion_rubric(tmp_path: Path, root: Path) -> Path:
    """rubrics/ex06_fashionmnist.toml pointing at a test data root (see fake_fashion_root)."""
    text = (REPO / "rubrics" / "ex06_fashionmnist.toml").read_text()
    text = text.replace('extends = "ex06.toml"', f'extends = "{REPO / "rubrics" / "ex06.toml"}"')
    text = text.replace('root = "../data"', f'root = "{root}"')
    # The fake test set holds the digits' 300 hidden and 300 test images: hide the first 300.
    text = text.replace("hidden_count = 1000", "hidden_count = 300")
    path = tmp_path / "fashion.toml"
    path.write_text(text)
    return path


def fake_fashion_root(root: Path) -> Path:
    """Small IDX files in FashionMNIST's layout under `root` (made of the digits28 parts, so they are
    learnable): digits28's hidden part first in the test set, as hidden_count = 300 hides it."""
    import numpy as np

    from grader.data.digits28 import load_digits28

    digits = load_digits28()
    write_idx_dataset(root / "FashionMNIST" / "raw", digits.x_train, digits.y_train,
                      np.concatenate([digits.x_hidden, digits.x_test]),
                      np.concatenate([digits.hidden_labels, digits.y_test]))
    return root


def hidden_split_patterns(arrays) -> dict[str, bytes]:
    """The hidden split as it could lie in a file: each hidden image as grey levels (uint8, IDX and
    torchvision's form) and as float32 in [0, 1] (the npz form), and the hidden labels in their order
    as uint8 and as int64."""
    import numpy as np

    patterns = {}
    for i, image in enumerate(arrays.x_hidden):
        patterns[f"hidden image {i} (float32)"] = np.ascontiguousarray(image, dtype=np.float32).tobytes()
        patterns[f"hidden image {i} (uint8)"] = np.rint(image * 255).astype(np.uint8).tobytes()
    patterns["hidden labels (uint8)"] = arrays.hidden_labels.astype(np.uint8).tobytes()
    patterns["hidden labels (int64)"] = arrays.hidden_labels.astype(np.int64).tobytes()
    return patterns


PROBE_BYTES = 32  # each pattern is looked for by one 32-byte window of it, then compared in full
_MIX = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 1)


def _probe_keys(blob: bytes, start: int = 0):
    """A 64-bit key of every 32-byte window of `blob` whose offset is `start` modulo 8, from the four
    little-endian words it holds (numpy's uint64 arithmetic wraps modulo 2**64)."""
    import numpy as np

    count = (len(blob) - start) // 8
    if count < PROBE_BYTES // 8:
        return np.zeros(0, dtype=np.uint64)
    words = np.frombuffer(blob, dtype="<u8", count=count, offset=start)
    keys = np.zeros(count - 3, dtype=np.uint64)
    for i, mix in enumerate(_MIX):
        keys += words[i:count - 3 + i] * np.uint64(mix)
    return keys


def _probe_offset(pattern: bytes) -> int:
    """Where in `pattern` its probe window lies: the 32 bytes that vary most (a digit's strokes, not
    its blank border or a run of saturated pixels)."""
    import numpy as np

    values = np.frombuffer(pattern, dtype=np.uint8).astype(np.int64)
    variation = np.concatenate([[0], np.cumsum(np.abs(np.diff(values)))])
    return int(np.argmax(variation[PROBE_BYTES - 1:] - variation[:len(pattern) - PROBE_BYTES + 1]))


def find_patterns(blobs: dict[str, bytes], patterns: dict[str, bytes]) -> list[tuple[str, str]]:
    """(blob name, pattern name) for every pattern found at any offset of any blob: each 32-byte
    window of the blobs is looked up among the patterns' probe windows, and every candidate is
    compared in full."""
    import numpy as np

    table: dict[int, list[tuple[str, int]]] = {}
    for name, pattern in patterns.items():
        at = _probe_offset(pattern)
        table.setdefault(int(_probe_keys(pattern[at:at + PROBE_BYTES])[0]), []).append((name, at))
    keys = np.sort(np.fromiter(table, dtype=np.uint64, count=len(table)))
    found = set()
    for blob_name, blob in blobs.items():
        for start in range(8):
            hashes = _probe_keys(blob, start)
            if not len(hashes):
                continue
            nearest = keys[np.minimum(np.searchsorted(keys, hashes), len(keys) - 1)]
            for index in np.flatnonzero(nearest == hashes):
                position = start + 8 * int(index)
                for name, at in table[int(hashes[index])]:
                    begin = position - at
                    if begin >= 0 and blob[begin:begin + len(patterns[name])] == patterns[name]:
                        found.add((blob_name, name))
    return sorted(found)


def processes_running(*command_lines: bytes) -> list[int]:
    """Living processes (not zombies) whose command line is exactly one of these."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path("/proc", pid, "cmdline").read_bytes()
            state = Path("/proc", pid, "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if cmdline in command_lines and state != "Z":
            found.append(int(pid))
    return found


def wait_for(condition, timeout_s: float) -> bool:
    """Poll `condition` until it holds (True) or `timeout_s` passes (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False
