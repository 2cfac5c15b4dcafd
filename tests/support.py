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
