"""Automated grading of Exercise 06 (CNN for image classification) notebooks.

Library entry points (the CLI is a thin layer over these):
`grade_batch`, `check_notebook`, `rescore`, `load_rubric`; `selfcheck` in a student's kernel.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "grade_batch", "check_notebook", "rescore", "load_rubric", "selfcheck"]


def __getattr__(name: str):
    # Lazy, so `import grader` (and `grader --help`) stays fast.
    if name in ("grade_batch", "check_notebook", "rescore"):
        from grader.grade import api

        return getattr(api, name)
    if name == "selfcheck":  # in a student's notebook: `from grader import selfcheck; selfcheck("A2")`
        from grader.check.in_kernel import selfcheck

        return selfcheck
    if name == "load_rubric":
        from grader.rubric.load import load_rubric

        return load_rubric
    raise AttributeError(name)
