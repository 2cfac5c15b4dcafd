"""Helpers for tests: notebooks and rubric variants written on the fly."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RUBRIC = REPO / "rubrics" / "ex06.toml"
SAMPLES = REPO / "submissions"

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
