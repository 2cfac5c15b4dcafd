"""The self-check: `selfcheck()` / `%selfcheck` in a real running kernel (no sandbox: it is the
student's own kernel), and `grader check --task` on a real notebook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from support import DEFAULT_RUBRIC, GOOD_DEF, REPO, write_notebook

from grader.check.tasks import UnknownTaskError, only_tasks, tasks_note
from grader.check.view import NOT_THE_GRADE
from grader.rubric.load import load_rubric

CONV2D_GOOD = """import torch
def conv2d_single(image, kernel, padding=0, stride=1):
    image, kernel = torch.as_tensor(image).float(), torch.as_tensor(kernel).float()
    k = kernel.shape[0]
    out = torch.zeros(image.shape[0] - k + 1, image.shape[1] - k + 1)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = (image[i:i + k, j:j + k] * kernel).sum()
    return out"""
CONV2D_FLIPPED = CONV2D_GOOD.replace("* kernel).sum()", "* kernel.flip(0, 1)).sum()")


def outputs_text(cell) -> str:
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("display_data", "execute_result"):
            parts.append(output.data.get("text/plain", ""))
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}")
    return "".join(parts)


def html_of(cell) -> str:
    return "".join(o.data.get("text/html", "") for o in cell.outputs if o.output_type == "display_data")


@pytest.fixture(scope="module")
def kernel_run(tmp_path_factory):
    """One real kernel: the student defines functions, self-checks, redefines, self-checks again."""
    cells = [
        CONV2D_GOOD + "\n" + GOOD_DEF,
        "from grader import selfcheck\nselfcheck('A2')",
        CONV2D_FLIPPED,  # a moment later, a wrong definition
        "%selfcheck A2",
        "selfcheck('D3')",  # no CNN defined: says how long training takes, then what is missing
        "selfcheck('Z9')",
        "def conv_output_size(*args, **kwargs):\n    raise ValueError('<script>alert(1)</script>')\nselfcheck('A1')",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    workdir = tmp_path_factory.mktemp("selfcheck")
    env_path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", env_path)  # the kernel imports this checkout's grader
        NotebookClient(notebook, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(workdir)}}).execute()
    return notebook.cells


@pytest.mark.kernel
def test_selfcheck_in_a_running_kernel_passes_a_correct_function(kernel_run) -> None:
    text = outputs_text(kernel_run[1])
    assert NOT_THE_GRADE in text
    assert "[PASS] A2.slide_example (2 / 2)" in text and "[PASS] A2.random_inputs (3 / 3)" in text
    assert "A2.padding_stride" not in text  # hidden: never in a self-check
    assert "A1." not in text  # only the task asked for
    assert "Public checks (tasks A2): 5 / 5 points" in text
    page = html_of(kernel_run[1])
    assert "<table>" in page and "A2.random_inputs" in page and "this is not your grade" in page


@pytest.mark.kernel
def test_a_function_redefined_a_moment_ago_counts(kernel_run) -> None:
    text = outputs_text(kernel_run[3])  # the %selfcheck magic, after the flipped kernel
    assert "[FAIL] A2.slide_example (0 / 2)" in text
    # The same message and hint as `grader check` gives.
    assert "Expected: [[19, 25], [37, 43]]" in text and "the kernel is not flipped" in text
    assert "Public checks (tasks A2): 0 / 5 points" in text


@pytest.mark.kernel
def test_training_tasks_say_how_long_they_take_and_unknown_tasks_get_a_sentence(kernel_run) -> None:
    text = outputs_text(kernel_run[4])
    epochs = next(c for c in load_rubric(DEFAULT_RUBRIC).checks if c.id == "D3.brief_training").options["epochs"]
    assert f"D3.brief_training: the grader trains a fresh copy of your network for {epochs} epoch(s)" in text
    assert "[FAIL] D3.brief_training" in text and "CNN" in text
    unknown = outputs_text(kernel_run[5])
    assert unknown.startswith("Error: Unknown task Z9") and "Traceback" not in unknown


def test_only_tasks_keeps_the_checks_of_those_tasks_and_names_unknown_ones() -> None:
    public = load_rubric(DEFAULT_RUBRIC).public_only()
    checked = only_tasks(public, ["a2", "B1"])
    assert {c.task for c in checked.checks} == {"A2", "B1"}
    assert [c.id for c in checked.checks] == [c.id for c in public.checks if c.task in ("A2", "B1")]
    note = tasks_note(public, checked)
    assert note.startswith(f"Only task(s) A2, B1 checked ({len(checked.checks)} of the {len(public.checks)} public")
    assert "brief training" in note
    assert tasks_note(public, public) == ""
    with pytest.raises(UnknownTaskError, match="Unknown task Q7"):
        only_tasks(public, ["Q7"])


@pytest.mark.kernel
def test_cli_check_with_task_probes_only_that_task_and_says_so(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "nb.ipynb", GOOD_DEF, "raise SystemExit('the rest is not done yet')")
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "grader", "check", str(notebook), "--task", "A1", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Only task(s) A1 checked" in done.stdout and "The notebook itself ran in full." in done.stdout
    assert "Public checks: 4 / 4 points." in done.stdout
    observations = json.loads((out / "nb" / "observations.json").read_text())
    assert {key.split(".")[0] for key in observations["probes"]} == {"A1"}
    assert all(not key.startswith("D3") for key in observations["probes"])


@pytest.mark.kernel
def test_student_text_is_escaped_in_the_html_table(kernel_run) -> None:
    page = html_of(kernel_run[6])
    assert "[FAIL]" not in page and "FAIL" in page  # the HTML view, not the text one
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    assert "<script>alert(1)</script>" in outputs_text(kernel_run[6])  # plain text is shown as text
