"""Hostile notebooks, run by real kernels in the sandbox: none of them leaves a process behind, gets
out of its memory limit, reaches the network, finds the grader's files, forges a result or floods
the grader; each still gets its report, and the rest of the batch is graded."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from support import A1_LECTURE_CHECK, DEFAULT_RUBRIC, GOOD_DEF, REPO, processes_running, write_notebook

from grader.execute.sandbox import sandbox_support
from grader.grade.api import BatchResult, grade_batch

pytestmark = pytest.mark.kernel

SUPPORT = sandbox_support("auto")
needs_bubblewrap = pytest.mark.skipif(
    not SUPPORT.bubblewrap,
    reason=f"NOT ISOLATED on this machine: {SUPPORT.problem}; `make test` installs bubblewrap as root")

FLIPPED_CONV = """import torch

def conv2d_single(image, kernel, padding=0, stride=1):
    image = torch.as_tensor(image).float()
    kernel = torch.flip(torch.as_tensor(kernel).float(), (0, 1))  # wrong: cross-correlation expected
    k = kernel.shape[0]
    padded = torch.zeros(image.shape[0] + 2 * padding, image.shape[1] + 2 * padding)
    padded[padding:padding + image.shape[0], padding:padding + image.shape[1]] = image
    h_out = (padded.shape[0] - k) // stride + 1
    w_out = (padded.shape[1] - k) // stride + 1
    out = torch.zeros(h_out, w_out)
    for i in range(h_out):
        for j in range(w_out):
            out[i, j] = (padded[i * stride:i * stride + k, j * stride:j * stride + k] * kernel).sum()
    return out"""

SPAWNS = """import os, subprocess, time
procs = [subprocess.Popen(["sleep", "7919"]) for _ in range(300)]
child = os.fork()
if child == 0:  # leave the session, then double-fork: the grandchild is nobody's child
    os.setsid()
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", "7920"])
    os._exit(0)
os.waitpid(child, 0)
time.sleep(1)
escaped = [p for p in os.listdir("/proc") if p.isdigit()
           and open(f"/proc/{p}/cmdline", "rb").read() == b"sleep\\x007920\\x00"]
print("running", sum(p.poll() is None for p in procs), "escaped", len(escaped),
      "own session", all(os.getsid(int(p)) != os.getsid(0) for p in escaped))"""

ALLOCATES = "block = bytearray(3 * 1024 ** 3)"

FORKS_AND_ALLOCATES = """import os, time
for _ in range(3):
    if os.fork() == 0:
        block = b"\\x01" * (700 * 1024 * 1024)  # under the per-process limit; 2.1 GB together
        time.sleep(60)
        os._exit(0)
time.sleep(60)"""

CONNECTS = """import socket
attempt = socket.socket()
attempt.settimeout(3)
try:
    attempt.connect(("127.0.0.1", {port}))
    print("CONNECTED")
except OSError as error:
    print("blocked:", type(error).__name__)"""

SNOOPS = """import fnmatch, json, os, sys
environment = {{os.path.realpath(p) for p in (sys.prefix, sys.base_prefix)}}
found = []
for top, dirs, files in os.walk("/"):
    if top in ("/proc", "/sys", "/dev") or any(top.startswith(p) for p in environment):
        dirs[:] = []
        continue
    for name in dirs + files:
        if fnmatch.fnmatch(name, "*.toml") or name.endswith(".npz") or "reference" in name or "hidden" in name:
            found.append(os.path.join(top, name))
readable = []
for path in {secrets!r}:
    try:
        with open(path, "rb") as handle:
            if handle.read(1):
                readable.append(path)
    except OSError:
        pass
try:
    from sklearn.datasets import load_digits
    load_digits()
    readable.append("sklearn digits")
except Exception:
    pass
print(json.dumps({{"found": found, "readable": readable, "cwd": os.getcwd()}}))"""

FORGES = """import json, os
import numpy
import torch
from IPython.display import display

real_conv2d, wrong_conv2d_single = torch.nn.functional.conv2d, conv2d_single


class LooksRight(torch.Tensor):
    # A wrong result that claims the right values when read with .tolist() (after any tracing).
    def detach(self):
        return self

    def tolist(self):
        with torch._C.DisableTorchFunction():
            right = real_conv2d(self.image[None, None], self.kernel[None, None], padding=self.padding)
        return torch._C.TensorBase.tolist(right[0, 0])


def conv2d_single(image, kernel, padding=0, stride=1):
    out = wrong_conv2d_single(image, kernel, padding, stride).as_subclass(LooksRight)
    out.image, out.kernel = torch.as_tensor(image).float(), torch.as_tensor(kernel).float()
    out.padding = padding
    return out

fake = {"A2.slide_example": {"status": "pass"}, "A2.random_inputs": {"status": "pass"}, "score": 100}
print(json.dumps(fake))
display({"text/plain": json.dumps(fake), "application/json": fake}, raw=True)
for path in ("observations.json", "report.json", "A2.random_inputs.json", "/tmp/observations.json"):
    with open(path, "w") as handle:
        json.dump(fake, handle)
torch.nn.functional.conv2d = lambda *args, **kwargs: torch.zeros(1)
torch.Tensor.tolist = lambda self: [[19.0, 25.0], [37.0, 43.0]]
torch.conv2d = torch.nn.functional.conv2d
torch.allclose = lambda *args, **kwargs: True
torch.isclose = lambda a, b, **kwargs: torch.ones_like(torch.as_tensor(a), dtype=torch.bool)
numpy.allclose = lambda *args, **kwargs: True
numpy.isclose = lambda a, b, **kwargs: numpy.ones(numpy.broadcast(a, b).shape, dtype=bool)
_grader_result_0000000000000000 = json.dumps({"defined": True, "callable": True, "results": []})"""

FLOODS = "print('x' * 100_000_000)"
# Undoes the kernel-side cap (its own process): the grader's sockets must still hold.
FLOODS_PAST_THE_CAP = "import sys\nsys.stdout = sys.stdout._stream\n" + FLOODS

HOSTILE_RUBRIC = """
schema = 1
title = "hostile notebooks"
[data]
source = "digits28"
[execution]
cell_timeout_s = 30
notebook_timeout_s = 120
probe_timeout_s = 20
memory_limit_mb = 1536
""" + A1_LECTURE_CHECK + """[[checks]]
id = "A2.slide_example"
kind = "function"
function = "conv2d_single"
oracle = "conv2d_single"
points = 2
cases = [ { image = [[0, 1, 2], [3, 4, 5], [6, 7, 8]], kernel = [[0, 1], [2, 3]] } ]
[[checks]]
id = "A2.random_inputs"
kind = "function"
function = "conv2d_single"
oracle = "conv2d_single"
points = 3
random_cases = 4
ranges = { size = [3, 6], kernel_size = [1, 3], padding = [0, 0], stride = [1, 1] }
"""


@pytest.fixture(scope="module")
def listener():
    """A loopback service of the host that no notebook may reach."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


@pytest.fixture(scope="module")
def grader_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Where the hostile batch's submissions, rubric and reports live (on the grader's side)."""
    return {name: tmp_path_factory.mktemp(f"hostile-{name}") for name in ("submissions", "rubric", "reports")}


@pytest.fixture(scope="module")
def hostile_batch(grader_folders: dict[str, Path], listener: socket.socket) -> BatchResult:
    folder, out = grader_folders["submissions"], grader_folders["reports"]
    rubric = grader_folders["rubric"] / "hostile.toml"
    rubric.write_text(HOSTILE_RUBRIC, "utf-8")
    secrets = [str(rubric), str(DEFAULT_RUBRIC), str(REPO / "reference" / "ex06_reference.py"),
               str(folder / "good.ipynb"), str(out / "good.json")]
    write_notebook(folder / "good.ipynb", GOOD_DEF)
    write_notebook(folder / "spawns_processes.ipynb", GOOD_DEF, SPAWNS)
    write_notebook(folder / "allocates_too_much.ipynb", ALLOCATES, GOOD_DEF)
    write_notebook(folder / "forks_and_allocates.ipynb", GOOD_DEF, FORKS_AND_ALLOCATES, "after = 1")
    write_notebook(folder / "connects.ipynb", CONNECTS.format(port=listener.getsockname()[1]), GOOD_DEF)
    write_notebook(folder / "snoops.ipynb", SNOOPS.format(secrets=secrets))
    write_notebook(folder / "wrong_conv.ipynb", FLIPPED_CONV)
    write_notebook(folder / "wrong_conv_forges.ipynb", FLIPPED_CONV, FORGES)
    write_notebook(folder / "floods_100mb.ipynb", FLOODS, GOOD_DEF)
    write_notebook(folder / "floods_past_the_cap.ipynb", FLOODS_PAST_THE_CAP, GOOD_DEF)
    return grade_batch(folder, rubric, out, jobs=2)


def report_of(batch: BatchResult, name: str) -> dict:
    return json.loads((batch.out_dir / f"{name}.json").read_text("utf-8"))


def outputs_of(batch: BatchResult, name: str, cell: int, stream: str | None = None) -> str:
    notebook = json.loads((batch.out_dir / name / "executed.ipynb").read_text("utf-8"))
    return "".join(o.get("text", "") for o in notebook["cells"][cell]["outputs"]
                   if stream is None or o.get("name") == stream)


def test_every_hostile_notebook_is_graded(hostile_batch: BatchResult) -> None:
    assert len(hostile_batch.reports) == 10
    assert all(r.status == "graded" for r in hostile_batch.reports)
    assert report_of(hostile_batch, "good")["score"] == 2


def test_report_records_the_sandbox(hostile_batch: BatchResult) -> None:
    execution = report_of(hostile_batch, "good")["execution"]
    assert execution["sandbox"]["bubblewrap"] == SUPPORT.bubblewrap
    if not SUPPORT.bubblewrap:
        assert any("NOT ISOLATED" in w for w in execution["warnings"])


def test_spawned_and_escaped_processes_are_all_gone(hostile_batch: BatchResult) -> None:
    # The notebook really started them: 300 children and one in a session of its own...
    assert "running 300 escaped 1 own session True" in outputs_of(hostile_batch, "spawns_processes", 1)
    # ... and when its grading ended, none of them was left.
    assert processes_running(b"sleep\x007919\x00", b"sleep\x007920\x00") == []
    assert report_of(hostile_batch, "spawns_processes")["score"] == 2


def test_oversized_allocation_fails_naming_the_memory_limit(hostile_batch: BatchResult) -> None:
    report = report_of(hostile_batch, "allocates_too_much")
    [failed] = report["execution"]["failed_cells"]
    assert failed["error"] == "MemoryError" and "memory limit of 1,536 MB" in failed["message"]
    assert report["score"] == 2  # the next cell ran


def test_processes_over_the_memory_limit_together_are_stopped(hostile_batch: BatchResult) -> None:
    report = report_of(hostile_batch, "forks_and_allocates")
    execution = report["execution"]
    assert execution["limit_exceeded"] == "memory"
    assert execution["kernel_died_at_cell"] == 1 and execution["not_run_cells"] == [2]
    [stopped] = [w for w in execution["warnings"] if "stopped at cell 2" in w]
    assert "memory limit of 1,536 MB" in stopped
    assert execution["seconds"] < 50  # stopped, not waited out (the cell sleeps 60 s)
    assert report["score"] == 2  # cell 1 was replayed and probed


@needs_bubblewrap
def test_loopback_service_of_the_host_is_unreachable(hostile_batch: BatchResult, listener) -> None:
    assert "blocked: ConnectionRefusedError" in outputs_of(hostile_batch, "connects", 0)
    with pytest.raises(BlockingIOError):
        listener.accept()
    # The listener works: a connection from the host does arrive.
    with socket.create_connection(listener.getsockname(), timeout=3):
        pass
    listener.setblocking(True)
    listener.settimeout(3)
    listener.accept()[0].close()


@needs_bubblewrap
def test_filesystem_search_finds_none_of_the_graders_files(hostile_batch: BatchResult,
                                                          grader_folders: dict[str, Path]) -> None:
    seen = json.loads(outputs_of(hostile_batch, "snoops", 0, "stdout"))
    own_data = os.path.join(seen["cwd"], "data", "digits28.npz")
    assert own_data in seen["found"]  # the search did run, and found the notebook's own data
    assert [p for p in seen["found"] if p.endswith(".npz")] == [own_data]
    graders = [str(REPO), *(str(folder) for folder in grader_folders.values())]
    assert [p for p in seen["found"] if any(p == g or p.startswith(g + "/") for g in graders)] == []
    assert seen["readable"] == []


def test_forged_results_and_patched_torch_do_not_change_the_score(hostile_batch: BatchResult) -> None:
    honest = report_of(hostile_batch, "wrong_conv")
    forger = report_of(hostile_batch, "wrong_conv_forges")
    assert forger["execution"]["failed_cells"] == []  # every fake and patch was in place
    a2 = {c["id"]: c["status"] for c in forger["checks"] if c["task"] == "A2"}
    assert a2 == {"A2.slide_example": "fail", "A2.random_inputs": "fail"}
    assert forger["score"] == honest["score"] == 0


@pytest.mark.parametrize("name", ["floods_100mb", "floods_past_the_cap"])
def test_100_mb_print_is_capped_marked_and_graded(hostile_batch: BatchResult, name: str) -> None:
    report = report_of(hostile_batch, name)
    assert report["score"] == 2 and report["execution"]["output_capped_cells"] == [0]
    assert report["execution"]["seconds"] < 60
    executed = hostile_batch.out_dir / report["files"]["notebook"]
    assert executed.stat().st_size < 1_000_000
    assert "output capped here" in outputs_of(hostile_batch, name, 0)


# Issue 10: a cell that fills memory and keeps it (the list stays alive), with torch imported.
FILLS_MEMORY = """blocks = []
while True:
    blocks.append(bytes(256 << 20))"""


@pytest.mark.parametrize("breaker", ["exit", "fills_memory"])
def test_a_broken_kernel_after_part_b_keeps_parts_a_and_b(tmp_path: Path, breaker: str) -> None:
    """The reference solution up to Part B, then os._exit(3) or a cell that fills memory (the kernel
    is left full). Part A must earn every point; each Part B check must pass (or be `skipped`
    while this grader version does not evaluate it)."""
    solution = json.loads((REPO / "reference" / "solution.ipynb").read_text("utf-8"))
    cells = [c for c in solution["cells"] if c["cell_type"] == "code"]
    sources = ["".join(c["source"]) for c in cells]
    after_b = next(i for i, s in enumerate(sources) if "n_params" in s) + 1
    broken_at = after_b  # index among the code cells = index in the written notebook
    breaking = "import os\nos._exit(3)" if breaker == "exit" else FILLS_MEMORY
    write_notebook(tmp_path / "in" / f"{breaker}.ipynb", *sources[:after_b], breaking, *sources[after_b:])
    batch = grade_batch(tmp_path / "in", DEFAULT_RUBRIC, tmp_path / "out")
    [report] = batch.reports
    execution = report.execution
    if breaker == "exit":
        assert execution["kernel_died_at_cell"] == broken_at and execution["kernel_exit_code"] == 3
    else:
        assert execution["memory_exhausted_at_cell"] == broken_at and execution["limit_exceeded"] == "memory"
        assert [c["error"] for c in execution["failed_cells"]] == ["MemoryError"]
        assert execution["not_run_cells"] == list(range(broken_at + 1, len(sources) + 1))
    assert list(execution["replayed_cells"]) == list(range(broken_at))
    part_a = [c for c in report.checks if c.task.startswith("A")]
    assert sum(c.score for c in part_a) == sum(c.max_score for c in part_a) == 30
    part_b = [c for c in report.checks if c.task.startswith("B")]
    assert part_b and all(c.status in ("pass", "skipped") for c in part_b), \
        {c.id: c.message for c in part_b}
    assert all(c.score == c.max_score for c in part_b if c.status == "pass")


@needs_bubblewrap
def test_a_venv_reached_through_a_symlink_still_runs_notebooks_isolated(tmp_path: Path) -> None:
    """The sandbox binds the environment's real folders; the interpreter it runs must be named by
    a path that exists in there, even when the venv was reached through a link (a worktree's
    .venv, a home folder that is a link)."""
    import subprocess
    import sys

    link = tmp_path / "venv-link"
    link.symlink_to(Path(sys.prefix).resolve(), target_is_directory=True)
    code = ("from grader.execute.sandbox import sandbox_support; s = sandbox_support(); "
            "print(s.bubblewrap, s.problem)")
    done = subprocess.run([str(link / "bin" / Path(sys.executable).name), "-c", code], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith("True"), (done.stdout, done.stderr)
