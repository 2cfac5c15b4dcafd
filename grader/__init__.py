"""Automated grading of Exercise 06 (CNN for image classification) notebooks.

Library entry points (the CLI is a thin layer over these):
`grade_batch`, `check_notebook`, `rescore`, `load_rubric`.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "grade_batch", "check_notebook", "rescore", "load_rubric"]


def __getattr__(name: str):
    # Lazy, so `import grader` (and `grader --help`) stays fast.
    if name in ("grade_batch", "check_notebook", "rescore"):
        from grader.grade import api

        return getattr(api, name)
    if name == "load_rubric":
        from grader.rubric.load import load_rubric

        return load_rubric
    raise AttributeError(name)
