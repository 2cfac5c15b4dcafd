"""The hidden split's labels never enter the student's kernel: after every probe has run, the
kernel's memory and its working directory are searched for them, and they are not there."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import numpy as np
import pytest
from support import DEFAULT_RUBRIC, REPO

from grader.checks.registry import CHECK_KINDS
from grader.data.sources import data_arrays
from grader.execute.kernel import KernelSession
from grader.execute.local import LocalKernelExecutor
from grader.grade.api import grade_batch
from grader.grade.seeds import check_rng, choose_seed
from grader.rubric.load import load_rubric

pytestmark = pytest.mark.kernel


def readable_memory(pid: int) -> bytes:
    """The kernel process's private writable memory (heap, anonymous maps, data segments)."""
    chunks = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            fields = line.split()
            start, end = (int(v, 16) for v in fields[0].split("-"))
            if not fields[1].startswith("rw") or (len(fields) > 5 and fields[5].startswith("[v")):
                continue
            try:
                mem.seek(start)
                chunks.append(mem.read(end - start))
            except OSError:  # a region that vanished or cannot be read
                continue
    return b"".join(chunks)


def kernel_process(root: int) -> int:
    """The kernel's Python process: `root` itself, or (inside the sandbox) a descendant of it."""
    from grader.execute.processes import descendants, process_table

    def rss(pid: int) -> int:
        status = Path(f"/proc/{pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))

    candidates = [pid for pid in {root} | descendants({root}, process_table())
                  if b"ipykernel_launcher" in Path(f"/proc/{pid}/cmdline").read_bytes()
                  and not Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].endswith(b"bwrap")]
    return max(candidates, key=rss)


def label_encodings(labels: np.ndarray) -> dict[str, bytes]:
    """The whole label sequence in the encodings it could travel in. Whole, because the kernel
    legitimately holds its own predictions, which match most labels (not all: the model used
    here is wrong on a few hidden images, checked below)."""
    return {
        "int64": labels.astype("<i8").tobytes(),
        "int32": labels.astype("<i4").tobytes(),
        "uint8": labels.astype(np.uint8).tobytes(),
        "json": ", ".join(str(v) for v in labels).encode(),
        "digits": "".join(str(v) for v in labels).encode(),
    }


def sent_hidden_images(notebook: Path, index: int) -> list[bytes]:
    """Hidden image `index` exactly as D3 and as E1 send it into this notebook's kernel (each
    transformed with its own seed, derived from the notebook's bytes)."""
    rubric = load_rubric(DEFAULT_RUBRIC)
    seed = choose_seed(rubric.seed, notebook.read_bytes())
    sent = []
    for check_id in ("D3.brief_training", "E1.accuracy"):
        check = rubric.check(check_id)
        request, _ = CHECK_KINDS[check.kind].plan(check, check_rng(seed, check.id), rubric)
        encoded = request.payload["x_eval"]
        images = np.frombuffer(base64.b64decode(encoded["__b64__"]), dtype="<f4").reshape(encoded["shape"])
        sent.append(images[index].tobytes())
    return sent


def test_hidden_labels_are_neither_in_kernel_memory_nor_in_its_files(tmp_path: Path) -> None:
    hidden = data_arrays(load_rubric(DEFAULT_RUBRIC).data)
    labels = label_encodings(hidden.hidden_labels)
    found: dict[str, object] = {}

    def audit(session: KernelSession, workdir: Path) -> None:
        memory = readable_memory(kernel_process(session.pid))
        found["memory_bytes"] = len(memory)
        found["image_in_memory"] = any(image in memory for image in hidden_images)
        found["labels_in_memory"] = [name for name, data in labels.items() if data in memory]
        files = [p for p in workdir.rglob("*") if p.is_file()]
        found["files"] = len(files)
        found["labels_in_files"] = [(p.name, name) for p in files for name, data in labels.items()
                                    if data in p.read_bytes()]

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(REPO / "reference" / "solution.ipynb", folder / "solution.ipynb")
    hidden_images = sent_hidden_images(folder / "solution.ipynb", 7)  # sent in: the positive control
    result = grade_batch(folder, DEFAULT_RUBRIC, tmp_path / "out", executor=LocalKernelExecutor(audit))
    report = result.reports[0]
    checks = {c.id: c for c in report.checks}
    assert checks["D3.brief_training"].status == "pass"
    assert checks["D3.brief_training"].details["accuracy"] < 1 and checks["E1.accuracy"].details["accuracy"] < 1
    assert found["memory_bytes"] > 10_000_000 and found["files"] >= 3
    # The search works: the hidden *inputs* were sent in for predictions, and are found.
    assert found["image_in_memory"]
    assert found["labels_in_memory"] == [] and found["labels_in_files"] == []
