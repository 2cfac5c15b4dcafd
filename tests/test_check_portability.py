"""`grader check` where bubblewrap and Python's `resource` module do not exist (a student's macOS
or Windows machine, simulated here): the notebook is graded, with a plain "not isolated" note."""

from __future__ import annotations

import shutil
import sys

import pytest
from click.testing import CliRunner
from support import GOOD_DEF, write_notebook

from grader.cli import main
from grader.execute import limits, sandbox
from grader.execute.limits import NO_RLIMITS


@pytest.mark.kernel
def test_check_without_bubblewrap_or_resource_grades_and_says_not_isolated(monkeypatch, tmp_path) -> None:
    real_which = shutil.which
    monkeypatch.setattr(sandbox.shutil, "which", lambda name, *a, **k: None if name == "bwrap" else real_which(name))
    monkeypatch.setitem(sys.modules, "resource", None)  # `import resource` raises ImportError
    # Were the rlimit shim still used, the kernel would not start: it must be left out.
    monkeypatch.setattr(limits, "RLIMIT_SHIM", "raise SystemExit('the rlimit shim ran')")
    sandbox._detect.cache_clear()
    try:
        notebook = write_notebook(tmp_path / "nb.ipynb", GOOD_DEF)
        result = CliRunner().invoke(main, ["check", str(notebook), "--task", "A1"], prog_name="grader")
    finally:
        sandbox._detect.cache_clear()
    assert result.exit_code == 0, result.output
    assert "Public checks: 4 / 4 points." in result.stdout
    assert "Note: NOT ISOLATED: bubblewrap (bwrap) is not installed" in result.stderr
    assert f"Note: {NO_RLIMITS}" in result.stderr
