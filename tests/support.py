"""Helpers for tests: notebooks and rubric variants written on the fly."""

from __future__ import annotations

from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RUBRIC = REPO / "rubrics" / "ex06.toml"
SAMPLES = REPO / "submissions"


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
