"""Hostile notebooks that attack the sandbox's own machinery, run by real kernels under bubblewrap:
symlinks planted for the replay kernel (host file write and read), shared memory and tmpfs that
rlimits do not count, writes into every folder the kernel can reach, the notebook's deadline
stretched by a replay, replies too large to hold, and a kernel left full. Each attack fails: the
host file is untouched, the limit is named, the score is not raised, and the correct parts of the
notebook still earn their points. (The probes' own time budget is tested in test_limits.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import A1_LECTURE_CHECK, GOOD_DEF, write_notebook

from grader.execute.kernel import KernelSession
from grader.execute.local import LocalKernelExecutor
from grader.execute.sandbox import _hidden_files, sandbox_support
from grader.grade.api import BatchResult, grade_batch

pytestmark = [pytest.mark.kernel, pytest.mark.skipif(
    not sandbox_support("auto").bubblewrap,
    reason=f"NOT ISOLATED on this machine: {sandbox_support('auto').problem}")]

NOTEBOOK_TIMEOUT_S = 20

ESCAPES_RUBRIC = f"""
schema = 1
title = "sandbox escapes"
[data]
source = "digits28"
[execution]
cell_timeout_s = 20
notebook_timeout_s = {NOTEBOOK_TIMEOUT_S}
probe_timeout_s = 60
probe_budget_s = 120
memory_limit_mb = 1536
max_workdir_mb = 128
""" + A1_LECTURE_CHECK + """[[checks]]
id = "A1.stride_two"
kind = "function"
function = "conv_output_size"
oracle = "conv_output_size"
points = 1
cases = [{ h_in = 9, kernel_size = 3, stride = 2 }]
[[checks]]
id = "A1.padding_two"
kind = "function"
function = "conv_output_size"
oracle = "conv_output_size"
points = 1
cases = [{ h_in = 9, kernel_size = 3, padding = 2 }]
"""
FULL_SCORE = 4

# Kernel 1 plants symlinks to host files wherever it can, from a thread and from a child process
# that left its session, both re-planting until they die; then the kernel exits, so the grader
# starts a replay kernel while they race it.
PLANTS_LINKS = """import os, sys, threading, time
TARGETS = {targets!r}
ROOT = os.path.dirname(os.getcwd())
IPC = os.path.join(os.path.dirname(sys.argv[sys.argv.index("-f") + 1]), "ipc")
NAMES = ["run", "empty", "kernel.log", "connection.json", "k1.log", "k2.log", "k3.log",
         "k2", "k3", "work2", "work3", "run/empty", "run/k2.log", "k2/kernel.log", "k2/ipc"]
planted = set()

def plant():
    for place in (ROOT, os.getcwd(), IPC):
        for name in NAMES:
            path = os.path.join(place, name)
            for target in TARGETS:
                try:
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    os.symlink(target, path)
                    planted.add(path)
                except OSError:
                    pass
    for folder in (IPC, os.getcwd()):
        try:
            os.rename(folder, folder + ".moved")
        except OSError:
            pass

def forever():  # long enough to race kernel 1's death and the replay's start, then quiet
    for _ in range(100):
        plant()
        time.sleep(0.05)

plant()
threading.Thread(target=forever, daemon=True).start()
if os.fork() == 0:
    os.setsid()
    forever()
print("planted", len(planted))"""

DIES = "import os, time\ntime.sleep(0.5)\nos._exit(1)"

MEMFD_HOG = """import os, time
chunk = b"\\1" * (64 << 20)
held = []
for i in range(40):  # 2.5 GB of shared memory, which no rlimit counts
    fd = os.memfd_create(f"hog{i}")
    os.write(fd, chunk)
    held.append(fd)
print("held", len(held))
time.sleep(5)  # an outside watch samples: it must find the memory still held"""

WRITES_EVERYWHERE = """import errno, os
def attempt(path, megabytes):
    try:
        with open(path, "wb") as file:
            for _ in range(megabytes):
                file.write(b"x" * (1 << 20))
        return "written"
    except OSError as error:
        return errno.errorcode[error.errno]
ROOT = os.path.dirname(os.getcwd())
results = {place: attempt(os.path.join(place, "hog.bin"), 4) for place in ("/", "/etc", "/usr", "/opt")}
results["/tmp"] = attempt("/tmp/hog.bin", 300)  # over the 256 MB of the scratch tmpfs
print(sorted(results.items()))"""

DISK_HOG = """import os, sys, time
IPC = os.path.join(os.path.dirname(sys.argv[sys.argv.index("-f") + 1]), "ipc")
for i in range(4):  # 200 MB next to the kernel's sockets, past the 128 MB disk limit
    with open(os.path.join(IPC, f"hog{i}.bin"), "wb") as file:
        file.write(b"x" * (50 << 20))
time.sleep(10)"""

SLEEPS = "import time\ntime.sleep({seconds})"

HUGE_ERROR = "raise ValueError('x' * 30_000_000)"

# Issue 10: the list stays alive, so every later allocation of this kernel fails. (bytes(n) is
# calloc'd: it fills the data limit without touching pages, so the cell is quick.)
FILLS_MEMORY = """blocks = []
try:
    while True:
        blocks.append(bytes(64 << 20))
finally:
    print("held", len(blocks) * 64, "MB")"""

# The same, but the cell catches its MemoryError and succeeds: the kernel is full all the same, and
# the first probe that needs memory fails. The cell after which memory grew most is blamed.
FILLS_MEMORY_QUIETLY = """blocks = []
try:
    while True:
        blocks.append(bytes(64 << 20))
except MemoryError:
    pass"""


@pytest.fixture(scope="module")
def host_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Host files the notebooks aim at: one to append to, one to create, one to read."""
    folder = tmp_path_factory.mktemp("host")
    files = {"existing": folder / "profile", "new": folder / "created.pth", "secret": folder / "secret"}
    files["existing"].write_text("original\n")
    files["secret"].write_text("TOP SECRET rubric\n")
    return files


@pytest.fixture(scope="module")
def audits() -> list[dict]:
    return []


@pytest.fixture(scope="module")
def escapes_batch(tmp_path_factory: pytest.TempPathFactory, host_files: dict[str, Path],
                  audits: list[dict]) -> BatchResult:
    folder = tmp_path_factory.mktemp("escapes")
    targets = [str(host_files[name]) for name in ("existing", "new", "secret")]
    write_notebook(folder / "good.ipynb", GOOD_DEF)
    write_notebook(folder / "plants_links.ipynb", GOOD_DEF, PLANTS_LINKS.format(targets=targets), DIES,
                   "after = 1")
    write_notebook(folder / "memfd_hog.ipynb", GOOD_DEF, MEMFD_HOG, "after = 1")
    write_notebook(folder / "writes_everywhere.ipynb", GOOD_DEF, WRITES_EVERYWHERE)
    write_notebook(folder / "disk_hog.ipynb", GOOD_DEF, DISK_HOG, "after = 1")
    write_notebook(folder / "stretches_time.ipynb", GOOD_DEF, SLEEPS.format(seconds=8),
                   SLEEPS.format(seconds=5), DIES)
    write_notebook(folder / "huge_error.ipynb", GOOD_DEF, HUGE_ERROR, "after = 1")
    write_notebook(folder / "fills_memory.ipynb", GOOD_DEF, FILLS_MEMORY, "after = 1")
    write_notebook(folder / "fills_memory_quietly.ipynb", GOOD_DEF, "before = 1", FILLS_MEMORY_QUIETLY,
                   "after = 1")
    rubric = tmp_path_factory.mktemp("escapes-rubric") / "escapes.toml"
    rubric.write_text(ESCAPES_RUBRIC, "utf-8")

    def audit(session: KernelSession, workdir: Path) -> None:
        """In each kernel that was probed: what the hidden files read as."""
        # A hidden file reads as empty; a hidden folder (an installed grader's) lists as empty.
        code = ("import json, os\nprint('AUDIT', json.dumps({'hidden': [len(os.listdir(p)) if os.path.isdir(p) "
                f"else len(open(p, 'rb').read()) for p in {list(_hidden_files())!r}]}}))")
        outcome = session.execute(code, 20)
        printed = "".join(o.get("text", "") for o in outcome.outputs if o.get("name") == "stdout")
        lines = [line for line in printed.splitlines() if line.startswith("AUDIT ")]
        assert len(lines) == 1, (outcome.status, outcome.error, outcome.message, outcome.outputs)
        line = lines[0]
        audits.append(json.loads(line.removeprefix("AUDIT ")))

    return grade_batch(folder, rubric, tmp_path_factory.mktemp("escapes-out"), jobs=2,
                       executor=LocalKernelExecutor(audit))


def report_of(batch: BatchResult, name: str) -> dict:
    return json.loads((batch.out_dir / f"{name}.json").read_text("utf-8"))


def outputs_of(batch: BatchResult, name: str, cell: int) -> str:
    notebook = json.loads((batch.out_dir / name / "executed.ipynb").read_text("utf-8"))
    return "".join(o.get("text", "") for o in notebook["cells"][cell]["outputs"])


def test_the_batch_completes_and_the_correct_notebook_gets_full_marks(escapes_batch: BatchResult) -> None:
    assert len(escapes_batch.reports) == 9 and all(r.status == "graded" for r in escapes_batch.reports)
    good = report_of(escapes_batch, "good")
    assert good["score"] == FULL_SCORE
    assert good["execution"]["sandbox"]["memory_limit"] == "cgroup" or any(
        "MEMORY NOT CONTAINED" in w for w in good["execution"]["warnings"])


def test_symlinks_planted_for_the_replay_reach_no_host_file(escapes_batch: BatchResult,
                                                            host_files: dict[str, Path],
                                                            audits: list[dict]) -> None:
    report = report_of(escapes_batch, "plants_links")
    # The attack ran: it planted links where it could (its own folders, and its view of the root,
    # which is the sandbox's own /tmp, not the host's).
    assert "planted" in outputs_of(escapes_batch, "plants_links", 1)
    assert report["execution"]["kernel_died_at_cell"] == 2 and report["execution"]["replayed_cells"] == [0, 1]
    assert host_files["existing"].read_text() == "original\n"
    assert not host_files["new"].exists()
    assert report["score"] == FULL_SCORE  # replayed, with the attack racing again, and probed
    # No kernel, first or replayed, could read the hidden files (bound over by an empty file).
    assert audits and all(size == 0 for entry in audits for size in entry["hidden"])
    assert "TOP SECRET" not in (escapes_batch.out_dir / "plants_links.json").read_text("utf-8")


def test_shared_memory_counts_towards_the_memory_limit(escapes_batch: BatchResult) -> None:
    report = report_of(escapes_batch, "memfd_hog")
    execution = report["execution"]
    assert execution["limit_exceeded"] == "memory" and execution["kernel_died_at_cell"] == 1
    [stopped] = [w for w in execution["warnings"] if "stopped at cell 2" in w]
    assert "memory limit of 1,536 MB" in stopped
    assert "held" not in outputs_of(escapes_batch, "memfd_hog", 1)
    assert report["score"] == FULL_SCORE  # cell 1 replayed and probed


def test_root_system_and_sandbox_folders_are_read_only_and_tmp_is_bounded(escapes_batch: BatchResult) -> None:
    printed = outputs_of(escapes_batch, "writes_everywhere", 1)
    results = dict(eval(printed))  # noqa: S307 - our own notebook's printed list of pairs
    # bubblewrap's root is a tmpfs with no size limit: it is made read-only once mounts are set up.
    assert {results[p] for p in ("/", "/etc", "/usr")} == {"EROFS"} and results["/opt"] == "ENOENT"
    assert results["/tmp"] == "ENOSPC"
    assert report_of(escapes_batch, "writes_everywhere")["score"] == FULL_SCORE


def test_writes_next_to_the_sockets_count_towards_the_disk_limit(escapes_batch: BatchResult) -> None:
    execution = report_of(escapes_batch, "disk_hog")["execution"]
    assert execution["limit_exceeded"] == "disk" and execution["kernel_died_at_cell"] == 1
    assert any("limit of 128 MB into its folders" in w for w in execution["warnings"])
    assert report_of(escapes_batch, "disk_hog")["score"] == FULL_SCORE


def test_a_replay_shares_the_notebooks_deadline(escapes_batch: BatchResult) -> None:
    execution = report_of(escapes_batch, "stretches_time")["execution"]
    # 8 + 5 s of cells, then death: the replay had the ~7 s left, not a fresh 20 s (13 s more).
    assert execution["kernel_died_at_cell"] == 3
    assert execution["cell_seconds"] <= NOTEBOOK_TIMEOUT_S + 2
    assert any("time limit of 20 s ran out while replaying" in w for w in execution["warnings"])
    assert report_of(escapes_batch, "stretches_time")["score"] == FULL_SCORE  # probes have their own time


def test_an_oversized_reply_is_refused_and_the_kernel_goes_on(escapes_batch: BatchResult) -> None:
    report = report_of(escapes_batch, "huge_error")
    [failed] = report["execution"]["failed_cells"]
    assert failed["index"] == 1 and "reply too large" in failed["message"]
    assert report["score"] == FULL_SCORE
    assert (escapes_batch.out_dir / "huge_error" / "observations.json").stat().st_size < 1_000_000
    assert (escapes_batch.out_dir / "huge_error.json").stat().st_size < 1_000_000


def test_a_cell_that_leaves_the_kernel_full_is_replayed_around(escapes_batch: BatchResult) -> None:
    report = report_of(escapes_batch, "fills_memory")
    execution = report["execution"]
    assert execution["memory_exhausted_at_cell"] == 1 and execution["limit_exceeded"] == "memory"
    assert execution["replayed_cells"] == [0] and execution["not_run_cells"] == [2]
    [failed] = execution["failed_cells"]
    assert failed["error"] == "MemoryError"
    assert any("Cell 2 ran out of memory and left the kernel full" in w for w in execution["warnings"])
    assert report["score"] == FULL_SCORE


def test_a_kernel_filled_quietly_is_still_probed(escapes_batch: BatchResult) -> None:
    """A cell that fills memory and swallows the MemoryError leaves the kernel full; the probes
    (whose code the preamble compiled before any student cell) still run there, so the correct
    function keeps its points and nothing needs replaying. The path where a probe itself runs out
    of memory is tested without a kernel in test_limits.py."""
    report = report_of(escapes_batch, "fills_memory_quietly")
    execution = report["execution"]
    assert execution["failed_cells"] == [] and execution["not_run_cells"] == []  # every cell ran
    assert report["score"] == FULL_SCORE


def test_without_a_cgroup_every_report_says_so_and_the_watch_counts_shared_memory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A grader that may not make cgroups (a normal user without delegation) falls back to the
    watch, which counts memfd files, and says so in every report."""
    from grader.execute import sandbox

    monkeypatch.setattr(sandbox, "_cgroup_problem", lambda: "cannot create the cgroup (test)")
    write_notebook(tmp_path / "in" / "memfd_hog.ipynb", GOOD_DEF, MEMFD_HOG, "after = 1")
    (tmp_path / "escapes.toml").write_text(ESCAPES_RUBRIC, "utf-8")
    batch = grade_batch(tmp_path / "in", tmp_path / "escapes.toml", tmp_path / "out")
    execution = report_of(batch, "memfd_hog")["execution"]
    assert execution["sandbox"]["memory_limit"] == "watch"
    assert any(w.startswith("MEMORY NOT CONTAINED: cannot create the cgroup (test)") for w in execution["warnings"])
    assert execution["limit_exceeded"] == "memory" and execution["kernel_died_at_cell"] == 1
    assert report_of(batch, "memfd_hog")["score"] == FULL_SCORE
