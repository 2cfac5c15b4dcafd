"""The hostile gallery: every hostile notebook of the tests, next to correct ones, graded in ONE
batch through the `grader grade` CLI under ONE rubric, once per session (issue 8: "a batch holding
every hostile notebook of the tests together with correct ones completes, writes every report,
grades.csv and the summary, and the correct ones get full marks").

The notebooks come from the modules that assert on them (GALLERY_NAMES): sandbox escapes
(test_escapes.py), hostile file names (test_intake_batch.py), forgeries and patched libraries
(test_probe_hardening.py), processes, memory, network, snooping and floods (test_sandbox.py), and
broken cells and kernels (test_execution.py). Sharing the batch means sharing its limits: a 20 s
notebook deadline (the replay test stretches it), 10 s per cell (the interrupt tests), 1,536 MB of
memory and 128 MB of disk (the memory and disk hogs), notebooks of at most 1 MB (the oversized
one). The correct notebooks (CORRECT) earn every point of the rubric within those limits.

The CLI runs in a child process exactly as an instructor runs it, except that its local kernels
are audited once their probes have run (`audited_cli`): what the grader's hidden files read as
in there. The sandbox escapes only run where bubblewrap isolates them (without it, a notebook that
writes into every folder it can reach would write into the grader's machine)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from support import DEFAULT_RUBRIC, GOOD_DEF, REPO, write_notebook

TESTS = Path(__file__).resolve().parent

# --------------------------------------------------------------------------------- the rubric

NOTEBOOK_TIMEOUT_S = 20
CELL_TIMEOUT_S = 10
MEMORY_LIMIT_MB = 1536
DISK_LIMIT_MB = 128
MAX_NOTEBOOK_MB = 1

# The union of the checks the tests look at, as the default rubric defines them.
CHECK_IDS = ("A1.lecture_examples", "A1.random_inputs", "A1.stride_floor", "A2.slide_example", "A2.random_inputs",
             "A3.bias", "A4.default_stride", "B1.output_shape", "B1.layer_order", "D1.weights", "D1.mean_loss",
             "D2.loss_accuracy", "D2.no_side_effects", "E1.loads")
_DEFAULT_CHECKS = tomllib.loads(DEFAULT_RUBRIC.read_text("utf-8"))["checks"]
# What a notebook that defines conv_output_size right (GOOD_DEF) and nothing else earns.
A1_POINTS = sum(c["points"] for c in _DEFAULT_CHECKS if c["id"] in CHECK_IDS and c["id"].startswith("A1."))

GALLERY_RUBRIC = f"""extends = "{DEFAULT_RUBRIC}"
title = "hostile gallery"
remove_checks = {json.dumps([c["id"] for c in _DEFAULT_CHECKS if c["id"] not in CHECK_IDS])}
[data]
source = "digits28"
[execution]
cell_timeout_s = {CELL_TIMEOUT_S}
notebook_timeout_s = {NOTEBOOK_TIMEOUT_S}
probe_timeout_s = 60
probe_budget_s = 120
memory_limit_mb = {MEMORY_LIMIT_MB}
max_workdir_mb = {DISK_LIMIT_MB}
max_notebook_mb = {MAX_NOTEBOOK_MB}
# The attacks are measured against a bare kernel, as their notebooks (most import no torch) would
# run in: with torch preloaded, a forked child starts with torch's data segment and a 700 MB
# allocation is refused per process before the processes together reach the memory limit.
preload = []
"""


def correct_cells() -> list[str]:
    """The reference solution's functions, network, train() and test(), then an untrained CNN saved
    as cnn.pt: correct for every check of the gallery's rubric (which has no loader or accuracy
    check), and quick enough for its 20 s."""
    solution = json.loads((REPO / "reference" / "solution.ipynb").read_text("utf-8"))
    sources = ["".join(c["source"]) for c in solution["cells"] if c["cell_type"] == "code"]
    end = next(i for i, s in enumerate(sources) if "def test(" in s) + 1
    return [*(s for s in sources[:end] if "x_train" not in s), 'torch.save(CNN().state_dict(), "cnn.pt")']


CORRECT = ("alice", "bob")

# ------------------------------------------------- sandbox escapes (asserted in test_escapes.py)

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


def escapes_notebooks(targets: list[str]) -> dict[str, tuple[str, ...]]:
    return {
        "plants_links": (GOOD_DEF, PLANTS_LINKS.format(targets=targets), DIES, "after = 1"),
        "memfd_hog": (GOOD_DEF, MEMFD_HOG, "after = 1"),
        "writes_everywhere": (GOOD_DEF, WRITES_EVERYWHERE),
        "disk_hog": (GOOD_DEF, DISK_HOG, "after = 1"),
        # 8 + 5 s of cells, then death: the replay may only use the ~7 s left of the 20 s.
        "stretches_time": (GOOD_DEF, SLEEPS.format(seconds=8), SLEEPS.format(seconds=5), DIES),
        "huge_error": (GOOD_DEF, HUGE_ERROR, "after = 1"),
        "fills_memory": (GOOD_DEF, FILLS_MEMORY, "after = 1"),
        # torch first, as in real notebooks: the gallery's probes of Parts B-E need it, and the
        # dynamic loader could not map it into a full kernel.
        "fills_memory_quietly": (GOOD_DEF, "import torch", FILLS_MEMORY_QUIETLY, "after = 1"),
    }


# -------------------------------------------- hostile file names (asserted in test_intake_batch.py)

ESCAPES_ID = "\x1b[2J\x1b[Hgraded alice 100 of 100\r\nbob"
FORMULA_ID = '=HYPERLINK("evil.example","click")'
EMPTY_HOSTILE_IDS = ("grades.csv", FORMULA_ID, ESCAPES_ID)  # not runnable: an error report, files all the same


def write_intake_notebooks(folder: Path) -> None:
    for student in CORRECT:
        write_notebook(folder / f"{student}.ipynb", *correct_cells())
    write_notebook(folder / "alice.html.ipynb", GOOD_DEF)  # runs: its files must not touch alice's page
    for name in EMPTY_HOSTILE_IDS:
        (folder / f"{name}.ipynb").write_bytes(b"")
    (folder / "mallory.ipynb").symlink_to(REPO / "reference" / "solution.ipynb")
    with (folder / "huge.ipynb").open("wb") as stream:
        stream.truncate(2 * 1024 * 1024)


# ------------------------------------------ forgeries (asserted in test_probe_hardening.py)

WRONG_SIZE = "def conv_output_size(h_in, kernel_size, padding=0, stride=1):\n    return 0\n"
RIGHT_SIZE = ("def conv_output_size(h_in, kernel_size, padding=0, stride=1):\n"
              "    return (h_in - kernel_size + 2 * padding) // stride + 1\n")

# What the old probe's result looked like for A1, computed from the request: a forger's payload.
FORGED_A1 = """import json
def forged(request_json):
    request = json.loads(request_json)
    results = []
    for case in request.get("cases", []):
        h, k, *rest = case["args"] + [0, 1][len(case["args"]) - 2:]
        p, s = (rest + [0, 1])[:2]
        results.append({"ok": True, "output": {"type": "builtins.int", "value": (h - k + 2 * p) // s + 1}})
    return json.dumps({"defined": True, "callable": True, "signature": "conv_output_size(h_in, kernel_size, "
                       "padding=0, stride=1)", "results": results})
"""

SHADOWED_EXEC = FORGED_A1 + """
def exec(code, namespace=None, *rest):
    # the old probe wrapper looked `exec` up in the notebook's namespace
    namespace["run"] = lambda user_ns, request_json: forged(request_json)
def compile(*args, **kwargs):
    return "pass"
"""

RACING_THREAD = FORGED_A1 + """
import threading, time
def rewrite_results():
    namespace = globals()
    while True:
        for name in list(namespace):
            if name.startswith("_grader"):
                namespace[name] = forged('{"cases": []}')
        time.sleep(0.0005)
threading.Thread(target=rewrite_results, name="forger", daemon=True).start()
"""

FORMATTER_FORGERY = """
ip = get_ipython()
ip.display_formatter.formatters["text/plain"].for_type(str, lambda value, printer, cycle: printer.text(repr(
    '{"nonce": "x", "result": {"defined": true}}')))
import builtins
builtins.round = lambda *args: 0
"""

LIBRARY_CONV = """import torch
import torch.nn.functional as F

def conv2d_single(image, kernel, padding=0, stride=1):
    x, w = image[None, None].float(), kernel[None, None].float()
    return torch.convolution(x, w, None, [stride, stride], [padding, padding], [1, 1], False, [0, 0], 1)[0, 0]

def conv2d_multi(x, w, b=None, padding=0, stride=1):
    with torch._C.DisableTorchFunction():
        return F.conv2d(x[None].float(), w.float(), b, stride=stride, padding=padding)[0]

def maxpool2d(x, kernel_size, stride=None):
    return torch.ops.aten.max_pool2d_with_indices(x[None].float(), [kernel_size, kernel_size],
                                                  [stride or kernel_size] * 2)[0][0]
"""

CORRECT_CNN = """import torch
from torch import nn

class CNN(nn.Module):
    def __init__(self, n_labels=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(16 * 7 * 7, n_labels))

    def forward(self, x):
        return self.classifier(self.features(x))
"""

CORRECT_TRAIN_TEST = """def train(model, loader, loss_fn, optimizer):
    model.train()
    total = 0.0
    for x, y in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total / len(loader)

def test(model, loader, loss_fn):
    model.eval()
    total, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            logits = model(x)
            total += loss_fn(logits, y).item()
            correct += (logits.argmax(dim=1) == y).sum().item()
            count += len(y)
    return total / len(loader), correct / count
"""

PATCH_TORCH = """import torch.nn.functional as F
def broken(*args, **kwargs):
    raise RuntimeError("patched by the notebook")
F.conv2d = broken
torch.allclose = lambda *args, **kwargs: True
torch.Tensor.backward = lambda self, *args, **kwargs: None
torch.optim.Adam.step = lambda self, closure=None: None
torch.set_grad_enabled(False)
torch.set_default_dtype(torch.float64)
"""

CHDIR_AFTER_SAVE = """import os
torch.save(CNN().state_dict(), "cnn.pt")
os.makedirs("runs", exist_ok=True)
os.chdir("runs")
"""

PROBE_NOTEBOOKS = {
    "forges_with_exec": (WRONG_SIZE, SHADOWED_EXEC),
    "forges_with_thread": (WRONG_SIZE, RACING_THREAD),
    "forges_with_formatter": (WRONG_SIZE, FORMATTER_FORGERY),
    "uses_library_conv": (RIGHT_SIZE, LIBRARY_CONV),
    "patches_torch_correct_code": (RIGHT_SIZE, CORRECT_CNN, CORRECT_TRAIN_TEST, PATCH_TORCH),
    "chdir_after_save": (CORRECT_CNN, CHDIR_AFTER_SAVE),
}

# ----------------------------- processes, memory, network, snooping (asserted in test_sandbox.py)

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


def sandbox_notebooks(port: int, secrets: list[str]) -> dict[str, tuple[str, ...]]:
    return {
        "spawns_processes": (GOOD_DEF, SPAWNS),
        "allocates_too_much": (ALLOCATES, GOOD_DEF),
        "forks_and_allocates": (GOOD_DEF, FORKS_AND_ALLOCATES, "after = 1"),
        "connects": (CONNECTS.format(port=port), GOOD_DEF),
        "snoops": (SNOOPS.format(secrets=secrets),),
        "wrong_conv": (FLIPPED_CONV,),
        "wrong_conv_forges": (FLIPPED_CONV, FORGES),
        "floods_100mb": (FLOODS, GOOD_DEF),
        "floods_past_the_cap": (FLOODS_PAST_THE_CAP, GOOD_DEF),
    }


# ------------------------------------------- broken cells and kernels (asserted in test_execution.py)

EXECUTION_NOTEBOOKS = {
    "raises_then_defines": ("1 / 0", GOOD_DEF),
    "slow_cell": ("import time\ntime.sleep(120)", GOOD_DEF),
    "kernel_dies": (GOOD_DEF, "import os\nos._exit(3)", "after = 1"),
    "ignores_interrupt": (GOOD_DEF, "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                          "time.sleep(120)", "after = 1"),
    "floods_output": ("print('x' * 20_000_000)", GOOD_DEF),
}


def write_execution_notebooks(folder: Path) -> None:
    for name, cells in EXECUTION_NOTEBOOKS.items():
        write_notebook(folder / f"{name}.ipynb", *cells)
    write_notebook(folder / "student_folder" / "my work.ipynb", GOOD_DEF)
    (folder / "invalid_json.ipynb").write_text('{"cells": [', "utf-8")
    (folder / "empty.ipynb").write_bytes(b"")


# ------------------------------------------------------------------------------- the batch


@dataclass(frozen=True)
class Gallery:
    """The graded gallery: the CLI's run, its folders, and what the tests need besides."""

    run: subprocess.CompletedProcess
    folder: Path  # the submissions
    rubric: Path
    out_dir: Path
    reports: dict[str, dict]  # every report, by student id (ids may be hostile; output names are safe)
    names: dict[str, tuple[str, ...]]  # student ids of the notebooks each test module asserts on
    host_files: dict[str, Path]  # what the escapes aim at: one file to append to, one to create, one to read
    listener: socket.socket  # a loopback service of the host that no notebook may reach
    audits: list[dict]  # one per kernel that was probed: what the hidden files read as there

    @property
    def grader_folders(self) -> dict[str, Path]:
        """The grader's side: no notebook may find or read anything in here."""
        return {"submissions": self.folder, "rubric": self.rubric.parent, "reports": self.out_dir}


@contextmanager
def graded_gallery(tmp_path_factory, isolated: bool) -> Iterator[Gallery]:
    """Write the gallery, grade it with `grader grade --jobs 2`, and keep the listener open until
    the session ends. `isolated`: bubblewrap is there, so the sandbox escapes are in the batch."""
    folder, rubric_folder, out = (tmp_path_factory.mktemp(f"gallery-{name}")
                                  for name in ("submissions", "rubric", "reports"))
    rubric = rubric_folder / "gallery.toml"
    rubric.write_text(GALLERY_RUBRIC, "utf-8")
    host = tmp_path_factory.mktemp("gallery-host")
    host_files = {"existing": host / "profile", "new": host / "created.pth", "secret": host / "secret"}
    host_files["existing"].write_text("original\n")
    host_files["secret"].write_text("TOP SECRET rubric\n")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        secrets = [str(rubric), str(DEFAULT_RUBRIC), str(REPO / "reference" / "ex06_reference.py"),
                   str(folder / "alice.ipynb"), str(out / "alice.json")]
        escapes = escapes_notebooks([str(host_files[n]) for n in ("existing", "new", "secret")]) if isolated else {}
        sandbox = sandbox_notebooks(listener.getsockname()[1], secrets)
        for name, cells in {**escapes, **PROBE_NOTEBOOKS, **sandbox}.items():
            write_notebook(folder / f"{name}.ipynb", *cells)
        write_intake_notebooks(folder)
        write_execution_notebooks(folder)
        names = {
            "test_escapes": tuple(escapes),
            "test_intake_batch": (*CORRECT, "alice.html", *EMPTY_HOSTILE_IDS, "mallory", "huge"),
            "test_probe_hardening": tuple(PROBE_NOTEBOOKS),
            "test_sandbox": tuple(sandbox),
            "test_execution": (*EXECUTION_NOTEBOOKS, "student_folder", "invalid_json", "empty"),
        }
        audit_log = rubric_folder / "audits.jsonl"
        run = subprocess.run(
            [sys.executable, "-c", AUDITED_CLI, str(audit_log), "grade", str(folder), "--rubric", str(rubric),
             "--out", str(out), "--jobs", "2"], cwd=REPO, capture_output=True, text=True, timeout=900)
        reports = [json.loads(path.read_text("utf-8")) for path in out.glob("*.json")]
        audits = [json.loads(line) for line in audit_log.read_text("utf-8").splitlines()] if audit_log.exists() else []
        yield Gallery(run, folder, rubric, out, {r["student_id"]: r for r in reports}, names, host_files,
                      listener, audits)


# The child process: `grader` from this checkout (cwd = the repository), audited.
AUDITED_CLI = f"import sys; sys.path.insert(1, {str(TESTS)!r}); import hostile_gallery; " \
              "hostile_gallery.audited_cli(sys.argv[1], sys.argv[2:])"


def audited_cli(audit_log: str, argv: list[str]) -> None:
    """`grader` with its command line, whose local kernels are audited once their probes have run:
    each kernel reads the grader's hidden files (a hidden file reads as empty, a hidden folder
    lists as empty) and the sizes it saw become a line of JSON in `audit_log`. A failed audit is
    recorded as one too, never raised: the batch runs as it would without the audit."""
    import threading

    from grader import cli
    from grader.execute import registry
    from grader.execute.local import LocalKernelExecutor
    from grader.execute.sandbox import _hidden_files

    code = ("import json, os\nprint('AUDIT', json.dumps({'hidden': [len(os.listdir(p)) if os.path.isdir(p) "
            f"else len(open(p, 'rb').read()) for p in {list(_hidden_files())!r}]}}))")
    lock = threading.Lock()

    def audit(session, workdir: Path) -> None:
        try:
            outcome = session.execute(code, 20)
            printed = "".join(o.get("text", "") for o in outcome.outputs if o.get("name") == "stdout")
            lines = [line for line in printed.splitlines() if line.startswith("AUDIT ")]
            entry = (json.loads(lines[0].removeprefix("AUDIT ")) if len(lines) == 1 else
                     {"failed": repr((outcome.status, outcome.error, outcome.message, printed[:500]))})
        except Exception as error:  # noqa: BLE001 - recorded for the test to see
            entry = {"failed": repr(error)}
        with lock, open(audit_log, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(entry) + "\n")

    registry.LocalKernelExecutor = lambda: LocalKernelExecutor(audit)
    cli.main(argv, prog_name="grader")
