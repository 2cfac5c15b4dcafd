"""Shared fixtures. Tests marked `kernel` run real notebooks in real Jupyter kernels."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from hostile_gallery import Gallery, graded_gallery
from support import DEFAULT_RUBRIC, REPO, SAMPLES

from grader.grade.api import BatchResult, grade_batch
from grader.report.model import SubmissionReport
from grader.rubric.load import load_rubric
from grader.rubric.model import Rubric


@pytest.fixture(scope="session")
def default_rubric() -> Rubric:
    return load_rubric(DEFAULT_RUBRIC)


@pytest.fixture(scope="session")
def sample_batch(tmp_path_factory: pytest.TempPathFactory) -> BatchResult:
    """The sample batch plus the reference solution and the template, graded once per session."""
    folder = tmp_path_factory.mktemp("samples")
    for notebook in SAMPLES.glob("*.ipynb"):
        shutil.copy(notebook, folder / notebook.name)
    shutil.copy(REPO / "reference" / "solution.ipynb", folder / "reference_solution.ipynb")
    shutil.copy(REPO / "reference" / "template.ipynb", folder / "student_template.ipynb")
    # The same bytes under another id: the determinism test compares the two reports.
    shutil.copy(SAMPLES / "passes_all_loops.ipynb", folder / "passes_all_loops_again.ipynb")
    out = tmp_path_factory.mktemp("sample-reports")
    return grade_batch(folder, DEFAULT_RUBRIC, out, jobs=2)


@pytest.fixture(scope="session")
def sample_reports(sample_batch: BatchResult) -> dict[str, SubmissionReport]:
    return {report.submission: report for report in sample_batch.reports}


@pytest.fixture(scope="session")
def hostile_gallery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gallery]:
    """Every hostile notebook of the tests next to correct ones, graded in one batch through the CLI
    (tests/hostile_gallery.py). The sandbox escapes are in it only where bubblewrap isolates them."""
    from grader.execute.sandbox import sandbox_support

    with graded_gallery(tmp_path_factory, isolated=sandbox_support("auto").bubblewrap) as gallery:
        yield gallery


def pytest_terminal_summary(terminalreporter) -> None:
    """Say where the browser tests left their screenshots (tests/artifacts/, git-ignored)."""
    from browser import SCREENSHOTS_TAKEN

    if SCREENSHOTS_TAKEN:
        terminalreporter.write_sep("-", "screenshots taken by the browser tests")
        for path in SCREENSHOTS_TAKEN:
            terminalreporter.write_line(str(path))
