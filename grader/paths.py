"""Where the default rubric lives: the repository's rubrics/ in a checkout, else the copy
packaged into the wheel (grader/bundled/rubrics, mapped from rubrics/ by pyproject.toml)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_RUBRIC = "ex06.toml"
PACKAGE = Path(__file__).resolve().parent


def rubric_dirs() -> list[Path]:
    """Folders to look in, first match wins: a checkout's rubrics/ (next to pyproject.toml), then
    the packaged copy of an installed grader."""
    folders = []
    if (PACKAGE.parent / "pyproject.toml").is_file():
        folders.append(PACKAGE.parent / "rubrics")
    return [*folders, PACKAGE / "bundled" / "rubrics"]


def default_rubric_path() -> Path:
    for folder in rubric_dirs():
        if (folder / DEFAULT_RUBRIC).is_file():
            return folder / DEFAULT_RUBRIC
    return rubric_dirs()[0] / DEFAULT_RUBRIC
