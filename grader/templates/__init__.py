"""Files a course copies out of the grader: the GitHub Actions workflow for submission
repositories, and Gradescope's setup.sh / run_autograder pair."""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).resolve().parent
TEMPLATES = {
    "github-classroom": "github-classroom.yml",
    "gradescope-setup": "gradescope/setup.sh",
    "gradescope-run": "gradescope/run_autograder",
}


def template_path(name: str) -> Path:
    """The file of a template by name (a key of TEMPLATES)."""
    return FOLDER / TEMPLATES[name]
